// Package node wires a standalone switchyard node: the engine (router role), the
// frontend (proxy role) and the netpoll listeners in one process, talking in-process.
// `switchyard start` and the integration tests use the same wiring.
package node

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/switchyard-wamp/switchyard/engine"
	"github.com/switchyard-wamp/switchyard/netpoll"
	"github.com/switchyard-wamp/switchyard/proxy"
)

// Config is a standalone node's configuration; the zero value plus Defaults() is the
// embedded default of `switchyard start`.
type Config struct {
	Listen         string        // universal listener (WebSocket at WSPath, RawSocket, status page)
	RawSocket      string        // RawSocket-only listener; "" disables
	WSPath         string        // WebSocket path
	Realms         []string      // realms served (anonymous)
	MaxMessageSize int           // largest inbound message, bytes
	OutboundLimit  int           // bytes queued per connection before a slow consumer is closed
	PingInterval   time.Duration // WebSocket ping after this much idle time
	PingTimeout    time.Duration // close when a ping is not answered within this
	Loops          int           // event loops; 0 = one per CPU
	StatusPage     func(*Node) []byte
	Logger         *slog.Logger
	// Auth says who may join each realm; a realm without an entry is anonymous-only.
	Auth map[string]*proxy.RealmAuth
	// Roles are each realm's authroles and their permissions; a realm without an entry
	// lets every session do everything.
	Roles map[string]map[string]*engine.RolePermissions
}

// Defaults fills the zero fields of c with the embedded default node.
func (c *Config) Defaults() {
	if c.WSPath == "" {
		c.WSPath = "/ws"
	}
	if len(c.Realms) == 0 {
		c.Realms = []string{"realm1"}
	}
	if c.MaxMessageSize == 0 {
		c.MaxMessageSize = 1 << 20
	}
	if c.OutboundLimit == 0 {
		c.OutboundLimit = 4 << 20
	}
	if c.PingInterval == 0 {
		c.PingInterval = 10 * time.Second
	}
	if c.PingTimeout == 0 {
		c.PingTimeout = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Node is a running standalone node.
type Node struct {
	Router *engine.Router
	Server *netpoll.Server
	front  *proxy.Frontend
	cfg    Config
}

// Start builds and starts a node; it returns once the listeners accept connections.
func Start(cfg Config) (*Node, error) {
	cfg.Defaults()
	n := &Node{Router: engine.NewRouter(cfg.Logger), cfg: cfg}
	for _, r := range cfg.Realms {
		rl := n.Router.AddRealm(r)
		if roles, ok := cfg.Roles[r]; ok {
			rl.SetRoles(roles)
		}
	}
	var page func() []byte
	if cfg.StatusPage != nil {
		page = func() []byte { return cfg.StatusPage(n) }
	}
	n.front = proxy.NewFrontend(n.Router, cfg.Logger, cfg.Auth)
	lt := netpoll.Listener{Path: cfg.WSPath, MaxMessageSize: cfg.MaxMessageSize,
		PingInterval: cfg.PingInterval, PingTimeout: cfg.PingTimeout}
	var lns []netpoll.Listener
	if cfg.Listen != "" {
		u := lt
		u.Address, u.Kind = cfg.Listen, netpoll.KindUniversal
		lns = append(lns, u)
	}
	if cfg.RawSocket != "" {
		r := lt
		r.Address, r.Kind = cfg.RawSocket, netpoll.KindRawSocket
		lns = append(lns, r)
	}
	srv, err := netpoll.NewServer(netpoll.Config{
		Listeners:     lns,
		OutboundLimit: cfg.OutboundLimit,
		Loops:         cfg.Loops,
		Logger:        cfg.Logger,
		StatusPage:    page,
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

// Reload applies the realms, principals and roles of cfg to the running node without
// dropping sessions: new realms are added, every realm's roles and auth are replaced
// (new handshakes and sessions joining afterwards see them). Realms missing from cfg
// keep running (removing a realm would end its sessions); listeners, sizes and loops
// need a restart. Safe for concurrent use.
func (n *Node) Reload(cfg Config) {
	for _, r := range cfg.Realms {
		rl := n.Router.AddRealm(r)
		rl.SetRoles(cfg.Roles[r]) // nil: everything allowed
	}
	n.front.SetAuth(cfg.Auth)
}

// WebSocketURL returns the ws:// URL of the universal listener.
func (n *Node) WebSocketURL() string {
	return fmt.Sprintf("ws://%s%s", n.Server.UniversalAddr(), n.cfg.WSPath)
}

// RawSocketURL returns the rs:// URL of the universal listener.
func (n *Node) RawSocketURL() string { return fmt.Sprintf("rs://%s", n.Server.UniversalAddr()) }

// Stop says GOODBYE wamp.close.system_shutdown to every session, then flushes and closes
// every connection within ctx's deadline.
func (n *Node) Stop(ctx context.Context) error {
	n.Router.Shutdown(engine.CloseSystemShutdown)
	return n.Server.Stop(ctx)
}
