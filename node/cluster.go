// The cluster roles in a process: a router node (the engine, a link listener for proxies
// and routers, links to the other routers, and the realm-spanning protocol between
// them) and a proxy node (client listeners, the handshake and authentication, and links
// to every router). `switchyard router` and `switchyard proxy` use them, and so do the
// cluster tests, which run several nodes in one process over real TCP links on loopback.
//
// Membership is static here: every node's config lists every router. A router counts as
// live while a link to it is up; the placement of new sessions and the realm-spanning
// protocol follow the live set.

package node

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sort"
	"sync"
	"time"

	cwire "github.com/switchyard-wamp/switchyard/cluster/wire"
	"github.com/switchyard-wamp/switchyard/link"
	"github.com/switchyard-wamp/switchyard/proxy"
	"github.com/switchyard-wamp/switchyard/router"
	"github.com/switchyard-wamp/switchyard/span"
)

// ClusterMember is a router of the cluster: its name and link address.
type ClusterMember = proxy.RouterAddr

// ClusterCommon is what every role's config shares.
type ClusterCommon struct {
	// Name is this node's name; Secret the cluster secret of the links (or TLS).
	Name   string
	Secret []byte
	// Routers are every router of the cluster (static membership).
	Routers []ClusterMember
	// Slots is the number of hash slots; LinksPerPeer the links per node pair.
	Slots, LinksPerPeer int
	// Link overrides link settings (heartbeat, limits, TLS); Node, Role and Secret are
	// filled in from the fields above.
	Link link.Config
}

func (c ClusterCommon) linkConfig(role string, log *slog.Logger) link.Config {
	lc := c.Link
	lc.Node, lc.Role, lc.Secret = c.Name, role, c.Secret
	if lc.Logger == nil {
		lc.Logger = log
	}
	return lc
}

// RouterNodeConfig configures a router node.
type RouterNodeConfig struct {
	ClusterCommon
	// LinkAddr is where the router accepts links (its entry in Routers, or host:0 in
	// tests; the bound address is Router.LinkAddr).
	LinkAddr string
	// LinkListener, when set, is the link socket bound already (LinkAddr is then only
	// this router's name for it); the router owns it.
	LinkListener net.Listener
	// Node is the engine side: realms, roles, store and (optional) client listeners
	// (NoListeners for a router that only takes sessions over links).
	Node Config
}

// RouterNode is a running cluster router node.
type RouterNode struct {
	Node  *Node
	Links *router.Server
	name  string
	log   *slog.Logger
	span  *span.Span

	mu    sync.Mutex
	pools map[string]*link.Pool // to the other routers, by name
	live  []string
	stop  chan struct{}
	wg    sync.WaitGroup
	once  sync.Once
	err   error
}

// StartRouter starts a router node: the engine, the link listener, and links to the
// other routers (they come up in the background).
func StartRouter(cfg RouterNodeConfig) (*RouterNode, error) {
	log := cfg.Node.Logger
	if log == nil {
		log = slog.Default()
		cfg.Node.Logger = log
	}
	n, err := Start(cfg.Node)
	if err != nil {
		return nil, fmt.Errorf("router %s: %w", cfg.Name, err)
	}
	r := &RouterNode{Node: n, name: cfg.Name, log: log, pools: map[string]*link.Pool{}, stop: make(chan struct{})}
	srv, err := router.Listen(n.Router, router.Config{Addr: cfg.LinkAddr, Listener: cfg.LinkListener, Link: cfg.linkConfig("router", log)})
	if err != nil {
		_ = n.Stop(context.Background())
		return nil, fmt.Errorf("router %s: %w", cfg.Name, err)
	}
	r.Links = srv
	r.span = span.New(cfg.Name, n.Router, spanTransport{r}, log)
	all := make([]string, 0, len(cfg.Routers))
	for _, m := range cfg.Routers {
		all = append(all, m.Name)
	}
	r.span.FixTag(all)
	srv.SetSpan(spanHandler{r.span})
	per := cfg.LinksPerPeer
	if per <= 0 {
		per = 2
	}
	for _, m := range cfg.Routers {
		if m.Name == cfg.Name {
			continue
		}
		r.pools[m.Name] = link.Dial(m.Addr, per, cfg.linkConfig("router", log), srv)
	}
	r.live = []string{cfg.Name}
	r.span.SetRouters(r.live)
	r.wg.Add(1)
	go r.watch()
	return r, nil
}

// Name returns the router's node name.
func (r *RouterNode) Name() string { return r.name }

// LinkAddr returns the address the router accepts links on.
func (r *RouterNode) LinkAddr() string { return r.Links.Addr() }

