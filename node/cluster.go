// The cluster roles in a process: a router node (the engine, a link listener for proxies
// and routers, links to the other routers, and the realm-spanning protocol between
// them) and a proxy node (client listeners, the handshake and authentication, and links
// to every router). `switchyard router` and `switchyard proxy` use them, and so do the
// cluster tests, which run several nodes in one process over real TCP links on loopback.
//
// Membership is static (every node's config lists every router) or follows the master's
// map (SetRouters on each new map version). A router counts as live while it is in the
// membership and a link to it is up; the placement of new sessions and the
// realm-spanning protocol follow the live set.

package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
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
	// Routers are every router of the cluster: the static membership, or the routers of
	// the master's map at start (SetRouters follows later maps).
	Routers []ClusterMember
	// Slots is the number of hash slots; LinksPerPeer the links per node pair.
	Slots, LinksPerPeer int
	// LinkGoroutines reads the plain TCP links on a goroutine each instead of the node's
	// event loops (linkloops.go; config cluster.link_reads).
	LinkGoroutines bool
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
	// Tag, when not 0, is this router's stable tag from the master's map
	// (master.MapRouter.Tag): its INVOCATION id tag in the realm-spanning protocol. 0 in
	// static mode, where the tag follows from the position in Routers.
	Tag int
}

// RouterNode is a running cluster router node.
type RouterNode struct {
	Node  *Node
	Links *router.Server
	name  string
	log   *slog.Logger
	span  *span.Span

	per  int
	lcfg link.Config
	// pools are the link pools to the other routers of the membership, by name: a map
	// never changed once stored (SetRouters stores a new one under mu), read lock-free.
	pools atomic.Pointer[map[string]*link.Pool]
	mu    sync.Mutex
	live  []string
	// faults counts, per router, the links to it (dialed or accepted) that went down:
	// the watch resynchronises a pair whose count moved while the router stayed live.
	faultMu sync.Mutex
	faults  map[string]uint64
	resets  map[string]uint64 // pair resets by peer, under faultMu
	stop    chan struct{}
	wg      sync.WaitGroup
	once    sync.Once
	err     error
}

// StartRouter starts a router node: the engine, the link listener, and links to the
// other routers (they come up in the background).
func StartRouter(cfg RouterNodeConfig) (*RouterNode, error) {
	log := cfg.Node.Logger
	if log == nil {
		log = slog.Default()
		cfg.Node.Logger = log
	}
	if !cfg.LinkGoroutines && cfg.Link.Loops == nil {
		cfg.Node.links = newLinkLoops()
		cfg.Link.Loops = cfg.Node.links
	}
	n, err := Start(cfg.Node)
	if err != nil {
		return nil, fmt.Errorf("router %s: %w", cfg.Name, err)
	}
	r := &RouterNode{Node: n, name: cfg.Name, log: log, stop: make(chan struct{}), lcfg: cfg.linkConfig("router", log),
		faults: map[string]uint64{}, resets: map[string]uint64{}}
	srv, err := router.Listen(n.Router, router.Config{Addr: cfg.LinkAddr, Listener: cfg.LinkListener, Link: cfg.linkConfig("router", log)})
	if err != nil {
		_ = n.Stop(context.Background())
		return nil, fmt.Errorf("router %s: %w", cfg.Name, err)
	}
	r.Links = srv
	r.span = span.New(cfg.Name, n.Router, spanTransport{r}, log)
	if cfg.Tag != 0 {
		r.span.SetTag(uint64(cfg.Tag))
	} else {
		all := make([]string, 0, len(cfg.Routers))
		for _, m := range cfg.Routers {
			all = append(all, m.Name)
		}
		r.span.FixTag(all)
	}
	srv.SetSpan(spanHandler{r})
	r.per = cfg.LinksPerPeer
	if r.per <= 0 {
		r.per = 2
	}
	empty := map[string]*link.Pool{}
	r.pools.Store(&empty)
	r.SetRouters(cfg.Routers)
	r.live = []string{cfg.Name}
	r.span.SetRouters(r.live)
	r.wg.Add(1)
	go r.watch()
	return r, nil
}

