// A whole cluster in one process: routers and proxies over real TCP links on loopback,
// clients on the proxies' real listeners. Tests outside this package (interop), load
// generators and benchmarks start one with StartLocalCluster instead of assembling
// StartRouter and StartProxy themselves.

package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"time"
)

// LocalClusterConfig describes a local cluster. The zero value is 3 routers and 2
// proxies serving realm1, every role spread over every router.
type LocalClusterConfig struct {
	// Routers and Proxies are how many of each (defaults 3 and 2).
	Routers, Proxies int
	// Realms are the realms served (default realm1).
	Realms []string
	// Spread(realm, authrole) is over how many routers a role's sessions spread
	// (nil: all of them).
	Spread func(realm, authrole string) int
	// Alternate places the n-th session opened through any proxy on router n % Routers
	// (in router order), so that sessions opened one after another land on different
	// routers whatever their ids: tests use it to put e.g. a publisher and its
	// subscriber on different routers.
	Alternate bool
	// Place, if set, pins new sessions to routers by name (ProxyNodeConfig.Place; ""
	// leaves the choice to the placement map). It takes precedence over Alternate and
	// must be safe for concurrent use.
	Place func(realm, authrole string, session uint64) string
	// Mod, if set, changes every node's config (routers and proxies alike) after the
	// defaults are filled in: realm auth, roles, store rules, listeners.
	Mod func(*Config)
	// Slots is the number of placement slots (default 256).
	Slots int
	// Logger receives every node's log (default: discarded).
	Logger *slog.Logger
	// ReadyTimeout bounds the wait for the links to come up (default 5 s).
	ReadyTimeout time.Duration
}

// LocalCluster is a running local cluster: routers named router1..routerN, proxies
// proxy1..proxyM, in that order in Routers and Proxies. Its fields are read-only after
// StartLocalCluster; its methods are safe for concurrent use.
type LocalCluster struct {
	Routers []*RouterNode
	Proxies []*ProxyNode
	placed  atomic.Uint64
}

// StartLocalCluster starts the routers, waits until each has a link to every other,
// then starts the proxies (one universal client listener each on 127.0.0.1:0) and waits
// until their links are up. On error it stops what it started.
func StartLocalCluster(cfg LocalClusterConfig) (*LocalCluster, error) {
	if cfg.Routers <= 0 {
		cfg.Routers = 3
	}
	if cfg.Proxies <= 0 {
		cfg.Proxies = 2
	}
	if len(cfg.Realms) == 0 {
		cfg.Realms = []string{"realm1"}
	}
	if cfg.Spread == nil {
		n := cfg.Routers
		cfg.Spread = func(string, string) int { return n }
	}
	if cfg.Slots <= 0 {
		cfg.Slots = 256
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = 5 * time.Second
	}
	lc := &LocalCluster{}
	members := make([]ClusterMember, cfg.Routers)
	// Every router's link socket is bound before any router starts, so that all know
	// each other's addresses and no other process can take a port meanwhile.
	lns := make([]net.Listener, cfg.Routers)
	for i := range members {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			for _, l := range lns[:i] {
				l.Close()
			}
			return nil, fmt.Errorf("local cluster: %w", err)
		}
		lns[i] = ln
		members[i] = ClusterMember{Name: fmt.Sprintf("router%d", i+1), Addr: ln.Addr().String()}
	}
	common := ClusterCommon{Secret: []byte("local cluster secret"), Routers: members, Slots: cfg.Slots, LinksPerPeer: 2}
	fail := func(err error) (*LocalCluster, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_ = lc.Stop(ctx)
		return nil, fmt.Errorf("local cluster: %w", err)
	}
	for i, m := range members {
		c := common
		c.Name = m.Name
		nc := Config{NoListeners: true, Realms: cfg.Realms, Logger: cfg.Logger.With("node", m.Name)}
		if cfg.Mod != nil {
			cfg.Mod(&nc)
		}
		r, err := StartRouter(RouterNodeConfig{ClusterCommon: c, LinkAddr: m.Addr, LinkListener: lns[i], Node: nc})
		if err != nil {
			for _, l := range lns[i+1:] {
				l.Close()
			}
			return fail(err)
		}
		lc.Routers = append(lc.Routers, r)
	}
	deadline := time.Now().Add(cfg.ReadyTimeout)
	for _, r := range lc.Routers {
		for !r.linksUp(2) {
			if time.Now().After(deadline) {
				return fail(fmt.Errorf("router %s sees live routers %v, want all %d", r.Name(), r.Live(), len(lc.Routers)))
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	place := cfg.Place
	if place == nil && cfg.Alternate {
		place = func(string, string, uint64) string {
			return members[(lc.placed.Add(1)-1)%uint64(len(members))].Name
		}
	}
	for i := 0; i < cfg.Proxies; i++ {
		c := common
		c.Name = fmt.Sprintf("proxy%d", i+1)
		nc := Config{Listeners: []Listener{{Address: "127.0.0.1:0"}}, Realms: cfg.Realms, Logger: cfg.Logger.With("node", c.Name)}
		if cfg.Mod != nil {
			cfg.Mod(&nc)
		}
		p, err := StartProxy(ProxyNodeConfig{ClusterCommon: c, Node: nc, SpreadOf: cfg.Spread, Place: place})
		if err != nil {
			return fail(err)
		}
		lc.Proxies = append(lc.Proxies, p)
		if !p.Links.WaitReady(time.Until(deadline)) {
			return fail(fmt.Errorf("proxy %s: links to the routers did not come up", c.Name))
		}
	}
	return lc, nil
}

// linksUp reports whether every link of the router's pools to the other routers is up
// (per each): span messages go on the link their key picks, and one still dialing
// would drop them.
func (r *RouterNode) linksUp(per int) bool {
	for _, p := range *r.pools.Load() {
		if p.Stats().Links < per {
			return false
		}
	}
	return len(r.Live()) == len(*r.pools.Load())+1
}

// WebSocketURLs returns every proxy's WebSocket URL, in proxy order.
func (lc *LocalCluster) WebSocketURLs() []string {
	out := make([]string, len(lc.Proxies))
	for i, p := range lc.Proxies {
		out[i] = p.Node.WebSocketURL()
	}
	return out
}

// RawSocketURLs returns every proxy's RawSocket URL, in proxy order.
func (lc *LocalCluster) RawSocketURLs() []string {
	out := make([]string, len(lc.Proxies))
	for i, p := range lc.Proxies {
		out[i] = p.Node.RawSocketURL()
	}
	return out
}

// RouterOf returns the router that holds session id of realm, or nil.
func (lc *LocalCluster) RouterOf(realm string, id uint64) *RouterNode {
	for _, r := range lc.Routers {
		if rl, ok := r.Node.Router.Realm(realm); ok && rl.HasSession(id) {
			return r
		}
	}
	return nil
}

// Stop stops the proxies (GOODBYE to their clients), then the routers, within ctx.
func (lc *LocalCluster) Stop(ctx context.Context) error {
	var errs []error
	for _, p := range lc.Proxies {
		errs = append(errs, p.Stop(ctx))
	}
	for _, r := range lc.Routers {
		errs = append(errs, r.Stop(ctx))
	}
	return errors.Join(errs...)
}
