package interop

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/node"
)

// The interop scenarios against a cluster (issue 10): 3 routers and 2 proxies in this
// process over real TCP links on loopback (node.StartLocalCluster), realm1 spread over
// the three routers, and the n-th session opened anywhere placed on router n % 3, so
// the two sessions of a solo run, and the server and driver of a pair, are on
// different routers. A pair's server connects through proxy1 and its driver through
// proxy2. Each test checks afterwards that its sessions were placed on more than one
// router. Same skip rule as the single-node tests.

// interopCluster is a local cluster with one routerNode per proxy (for the script
// helpers) and the routers its sessions were placed on, in order.
type interopCluster struct {
	lc      *node.LocalCluster
	proxies []*routerNode
	mu      sync.Mutex
	placed  []string
}

// startCluster starts a cluster configured like startNodeConfig's nodes (configure
// applies to every router and proxy) and stops it when t ends, logging its log.
func startCluster(t *testing.T, configure func(*node.Config)) *interopCluster {
	t.Helper()
	logs := &syncBuffer{}
	ic := &interopCluster{}
	lc, err := node.StartLocalCluster(node.LocalClusterConfig{
		Routers: 3, Proxies: 2,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
		Mod: func(c *node.Config) {
			c.Store = interopStore
			if configure != nil {
				configure(c)
			}
		},
		Place: func(_, _ string, _ uint64) string {
			ic.mu.Lock()
			defer ic.mu.Unlock()
			r := fmt.Sprintf("router%d", len(ic.placed)%3+1)
			ic.placed = append(ic.placed, r)
			return r
		},
	})
	if err != nil {
		t.Fatalf("node.StartLocalCluster: %v", err)
	}
	ic.lc = lc
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := lc.Stop(ctx); err != nil {
			t.Errorf("cluster stop: %v", err)
		}
		t.Logf("cluster log:\n%s", logs.String())
	})
	for _, p := range lc.Proxies {
		ic.proxies = append(ic.proxies, &routerNode{Node: p.Node, log: logs,
			urls: map[string]string{"ws": p.Node.WebSocketURL(), "rs": p.Node.RawSocketURL()}})
	}
	t.Logf("cluster proxies: %v %v", ic.proxies[0].urls, ic.proxies[1].urls)
	return ic
}

// mark returns how many sessions were placed so far.
func (ic *interopCluster) mark() int {
	ic.mu.Lock()
	defer ic.mu.Unlock()
	return len(ic.placed)
}

// checkSpread fails t unless the sessions placed since mark went to more than one router.
func (ic *interopCluster) checkSpread(t *testing.T, mark int) {
	t.Helper()
	ic.mu.Lock()
	got := slices.Clone(ic.placed[mark:])
	ic.mu.Unlock()
	if routers := slices.Compact(slices.Sorted(slices.Values(got))); len(routers) < 2 {
		t.Errorf("the run's sessions were placed on %v (%d sessions), want at least two routers", routers, len(got))
	}
}

// TestClusterSolo: AutobahnJS and AutobahnPython alone (callee/subscriber and
// caller/publisher on two sessions, on different routers), through either proxy, on
// every serializer.
func TestClusterSolo(t *testing.T) {
	js, py := clients()
	ic := startCluster(t, nil)
	for i, e := range []endpoint{
		{c: js, transport: "ws", serializer: "json"},
		{c: js, transport: "ws", serializer: "msgpack"},
		{c: js, transport: "ws", serializer: "cbor"},
		{c: js, transport: "rs", serializer: "json"},
		{c: py, transport: "ws", serializer: "json"},
		{c: py, transport: "ws", serializer: "msgpack"},
		{c: py, transport: "ws", serializer: "cbor"},
		{c: py, transport: "rs", serializer: "msgpack"},
	} {
		t.Run(e.String(), func(t *testing.T) {
			require(t, e.c)
			m := ic.mark()
			runSolo(t, ic.proxies[i%2], e)
			ic.checkSpread(t, m)
		})
	}
}

// TestClusterCrossClient: the server of one client through proxy1, the driver of the
// other (or the same) client through proxy2, on different serializers: every value
// crosses a transcoding and a router boundary.
func TestClusterCrossClient(t *testing.T) {
	js, py := clients()
	require(t, js)
	require(t, py)
	ic := startCluster(t, nil)
	ep := func(c client, transport, serializer string) endpoint {
		return endpoint{c: c, transport: transport, serializer: serializer}
	}
	for _, p := range []struct{ server, driver endpoint }{
		{ep(js, "ws", "msgpack"), ep(py, "rs", "cbor")},
		{ep(py, "ws", "cbor"), ep(js, "ws", "json")},
		{ep(js, "rs", "json"), ep(py, "ws", "msgpack")},
		{ep(py, "rs", "json"), ep(py, "ws", "cbor")},
	} {
		t.Run(p.server.String()+"_serves_"+p.driver.String(), func(t *testing.T) {
			m := ic.mark()
			runPairOn(t, ic.proxies[0], ic.proxies[1], p.server, p.driver)
			ic.checkSpread(t, m)
		})
	}
}

// TestClusterFeatures: the advanced-profile scripts (see TestFeatures) against a cluster
// of their own, their sessions spread over the routers (the meta API answers for the
// whole realm).
func TestClusterFeatures(t *testing.T) {
	js, py := clients()
	eachOnOwnNode(t, []scriptCase{
		{"js/ws/msgpack", "features.js", endpoint{c: js, transport: "ws", serializer: "msgpack"}},
		{"py/ws/cbor", "features.py", endpoint{c: py, transport: "ws", serializer: "cbor"}},
	}, func(t *testing.T) *interopCluster { return startCluster(t, nil) },
		func(t *testing.T, ic *interopCluster, tc scriptCase) {
			runScript(t, ic.proxies[1], tc.e, tc.script, featuresTimeout, false)
			ic.checkSpread(t, 0)
		})
}