// SetRouters makes routers the membership (this router may be listed or not): links
// to a router new to it start dialing (it joins the live set, and gets the span resync,
// once one is up); the pools of routers no longer listed close, and those routers
// leave the live set (span.RouterDown) within the watch period. A router whose link
// address changed is redialed. The node's own sessions stay where they are. Safe for
// concurrent use; the membership of the last call wins.
func (r *RouterNode) SetRouters(routers []ClusterMember) {
	r.mu.Lock()
	select {
	case <-r.stop:
		r.mu.Unlock()
		return // stopped: dial nothing more
	default:
	}
	cur := *r.pools.Load()
	next := make(map[string]*link.Pool, len(routers))
	var closing []*link.Pool
	for _, m := range routers {
		if m.Name == r.name || m.Name == "" {
			continue
		}
		if p, ok := cur[m.Name]; ok && p.Addr() == m.Addr {
			next[m.Name] = p
			continue
		}
		if _, dup := next[m.Name]; dup {
			continue
		}
		next[m.Name] = link.Dial(m.Addr, r.per, r.lcfg, r.Links)
		r.log.Info("cluster: router added", "node", r.name, "router", m.Name, "link", m.Addr)
	}
	for name, p := range cur {
		if next[name] != p {
			closing = append(closing, p)
			r.log.Info("cluster: router removed", "node", r.name, "router", name)
		}
	}
	r.pools.Store(&next)
	r.mu.Unlock()
	for _, p := range closing {
		p.Close()
	}
}

// Name returns the router's node name.
func (r *RouterNode) Name() string { return r.name }

// LinkAddr returns the address the router accepts links on.
func (r *RouterNode) LinkAddr() string { return r.Links.Addr() }

// LinkStats sums the counters of every link of this router that is up: those it
// accepted (proxies, other routers) and those it dialed (other routers).
func (r *RouterNode) LinkStats() link.LinkStats {
	t := r.Links.LinkStats()
	for _, p := range *r.pools.Load() {
		t.Add(p.LinkStats())
	}
	return t
}

// LinksUp returns how many links to the other routers are up (those this router
// dialed). Safe for concurrent use.
func (r *RouterNode) LinksUp() int {
	n := 0
	for _, p := range *r.pools.Load() {
		n += p.Stats().Links
	}
	return n
}

// PairResets returns how many times this router resynchronised with another one after
// one of the links between them failed while others stayed up, over all peers. Safe
// for concurrent use.
func (r *RouterNode) PairResets() uint64 {
	r.faultMu.Lock()
	defer r.faultMu.Unlock()
	var n uint64
	for _, v := range r.resets {
		n += v
	}
	return n
}

