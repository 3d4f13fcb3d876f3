// Package node wires a standalone switchyard node: the engine (router role), the
// frontend (proxy role) and the netpoll listeners in one process, talking in-process.
// `switchyard start` and the integration tests use the same wiring.
package node

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/switchyard-wamp/switchyard/engine"
	"github.com/switchyard-wamp/switchyard/internal/lograte"
	"github.com/switchyard-wamp/switchyard/netpoll"
	"github.com/switchyard-wamp/switchyard/proxy"
)

// Config is a standalone node's configuration; the zero value plus Defaults() is the
// embedded default of `switchyard start`.
type Config struct {
	// Listeners are the sockets the node serves, in order; empty: the default universal
	// listener on :8080 and RawSocket listener on :8081.
	Listeners         []Listener
	Realms            []string      // realms served (anonymous)
	OutboundLimit     int           // slow-consumer soft limit (netpoll.Config.OutboundLimit)
	OutboundHardLimit int           // netpoll.Config.OutboundHardLimit; 0 = its default
	WriteDeadline     time.Duration // netpoll.Config.WriteDeadline; 0 = its default
	Loops             int           // event loops; 0 = one per CPU
	IOUring           bool          // batch direct socket writes with io_uring (netpoll.Config.IOUring)
	// MaxConnections caps the client connections held at once (netpoll.Config); 0 =
	// netpoll.DefaultMaxConnections(), below the file descriptor limit.
	MaxConnections int
	// StatusPage builds the page served at "/" of the universal listeners whose
	// StatusPage is "full"; nil: they serve the minimal page.
	StatusPage func(*Node) []byte
	Logger     *slog.Logger
	// Auth says who may join each realm; a realm without an entry is anonymous-only.
	Auth map[string]*proxy.RealmAuth
	// Roles are each realm's authroles and their permissions; a realm without an entry
	// lets every session do everything.
	Roles map[string]map[string]*engine.RolePermissions
	// Authorizers are the realms' dynamic authorizers (realms without one: none).
	Authorizers map[string]*engine.Authorizer
	// Store is each realm's event history rules and bounds on stored topics; a realm
	// without an entry keeps no history and at most engine.DefaultStoredTopics
	// retained topics.
	Store map[string]engine.StoreConfig
	// Cluster, when set, makes the node a cluster proxy: sessions are authenticated here
	// and live on the cluster's routers; the node's own engine holds no realm.
	Cluster proxy.Cluster
	// NoListeners runs the node without client listeners (a cluster router that only
	// takes sessions over links); Listeners is then ignored.
	NoListeners bool
	// LogRate bounds the log lines clients can cause; zero fields take the defaults.
	LogRate LogRate

	// links, set by StartRouter and StartProxy, gets the node's event loops for the
	// cluster's links (linkloops.go): the server starts them even without listeners.
	links *linkLoops
	// beforeLoopsStop runs when Stop has closed the client conns, before the event
	// loops stop: a proxy closes its links there, gracefully, while their loops run.
	beforeLoopsStop func()
}

// LogRate is how many log lines a remote address may cause: per cause (bad frame,
// failed login, ...) and address, Burst lines per Interval pass, the rest are counted
// in one "suppressed N similar lines" line; at most MaxKeys addresses are tracked.
// Zero fields: 5 lines per 10 s, 4096 addresses (internal/lograte).
type LogRate struct {
	Burst    int
	Interval time.Duration
	MaxKeys  int
}

