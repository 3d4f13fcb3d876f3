package node

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/client"
	"github.com/switchyard-wamp/switchyard/codec"
	"github.com/switchyard-wamp/switchyard/engine"
	"github.com/switchyard-wamp/switchyard/engine/match"
)

// TestEverythingUnderLaneCuts runs every kind of operation at once on three routers
// (calls to exact and pattern registrations, acknowledged publications, subscribe and
// register churn, realm-wide meta calls, sessions joining and leaving) while single
// links between routers are cut at random for 2 s. No operation may hang; no session
// may lose its router (only links between routers are cut); afterwards the routers
// agree again: the same session count everywhere, calls and events cross every pair,
// and each churned URI is free and unique realm-wide.
func TestEverythingUnderLaneCuts(t *testing.T) {
	if testing.Short() {
		t.Skip("stress test")
	}
	tc := startCluster(t, clusterOpts{routers: 3, proxies: 2, spread: spread3})
	on := tc.sessionsOnEveryRouter(t)
	rs := tc.routers
	setup, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	echo := func(_ context.Context, inv *client.Invocation) (*client.Result, error) {
		return &client.Result{Args: inv.Args}, nil
	}
	if _, err := on[rs[2]].Register(setup, "com.example.all.echo", echo, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := on[rs[0]].Register(setup, "com.example.all.pat.", echo, map[string]any{"match": "prefix"}); err != nil {
		t.Fatal(err)
	}
	var events atomic.Int64
	for _, r := range rs[1:] {
		if _, err := on[r].Subscribe(setup, "com.example.all.ev", func(*client.Event) { events.Add(1) }, nil); err != nil {
			t.Fatal(err)
		}
	}
	ld := newLoad(t)
	var ok, failed [8]atomic.Int64 // per operation kind, for the log line
	count := func(i int, err error) {
		if err == nil {
			ok[i].Add(1)
		} else {
			failed[i].Add(1)
			time.Sleep(2 * time.Millisecond)
		}
	}
	for i, r := range rs {
		caller := on[r]
		ld.loop(func() {
			count(0, ld.bounded("a call", func(c context.Context) error {
				_, err := caller.Call(c, "com.example.all.echo", []any{1}, nil, nil)
				return err
			}))
		})
		ld.loop(func() {
			count(1, ld.bounded("a pattern call", func(c context.Context) error {
				_, err := caller.Call(c, "com.example.all.pat.x", []any{1}, nil, nil)
				return err
			}))
		})
		ld.loop(func() {
			count(2, ld.bounded("an acknowledged PUBLISH", func(c context.Context) error {
				return caller.Publish(c, "com.example.all.ev", []any{i}, nil, client.Acknowledge())
			}))
		})
		meta := []string{"wamp.session.count", "wamp.registration.lookup", "wamp.subscription.list"}[i]
		ld.loop(func() {
			count(3, ld.bounded("a meta call "+meta, func(c context.Context) error {
				var args []any
				if meta == "wamp.registration.lookup" {
					args = []any{"com.example.all.echo"}
				}
				_, err := caller.Call(c, meta, args, nil, nil)
				return err
			}))
		})
	}
	ld.loop(func() {
		var sub *client.Subscription
		err := ld.bounded("a SUBSCRIBE", func(c context.Context) error {
			var err error
			sub, err = on[rs[1]].Subscribe(c, "com.example.all.churn.sub", func(*client.Event) {}, nil)
			return err
		})
		if count(4, err); err == nil {
			_ = ld.bounded("an UNSUBSCRIBE", sub.Unsubscribe)
		}
	})
	ld.loop(func() {
		var reg *client.Registration
		err := ld.bounded("a REGISTER", func(c context.Context) error {
			var err error
			reg, err = on[rs[2]].Register(c, "com.example.all.churn.reg", echo, nil)
			return err
		})
		if count(5, err); err == nil {
			_ = ld.bounded("an UNREGISTER", reg.Unregister)
		}
	})
	ld.loop(func() {
		err := ld.bounded("a join", func(c context.Context) error {
			s, err := client.Connect(c, client.Config{URL: tc.url(rand.IntN(2), false), Realm: "realm1", Serializer: codec.MsgPack})
			if err != nil {
				return err
			}
			_, err = s.Call(c, "wamp.session.get", []any{s.ID()}, nil, nil)
			s.Close()
			return err
		})
		count(6, err)
	})
	// Cut one link between two routers, picked at random, every 30 ms for 2 s.
	pairs := [][2]*RouterNode{{rs[0], rs[1]}, {rs[1], rs[0]}, {rs[0], rs[2]}, {rs[2], rs[0]}, {rs[1], rs[2]}, {rs[2], rs[1]}}
	for i := 0; i < 66; i++ {
		p := pairs[rand.IntN(len(pairs))]
		if l := (*p[0].pools.Load())[p[1].Name()].Pick(rand.Uint64()); l != nil {
			l.Close(fmt.Errorf("test: cut %d", i))
		}
		time.Sleep(30 * time.Millisecond)
	}
	ld.end()
	kinds := []string{"calls", "pattern calls", "publications", "meta calls", "subscribes", "registers", "joins"}
	var b strings.Builder
	for i, k := range kinds {
		fmt.Fprintf(&b, "%s %d ok/%d failed; ", k, ok[i].Load(), failed[i].Load())
	}
	resets := 0
	for _, r := range rs {
		resets += int(r.PairResets())
	}
	t.Logf("during the cuts: %spair resets %d", b.String(), resets)
	if resets == 0 {
		t.Fatal("no pair reset: the cuts did not happen")
	}
	for r, s := range on {
		select {
		case <-s.Done():
			t.Fatalf("the session on %s ended although no proxy link was cut: %v", r.Name(), s.Err())
		default:
		}
	}
	ctx, cancel2 := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel2()
	settled := func(what string, f func() error) { t.Helper(); settle(t, "after the cuts, "+what, f) }
	// Every router counts the same sessions (the five of this test's sessions that
	// stay; joins have left).
	settled("the routers' session counts agree", func() error {
		var counts []any
		for _, r := range rs {
			res, err := on[r].Call(ctx, "wamp.session.count", nil, nil, nil)
			if err != nil {
				return err
			}
			counts = append(counts, res.Args[0])
		}
		for _, c := range counts[1:] {
			if fmt.Sprint(c) != fmt.Sprint(counts[0]) {
				return fmt.Errorf("counts %v", counts)
			}
		}
		return nil
	})
	for _, r := range rs {
		caller := on[r]
		settled("a call from "+r.Name(), func() error {
			for _, proc := range []string{"com.example.all.echo", "com.example.all.pat.y"} {
				if _, err := caller.Call(ctx, proc, []any{"after"}, nil, nil); err != nil {
					return err
				}
			}
			return nil
		})
		before := events.Load()
		settled("events from "+r.Name(), func() error {
			if err := caller.Publish(ctx, "com.example.all.ev", []any{"after"}, nil, client.Acknowledge()); err != nil {
				return err
			}
			time.Sleep(20 * time.Millisecond)
			if events.Load() < before+2 {
				return fmt.Errorf("%d events of the 2 expected", events.Load()-before)
			}
			return nil
		})
	}
	// The churned procedure is free and unique realm-wide: one callee gets it, a second
	// on another router is refused.
	var reg *client.Registration
	settled("the churned procedure is free", func() error {
		var err error
		reg, err = on[rs[0]].Register(ctx, "com.example.all.churn.reg", echo, nil)
		return err
	})
	defer reg.Unregister(ctx)
	var we *client.Error
	if _, err := on[rs[1]].Register(ctx, "com.example.all.churn.reg", echo, nil); !errors.As(err, &we) || we.URI != "wamp.error.procedure_already_exists" {
		t.Fatalf("a second callee of the churned procedure: %v", err)
	}
	// No subscriber is left on the churned topic anywhere.
	settled("no subscription left on the churned topic", func() error {
		for _, r := range rs {
			res, err := on[r].Call(ctx, "wamp.subscription.lookup", []any{"com.example.all.churn.sub"}, nil, nil)
			if err != nil {
				return err
			}
			if len(res.Args) > 0 && res.Args[0] != nil {
				return fmt.Errorf("router %s still has subscription %v", r.Name(), res.Args[0])
			}
		}
		return nil
	})
}

// settle calls f until it returns nil, for at most 10 s, and fails the test with what
// and f's last error after that.
func settle(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// worker is one client of a stress test that reconnects (through a random proxy) when
// its session ends, and then runs setup again (re-register, re-subscribe).
type worker struct {
	t     *testing.T
	urls  []string // the proxies' WebSocket URLs
	ld    *load
	setup func(context.Context, *client.Session) error
	s     *client.Session
	// joins counts the worker's sessions: 1 plus its reconnects.
	joins int
}

// session returns the worker's open session, connecting a new one when it has none or
// its last one ended; nil when that failed (the caller's loop tries again).
func (w *worker) session() *client.Session {
	if w.s != nil {
		select {
		case <-w.s.Done():
		default:
			return w.s
		}
	}
	var s *client.Session
	err := w.ld.bounded("a (re)connect", func(c context.Context) error {
		var err error
		s, err = client.Connect(c, client.Config{URL: w.urls[rand.IntN(len(w.urls))], Realm: "realm1", Serializer: codec.CBOR})
		if err != nil {
			return err
		}
		if w.setup != nil {
			if err = w.setup(c, s); err != nil {
				s.Close()
			}
		}
		return err
	})
	if err != nil {
		time.Sleep(5 * time.Millisecond)
		return nil
	}
	w.s = s
	w.joins++
	w.t.Cleanup(func() { s.Close() })
	return s
}

// mix is the clients of a stress test through a cluster's proxies: a callee, two
// subscribers, three callers, a publisher, a meta caller and two churners, each a
// worker that reconnects when its session ends.
type mix struct {
	t               *testing.T
	ld              *load
	workers         []*worker
	events          atomic.Int64
	calls, callErrs atomic.Int64
	// routers, when set, are described in a failure of agree (where each client's
	// session is, which registrations each router has of the echo procedure).
	routers func() []*RouterNode
}

// describe says, for a failure, where the clients' sessions live and what each router
// holds for the echo procedure (callee id, local or ghost).
func (m *mix) describe(live []*client.Session) string {
	if m.routers == nil {
		return ""
	}
	var b strings.Builder
	for _, r := range m.routers() {
		rl, ok := r.Node.Router.Realm("realm1")
		if !ok {
			continue
		}
		fmt.Fprintf(&b, "\n%s: sessions", r.Name())
		for i, s := range live {
			if rl.HasSession(s.ID()) {
				fmt.Fprintf(&b, " client%d(%d)", i, s.ID())
			}
		}
		b.WriteString("; echo callees")
		rl.LocalRegistrations(func(callee *engine.Session, proc string, _ bool, _ match.Kind, _ string) {
			if proc == "com.example.mix.echo" {
				_, ghost := rl.LookupGhost(callee.ID())
				fmt.Fprintf(&b, " %d(ghost %v)", callee.ID(), ghost)
			}
		})
	}
	return b.String()
}

func echoHandler(_ context.Context, inv *client.Invocation) (*client.Result, error) {
	return &client.Result{Args: inv.Args}, nil
}

// startMix starts the clients, each connecting through one of the proxies at urls
// (WebSocket), and waits until they are set up.
func startMix(t *testing.T, urls ...string) *mix {
	ld := newLoad(t)
	m := &mix{t: t, ld: ld}
	work := func(setup func(context.Context, *client.Session) error, op func(*client.Session) error) {
		w := &worker{t: t, urls: urls, ld: ld, setup: setup}
		m.workers = append(m.workers, w)
		ld.loop(func() {
			if s := w.session(); s != nil {
				if err := op(s); err != nil {
					time.Sleep(2 * time.Millisecond)
				}
			}
		})
	}
	idle := func(*client.Session) error { time.Sleep(5 * time.Millisecond); return nil }
	// The callee: registers again after each reconnect, once the router has dropped its
	// previous session's registration (until then: procedure_already_exists).
	work(func(c context.Context, s *client.Session) error {
		for {
			_, err := s.Register(c, "com.example.mix.echo", echoHandler, nil)
			var we *client.Error
			if !errors.As(err, &we) || we.URI != "wamp.error.procedure_already_exists" {
				return err
			}
			time.Sleep(5 * time.Millisecond)
		}
	}, idle)
	for range 2 {
		work(func(c context.Context, s *client.Session) error {
			_, err := s.Subscribe(c, "com.example.mix.ev", func(*client.Event) { m.events.Add(1) }, nil)
			return err
		}, idle)
	}
	for range 3 {
		work(nil, func(s *client.Session) error {
			return ld.bounded("a call", func(c context.Context) error {
				_, err := s.Call(c, "com.example.mix.echo", []any{1}, nil, nil)
				if err == nil {
					m.calls.Add(1)
				} else {
					m.callErrs.Add(1)
				}
				return err
			})
		})
	}
	work(nil, func(s *client.Session) error {
		return ld.bounded("an acknowledged PUBLISH", func(c context.Context) error {
			return s.Publish(c, "com.example.mix.ev", []any{1}, nil, client.Acknowledge())
		})
	})
	work(nil, func(s *client.Session) error {
		return ld.bounded("a meta call", func(c context.Context) error {
			_, err := s.Call(c, "wamp.session.count", nil, nil, nil)
			return err
		})
	})
	work(nil, func(s *client.Session) error {
		var sub *client.Subscription
		err := ld.bounded("a SUBSCRIBE", func(c context.Context) error {
			var err error
			sub, err = s.Subscribe(c, "com.example.mix.churn.sub", func(*client.Event) {}, nil)
			return err
		})
		if err == nil {
			err = ld.bounded("an UNSUBSCRIBE", sub.Unsubscribe)
		}
		return err
	})
	work(nil, func(s *client.Session) error {
		var reg *client.Registration
		err := ld.bounded("a REGISTER", func(c context.Context) error {
			var err error
			reg, err = s.Register(c, "com.example.mix.churn.reg", echoHandler, nil)
			return err
		})
		if err == nil {
			err = ld.bounded("an UNREGISTER", reg.Unregister)
		}
		return err
	})
	time.Sleep(200 * time.Millisecond) // everyone set up
	return m
}

// end stops the clients, logs what they did, and reports how many sessions they
// joined in all (one each plus their reconnects).
func (m *mix) end(what string) int {
	m.ld.end()
	joins := 0
	for _, w := range m.workers {
		joins += w.joins
	}
	m.t.Logf("during the %s: %d calls ok, %d failed; %d sessions joined by %d clients", what, m.calls.Load(), m.callErrs.Load(), joins, len(m.workers))
	return joins
}

// agree checks, once the faults are over, that the routers hold exactly the clients'
// sessions and registrations (none left over from a fault), that calls and events
// flow from and to every client, and that the churned procedure is free and unique.
func (m *mix) agree(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// Every client has a session again (a fault after the loops ended leaves one without).
	live := make([]*client.Session, len(m.workers))
	for i, w := range m.workers {
		deadline := time.Now().Add(10 * time.Second)
		for live[i] = w.session(); live[i] == nil; live[i] = w.session() {
			if time.Now().After(deadline) {
				t.Fatalf("client %d cannot get a session after the faults", i)
			}
		}
	}
	settled := func(what string, f func() error) { t.Helper(); settle(t, "after the faults, "+what, f) }
	// Exactly the clients' sessions, seen from every client's router.
	settled("the realm's session count", func() error {
		for _, s := range live {
			res, err := s.Call(ctx, "wamp.session.count", nil, nil, nil)
			if err != nil {
				return err
			}
			if fmt.Sprint(res.Args[0]) != fmt.Sprint(len(m.workers)) {
				return fmt.Errorf("%v sessions, want %d", res.Args[0], len(m.workers))
			}
		}
		return nil
	})
	for i, s := range live {
		settled(fmt.Sprintf("a call from client %d", i), func() error {
			_, err := s.Call(ctx, "com.example.mix.echo", []any{"after"}, nil, nil)
			if err != nil {
				return fmt.Errorf("%w%s", err, m.describe(live))
			}
			return nil
		})
	}
	settled("one callee of the echo procedure", func() error {
		res, err := live[3].Call(ctx, "wamp.registration.lookup", []any{"com.example.mix.echo"}, nil, nil)
		if err != nil {
			return err
		}
		n, err := live[4].Call(ctx, "wamp.registration.count_callees", []any{res.Args[0]}, nil, nil)
		if err != nil {
			return err
		}
		if fmt.Sprint(n.Args[0]) != "1" {
			return fmt.Errorf("%v callees", n.Args[0])
		}
		return nil
	})
	before := m.events.Load()
	settled("events to both subscribers", func() error {
		if err := live[6].Publish(ctx, "com.example.mix.ev", []any{"after"}, nil, client.Acknowledge()); err != nil {
			return err
		}
		time.Sleep(20 * time.Millisecond)
		if got := m.events.Load() - before; got < 2 {
			return fmt.Errorf("%d events of 2", got)
		}
		return nil
	})
	var reg *client.Registration
	settled("the churned procedure is free", func() error {
		var err error
		reg, err = live[0].Register(ctx, "com.example.mix.churn.reg", echoHandler, nil)
		return err
	})
	defer reg.Unregister(ctx)
	for _, s := range live[1:] {
		var we *client.Error
		if _, err := s.Register(ctx, "com.example.mix.churn.reg", echoHandler, nil); !errors.As(err, &we) || we.URI != "wamp.error.procedure_already_exists" {
			t.Fatalf("a second callee of the churned procedure: %v", err)
		}
	}
}

// TestEverythingUnderProxyLinkCuts: the mix of clients runs through two proxies while
// single links between a proxy and a router are cut at random for 2 s. The sessions on
// a cut link end with router_lost and their clients reconnect and set up again.
// Nothing may hang, and afterwards the routers hold exactly the clients' sessions and
// registrations: no session or callee is left over from a cut link.
func TestEverythingUnderProxyLinkCuts(t *testing.T) {
	if testing.Short() {
		t.Skip("stress test")
	}
	tc := startCluster(t, clusterOpts{routers: 3, proxies: 2, spread: spread3})
	m := startMix(t, tc.url(0, false), tc.url(1, false))
	m.routers = func() []*RouterNode { return tc.routers }
	for i := 0; i < 66; i++ {
		p := tc.proxies[rand.IntN(len(tc.proxies))]
		r := tc.routers[rand.IntN(len(tc.routers))]
		if l := p.Links.Pool(r.Name()).Pick(rand.Uint64()); l != nil {
			l.Close(fmt.Errorf("test: cut %d", i))
		}
		time.Sleep(30 * time.Millisecond)
	}
	if m.end("cuts") == len(m.workers) {
		t.Fatal("no client reconnected: the cuts did not happen")
	}
	m.agree(t)
}

// TestEverythingUnderRouterRestarts: the mix of clients runs while each router in turn
// is stopped and started again on its address (its clients reconnect onto the others,
// or onto it once it is back). Afterwards the routers agree as after link cuts.
func TestEverythingUnderRouterRestarts(t *testing.T) {
	if testing.Short() {
		t.Skip("stress test")
	}
	tc := startCluster(t, clusterOpts{routers: 3, proxies: 2, spread: spread3})
	m := startMix(t, tc.url(0, false), tc.url(1, false))
	m.routers = func() []*RouterNode { return tc.routers }
	for i := range tc.routers {
		r := tc.routers[i]
		stopQuietly(r.Stop)
		time.Sleep(300 * time.Millisecond)
		c := tc.common
		c.Name = r.Name()
		deadline := time.Now().Add(10 * time.Second)
		for {
			back, err := StartRouter(RouterNodeConfig{ClusterCommon: c, LinkAddr: tc.members[i].Addr,
				Node: Config{NoListeners: true, Realms: []string{"realm1"}, Logger: quietLogger()}})
			if err == nil {
				tc.routers[i] = back
				t.Cleanup(func() { stopQuietly(back.Stop) })
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("restart %s: %v", r.Name(), err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(300 * time.Millisecond)
	}
	m.end("restarts")
	m.agree(t)
}

// TestEverythingUnderMembershipChanges: the mix of clients runs while the map changes
// as a master's would: a third router joins, then one of the first two leaves the map
// (its clients are told router_lost and reconnect onto the others) and joins it again.
// Afterwards the routers agree as after link cuts.
func TestEverythingUnderMembershipChanges(t *testing.T) {
	if testing.Short() {
		t.Skip("stress test")
	}
	dc, ra, rb := newDynCluster(t)
	dc.setMap([]ClusterMember{ra, rb})
	m := startMix(t, dc.proxy.Node.WebSocketURL())
	rc := dc.startRouter("rc", 3, []ClusterMember{ra, rb})
	dc.setMap([]ClusterMember{ra, rb, rc})
	time.Sleep(400 * time.Millisecond)
	// The one of the first two with more of the clients leaves (placement may have put
	// them all on one), and comes back.
	leaving, staying := ra, rb
	if sessionsOn(dc.routers["rb"]) > sessionsOn(dc.routers["ra"]) {
		leaving, staying = rb, ra
	}
	dc.setMap([]ClusterMember{staying, rc})
	time.Sleep(400 * time.Millisecond)
	dc.setMap([]ClusterMember{ra, rb, rc})
	time.Sleep(400 * time.Millisecond)
	if m.end("membership changes") == len(m.workers) {
		t.Fatalf("no client reconnected: router %s did not leave", leaving.Name)
	}
	m.agree(t)
	// The router that joined and the one that came back have the realm's state (their
	// resyncs): a client placed on each reaches the echo callee wherever it is.
	ctx := ctxT(t)
	for _, name := range []string{rc.Name, leaving.Name} {
		var on *client.Session
		for i := 0; on == nil; i++ {
			if i == 100 {
				t.Fatalf("no new session placed on %s", name)
			}
			if s := dc.connect(); dc.home(s.ID()) == name {
				on = s
			}
		}
		settle(t, "a call from a client on "+name, func() error {
			_, err := on.Call(ctx, "com.example.mix.echo", []any{"from " + name}, nil, nil)
			return err
		})
	}
}

// sessionsOn returns the number of realm1 sessions router r holds.
func sessionsOn(r *RouterNode) int {
	if rl, ok := r.Node.Router.Realm("realm1"); ok {
		return rl.SessionCount()
	}
	return 0
}

// TestEverythingUnderProxyDeath: the mix of clients runs through two proxies and one
// proxy stops for good halfway: its clients' connections end and they reconnect through
// the other; the routers end the sessions the dead proxy forwarded. Afterwards the
// routers agree as after link cuts (no session of the dead proxy is left).
func TestEverythingUnderProxyDeath(t *testing.T) {
	if testing.Short() {
		t.Skip("stress test")
	}
	tc := startCluster(t, clusterOpts{routers: 3, proxies: 2, spread: spread3})
	m := startMix(t, tc.url(0, false), tc.url(1, false))
	m.routers = func() []*RouterNode { return tc.routers }
	time.Sleep(300 * time.Millisecond)
	stopQuietly(tc.proxies[0].Stop)
	time.Sleep(700 * time.Millisecond)
	if m.end("proxy's death") == len(m.workers) {
		t.Fatal("no client reconnected: the proxy did not stop")
	}
	m.agree(t)
}
