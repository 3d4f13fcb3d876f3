package master

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/switchyard-wamp/switchyard/client"
	"github.com/switchyard-wamp/switchyard/cluster/placement"
	"github.com/switchyard-wamp/switchyard/engine"
	"github.com/switchyard-wamp/switchyard/node"
	"github.com/switchyard-wamp/switchyard/proxy"
)

// procAuthenticate is the dynamic authenticator of the management realm: it lets any
// node name in with the cluster secret. Only the replica's own session may call or
// register under switchyard.internal.
const procAuthenticate = "switchyard.internal.authenticate"

// roleInternal is the authrole of the replica's own session.
const roleInternal = "master"

// applyTimeout bounds one Raft write.
const applyTimeout = 5 * time.Second

// Server is one running master replica: Raft over its data directory, and a WAMP node
// serving the management realm Realm on Config.Listen. The replica's own WAMP session
// (authid InternalAuthID, over loopback RawSocket to its own listener) registers the
// procedures of proto.go and publishes the topics: the engine stays unaware of the
// master. Its methods are safe for concurrent use.
type Server struct {
	cfg  Config
	log  *slog.Logger
	fsm  *fsm
	rn   *raftNode
	node *node.Node
	sess *client.Session
	url  string

	notify             chan bool     // raft leadership changes
	changed            chan struct{} // map or config version changed: publish
	mapDirty, cfgDirty atomic.Bool
	// leading is set once this replica leads and has applied every entry of earlier
	// terms (a Barrier), cleared when it stops leading.
	leading atomic.Bool

	mu     sync.Mutex
	leases map[string]*lease // leader only; reset on every leadership change

	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

// lease is a node's lease as the leader tracks it (never replicated).
type lease struct {
	epoch   uint64    // raft index of the registration it belongs to
	renewed time.Time // last register or heartbeat (or the grace grant)
	expires time.Time
	hb      HeartbeatReq // last report
}

// Start opens the data directory, starts Raft (bootstrapping a new cluster state from
// cfg.Peers when the directory has none), serves the management realm and returns
// once the listener accepts connections. Leadership may come later (an election).
func Start(cfg Config) (*Server, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	s := &Server{
		cfg: cfg, log: cfg.Logger.With("replica", cfg.Name),
		notify: make(chan bool, 16), changed: make(chan struct{}, 1),
		leases: map[string]*lease{}, stop: make(chan struct{}),
	}
	s.fsm = newFSM(cfg.Slots, s.onChange)
	internalSecret := randomHex(32)
	n, err := node.Start(node.Config{
		Listeners: []node.Listener{{Name: "management", Kind: node.KindUniversal, Address: cfg.Listen}},
		Realms:    []string{Realm},
		Logger:    cfg.Logger,
		Auth:      map[string]*proxy.RealmAuth{Realm: s.realmAuth(internalSecret)},
		Roles:     map[string]map[string]*engine.RolePermissions{Realm: roles()},
	})
	if err != nil {
		return nil, fmt.Errorf("master: management listener on %s: %w", cfg.Listen, err)
	}
	s.node = n
	s.url = cfg.URL
	if s.url == "" {
		s.url = n.WebSocketURL()
	}
	rn, err := startRaft(&s.cfg, s.fsm, s.notify)
	if err != nil {
		n.Stop(context.Background())
		return nil, err
	}
	s.rn = rn
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sess, err := Dial(ctx, n.RawSocketURL(), InternalAuthID, internalSecret, nil)
	if err == nil {
		s.sess = sess
		err = s.registerProcedures(ctx)
	}
	if err != nil {
		s.Stop(context.Background())
		return nil, fmt.Errorf("master: own session: %w", err)
	}
	s.wg.Add(3)
	go s.watchLeadership()
	go s.expireLoop()
	go s.publishLoop()
	s.log.Info("master: serving", "realm", Realm, "url", s.url, "raft", rn.trans.LocalAddr(),
		"replicas", max(len(cfg.Peers), 1), "lease", cfg.Lease)
	return s, nil
}

// realmAuth is who may join the management realm: the per-node keys and the operator
// as static WAMP-CRA principals, the replica's own session, and with a cluster secret
// any other node name through the dynamic authenticator.
func (s *Server) realmAuth(internalSecret string) *proxy.RealmAuth {
	cra := map[string]proxy.CRAPrincipal{
		InternalAuthID: {Secret: internalSecret, Role: roleInternal},
	}
	for name, key := range s.cfg.NodeKeys {
		cra[name] = proxy.CRAPrincipal{Secret: key, Role: RoleNode}
	}
	op := s.cfg.OperatorKey
	if op == "" {
		op = s.cfg.Secret
	}
	cra[OperatorAuthID] = proxy.CRAPrincipal{Secret: op, Role: RoleOperator}
	ra := &proxy.RealmAuth{CRA: cra}
	if s.cfg.Secret != "" {
		ra.Authenticator = &proxy.Authenticator{Realm: Realm, Procedure: procAuthenticate,
			Methods: []string{"wampcra"}, Timeout: 5 * time.Second}
	}
	return ra
}

// roles are the permissions on the management realm. Nodes and the operator call the
// control procedures (their identity disclosed to the handlers) and subscribe to the
// topics; only the operator may apply; the internal prefix is the replica's own.
func roles() map[string]*engine.RolePermissions {
	call := engine.Permission{Call: true, DiscloseCaller: true}
	sub := engine.Permission{Subscribe: true}
	mk := func(rules ...engine.Rule) *engine.RolePermissions {
		p, err := engine.NewRolePermissions(rules)
		if err != nil {
			panic(err) // static rules
		}
		return p
	}
	return map[string]*engine.RolePermissions{
		RoleNode: mk(
			engine.Rule{URI: "switchyard.master.", Match: "prefix", Allow: call},
			engine.Rule{URI: ProcApply, Match: "exact"},
			engine.Rule{URI: "switchyard.master.on_", Match: "prefix", Allow: sub},
		),
		RoleOperator: mk(
			engine.Rule{URI: "switchyard.master.", Match: "prefix", Allow: call},
			engine.Rule{URI: "switchyard.master.on_", Match: "prefix", Allow: sub},
		),
		roleInternal: mk(engine.Rule{URI: "", Match: "prefix",
			Allow: engine.Permission{Call: true, Register: true, Publish: true, Subscribe: true}}),
	}
}

// registerProcedures registers the control protocol on the replica's own session.
func (s *Server) registerProcedures(ctx context.Context) error {
	procs := map[string]client.InvocationHandler{
		procAuthenticate: s.authenticate,
		ProcRegister:     s.handle(s.register),
		ProcHeartbeat:    s.handle(s.heartbeat),
		ProcLeave:        s.handle(s.leave),
		ProcGetMap:       s.handle(func(*caller, map[string]any) (any, error) { return s.fsm.Map(), nil }),
		ProcGetConfig:    s.handle(func(*caller, map[string]any) (any, error) { return s.fsm.Config(), nil }),
		ProcApply:        s.handle(s.apply),
		ProcStatus:       s.handle(func(*caller, map[string]any) (any, error) { return s.Status(), nil }),
	}
	for p, h := range procs {
		if _, err := s.sess.Register(ctx, p, h, nil); err != nil {
			return fmt.Errorf("register %s: %w", p, err)
		}
	}
	return nil
}

// caller is who called a procedure, as the router disclosed it.
type caller struct{ authid, authrole string }

// handle adapts a handler of decoded keyword arguments to a WAMP invocation handler:
// the result's JSON form becomes the keyword arguments.
func (s *Server) handle(h func(c *caller, kw map[string]any) (any, error)) client.InvocationHandler {
	return func(_ context.Context, inv *client.Invocation) (*client.Result, error) {
		c := &caller{}
		c.authid, _ = inv.Details["caller_authid"].(string)
		c.authrole, _ = inv.Details["caller_authrole"].(string)
		out, err := h(c, inv.Kwargs)
		if err != nil {
			return nil, err
		}
		kw, err := toKwargs(out)
		if err != nil {
			return nil, fmt.Errorf("master: encode result: %w", err)
		}
		return &client.Result{Kwargs: kw}, nil
	}
}

// authenticate is the dynamic authenticator: (realm, authid, details) -> the node role
// and the cluster secret to run the WAMP-CRA challenge with.
func (s *Server) authenticate(_ context.Context, inv *client.Invocation) (*client.Result, error) {
	authid := ""
	if len(inv.Args) > 1 {
		authid, _ = inv.Args[1].(string)
	}
	if authid == "" || authid == InternalAuthID || authid == OperatorAuthID {
		return nil, &client.Error{URI: "wamp.error.not_authorized", Args: []any{"no such principal"}}
	}
	if _, keyed := s.cfg.NodeKeys[authid]; keyed {
		// Never reached (static principals win), but a keyed node never gets the secret.
		return nil, &client.Error{URI: "wamp.error.not_authorized", Args: []any{"node has its own key"}}
	}
	return &client.Result{Args: []any{map[string]any{"role": RoleNode, "secret": s.cfg.Secret}}}, nil
}

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
	case req.Role == NodeRouter && req.Link == "":
		return nil, invalidArg("register: a router names its link address")
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

// watchLeadership follows Raft's leadership changes: every change starts the leases
// afresh, so a new leader gives every live node a full grace lease.
func (s *Server) watchLeadership() {
	defer s.wg.Done()
	for {
		select {
		case <-s.stop:
			return
		case lead := <-s.notify:
			s.leading.Store(false)
			s.mu.Lock()
			clear(s.leases)
			s.mu.Unlock()
			if !lead {
				s.log.Info("master: this replica is no longer the leader")
				continue
			}
			// Serve as leader once the state holds every committed entry.
			if err := s.rn.r.Barrier(applyTimeout).Error(); err != nil {
				s.log.Warn("master: leader barrier failed", "err", err)
				continue
			}
			if s.rn.r.State() == raft.Leader {
				s.leading.Store(true)
				s.log.Info("master: this replica is the leader")
			}
		}
	}
}

// expireLoop, on the leader, expires the nodes whose lease ran out (one Raft write per
// round, naming each lease's registration) and gives live nodes without a lease (known
// from an earlier leader) a grace lease.
func (s *Server) expireLoop() {
	defer s.wg.Done()
	tick := time.NewTicker(max(min(s.cfg.Lease/20, 250*time.Millisecond), 10*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-tick.C:
		}
		if !s.isLeader() {
			continue
		}
		now := time.Now()
		var gone []expireEntry
		s.mu.Lock()
		for _, n := range s.fsm.nodes() {
			if n.State != StateLive {
				continue
			}
			l := s.leases[n.Node]
			switch {
			case l == nil || l.epoch < n.Epoch:
				s.leases[n.Node] = &lease{epoch: n.Epoch, renewed: now, expires: now.Add(s.cfg.Lease)}
			case l.epoch == n.Epoch && !now.Before(l.expires):
				gone = append(gone, expireEntry{Node: n.Node, Epoch: n.Epoch})
			}
		}
		s.mu.Unlock()
		if len(gone) == 0 {
			continue
		}
		if _, _, err := s.write(command{Kind: cmdExpire, Expire: gone}); err != nil {
			s.log.Warn("master: expiring leases failed", "nodes", len(gone), "err", err)
			continue
		}
		for _, g := range gone {
			s.log.Warn("master: node lease expired", "node", g.Node)
		}
	}
}

// onChange is the FSM's hook (on raft's goroutine): mark and wake the publisher.
func (s *Server) onChange(mapChanged, cfgChanged bool) {
	if mapChanged {
		s.mapDirty.Store(true)
	}
	if cfgChanged {
		s.cfgDirty.Store(true)
	}
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// publishLoop announces new versions on the topics of this replica's realm: every
// replica publishes what its own state machine applied, so a node hears of a change
// from whichever replica it is connected to.
func (s *Server) publishLoop() {
	defer s.wg.Done()
	for {
		select {
		case <-s.stop:
			return
		case <-s.changed:
		}
		mapV, cfgV := s.fsm.Versions()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if s.mapDirty.Swap(false) {
			if err := s.sess.Publish(ctx, TopicMap, nil, map[string]any{"version": mapV}); err != nil {
				s.log.Warn("master: publish map version", "err", err)
			}
		}
		if s.cfgDirty.Swap(false) {
			if err := s.sess.Publish(ctx, TopicConfig, nil, map[string]any{"version": cfgV}); err != nil {
				s.log.Warn("master: publish config version", "err", err)
			}
		}
		cancel()
	}
}

// URL returns this replica's management URL. Safe for concurrent use.
func (s *Server) URL() string { return s.url }

// RawSocketURL returns the rs:// URL of this replica's management listener. Safe for
// concurrent use.
func (s *Server) RawSocketURL() string { return s.node.RawSocketURL() }

// RaftAddr returns the address of this replica's Raft transport. Safe for concurrent use.
func (s *Server) RaftAddr() string { return string(s.rn.trans.LocalAddr()) }

// IsLeader reports whether this replica is the Raft leader. Safe for concurrent use.
func (s *Server) IsLeader() bool { return s.isLeader() }

// LeaderURL returns the leader's management URL ("" during an election or when the
// leader is not in the peers list). Safe for concurrent use.
func (s *Server) LeaderURL() string {
	_, id := s.rn.r.LeaderWithID()
	if id == "" {
		return ""
	}
	if string(id) == s.cfg.Name {
		return s.url
	}
	for _, p := range s.cfg.Peers {
		if p.Name == string(id) {
			return p.URL
		}
	}
	return ""
}

// Map returns the current map. Safe for concurrent use.
func (s *Server) Map() Map { return s.fsm.Map() }

// Status returns the cluster as this replica sees it; lease ages, loads and versions
// per node are known to the leader only (elsewhere LeaseAgeMS is -1). Safe for
// concurrent use.
func (s *Server) Status() Status {
	_, leader := s.rn.r.LeaderWithID()
	mapV, cfgV := s.fsm.Versions()
	m := s.fsm.Map()
	names := make([]string, len(m.Routers))
	for i, r := range m.Routers {
		names[i] = r.Name
	}
	pm := placement.New(m.Slots, names)
	st := Status{Replica: s.cfg.Name, Leader: string(leader), MapVersion: mapV,
		ConfigVersion: cfgV, Slots: m.Slots, Masters: s.masters(string(leader)), Nodes: []NodeInfo{}}
	now := time.Now()
	isLeader := s.isLeader()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range s.fsm.nodes() {
		ni := NodeInfo{Node: n.Node, Role: n.Role, Link: n.Link, Admin: n.Admin, State: n.State, LeaseAgeMS: -1}
		if l := s.leases[n.Node]; isLeader && l != nil && n.State == StateLive {
			ni.LeaseAgeMS = now.Sub(l.renewed).Milliseconds()
			ni.Sessions, ni.LinksUp = l.hb.Sessions, l.hb.LinksUp
			ni.MapVersion, ni.ConfigVersion = l.hb.MapVersion, l.hb.ConfigVersion
		}
		if n.Role == NodeRouter && n.State == StateLive && len(names) > 0 {
			ni.Slots = pm.SlotsOf(n.Node)
		}
		st.Nodes = append(st.Nodes, ni)
	}
	return st
}

// masters lists the replicas of the Raft configuration: this one with its own Raft
// state, the others as leader, follower, or unreachable when their Raft port does not
// answer a TCP dial.
func (s *Server) masters(leader string) []MasterInfo {
	var out []MasterInfo
	cf := s.rn.r.GetConfiguration()
	if cf.Error() != nil {
		return nil
	}
	for _, sv := range cf.Configuration().Servers {
		mi := MasterInfo{Name: string(sv.ID), Raft: string(sv.Address)}
		for _, p := range s.cfg.Peers {
			if p.Name == mi.Name {
				mi.URL = p.URL
			}
		}
		switch {
		case mi.Name == s.cfg.Name:
			mi.URL, mi.State = s.url, stateName(s.rn.r.State())
		case mi.Name == leader:
			mi.State = "leader"
		default:
			mi.State = "follower"
			c, err := net.DialTimeout("tcp", mi.Raft, 300*time.Millisecond)
			if err != nil {
				mi.State = "unreachable"
			} else {
				c.Close()
			}
		}
		out = append(out, mi)
	}
	slices.SortFunc(out, func(a, b MasterInfo) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return out
}

func stateName(st raft.RaftState) string {
	switch st {
	case raft.Leader:
		return "leader"
	case raft.Candidate:
		return "candidate"
	case raft.Follower:
		return "follower"
	}
	return "unreachable"
}

// Snapshot makes Raft take a snapshot now (tests, operators). Safe for concurrent use.
func (s *Server) Snapshot() error { return s.rn.r.Snapshot().Error() }

// Stop closes the replica: its session, its listener (sessions get GOODBYE) and Raft,
// within ctx. Safe to call more than once.
func (s *Server) Stop(ctx context.Context) error {
	var err error
	s.once.Do(func() {
		close(s.stop)
		s.wg.Wait()
		if s.sess != nil {
			s.sess.Close()
		}
		var errs []error
		if s.node != nil {
			errs = append(errs, s.node.Stop(ctx))
		}
		if s.rn != nil {
			errs = append(errs, s.rn.close())
		}
		err = errors.Join(errs...)
	})
	return err
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}