// Defaults fills the zero fields of c with the embedded default node.
func (c *Config) Defaults() {
	if c.NoListeners {
		c.Listeners = nil
	} else if len(c.Listeners) == 0 {
		c.Listeners = []Listener{
			{Kind: KindUniversal, Address: ":8080"},
			{Kind: KindRawSocket, Address: ":8081"},
		}
	}
	for i := range c.Listeners {
		l := &c.Listeners[i]
		if l.Kind == "" {
			l.Kind = KindUniversal
		}
		if l.Path == "" && l.Kind != KindRawSocket {
			l.Path = "/ws"
		}
		if l.MaxMessageSize == 0 {
			l.MaxMessageSize = 1 << 20
		}
		if l.PingInterval == 0 {
			l.PingInterval = 10 * time.Second
		}
		if l.PingTimeout == 0 {
			l.PingTimeout = 5 * time.Second
		}
	}
	if len(c.Realms) == 0 {
		c.Realms = []string{"realm1"}
	}
	if c.OutboundLimit == 0 {
		c.OutboundLimit = netpoll.DefaultOutboundLimit
	}
	if c.WriteDeadline == 0 {
		c.WriteDeadline = netpoll.DefaultWriteDeadline
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Node is a running standalone node. Its methods are safe for concurrent use.
type Node struct {
	Router *engine.Router
	Server *netpoll.Server
	front  *proxy.Frontend
	cfg    Config
	certs  []*certSource // per listener; nil for plain ones
	// reloadMu makes concurrent Reloads run one after the other.
	reloadMu sync.Mutex
}

// Start builds and starts a node; it returns once the listeners accept connections.
func Start(cfg Config) (*Node, error) {
	cfg.Defaults()
	cfg.Listeners = slices.Clone(cfg.Listeners)
	n := &Node{Router: engine.NewRouter(cfg.Logger), cfg: cfg}
	logLimit := lograte.New(cfg.Logger, cfg.LogRate.Burst, cfg.LogRate.Interval, cfg.LogRate.MaxKeys)
	n.Router.SetLogLimit(logLimit)
	lns, err := n.netpollListeners()
	if err != nil {
		return nil, err
	}
	for _, r := range cfg.Realms {
		if n.cfg.Cluster != nil {
			break // the routers hold the realms
		}
		rl := n.Router.AddRealm(r)
		if roles, ok := cfg.Roles[r]; ok {
			rl.SetRoles(roles)
		}
		rl.SetAuthorizer(cfg.Authorizers[r])
		if err := rl.SetStore(cfg.Store[r]); err != nil {
			return nil, fmt.Errorf("node: %w", err)
		}
	}
	var page func() []byte
	if cfg.StatusPage != nil {
		page = func() []byte { return cfg.StatusPage(n) }
	}
	if cfg.Cluster != nil {
		n.front = proxy.NewClusterFrontend(cfg.Cluster, cfg.Logger, servedAuth(cfg.Realms, cfg.Auth))
	} else {
		n.front = proxy.NewFrontend(n.Router, cfg.Logger, servedAuth(cfg.Realms, cfg.Auth))
	}
	n.front.SetLogLimit(logLimit)
	methods := map[string][]string{}
	for i, l := range cfg.Listeners {
		if l.AuthMethods != nil {
			if l.Name == "" {
				return nil, fmt.Errorf("node: listener %d: auth methods need a listener name", i)
			}
			methods[l.Name] = l.AuthMethods
		}
	}
	n.front.SetListenerMethods(methods)
	if cfg.NoListeners && cfg.links == nil {
		return n, nil
	}
	if cfg.links != nil {
		defer func() { cfg.links.started(n.Server) }() // nil on failure: links read themselves
	}
	srv, err := netpoll.NewServer(netpoll.Config{
		Listeners:         lns,
		Adopting:          cfg.links != nil,
		BeforeLoopsStop:   cfg.beforeLoopsStop,
		OutboundLimit:     cfg.OutboundLimit,
		OutboundHardLimit: cfg.OutboundHardLimit,
		WriteDeadline:     cfg.WriteDeadline,
		Loops:             cfg.Loops,
		IOUring:           cfg.IOUring,
		Logger:            cfg.Logger,
		LogLimit:          logLimit,
		StatusPage:        page,
		MaxConnections:    cfg.MaxConnections,
		AwaitSession:      true, // the Frontend marks a conn Established at WELCOME
	}, n.front)
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	n.Server = srv
	return n, nil
}

// Reload applies cfg to the running node. First the TLS certificate, key and client CA
// files of every TLS listener are read again (the paths of cfg's listener at the same
// position, or the running ones): if any is bad, Reload changes nothing and returns the
// error, and the old certificates stay in force. Then new realms are added and every
// realm's roles and auth are replaced (new handshakes and sessions joining afterwards
// see them). A realm missing from cfg is removed: new handshakes get ABORT
// wamp.error.no_such_realm and its sessions get GOODBYE wamp.close.close_realm (see
// CloseRealmRemoved); sessions of the other realms keep running. Empty cfg.Realms means
// realm1, as in Start. Listeners, sizes and loops need a restart. Existing TLS sessions
// keep their connection; new handshakes get the new certificates. Safe for concurrent
// use: reloads run one at a time.
func (n *Node) Reload(cfg Config) error {
	n.reloadMu.Lock()
	defer n.reloadMu.Unlock()
	if err := n.reloadCerts(cfg.Listeners); err != nil {
		return err
	}
	if len(cfg.Realms) == 0 {
		cfg.Realms = []string{"realm1"}
	}
	for _, r := range cfg.Realms {
		if n.cfg.Cluster != nil {
			break // the routers hold the realms
		}
		rl := n.Router.AddRealm(r)
		rl.SetRoles(cfg.Roles[r]) // nil: everything allowed
		rl.SetAuthorizer(cfg.Authorizers[r])
		if err := rl.SetStore(cfg.Store[r]); err != nil {
			n.cfg.Logger.Error("reload: store config refused", "realm", r, "err", err)
		}
	}
	// A proxy node's cluster learns the realms it serves (new ones before their auth).
	if rs, ok := n.cfg.Cluster.(interface{ SetRealms([]string) }); ok {
		rs.SetRealms(cfg.Realms)
	}
	// The new auth map has no entry for removed realms, so from here on their
	// handshakes are refused; then their sessions are told GOODBYE.
	n.front.SetAuth(servedAuth(cfg.Realms, cfg.Auth))
	for _, r := range n.Router.RealmNames() {
		if slices.Contains(cfg.Realms, r) {
			continue
		}
		if count, ok := n.Router.RemoveRealm(r, engine.CloseRealm, CloseRealmRemoved); ok {
			n.cfg.Logger.Info("reload: realm removed, its sessions were told GOODBYE", "realm", r,
				"reason", engine.CloseRealm, "sessions", count)
		}
	}
	return nil
}

// CloseRealmRemoved is GOODBYE.Details.message of the wamp.close.close_realm a session
// gets when a reload removes its realm.
const CloseRealmRemoved = "the realm was removed from the router's configuration"

// servedAuth is the frontend's auth map for realms: each realm's entry of auth, or
// anonymous-only (authrole anonymous) for a realm without one. Realms not listed get no
// entry, so the frontend refuses them whatever auth holds.
func servedAuth(realms []string, auth map[string]*proxy.RealmAuth) map[string]*proxy.RealmAuth {
	out := make(map[string]*proxy.RealmAuth, len(realms))
	for _, r := range realms {
		if a := auth[r]; a != nil {
			out[r] = a
			continue
		}
		anon := "anonymous"
		out[r] = &proxy.RealmAuth{Anonymous: &anon}
	}
	return out
}

// WebSocketURL returns the ws:// (wss:// with TLS) URL of the first universal TCP
// listener, "" if there is none.
func (n *Node) WebSocketURL() string {
	if i := n.firstUniversal(); i >= 0 {
		return n.urls(i)[0]
	}
	return ""
}

// RawSocketURL returns the rs:// (rss:// with TLS) URL of the first universal TCP
// listener, "" if there is none.
func (n *Node) RawSocketURL() string {
	if i := n.firstUniversal(); i >= 0 {
		return n.urls(i)[1]
	}
	return ""
}

func (n *Node) firstUniversal() int {
	for i, l := range n.cfg.Listeners {
		if l.Kind == KindUniversal && l.Network != "unix" {
			return i
		}
	}
	return -1
}

// ListenerAddr returns the bound address of listener i (Config.Listeners order; with
// port 0 the port picked), nil if out of range.
func (n *Node) ListenerAddr(i int) net.Addr { return n.Server.Addr(i) }

// URLs returns the client URLs of listener i: ws:// or wss:// with the path for
// WebSocket, rs:// or rss:// for RawSocket (a universal listener has both). Unix
// socket listeners are given as "unix:PATH" followed by the protocols' path.
func (n *Node) URLs(i int) []string {
	if i < 0 || i >= len(n.cfg.Listeners) {
		return nil
	}
	return n.urls(i)
}

func (n *Node) urls(i int) []string {
	l := n.cfg.Listeners[i]
	addr := n.Server.Addr(i).String()
	ws, rs := "ws://", "rs://"
	if l.TLS != nil {
		ws, rs = "wss://", "rss://"
	}
	if l.Network == "unix" {
		return []string{"unix:" + addr + " (" + strings.TrimSuffix(ws, "://") + " " + l.Path + ", " + strings.TrimSuffix(rs, "://") + ")"}
	}
	switch l.Kind {
	case KindWebSocket:
		return []string{ws + addr + l.Path}
	case KindRawSocket:
		return []string{rs + addr}
	}
	return []string{ws + addr + l.Path, rs + addr}
}

// Stop says GOODBYE wamp.close.system_shutdown to every session, then flushes and closes
// every connection within ctx's deadline.
func (n *Node) Stop(ctx context.Context) error {
	n.Router.Shutdown(engine.CloseSystemShutdown)
	if n.cfg.Cluster != nil {
		n.cfg.Cluster.Shutdown(engine.CloseSystemShutdown)
	}
	if n.Server == nil {
		return nil
	}
	return n.Server.Stop(ctx)
}
