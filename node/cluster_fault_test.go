package node

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/client"
	"github.com/switchyard-wamp/switchyard/codec"
	"github.com/switchyard-wamp/switchyard/proxy"
)

// sessionsOnEveryRouter connects clients (alternating proxies and serializers) until
// each router holds at least one, and returns them with their routers.
func (tc *testCluster) sessionsOnEveryRouter(t *testing.T) map[*RouterNode]*client.Session {
	t.Helper()
	sers := []codec.Serializer{codec.JSON, codec.MsgPack, codec.CBOR}
	on := map[*RouterNode]*client.Session{}
	for i := 0; len(on) < len(tc.routers) && i < 100; i++ {
		s := tc.connect(i%len(tc.proxies), sers[i%3], false)
		if r := tc.routerOf(s.ID()); r != nil && on[r] == nil {
			on[r] = s
		}
	}
	if len(on) < len(tc.routers) {
		t.Fatalf("sessions on %d of %d routers", len(on), len(tc.routers))
	}
	return on
}

// load runs operations in loops on goroutines until end, each bounded at loadBound: an
// operation that needs the bound has hung, and fails the test.
type load struct {
	t    *testing.T
	stop chan struct{}
	wg   sync.WaitGroup
}

// loadBound is far above any answer time of the cluster under test.
const loadBound = 8 * time.Second

func newLoad(t *testing.T) *load { return &load{t: t, stop: make(chan struct{})} }

// bounded runs f with a context of loadBound and reports a hang as a test error.
func (l *load) bounded(what string, f func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), loadBound)
	defer cancel()
	err := f(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		l.t.Errorf("%s hung for %v", what, loadBound)
	}
	return err
}

// loop runs f again and again on its own goroutine until end.
func (l *load) loop(f func()) {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		for {
			select {
			case <-l.stop:
				return
			default:
			}
			f()
		}
	}()
}

// calls loops n callers of proc on caller, counting results and errors.
func (l *load) calls(caller *client.Session, n int, proc string, results, failures *atomic.Int64) {
	for range n {
		l.loop(func() {
			if l.bounded("a call", func(ctx context.Context) error {
				_, err := caller.Call(ctx, proc, []any{1}, nil, nil)
				return err
			}) == nil {
				results.Add(1)
			} else {
				failures.Add(1)
				time.Sleep(time.Millisecond)
			}
		})
	}
}

// end stops the loops and waits for them.
func (l *load) end() {
	close(l.stop)
	l.wg.Wait()
}

