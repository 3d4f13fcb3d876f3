package master

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/hashicorp/raft"

	"github.com/switchyard-wamp/switchyard/client"
)

// errNotLeader is the ErrNotLeader error naming the current leader's URL.
func (s *Server) errNotLeader() error {
	return &client.Error{URI: ErrNotLeader, Args: []any{"this master replica is not the leader"},
		Kwargs: map[string]any{"leader": s.LeaderURL()}}
}

func (s *Server) isLeader() bool { return s.leading.Load() && s.rn.r.State() == raft.Leader }

// write replicates c through Raft and waits for it to be applied.
func (s *Server) write(c command) (applyResult, uint64, error) {
	if !s.isLeader() {
		return applyResult{}, 0, s.errNotLeader()
	}
	c.At = time.Now().UnixMilli()
	b, err := json.Marshal(c)
	if err != nil {
		return applyResult{}, 0, fmt.Errorf("master: encode %s: %w", c.Kind, err)
	}
	f := s.rn.r.Apply(b, applyTimeout)
	if err := f.Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) ||
			errors.Is(err, raft.ErrLeadershipTransferInProgress) {
			return applyResult{}, 0, s.errNotLeader()
		}
		return applyResult{}, 0, fmt.Errorf("master: replicate %s: %w", c.Kind, err)
	}
	res, _ := f.Response().(applyResult)
	return res, f.Index(), res.err
}

func invalidArg(format string, args ...any) error {
	return &client.Error{URI: "wamp.error.invalid_argument", Args: []any{fmt.Sprintf(format, args...)}}
}

// register is ProcRegister.
func (s *Server) register(c *caller, kw map[string]any) (any, error) {
	var req RegisterReq
	if err := fromKwargs(kw, &req); err != nil {
		return nil, invalidArg("register: %v", err)
	}
	switch {
	case c.authrole != RoleNode:
		return nil, &client.Error{URI: "wamp.error.not_authorized", Args: []any{"only nodes register"}}
	case req.Node == "" || req.Node != c.authid:
		return nil, invalidArg("register: node %q must be the session's authid %q", req.Node, c.authid)
	case req.Role != NodeRouter && req.Role != NodeProxy:
		return nil, invalidArg("register: role %q is neither %q nor %q", req.Role, NodeRouter, NodeProxy)
	case !validNodeName(req.Node):
		return nil, invalidArg("register: node name %q: at most 64 letters, digits, '.', '_' and '-'", req.Node)
	case req.Role == NodeRouter && !validLink(req.Link):
		return nil, invalidArg("register: a router names the host:port the other nodes dial its links at (not a wildcard host), got %q", req.Link)
	}
	_, idx, err := s.write(command{Kind: cmdRegister, Reg: &req})
	if err != nil {
		return nil, err
	}
	now := time.Now()
	s.mu.Lock()
	s.leases[req.Node] = &lease{epoch: idx, renewed: now, expires: now.Add(s.cfg.Lease)}
	s.mu.Unlock()
	_, cfgV := s.fsm.Versions()
	s.log.Info("master: node registered", "node", req.Node, "role", req.Role, "link", req.Link)
	return RegisterRes{LeaseMS: s.cfg.Lease.Milliseconds(), Map: s.fsm.Map(), ConfigVersion: cfgV}, nil
}

// heartbeat is ProcHeartbeat.
func (s *Server) heartbeat(c *caller, kw map[string]any) (any, error) {
	var req HeartbeatReq
	if err := fromKwargs(kw, &req); err != nil {
		return nil, invalidArg("heartbeat: %v", err)
	}
	if req.Node != c.authid {
		return nil, invalidArg("heartbeat: node %q must be the session's authid %q", req.Node, c.authid)
	}
	if !s.isLeader() {
		return nil, s.errNotLeader()
	}
	rec, ok := s.fsm.node(req.Node)
	now := time.Now()
	s.mu.Lock()
	l := s.leases[req.Node]
	if ok && rec.State == StateLive && l == nil {
		// Registered under an earlier leader: the grace lease starts now.
		l = &lease{epoch: rec.Epoch, expires: now.Add(s.cfg.Lease)}
		s.leases[req.Node] = l
	}
	valid := ok && rec.State == StateLive && l != nil && l.epoch == rec.Epoch && now.Before(l.expires)
	if valid {
		l.renewed, l.expires, l.hb = now, now.Add(s.cfg.Lease), req
	}
	s.mu.Unlock()
	if !valid {
		return nil, &client.Error{URI: ErrNotRegistered, Args: []any{"no lease: register again"}}
	}
	mapV, cfgV := s.fsm.Versions()
	return HeartbeatRes{MapVersion: mapV, ConfigVersion: cfgV}, nil
}

// leave is ProcLeave.
func (s *Server) leave(c *caller, kw map[string]any) (any, error) {
	var req LeaveReq
	if err := fromKwargs(kw, &req); err != nil {
		return nil, invalidArg("leave: %v", err)
	}
	if req.Node != c.authid {
		return nil, invalidArg("leave: node %q must be the session's authid %q", req.Node, c.authid)
	}
	if _, _, err := s.write(command{Kind: cmdLeave, Node: req.Node}); err != nil {
		return nil, err
	}
	s.mu.Lock()
	delete(s.leases, req.Node)
	s.mu.Unlock()
	s.log.Info("master: node left", "node", req.Node)
	return struct{}{}, nil
}

// apply is ProcApply.
func (s *Server) apply(c *caller, kw map[string]any) (any, error) {
	if c.authrole != RoleOperator {
		return nil, &client.Error{URI: "wamp.error.not_authorized", Args: []any{"only the operator applies a config"}}
	}
	var req ApplyReq
	if err := fromKwargs(kw, &req); err != nil {
		return nil, invalidArg("apply: %v", err)
	}
	if report := ValidateShared(req.Config); report != "" {
		return nil, &client.Error{URI: ErrInvalidConfig, Args: []any{report}}
	}
	b, err := json.Marshal(req.Config)
	if err != nil {
		return nil, invalidArg("apply: %v", err)
	}
	res, _, err := s.write(command{Kind: cmdApply, Config: b})
	if err != nil {
		return nil, err
	}
	s.log.Info("master: config applied", "version", res.version)
	return ApplyRes{Version: res.version}, nil
}

// validNodeName reports whether name is a node name as config.Cluster.Node allows.
func validNodeName(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// validLink reports whether link is a dialable host:port: other nodes dial it, so its
// host is neither empty nor a wildcard address.
func validLink(link string) bool {
	host, port, err := net.SplitHostPort(link)
	if err != nil || host == "" {
		return false
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return false
	}
	n, err := strconv.Atoi(port)
	return err == nil && n > 0 && n < 65536
}