// pairResets returns the pair resets with router peer.
func (r *RouterNode) pairResets(peer string) uint64 {
	r.faultMu.Lock()
	defer r.faultMu.Unlock()
	return r.resets[peer]
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

// Lanes implements span.Laned: the links of the pool to `to` (1 when there is none).
func (t spanTransport) Lanes(to string) int {
	if p := (*t.r.pools.Load())[to]; p != nil {
		return max(1, p.Slots())
	}
	return 1
}

// spanHandler hands the span messages a link delivers to the span protocol, and the
// failures of links to other routers to the watch.
type spanHandler struct{ r *RouterNode }

func (h spanHandler) OnMessage(from string, kind uint8, payload []byte) {
	h.r.span.OnMessage(from, span.Kind(kind), payload)
}

// RouterLinkDown counts a failed link to router peer; the watch resynchronises the pair.
func (h spanHandler) RouterLinkDown(peer string) {
	h.r.faultMu.Lock()
	h.r.faults[peer]++
	h.r.faultMu.Unlock()
}

// sendSpan carries a span message to router `to`: on the link that key picks.
func (r *RouterNode) sendSpan(to string, key uint64, kind uint8, payload []byte) error {
	p := (*r.pools.Load())[to]
	if p == nil {
		return fmt.Errorf("router %s: no link to %q", r.name, to)
	}
	// The key's link, or another one that is up while it reconnects (in key order
	// when it comes back: link.Pool.Send).
	err := p.Send(key, link.Kind(cwire.SpanBase+kind), key, payload)
	if !errors.Is(err, link.ErrNoLink) {
		return err
	}
	// None of ours is up: one the other router dialed carries it as well (its answers
	// would otherwise be lost while we still count it live).
	l := r.Links.RouterLink(to, key)
	if l == nil {
		return fmt.Errorf("router %s: every link to %s is down", r.name, to)
	}
	return l.Send(link.Kind(cwire.SpanBase+kind), key, payload)
}

// watch follows the links to the other routers and tells the span protocol which
// routers are live: a router of the membership joins when one link between us is up
// (ours or one it dialed), and leaves when all are down.
//
// A link to a router that fails while others to it stay up may have lost the frames
// queued on it, in either direction (state announcements, invocations, answers), and
// nothing would repair that. So a router that had a link fail since the last look is
// treated as gone and back: span.RouterReset (its state goes, calls in flight to its
// callees end with an ERROR, waits for its answers end; no meta event says its sessions
// left) and at once SetRouters again, which sends it our state and asks for its own.
// Both ends see the same link fail, so both do it.
func (r *RouterNode) watch() {
	defer r.wg.Done()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	seen := map[string]uint64{}
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
		}
		live := []string{r.name}
		for name, p := range *r.pools.Load() {
			if p.Up() || r.Links.RouterLink(name, 0) != nil {
				live = append(live, name)
			}
		}
		sort.Strings(live)
		r.mu.Lock()
		old := r.live
		changed := !slices.Equal(old, live)
		r.live = live
		r.mu.Unlock()
		// A link failure also counts for a router that was not live at the last look:
		// its link may have come up and carried messages (its resync, invocations of
		// ours to its callees) between two looks. Live now: reset. Gone again: down,
		// as if the last look had seen it.
		var reset, down []string
		r.faultMu.Lock()
		for name, n := range r.faults {
			if seen[name] != n {
				seen[name] = n
				switch {
				case slices.Contains(live, name):
					reset = append(reset, name)
				case !slices.Contains(old, name):
					down = append(down, name)
				}
			}
		}
		r.faultMu.Unlock()
		if !changed && len(reset) == 0 && len(down) == 0 {
			continue
		}
		if changed {
			r.log.Info("cluster: live routers", "node", r.name, "routers", live)
		}
		for _, name := range old {
			if !slices.Contains(live, name) {
				down = append(down, name)
			}
		}
		for _, name := range down {
			r.span.RouterDown(name)
		}
		for _, name := range reset {
			r.log.Warn("cluster: a link to a router failed, resynchronising with it", "node", r.name, "router", name)
			r.span.RouterReset(name)
			r.faultMu.Lock()
			r.resets[name]++
			r.faultMu.Unlock()
		}
		r.span.SetRouters(live)
	}
}

// Stop closes the links and stops the node: GOODBYE to local sessions within ctx.
// Idempotent.
func (r *RouterNode) Stop(ctx context.Context) error {
	r.once.Do(func() {
		r.mu.Lock()
		close(r.stop)
		r.mu.Unlock()
		r.wg.Wait()
		for _, p := range *r.pools.Load() {
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
	Node  *Node
	Links *proxy.Links
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
	if !cfg.LinkGoroutines && cfg.Link.Loops == nil {
		nc.links = newLinkLoops()
		cfg.Link.Loops = nc.links
	}
	ls, err := proxy.NewLinks(proxy.LinksConfig{Link: cfg.linkConfig("proxy", log), Routers: cfg.Routers,
		Slots: cfg.Slots, PerPeer: cfg.LinksPerPeer, Realms: nc.Realms, SpreadOf: cfg.SpreadOf, Place: cfg.Place, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("proxy %s: %w", cfg.Name, err)
	}
	nc.Cluster = ls
	if nc.links != nil {
		nc.beforeLoopsStop = ls.Close // the links' loops stop with the node's server
	}
	n, err := Start(nc)
	if err != nil {
		ls.Close()
		return nil, fmt.Errorf("proxy %s: %w", cfg.Name, err)
	}
	pn := &ProxyNode{Node: n, Links: ls}
	return pn, nil
}

// Stop closes the client listeners (GOODBYE within ctx) and the links.
func (p *ProxyNode) Stop(ctx context.Context) error {
	err := p.Node.Stop(ctx)
	p.Links.Close()
	return err
}