// TestRouterKilledUnderLoad: callers on two routers keep calling a callee on a third
// while the third dies: every call ends (a result or an ERROR, never a hang), and
// pub/sub and RPC between the surviving routers keep working.
func TestRouterKilledUnderLoad(t *testing.T) {
	tc := startCluster(t, clusterOpts{routers: 3, proxies: 2, spread: spread3})
	ctx := ctxT(t)
	on := tc.sessionsOnEveryRouter(t)
	victim := tc.routers[2]
	callee := on[victim]
	var served atomic.Int64
	if _, err := callee.Register(ctx, "com.example.slow", func(ctx context.Context, _ *client.Invocation) (*client.Result, error) {
		served.Add(1)
		time.Sleep(5 * time.Millisecond)
		return &client.Result{Args: []any{"ok"}}, nil
	}, nil); err != nil {
		t.Fatal(err)
	}
	a, b := on[tc.routers[0]], on[tc.routers[1]]
	var results, failures atomic.Int64
	ld := newLoad(t)
	for _, caller := range []*client.Session{a, b} {
		ld.calls(caller, 4, "com.example.slow", &results, &failures)
	}
	for served.Load() < 50 {
		time.Sleep(5 * time.Millisecond)
	}
	killed := time.Now()
	stopQuietly(victim.Stop)
	// Survivors: pub/sub between router1 and router2 and a callee there.
	got := make(chan any, 1)
	if _, err := b.Subscribe(ctx, "com.example.after", func(e *client.Event) { got <- e.Args[0] }, nil); err != nil {
		t.Fatal(err)
	}
	if err := a.Publish(ctx, "com.example.after", []any{"still here"}, nil, client.Acknowledge()); err != nil {
		t.Fatal(err)
	}
	select {
	case v := <-got:
		if v != "still here" {
			t.Fatalf("event %v", v)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("pub/sub between the surviving routers stopped")
	}
	// The procedure is free again: a survivor registers it and the calls succeed again.
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := b.Register(ctx, "com.example.slow", func(context.Context, *client.Invocation) (*client.Result, error) {
			return &client.Result{Args: []any{"ok"}}, nil
		}, nil)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the dead callee's procedure is still taken: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	before := results.Load()
	for results.Load() < before+20 {
		if time.Since(killed) > 8*time.Second {
			t.Fatalf("calls do not succeed again after the failover (%d results)", results.Load()-before)
		}
		time.Sleep(5 * time.Millisecond)
	}
	ld.end()
	t.Logf("calls: %d results, %d errors around the router's death", results.Load(), failures.Load())
}

// TestLinkCutReconnects: cutting the links between two routers (and a proxy's link to
// a router) is survived: the links come back, and events and calls cross again.
func TestLinkCutReconnects(t *testing.T) {
	tc := startCluster(t, clusterOpts{routers: 2, proxies: 1, spread: spread3})
	ctx := ctxT(t)
	on := tc.sessionsOnEveryRouter(t)
	r1, r2 := tc.routers[0], tc.routers[1]
	for k := range uint64(4) {
		if l := (*r1.pools.Load())[r2.Name()].Pick(k); l != nil {
			l.Close(fmt.Errorf("test: cut"))
		}
		if l := (*r2.pools.Load())[r1.Name()].Pick(k); l != nil {
			l.Close(fmt.Errorf("test: cut"))
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(r1.Live()) < 2 || len(r2.Live()) < 2 || !(*r1.pools.Load())[r2.Name()].Up() || !(*r2.pools.Load())[r1.Name()].Up() {
		if time.Now().After(deadline) {
			t.Fatalf("router links did not come back: %v %v", r1.Live(), r2.Live())
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Sessions made after the cut see each other across the routers.
	on = tc.sessionsOnEveryRouter(t)
	got := make(chan any, 1)
	if _, err := on[r2].Subscribe(ctx, "com.example.cut", func(e *client.Event) { got <- e.Args[0] }, nil); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(5 * time.Second)
	for delivered := false; !delivered; {
		if err := on[r1].Publish(ctx, "com.example.cut", []any{1}, nil, client.Acknowledge()); err != nil {
			t.Fatal(err)
		}
		select {
		case <-got:
			delivered = true
		case <-time.After(100 * time.Millisecond):
			if time.Now().After(deadline) {
				t.Fatal("no event across the routers after the links came back")
			}
		}
	}
	// A proxy's link to a router: its sessions on that link are closed with
	// router_lost, the link comes back, new sessions work.
	s := on[r1]
	tc.proxies[0].Links.CutForTest(r1.Name())
	select {
	case <-s.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("session on a cut proxy link not closed")
	}
	var we *client.Error
	if err := s.Err(); !errors.As(err, &we) || we.URI != proxy.CloseRouterLost {
		t.Fatalf("close: %v", err)
	}
	if !tc.proxies[0].Links.WaitReady(5 * time.Second) {
		t.Fatal("proxy link did not come back")
	}
	tc.sessionsOnEveryRouter(t)
}

// startPair starts two routers behind one proxy and a session on each router.
func startPair(t *testing.T) (context.Context, map[*RouterNode]*client.Session, *RouterNode, *RouterNode) {
	tc := startCluster(t, clusterOpts{routers: 2, proxies: 1, spread: spread3})
	return ctxT(t), tc.sessionsOnEveryRouter(t), tc.routers[0], tc.routers[1]
}

// TestLaneFailureResyncsThePair: frames queued on a link between two routers are lost
// when it fails, even while the pair's other links stay up. Here router1 has lost what
// router2 told it (its subscriber's interest, dropped by hand), so router1's publisher
// reaches nobody; one of router2's links to router1 then fails, and the pair must
// resynchronise so that events flow again, without any link of theirs staying down.
func TestLaneFailureResyncsThePair(t *testing.T) {
	ctx, on, r1, r2 := startPair(t)
	got := make(chan any, 16)
	if _, err := on[r2].Subscribe(ctx, "com.example.lane", func(e *client.Event) { got <- e.Args[0] }, nil); err != nil {
		t.Fatal(err)
	}
	publish := func(v int) {
		t.Helper()
		if err := on[r1].Publish(ctx, "com.example.lane", []any{v}, nil, client.Acknowledge()); err != nil {
			t.Fatal(err)
		}
	}
	publish(1)
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("no event across the routers before the fault")
	}
	// router1 forgets router2's state, as if router2's announcements were lost.
	r1.span.RouterDown(r2.Name())
	publish(2)
	select {
	case v := <-got:
		t.Fatalf("event %v delivered although router1 dropped router2's interest", v)
	case <-time.After(300 * time.Millisecond):
	}
	pool := (*r2.pools.Load())[r1.Name()]
	if pool.Slots() < 2 {
		t.Fatalf("router2 has %d links to router1, want 2 or more", pool.Slots())
	}
	l := pool.Pick(0)
	if l == nil {
		t.Fatal("router2's first link to router1 is down before the cut")
	}
	l.Close(fmt.Errorf("test: cut one lane"))
	if !pool.Up() {
		t.Fatal("router2 has no link to router1 up after cutting one of two")
	}
	deadline := time.Now().Add(3 * time.Second)
	for v := 3; ; v++ {
		publish(v)
		select {
		case <-got:
			return
		case <-time.After(100 * time.Millisecond):
			if time.Now().After(deadline) {
				t.Fatal("no event across the routers after one link of the pair failed: the pair was not resynchronised")
			}
		}
	}
}

// TestLaneFailureIsNotALeave: the resync after one failed link between two routers
// drops and restores the other's sessions and callees without telling anyone they
// left, and the realm-wide meta API counts the same sessions afterwards.
func TestLaneFailureIsNotALeave(t *testing.T) {
	ctx, on, r1, r2 := startPair(t)
	meta := make(chan string, 16)
	for _, topic := range []string{"wamp.session.on_leave", "wamp.registration.on_unregister", "wamp.registration.on_delete"} {
		if _, err := on[r1].Subscribe(ctx, topic, func(*client.Event) { meta <- topic }, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := on[r2].Register(ctx, "com.example.lane.echo", func(_ context.Context, inv *client.Invocation) (*client.Result, error) {
		return &client.Result{Args: inv.Args}, nil
	}, nil); err != nil {
		t.Fatal(err)
	}
	count := func() float64 {
		t.Helper()
		res, err := on[r1].Call(ctx, "wamp.session.count", nil, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		return numOf(res.Args[0])
	}
	before := count()
	pool := (*r2.pools.Load())[r1.Name()]
	l := pool.Pick(1)
	if l == nil {
		t.Fatal("router2's second link to router1 is down before the cut")
	}
	l.Close(fmt.Errorf("test: cut one lane"))
	cut := time.Now()
	deadline := time.Now().Add(3 * time.Second)
	for r1.PairResets() == 0 || r2.PairResets() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("pair resets after a failed link: router1 %d, router2 %d, want 1 each", r1.PairResets(), r2.PairResets())
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, pl := range r1.PeerLinks() {
		if pl.Peer == r2.Name() && pl.Resyncs == 0 {
			t.Fatalf("router1's peer link state for router2 counts no resync: %+v", pl)
		}
	}
	// The callee on router2 is back in router1's dealer once the resync has arrived.
	for {
		res, err := on[r1].Call(ctx, "com.example.lane.echo", []any{"x"}, nil, nil)
		if err == nil && len(res.Args) == 1 && res.Args[0] == "x" {
			t.Logf("a call crosses the pair again %v after the cut", time.Since(cut).Round(time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("call across the pair after the resync: %v %v", res, err)
		}
		time.Sleep(time.Millisecond)
	}
	if after := count(); after != before {
		t.Fatalf("wamp.session.count %v after the resync, %v before", after, before)
	}
	select {
	case topic := <-meta:
		t.Fatalf("%s published for a session or callee that never left", topic)
	case <-time.After(200 * time.Millisecond):
	}
}

// TestLaneCutsUnderLoad: single links between two routers fail again and again (one
// lane at a time, either side's) while calls cross between them, a callee on the other
// router registers and unregisters a procedure, and events cross. No call, REGISTER or
// UNREGISTER may hang (each ends with a result or an ERROR), and once the cuts stop the
// pair is consistent again: calls and events cross, and the churned procedure has one
// callee at most.
func TestLaneCutsUnderLoad(t *testing.T) {
	setup, on, r1, r2 := startPair(t)
	if _, err := on[r2].Register(setup, "com.example.cuts.echo", func(_ context.Context, inv *client.Invocation) (*client.Result, error) {
		return &client.Result{Args: inv.Args}, nil
	}, nil); err != nil {
		t.Fatal(err)
	}
	var events atomic.Int64
	if _, err := on[r2].Subscribe(setup, "com.example.cuts.ev", func(*client.Event) { events.Add(1) }, nil); err != nil {
		t.Fatal(err)
	}
	ld := newLoad(t)
	var calls, callErrs, regs, regErrs atomic.Int64
	ld.calls(on[r1], 4, "com.example.cuts.echo", &calls, &callErrs)
	ld.loop(func() {
		_ = on[r1].Publish(context.Background(), "com.example.cuts.ev", []any{1}, nil)
		time.Sleep(time.Millisecond)
	})
	churner := on[r2]
	ld.loop(func() {
		var reg *client.Registration
		err := ld.bounded("a REGISTER", func(c context.Context) error {
			var err error
			reg, err = churner.Register(c, "com.example.cuts.churn", func(context.Context, *client.Invocation) (*client.Result, error) {
				return &client.Result{}, nil
			}, nil)
			return err
		})
		if err != nil {
			regErrs.Add(1)
			time.Sleep(5 * time.Millisecond)
			return
		}
		regs.Add(1)
		_ = ld.bounded("an UNREGISTER", reg.Unregister)
	})
	var subs, metas atomic.Int64
	ld.loop(func() {
		var sub *client.Subscription
		if ld.bounded("a SUBSCRIBE", func(c context.Context) error {
			var err error
			sub, err = churner.Subscribe(c, "com.example.cuts.sub", func(*client.Event) {}, nil)
			return err
		}) != nil {
			time.Sleep(5 * time.Millisecond)
			return
		}
		subs.Add(1)
		_ = ld.bounded("an UNSUBSCRIBE", sub.Unsubscribe)
	})
	ld.loop(func() {
		if ld.bounded("a meta call", func(c context.Context) error {
			_, err := on[r1].Call(c, "wamp.session.count", nil, nil, nil)
			return err
		}) == nil {
			metas.Add(1)
		} else {
			time.Sleep(5 * time.Millisecond)
		}
	})
	// Cut one lane at a time, alternating sides and lanes, every 40 ms for 2 s.
	for i := 0; i < 50; i++ {
		from, to := r1, r2
		if i%2 == 1 {
			from, to = r2, r1
		}
		if l := (*from.pools.Load())[to.Name()].Pick(uint64(i / 2)); l != nil {
			l.Close(fmt.Errorf("test: cut %d", i))
		}
		time.Sleep(40 * time.Millisecond)
	}
	ld.end()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if r1.PairResets() == 0 || r2.PairResets() == 0 {
		t.Fatalf("pair resets: %d, %d", r1.PairResets(), r2.PairResets())
	}
	// Settled: calls and events cross again.
	deadline := time.Now().Add(5 * time.Second)
	for {
		res, err := on[r1].Call(ctx, "com.example.cuts.echo", []any{"after"}, nil, nil)
		if err == nil && len(res.Args) == 1 && res.Args[0] == "after" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no call across the pair after the cuts: %v %v", res, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	before := events.Load()
	for events.Load() == before {
		if err := on[r1].Publish(ctx, "com.example.cuts.ev", []any{2}, nil, client.Acknowledge()); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("no event across the pair after the cuts")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The churned procedure: free on both routers (its last UNREGISTER went through),
	// so a callee on router1 gets it and one on router2 is refused.
	var r1reg *client.Registration
	for {
		var err error
		r1reg, err = on[r1].Register(ctx, "com.example.cuts.churn", func(context.Context, *client.Invocation) (*client.Result, error) {
			return &client.Result{Args: []any{"r1"}}, nil
		}, nil)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the churned procedure is still taken after the cuts: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	defer r1reg.Unregister(ctx)
	var we *client.Error
	if _, err := churner.Register(ctx, "com.example.cuts.churn", func(context.Context, *client.Invocation) (*client.Result, error) {
		return &client.Result{}, nil
	}, nil); !errors.As(err, &we) || we.URI != "wamp.error.procedure_already_exists" {
		t.Fatalf("second callee of the churned procedure on the other router: %v", err)
	}
	t.Logf("during the cuts: %d calls ok, %d ERROR; %d REGISTERs ok, %d refused; %d SUBSCRIBEs, %d meta calls; pair resets %d/%d",
		calls.Load(), callErrs.Load(), regs.Load(), regErrs.Load(), subs.Load(), metas.Load(), r1.PairResets(), r2.PairResets())
}

// TestRouterRestartUnderLoad: a router with a callee dies under calls and comes back
// on the same address. No call hangs; the procedure moves to a callee on another router;
// once the router is back it gets the realm's state (resync), so a session placed on it
// cannot take the procedure a second time, and calls keep being served.
func TestRouterRestartUnderLoad(t *testing.T) {
	tc := startCluster(t, clusterOpts{routers: 3, proxies: 2, spread: spread3})
	on := tc.sessionsOnEveryRouter(t)
	r1, r2, r3 := tc.routers[0], tc.routers[1], tc.routers[2]
	setup, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	echo := func(_ context.Context, inv *client.Invocation) (*client.Result, error) {
		return &client.Result{Args: inv.Args}, nil
	}
	if _, err := on[r3].Register(setup, "com.example.restart.echo", echo, nil); err != nil {
		t.Fatal(err)
	}
	var results, failures atomic.Int64
	ld := newLoad(t)
	for _, caller := range []*client.Session{on[r1], on[r2]} {
		ld.calls(caller, 3, "com.example.restart.echo", &results, &failures)
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor("calls to the first callee", func() bool { return results.Load() >= 50 })
	addr := tc.members[2].Addr
	stopQuietly(r3.Stop)
	// The procedure is free once router3 is gone: a callee on router1 takes it.
	waitFor("the procedure to be free", func() bool {
		_, err := on[r1].Register(setup, "com.example.restart.echo", echo, nil)
		return err == nil
	})
	before := results.Load()
	waitFor("calls to the second callee", func() bool { return results.Load() >= before+50 })
	// router3 comes back on the same address, with the same name.
	c := tc.common
	c.Name = r3.Name()
	var back *RouterNode
	waitFor("router3 to restart", func() bool {
		var err error
		back, err = StartRouter(RouterNodeConfig{ClusterCommon: c, LinkAddr: addr,
			Node: Config{NoListeners: true, Realms: []string{"realm1"}, Logger: quietLogger()}})
		return err == nil
	})
	t.Cleanup(func() { stopQuietly(back.Stop) })
	tc.routers[2] = back
	waitFor("router3 to be live everywhere", func() bool {
		return len(r1.Live()) == 3 && len(r2.Live()) == 3 && len(back.Live()) == 3
	})
	var onBack *client.Session
	for i := 0; onBack == nil; i++ {
		if i == 200 {
			t.Fatal("no session placed on the restarted router")
		}
		s := tc.connect(i%2, codec.JSON, false)
		if tc.routerOf(s.ID()) == back {
			onBack = s
		}
	}
	var we *client.Error
	if _, err := onBack.Register(setup, "com.example.restart.echo", echo, nil); !errors.As(err, &we) || we.URI != "wamp.error.procedure_already_exists" {
		t.Fatalf("REGISTER on the restarted router of a procedure held on router1: %v", err)
	}
	// A call from the restarted router reaches the callee on router1.
	if res, err := onBack.Call(setup, "com.example.restart.echo", []any{"back"}, nil, nil); err != nil || len(res.Args) != 1 || res.Args[0] != "back" {
		t.Fatalf("call from the restarted router: %v %v", res, err)
	}
	before = results.Load()
	waitFor("calls after the restart", func() bool { return results.Load() >= before+50 })
	ld.end()
	t.Logf("calls: %d results, %d errors around the restart", results.Load(), failures.Load())
}

// TestProxyRestart: a proxy that stops and starts again on the same port serves new
// sessions, which reach the sessions of the other proxy.
func TestProxyRestart(t *testing.T) {
	tc := startCluster(t, clusterOpts{routers: 2, proxies: 2, spread: spread3})
	ctx := ctxT(t)
	addr := tc.proxies[0].Node.ListenerAddr(0).String()
	stopQuietly(tc.proxies[0].Stop)
	c := tc.common
	c.Name = "proxy1"
	nc := Config{Listeners: []Listener{{Address: addr}}, Realms: []string{"realm1"}, Logger: quietLogger()}
	var p *ProxyNode
	var err error
	deadline := time.Now().Add(5 * time.Second)
	for p, err = StartProxy(ProxyNodeConfig{ClusterCommon: c, Node: nc, SpreadOf: spread3}); err != nil; p, err = StartProxy(ProxyNodeConfig{ClusterCommon: c, Node: nc, SpreadOf: spread3}) {
		if time.Now().After(deadline) {
			t.Fatalf("restart on %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Cleanup(func() { stopQuietly(p.Stop) })
	tc.proxies[0] = p
	if !p.Links.WaitReady(5 * time.Second) {
		t.Fatal("restarted proxy has no links")
	}
	sub := tc.connect(1, codec.JSON, false)
	got := make(chan any, 1)
	if _, err := sub.Subscribe(ctx, "com.example.restart", func(e *client.Event) { got <- e.Args[0] }, nil); err != nil {
		t.Fatal(err)
	}
	pub := tc.connect(0, codec.MsgPack, true)
	if err := pub.Publish(ctx, "com.example.restart", []any{"again"}, nil, client.Acknowledge()); err != nil {
		t.Fatal(err)
	}
	select {
	case v := <-got:
		if v != "again" {
			t.Fatal(v)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no event from the restarted proxy's client")
	}
}

// TestWrongSecretProxy: a proxy whose cluster secret is wrong gets no link; its clients
// are refused with a clear ABORT, and the routers keep serving the others.
func TestWrongSecretProxy(t *testing.T) {
	tc := startCluster(t, clusterOpts{routers: 1, proxies: 1})
	c := tc.common
	c.Name = "intruder"
	c.Secret = []byte("not the cluster secret at all")
	nc := Config{Listeners: []Listener{{Address: "127.0.0.1:0"}}, Realms: []string{"realm1"}, Logger: quietLogger()}
	p, err := StartProxy(ProxyNodeConfig{ClusterCommon: c, Node: nc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopQuietly(p.Stop) })
	if p.Links.WaitReady(500 * time.Millisecond) {
		t.Fatal("a proxy with a wrong secret got a link")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err = client.Connect(ctx, client.Config{URL: p.Node.WebSocketURL(), Realm: "realm1"})
	var we *client.Error
	if !errors.As(err, &we) || we.URI != proxy.ErrRouterUnavailable {
		t.Fatalf("join through the intruder: %v, want ABORT %s", err, proxy.ErrRouterUnavailable)
	}
	if tc.routers[0].Links.Forwarded() != 0 {
		t.Fatal("the router took a session from the intruder")
	}
	tc.connect(0, codec.JSON, false) // the real proxy still works
}

// TestTestamentOfAKilledRouter: a session's testament fires when its router dies with
// it: the subscribers on the other routers (real clients through both proxies) get it
// once, with the dead session disclosed as its publisher.
func TestTestamentOfAKilledRouter(t *testing.T) {
	tc := startCluster(t, clusterOpts{routers: 3, proxies: 2, spread: spread3})
	ctx := ctxT(t)
	on := tc.sessionsOnEveryRouter(t)
	victim := tc.routers[2]
	got := make(chan *client.Event, 8)
	for _, r := range tc.routers[:2] {
		if _, err := on[r].Subscribe(ctx, "com.example.will", func(e *client.Event) { got <- e }, nil); err != nil {
			t.Fatal(err)
		}
	}
	dying := on[victim]
	if _, err := dying.Call(ctx, "wamp.session.add_testament", []any{"com.example.will", []any{"gone"}},
		map[string]any{"publish_options": map[string]any{"disclose_me": true}}, nil); err != nil {
		t.Fatal(err)
	}
	stopQuietly(victim.Stop)
	for range 2 {
		select {
		case e := <-got:
			if len(e.Args) != 1 || e.Args[0] != "gone" || e.Details["publisher"] != dying.ID() {
				t.Fatalf("testament event %v %v", e.Args, e.Details)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("a subscriber on a surviving router got no testament (%d got one)", len(got))
		}
	}
	select {
	case e := <-got:
		t.Fatalf("a testament delivered twice: %v", e.Args)
	case <-time.After(300 * time.Millisecond):
	}
}

// TestJoinsWhileProxyLinksAreCut: clients join through a proxy while its links to the
// routers are cut again and again, so that links go down while sessions are being
// opened on them. Every join ends (WELCOME, or ABORT because the router went away)
// within the bound: red when a link going down leaves its openings to the open timeout.
// It also runs the path of the opening-timer race the soak once found (99f4736), but
// that window is too narrow for it to catch the race reliably (0 of 3 runs under -race
// with the race put back).
func TestJoinsWhileProxyLinksAreCut(t *testing.T) {
	tc := startCluster(t, clusterOpts{routers: 2, proxies: 1, spread: func(string, string) int { return 2 }})
	stop := make(chan struct{})
	var cuts atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(3 * time.Millisecond):
			}
			r := tc.routers[rand.IntN(len(tc.routers))]
			if l := tc.proxies[0].Links.Pool(r.Name()).Pick(rand.Uint64()); l != nil {
				l.Close(fmt.Errorf("test: cut"))
				cuts.Add(1)
			}
		}
	})
	var joined, refused atomic.Int64
	deadline := time.Now().Add(1500 * time.Millisecond)
	for range 6 {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				ctx, cancel := context.WithTimeout(context.Background(), loadBound)
				start := time.Now()
				s, err := client.Connect(ctx, client.Config{URL: tc.url(0, false), Realm: "realm1"})
				cancel()
				switch {
				case time.Since(start) >= loadBound:
					t.Errorf("a join hung for %v", time.Since(start))
					return
				case err != nil:
					refused.Add(1)
				default:
					joined.Add(1)
					s.Close()
				}
			}
		})
	}
	time.Sleep(time.Until(deadline))
	close(stop)
	wg.Wait()
	t.Logf("%d joins, %d refused, %d link cuts", joined.Load(), refused.Load(), cuts.Load())
	if joined.Load() == 0 || cuts.Load() == 0 {
		t.Fatalf("%d joins and %d cuts: the test did not exercise joins during cuts", joined.Load(), cuts.Load())
	}
}
