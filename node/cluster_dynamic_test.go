package node

import (
	"context"
	"errors"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/client"
	"github.com/switchyard-wamp/switchyard/cluster/placement"
	"github.com/switchyard-wamp/switchyard/codec"
	"github.com/switchyard-wamp/switchyard/proxy"
)

// dynCluster is a cluster whose membership changes at runtime, as the master's map
// does: routers start with the map of their time and tags from outside, and SetRouters
// hands every node the next map.
type dynCluster struct {
	t       *testing.T
	common  ClusterCommon
	routers map[string]*RouterNode
	proxy   *ProxyNode
	spread  int
}

// startRouter starts router name with tag, bound on a fresh loopback port, knowing the
// routers of members (plus itself).
func (dc *dynCluster) startRouter(name string, tag int, members []ClusterMember) ClusterMember {
	dc.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		dc.t.Fatal(err)
	}
	me := ClusterMember{Name: name, Addr: ln.Addr().String(), Tag: tag}
	c := dc.common
	c.Name, c.Routers = name, append(slices.Clone(members), me)
	r, err := StartRouter(RouterNodeConfig{ClusterCommon: c, LinkAddr: me.Addr, LinkListener: ln, Tag: tag,
		Node: Config{NoListeners: true, Realms: []string{"realm1"}, Logger: quietLogger()}})
	if err != nil {
		dc.t.Fatal(err)
	}
	dc.routers[name] = r
	dc.t.Cleanup(func() { stopQuietly(r.Stop) })
	return me
}

// newDynCluster starts routers ra (tag 1) and rb (tag 2) and a proxy px with an empty
// map (spread 3); the caller hands out the first map with setMap.
func newDynCluster(t *testing.T) (dc *dynCluster, ra, rb ClusterMember) {
	t.Helper()
	dc = &dynCluster{t: t, routers: map[string]*RouterNode{}, spread: 3,
		common: ClusterCommon{Secret: []byte("test cluster secret"), Slots: 256, LinksPerPeer: 2}}
	ra = dc.startRouter("ra", 1, nil)
	rb = dc.startRouter("rb", 2, []ClusterMember{ra})
	p, err := StartProxy(ProxyNodeConfig{ClusterCommon: ClusterCommon{Name: "px", Secret: dc.common.Secret,
		Slots: dc.common.Slots, LinksPerPeer: 2}, SpreadOf: func(string, string) int { return dc.spread },
		Node: Config{Listeners: []Listener{{Address: "127.0.0.1:0"}}, Realms: []string{"realm1"}, Logger: quietLogger()}})
	if err != nil {
		t.Fatal(err)
	}
	dc.proxy = p
	t.Cleanup(func() { stopQuietly(p.Stop) })
	return dc, ra, rb
}

