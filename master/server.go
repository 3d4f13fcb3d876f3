package master

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-wamp/switchyard/client"
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

// Snapshot makes Raft take a snapshot now (tests, operators). Safe for concurrent use.
func (s *Server) Snapshot() error { return s.rn.r.Snapshot().Error() }

// Stop closes the replica: a leader with other replicas first hands the leadership to
// one of them (so a planned stop costs the cluster no election timeout), then its
// session, its listener (sessions get GOODBYE) and Raft close, within ctx. Safe to call
// more than once and concurrently.
func (s *Server) Stop(ctx context.Context) error { return s.shutdown(ctx, true) }

// Kill stops the replica without handing over the leadership, as a crash looks to the
// other replicas (they wait out the election timeout): for tests and fault drills of a
// leader's death. Safe to call more than once and concurrently with Stop.
func (s *Server) Kill() error { return s.shutdown(context.Background(), false) }

func (s *Server) shutdown(ctx context.Context, transfer bool) error {
	var err error
	s.once.Do(func() {
		if transfer && s.rn != nil && s.isLeader() && len(s.cfg.Peers) > 1 {
			if terr := s.rn.r.LeadershipTransfer().Error(); terr != nil {
				s.log.Warn("master: leadership transfer before stopping failed", "err", terr)
			} else {
				s.log.Info("master: leadership handed over before stopping")
			}
		}
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