// LinkStats sums the counters of every link of this router that is up: those it
// accepted (proxies, other routers) and those it dialed (other routers).
func (r *RouterNode) LinkStats() link.LinkStats {
	t := r.Links.LinkStats()
	for _, p := range r.pools {
		t.Add(p.LinkStats())
	}
	return t
}

// Live returns the routers this one has a link to, and itself, sorted.
func (r *RouterNode) Live() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.live)
}

// spanTransport carries the realm-spanning protocol's messages over the router's links.
type spanTransport struct{ r *RouterNode }

// Send implements span.Transport: on the link to `to` that key picks, so that one key's
// messages stay in order.
func (t spanTransport) Send(to string, key uint64, kind span.Kind, payload []byte) error {
	return t.r.sendSpan(to, key, uint8(kind), payload)
}

// spanHandler hands the span messages a link delivers to the span protocol.
type spanHandler struct{ s *span.Span }

func (h spanHandler) OnMessage(from string, kind uint8, payload []byte) {
	h.s.OnMessage(from, span.Kind(kind), payload)
}

// sendSpan carries a span message to router `to`: on the link that key picks.
func (r *RouterNode) sendSpan(to string, key uint64, kind uint8, payload []byte) error {
	p := r.pools[to]
	if p == nil {
		return fmt.Errorf("router %s: no link to %q", r.name, to)
	}
	l := p.PickUp(key) // the key's link, or another one that is up while it reconnects
	if l == nil {
		return fmt.Errorf("router %s: link to %s is down", r.name, to)
	}
	return l.Send(link.Kind(cwire.SpanBase+kind), key, payload)
}

// watch follows the links to the other routers and tells the span protocol which
// routers are live: a router joins when one of our links to it is up, and leaves when
// all are down.
func (r *RouterNode) watch() {
	defer r.wg.Done()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
		}
		live := []string{r.name}
		for name, p := range r.pools {
			if p.Up() {
				live = append(live, name)
			}
		}
		sort.Strings(live)
		r.mu.Lock()
		old := r.live
		changed := !slices.Equal(old, live)
		r.live = live
		r.mu.Unlock()
		if !changed {
			continue
		}
		r.log.Info("cluster: live routers", "node", r.name, "routers", live)
		for _, name := range old {
			if !slices.Contains(live, name) {
				r.span.RouterDown(name)
			}
		}
		r.span.SetRouters(live)
	}
}

// Stop closes the links and stops the node: GOODBYE to local sessions within ctx.
// Idempotent.
func (r *RouterNode) Stop(ctx context.Context) error {
	r.once.Do(func() {
		close(r.stop)
		r.wg.Wait()
		for _, p := range r.pools {
			p.Close()
		}
		r.Links.Close()
		r.err = r.Node.Stop(ctx)
	})
	return r.err
}

// ProxyNodeConfig configures a proxy node.
type ProxyNodeConfig struct {
	ClusterCommon
	// Node is the client side: listeners, realms (names), auth.
	Node Config
	// SpreadOf(realm, authrole) spreads that role's sessions over several slots (nil: 1).
	SpreadOf func(realm, authrole string) int
	// Place, when set, pins new sessions to routers (proxy.LinksConfig.Place): tests and
	// benchmarks use it to spread a realm's sessions deterministically.
	Place func(realm, authrole string, session uint64) string
}

// ProxyNode is a running cluster proxy node.
type ProxyNode struct {
	Node    *Node
	Links   *proxy.Links
	routers []string // names, for PeerLinks
}

// StartProxy starts a proxy node: links to every router (in the background) and the
// client listeners.
func StartProxy(cfg ProxyNodeConfig) (*ProxyNode, error) {
	log := cfg.Node.Logger
	if log == nil {
		log = slog.Default()
		cfg.Node.Logger = log
	}
	nc := cfg.Node
	nc.Defaults()
	ls, err := proxy.NewLinks(proxy.LinksConfig{Link: cfg.linkConfig("proxy", log), Routers: cfg.Routers,
		Slots: cfg.Slots, PerPeer: cfg.LinksPerPeer, Realms: nc.Realms, SpreadOf: cfg.SpreadOf, Place: cfg.Place, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("proxy %s: %w", cfg.Name, err)
	}
	nc.Cluster = ls
	n, err := Start(nc)
	if err != nil {
		ls.Close()
		return nil, fmt.Errorf("proxy %s: %w", cfg.Name, err)
	}
	pn := &ProxyNode{Node: n, Links: ls}
	for _, m := range cfg.Routers {
		pn.routers = append(pn.routers, m.Name)
	}
	return pn, nil
}

// Stop closes the client listeners (GOODBYE within ctx) and the links.
func (p *ProxyNode) Stop(ctx context.Context) error {
	err := p.Node.Stop(ctx)
	p.Links.Close()
	return err
}