// setMap gives every running node the membership members, then waits until every router
// in it sees exactly those routers live and the proxy has links up to each.
func (dc *dynCluster) setMap(members []ClusterMember) {
	dc.t.Helper()
	var names []string
	for _, m := range members {
		names = append(names, m.Name)
		dc.routers[m.Name].SetRouters(members)
	}
	slices.Sort(names)
	for name, r := range dc.routers {
		if !slices.Contains(names, name) {
			r.SetRouters(members) // a router out of the map drops its links too
		}
	}
	dc.proxy.Links.SetRouters(members)
	deadline := time.Now().Add(5 * time.Second)
	for _, n := range names {
		for !slices.Equal(dc.routers[n].Live(), names) {
			if time.Now().After(deadline) {
				dc.t.Fatalf("router %s sees %v live, want %v", n, dc.routers[n].Live(), names)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	if !dc.proxy.Links.WaitReady(5 * time.Second) {
		dc.t.Fatal("proxy links to the new map's routers did not come up")
	}
}

func (dc *dynCluster) connect() *client.Session {
	dc.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := client.Connect(ctx, client.Config{URL: dc.proxy.Node.WebSocketURL(), Realm: "realm1", Serializer: codec.JSON})
	if err != nil {
		dc.t.Fatalf("connect: %v", err)
	}
	dc.t.Cleanup(func() { s.Close() })
	return s
}

// home returns the name of the router that holds session id ("" for none).
func (dc *dynCluster) home(id uint64) string {
	for name, r := range dc.routers {
		if rl, ok := r.Node.Router.Realm("realm1"); ok && rl.HasSession(id) {
			return name
		}
	}
	return ""
}

// checkPlaced checks that at least n new sessions land where the placement map of names
// puts them (spread over every router), going on (up to 40) until every router got one,
// and returns them.
func (dc *dynCluster) checkPlaced(n int, names []string) []*client.Session {
	dc.t.Helper()
	m := placement.New(dc.common.Slots, names)
	var out []*client.Session
	seen := map[string]bool{}
	for i := 0; i < 40 && (i < n || len(seen) < len(names)); i++ {
		s := dc.connect()
		want := m.Place("realm1", s.AuthRole(), dc.spread, s.ID())
		if got := dc.home(s.ID()); got != want {
			dc.t.Fatalf("session %d on router %q, want %q (map of %v)", s.ID(), got, want, names)
		}
		seen[dc.home(s.ID())] = true
		out = append(out, s)
	}
	if len(seen) != len(names) {
		dc.t.Fatalf("%d new sessions reached routers %v, want all of %v", len(out), seen, names)
	}
	return out
}

// Membership changes at runtime, as a master's map does: a router joining after start
// gets links, the span resync (its clients see the subscriptions and registrations made
// before it came, and its callees are reached from the others) and new sessions at once;
// a router leaving the map is dropped by every router (its callees' registrations go)
// and by the proxy (its sessions end with GOODBYE router_lost); no other session moves.
func TestRoutersJoinAndLeaveAtRuntime(t *testing.T) {
	dc, ra, rb := newDynCluster(t)
	two := []ClusterMember{ra, rb}
	p := dc.proxy
	if p.Links.Ready() || len(p.Links.Routers()) != 0 {
		t.Fatalf("a proxy with an empty map has routers %v", p.Links.Routers())
	}
	dc.setMap(two)
	ctx := ctxT(t)

	before := dc.checkPlaced(8, []string{"ra", "rb"})
	homes := map[uint64]string{}
	for _, s := range before {
		homes[s.ID()] = dc.home(s.ID())
	}
	// A subscriber and a callee made before the join, on ra.
	onA := before[slices.IndexFunc(before, func(s *client.Session) bool { return homes[s.ID()] == "ra" })]
	events := make(chan *client.Event, 4)
	if _, err := onA.Subscribe(ctx, "com.dyn.topic", func(e *client.Event) { events <- e }, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := onA.Register(ctx, "com.dyn.on_a", func(context.Context, *client.Invocation) (*client.Result, error) {
		return &client.Result{Args: []any{"a"}}, nil
	}, nil); err != nil {
		t.Fatal(err)
	}
	onB := before[slices.IndexFunc(before, func(s *client.Session) bool { return homes[s.ID()] == "rb" })]
	if _, err := onB.Register(ctx, "com.dyn.on_b", func(context.Context, *client.Invocation) (*client.Result, error) {
		return &client.Result{Args: []any{"b"}}, nil
	}, nil); err != nil {
		t.Fatal(err)
	}

	// rc joins: it starts with the map of its time, the others learn it from the next.
	rc := dc.startRouter("rc", 3, two)
	three := []ClusterMember{ra, rb, rc}
	dc.setMap(three)
	after := dc.checkPlaced(9, []string{"ra", "rb", "rc"})
	for _, s := range after {
		homes[s.ID()] = dc.home(s.ID())
	}
	for _, s := range before {
		if got := dc.home(s.ID()); got != homes[s.ID()] {
			t.Fatalf("session %d moved from %s to %q", s.ID(), homes[s.ID()], got)
		}
	}
	onC := after[slices.IndexFunc(after, func(s *client.Session) bool { return dc.home(s.ID()) == "rc" })]
	if err := onC.Publish(ctx, "com.dyn.topic", []any{"from rc"}, nil, client.Acknowledge()); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-events:
		if e.Args[0] != "from rc" {
			t.Fatalf("event %v", e.Args)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("a subscriber made before rc joined got no event published on rc")
	}
	if res, err := onC.Call(ctx, "com.dyn.on_a", nil, nil, nil); err != nil || res.Args[0] != "a" {
		t.Fatalf("call from rc to a callee registered before it joined: %v %v", res, err)
	}
	if _, err := onC.Register(ctx, "com.dyn.on_c", func(context.Context, *client.Invocation) (*client.Result, error) {
		return &client.Result{Args: []any{"c"}}, nil
	}, nil); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*client.Session{onA, onB} {
		if res, err := s.Call(ctx, "com.dyn.on_c", nil, nil, nil); err != nil || res.Args[0] != "c" {
			t.Fatalf("call from %s to the callee on rc: %v %v", dc.home(s.ID()), res, err)
		}
	}

	// rb leaves the map: its sessions end with router_lost, nobody else's do.
	dc.setMap([]ClusterMember{ra, rc})
	for _, s := range append(before, after...) {
		if homes[s.ID()] != "rb" {
			continue
		}
		select {
		case <-s.Done():
			var we *client.Error
			if err := s.Err(); !errors.As(err, &we) || we.URI != proxy.CloseRouterLost {
				t.Fatalf("session on rb ended with %v, want GOODBYE %s", err, proxy.CloseRouterLost)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("session %d on rb still open after rb left the map", s.ID())
		}
	}
	for _, s := range append(before, after...) {
		if h := homes[s.ID()]; h != "rb" {
			select {
			case <-s.Done():
				t.Fatalf("session %d on %s ended when rb left: %v", s.ID(), h, s.Err())
			default:
			}
			if got := dc.home(s.ID()); got != h {
				t.Fatalf("session %d moved from %s to %q", s.ID(), h, got)
			}
		}
	}
	var we *client.Error
	if _, err := onA.Call(ctx, "com.dyn.on_b", nil, nil, nil); !errors.As(err, &we) || we.URI != "wamp.error.no_such_procedure" {
		t.Fatalf("call to rb's callee after rb left: %v, want no_such_procedure", err)
	}
	dc.checkPlaced(6, []string{"ra", "rc"})
}

// A reload that adds a realm reaches a proxy node's cluster side too (a new cluster
// config version takes this path): before it the proxy refuses the realm, after it the
// realm's sessions join on the routers; realm1's session goes on.
func TestProxyReloadServesNewRealm(t *testing.T) {
	tc := startCluster(t, clusterOpts{routers: 1, proxies: 1})
	old := tc.connect(0, codec.JSON, false)
	connect := func() (*client.Session, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		return client.Connect(ctx, client.Config{URL: tc.url(0, false), Realm: "realm2"})
	}
	var we *client.Error
	if _, err := connect(); !errors.As(err, &we) || we.URI != "wamp.error.no_such_realm" {
		t.Fatalf("realm2 before the reload: %v, want no_such_realm", err)
	}
	realms := []string{"realm1", "realm2"}
	if err := tc.routers[0].Node.Reload(Config{NoListeners: true, Realms: realms, Logger: quietLogger()}); err != nil {
		t.Fatal(err)
	}
	if err := tc.proxies[0].Node.Reload(Config{Listeners: []Listener{{Address: "127.0.0.1:0"}}, Realms: realms,
		Logger: quietLogger()}); err != nil {
		t.Fatal(err)
	}
	s, err := connect()
	if err != nil {
		t.Fatalf("realm2 after the reload: %v", err)
	}
	defer s.Close()
	if tc.routerOf(old.ID()) == nil {
		t.Fatal("realm1's session is gone")
	}
	select {
	case <-old.Done():
		t.Fatalf("realm1's session ended: %v", old.Err())
	default:
	}
}
