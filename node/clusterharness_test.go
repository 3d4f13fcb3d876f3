package node

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/client"
	"github.com/switchyard-wamp/switchyard/codec"
)

// testCluster is a cluster in this process: routers and proxies over real TCP links on
// loopback, clients over real sockets.
type testCluster struct {
	t       testing.TB
	routers []*RouterNode
	proxies []*ProxyNode
	members []ClusterMember
	common  ClusterCommon
	// relays[i][j] carries router i's links to router j (clusterOpts.relays).
	relays [][]*relay
}

func quietLogger() *slog.Logger {
	if os.Getenv("SWITCHYARD_TEST_DEBUG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if testing.Verbose() {
		return slog.Default()
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type clusterOpts struct {
	routers, proxies int
	realms           []string
	spread           func(realm, authrole string) int
	mod              func(*Config) // applied to every node's config
	linkGoroutines   bool          // ClusterCommon.LinkGoroutines
	// relays: every router reaches every other through a relay of its own (tc.relays),
	// which a test can cut to partition routers over real sockets.
	relays bool
}

func startCluster(t testing.TB, o clusterOpts) *testCluster {
	t.Helper()
	if len(o.realms) == 0 {
		o.realms = []string{"realm1"}
	}
	tc := &testCluster{t: t}
	// Every router's link socket is bound before any starts (all must know all addresses).
	var lns []net.Listener
	for i := 0; i < o.routers; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		tc.members = append(tc.members, ClusterMember{Name: "router" + string(rune('1'+i)), Addr: ln.Addr().String()})
	}
	tc.common = ClusterCommon{Secret: []byte("test cluster secret"), Routers: tc.members, Slots: 256, LinksPerPeer: 2,
		LinkGoroutines: o.linkGoroutines}
	if o.relays {
		tc.relays = make([][]*relay, o.routers)
		for i := range tc.relays {
			tc.relays[i] = make([]*relay, o.routers)
			for j, m := range tc.members {
				if j != i {
					tc.relays[i][j] = startRelay(t, m.Addr)
				}
			}
		}
	}
	for i, m := range tc.members {
		c := tc.common
		c.Name = m.Name
		if o.relays { // router i dials the others at their relays
			c.Routers = slices.Clone(tc.members)
			for j := range c.Routers {
				if j != i {
					c.Routers[j].Addr = tc.relays[i][j].addr()
				}
			}
		}
		nc := Config{NoListeners: true, Realms: o.realms, Logger: quietLogger().With("node", m.Name)}
		if o.mod != nil {
			o.mod(&nc)
		}
		r, err := StartRouter(RouterNodeConfig{ClusterCommon: c, LinkAddr: m.Addr, LinkListener: lns[i], Node: nc})
		if err != nil {
			for _, l := range lns[i+1:] {
				l.Close()
			}
			t.Fatal(err)
		}
		tc.routers = append(tc.routers, r)
		t.Cleanup(func() { stopQuietly(r.Stop) })
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, r := range tc.routers {
		for len(r.Live()) < len(tc.routers) {
			if time.Now().After(deadline) {
				t.Fatalf("router %s sees live routers %v, want all %d", r.Name(), r.Live(), len(tc.routers))
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	for i := 0; i < o.proxies; i++ {
		c := tc.common
		c.Name = "proxy" + string(rune('1'+i))
		nc := Config{Listeners: []Listener{{Address: "127.0.0.1:0"}}, Realms: o.realms,
			Logger: quietLogger().With("node", c.Name)}
		if o.mod != nil {
			o.mod(&nc)
		}
		p, err := StartProxy(ProxyNodeConfig{ClusterCommon: c, Node: nc, SpreadOf: o.spread})
		if err != nil {
			t.Fatal(err)
		}
		tc.proxies = append(tc.proxies, p)
		t.Cleanup(func() { stopQuietly(p.Stop) })
		if !p.Links.WaitReady(5 * time.Second) {
			t.Fatalf("proxy %d: links to the routers did not come up", i)
		}
	}
	return tc
}

func stopQuietly(stop func(context.Context) error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_ = stop(ctx)
}

// url returns proxy i's WebSocket (rs false) or RawSocket URL.
func (tc *testCluster) url(i int, rs bool) string {
	if rs {
		return tc.proxies[i].Node.RawSocketURL()
	}
	return tc.proxies[i].Node.WebSocketURL()
}

func (tc *testCluster) connect(i int, ser codec.Serializer, rs bool) *client.Session {
	tc.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := client.Connect(ctx, client.Config{URL: tc.url(i, rs), Realm: "realm1", Serializer: ser})
	if err != nil {
		tc.t.Fatalf("connect through proxy %d: %v", i, err)
	}
	tc.t.Cleanup(func() { s.Close() })
	return s
}

// routerOf returns the router that holds session id, or nil.
func (tc *testCluster) routerOf(id uint64) *RouterNode {
	for _, r := range tc.routers {
		rl, ok := r.Node.Router.Realm("realm1")
		if ok && rl.HasSession(id) {
			return r
		}
	}
	return nil
}
