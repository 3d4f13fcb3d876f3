package span

import (
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/codec"
	"github.com/switchyard-wamp/switchyard/engine"
)

// Every eligible subscriber on every router gets each event exactly once, in publish
// order, with the publication id of PUBLISHED and the subscription id its own router
// gave (the same on every router); a publication crosses to each interested router once,
// not once per subscriber.
func TestEventsReachEverySubscriberOnce(t *testing.T) {
	c := newCluster(t, "a", "b", "c")
	type sub struct {
		cl      *client
		topic   string
		match   string
		id      uint64
		pattern bool
	}
	subs := []*sub{
		{cl: c.join("a", codec.JSON, "u1", "user"), topic: "com.t"},
		{cl: c.join("b", codec.MsgPack, "u2", "user"), topic: "com.t"},
		{cl: c.join("b", codec.JSON, "u3", "user"), topic: "com.t"},
		{cl: c.join("c", codec.CBOR, "u4", "user"), topic: "com.t"},
		{cl: c.join("c", codec.JSON, "u5", "user"), topic: "com.", match: "prefix", pattern: true},
		{cl: c.join("a", codec.MsgPack, "u6", "user"), topic: "com.", match: "wildcard", pattern: true},
	}
	for _, s := range subs {
		s.id = s.cl.subscribe(s.topic, s.match)
	}
	if subs[0].id != subs[1].id || subs[1].id != subs[3].id {
		t.Fatalf("subscription ids differ across routers: %d %d %d", subs[0].id, subs[1].id, subs[3].id)
	}
	if want := engine.SubscriptionID("realm1", "exact", "com.t"); subs[0].id != want {
		t.Fatalf("subscription id %d, want %d", subs[0].id, want)
	}
	c.lb.settle(t)
	c.lb.resetCounts()
	pub := c.join("a", codec.CBOR, "p", "publisher")
	const n = 20
	var pubIDs []uint64
	for i := 0; i < n; i++ {
		m := codec.Message{Type: codec.PUBLISH, URI: []byte("com.t"), Args: raw(t, codec.CBOR, []any{i})}
		m.Details.Has, m.Details.Acknowledge = codec.KeyAcknowledge, true
		pub.send(m)
	}
	for _, m := range pub.waitFor(n) {
		if m.Type != codec.PUBLISHED {
			t.Fatalf("publisher got %s", m.Type)
		}
		pubIDs = append(pubIDs, m.Publication)
	}
	for _, s := range subs {
		evs := s.cl.waitFor(n)
		if len(evs) != n {
			t.Fatalf("subscriber %s/%s on %s: %d events, want %d", s.topic, s.match, s.cl.router, len(evs), n)
		}
		for i, ev := range evs {
			if ev.Type != codec.EVENT || ev.Subscription != s.id || ev.Publication != pubIDs[i] {
				t.Fatalf("subscriber on %s event %d: %+v (sub %d, pub %d)", s.cl.router, i, ev, s.id, pubIDs[i])
			}
			if got := firstArg(t, s.cl.p.ser, ev); got != uint64(i) {
				t.Fatalf("subscriber on %s: event %d carries %v: out of order", s.cl.router, i, got)
			}
			if s.pattern != (string(ev.Details.Topic) == "com.t") {
				t.Fatalf("subscriber %s on %s: details.topic %q", s.match, s.cl.router, ev.Details.Topic)
			}
		}
	}
	// The wildcard "com." (two components, the second empty) matches "com.t": a has
	// interest of its own only; b and c get each publication once.
	// A plain publication crosses as the EVENTs (forwardEvents), never as the PUBLISH.
	for _, to := range []string{"b", "c"} {
		if got, pubs := c.lb.count("a", to, KindEvents), c.lb.count("a", to, KindPublish); got != n || pubs != 0 {
			t.Fatalf("a -> %s: %d events and %d publish messages for %d publications", to, got, pubs, n)
		}
	}
}

// A PUBLISH goes only to routers with matching interest (exact, prefix, wildcard), and
// stops when the interest goes.
func TestPublishOnlyToInterestedRouters(t *testing.T) {
	c := newCluster(t, "a", "b", "c")
	pub := c.join("a", codec.JSON, "p", "r")
	sb := c.join("b", codec.JSON, "s", "r")
	sc := c.join("c", codec.JSON, "s", "r")
	exact := sb.subscribe("x.exact", "")
	sc.subscribe("x.pre", "prefix")
	sb.subscribe("x..w", "wildcard")
	c.lb.settle(t)
	cases := []struct {
		topic string
		b, c  int
	}{
		{"x.exact", 1, 0},
		{"x.prefixed.more", 0, 1},
		{"x.k.w", 1, 0},
		{"x.k.w.z", 0, 0},
		{"nobody", 0, 0},
	}
	for _, tc := range cases {
		c.lb.resetCounts()
		pub.send(codec.Message{Type: codec.PUBLISH, URI: []byte(tc.topic)})
		c.lb.settle(t)
		if gb, gc := c.lb.crossings("a", "b"), c.lb.crossings("a", "c"); gb != tc.b || gc != tc.c {
			t.Errorf("%s: crossed to b %d, c %d times; want %d, %d", tc.topic, gb, gc, tc.b, tc.c)
		}
	}
	sb.take()
	sc.take()
	sb.send(codec.Message{Type: codec.UNSUBSCRIBE, Subscription: exact})
	sb.one(codec.UNSUBSCRIBED)
	c.lb.resetCounts()
	pub.send(codec.Message{Type: codec.PUBLISH, URI: []byte("x.exact")})
	c.lb.settle(t)
	if got := c.lb.crossings("a", "b"); got != 0 {
		t.Fatalf("publish crossed to b after its last subscriber left: %d", got)
	}
}

// exclude/eligible by session id, authid and authrole, exclude_me and disclose_me work
// for subscribers on other routers.
func TestEligibilityAndDisclosureAcrossRouters(t *testing.T) {
	c := newCluster(t, "a", "b", "c")
	pub := c.join("a", codec.JSON, "pub", "pubrole")
	pub.subscribe("t", "")
	s1 := c.join("b", codec.MsgPack, "alice", "user")
	s2 := c.join("c", codec.CBOR, "bob", "user")
	s3 := c.join("c", codec.JSON, "carol", "admin")
	for _, s := range []*client{s1, s2, s3} {
		s.subscribe("t", "")
	}
	c.lb.settle(t)
	publish := func(set func(d *codec.Details)) {
		c.lb.resetCounts()
		m := codec.Message{Type: codec.PUBLISH, URI: []byte("t")}
		set(&m.Details)
		pub.send(m)
		c.lb.settle(t)
		// Lists make the receiving router filter its own subscribers: the PUBLISH
		// crosses. A plain publication crosses as its EVENTs.
		want := KindEvents
		if m.Details.Has&(codec.KeyExclude|codec.KeyEligible|codec.KeyEligibleAuthID|codec.KeyExcludeAuthRole) != 0 {
			want = KindPublish
		}
		for _, to := range []string{"b", "c"} {
			if n := c.lb.count("a", to, want); n != 1 || c.lb.crossings("a", to) != 1 {
				t.Fatalf("a -> %s: %d %s messages, %d crossings; want 1", to, n, want, c.lb.crossings("a", to))
			}
		}
	}
	got := func(cls ...*client) map[*client]bool {
		out := map[*client]bool{}
		for _, cl := range cls {
			ms := cl.take()
			if len(ms) > 1 {
				t.Fatalf("client on %s got %d events", cl.router, len(ms))
			}
			out[cl] = len(ms) == 1
		}
		return out
	}
	check := func(name string, want map[*client]bool) {
		t.Helper()
		g := got(pub, s1, s2, s3)
		for cl, w := range want {
			if g[cl] != w {
				t.Errorf("%s: %s/%s got=%v want=%v", name, cl.router, cl.s.Auth().AuthID, g[cl], w)
			}
		}
	}
	publish(func(d *codec.Details) {
		d.Has, d.Exclude = codec.KeyExclude, raw(t, codec.JSON, []any{s2.s.ID()})
	})
	check("exclude id", map[*client]bool{pub: false, s1: true, s2: false, s3: true})
	publish(func(d *codec.Details) {
		d.Has, d.EligibleAuthID = codec.KeyEligibleAuthID, raw(t, codec.JSON, []any{"alice", "carol"})
	})
	check("eligible authid", map[*client]bool{pub: false, s1: true, s2: false, s3: true})
	publish(func(d *codec.Details) {
		d.Has, d.ExcludeAuthRole = codec.KeyExcludeAuthRole, raw(t, codec.JSON, []any{"user"})
	})
	check("exclude authrole", map[*client]bool{pub: false, s1: false, s2: false, s3: true})
	publish(func(d *codec.Details) {
		d.Has, d.Eligible = codec.KeyEligible, raw(t, codec.JSON, []any{s1.s.ID(), pub.s.ID()})
		d.Has, d.ExcludeMe = d.Has|codec.KeyExcludeMe, false
	})
	check("eligible id, exclude_me false", map[*client]bool{pub: true, s1: true, s2: false, s3: false})
	publish(func(d *codec.Details) { d.Has, d.DiscloseMe = codec.KeyDiscloseMe, true })
	ev := s2.one(codec.EVENT)
	if ev.Details.Publisher != pub.s.ID() || string(ev.Details.PublisherAuthID) != "pub" ||
		string(ev.Details.PublisherAuthRole) != "pubrole" {
		t.Fatalf("disclosed publisher on another router: %+v", ev.Details)
	}
	s1.take()
	s3.take()
	publish(func(d *codec.Details) {})
	if ev := s1.one(codec.EVENT); ev.Details.Publisher != 0 {
		t.Fatalf("publisher disclosed without disclose_me: %+v", ev.Details)
	}
}

// Meta events published on one router reach subscribers on the others exactly once.
func TestMetaEventsReachEveryRouter(t *testing.T) {
	c := newCluster(t, "a", "b", "c")
	watchB := c.join("b", codec.JSON, "w", "r")
	watchC := c.join("c", codec.MsgPack, "w", "r")
	watchB.subscribe("wamp.session.on_join", "")
	watchC.send(codec.Message{Type: codec.SUBSCRIBE, URI: []byte("wamp.subscription."),
		Details: codec.Details{Has: codec.KeyMatch, Match: []byte("prefix")}})
	if ms := watchC.waitFor(3); ms[0].Type != codec.SUBSCRIBED { // and its own on_create, on_subscribe
		t.Fatalf("%s", describe(ms))
	}
	x := c.join("a", codec.JSON, "x", "r")
	ev := watchB.one(codec.EVENT)
	details, _ := firstArg(t, codec.JSON, ev).(map[string]any)
	if details["session"] != x.s.ID() {
		t.Fatalf("on_join for another session: %v", details)
	}
	x.subscribe("some.topic", "")
	evs := watchC.waitFor(2) // on_create, on_subscribe
	if len(evs) != 2 || string(evs[0].Details.Topic) != "wamp.subscription.on_create" ||
		string(evs[1].Details.Topic) != "wamp.subscription.on_subscribe" {
		t.Fatalf("subscription meta events on c: %s", describe(evs))
	}
	watchB.none()
}

// A retained event is kept on every router, interest or not.
func TestRetainedAcrossRouters(t *testing.T) {
	c := newCluster(t, "a", "b", "c")
	pub := c.join("a", codec.JSON, "p", "r")
	m := codec.Message{Type: codec.PUBLISH, URI: []byte("kept"), Args: raw(t, codec.JSON, []any{"v"})}
	m.Details.Has, m.Details.Retain = codec.KeyRetain, true
	pub.send(m)
	c.lb.settle(t)
	s := c.join("c", codec.CBOR, "s", "r")
	sm := codec.Message{Type: codec.SUBSCRIBE, URI: []byte("kept")}
	sm.Details.Has, sm.Details.GetRetained = codec.KeyGetRetained, true
	s.send(sm)
	ms := s.waitFor(2)
	if len(ms) != 2 || ms[1].Type != codec.EVENT || !ms[1].Details.Retained || firstArg(t, codec.CBOR, ms[1]) != "v" {
		t.Fatalf("retained event on another router: %s", describe(ms))
	}
}

// Event history is kept on every router: a subscriber on another router, subscribing
// after the events, gets them from wamp.subscription.get_events.
func TestEventHistoryAcrossRouters(t *testing.T) {
	c := newCluster(t, "a", "b", "c")
	for _, rl := range c.realms {
		if err := rl.SetStore(engine.StoreConfig{History: []engine.HistoryRule{{URI: "hist", Limit: 10}}}); err != nil {
			t.Fatal(err)
		}
	}
	pub := c.join("a", codec.JSON, "p", "r")
	for i := 0; i < 3; i++ {
		pub.send(codec.Message{Type: codec.PUBLISH, URI: []byte("hist"), Args: raw(t, codec.JSON, []any{i})})
	}
	c.lb.settle(t)
	s := c.join("c", codec.MsgPack, "s", "r")
	id := s.subscribe("hist", "")
	s.call("wamp.subscription.get_events", []any{id}, nil)
	res := s.one(codec.RESULT)
	if evs, _ := value(t, codec.MsgPack, res.Args).([]any); len(evs) != 3 {
		t.Fatalf("history on another router: %d events, want 3: %v", len(evs), evs)
	}
}

// TestSubscribedMeansReachable: SUBSCRIBED waits until every router knows of a new
// subscription, so a PUBLISH on another router right after SUBSCRIBED reaches the
// subscriber even when the interest announcement travels slowly.
func TestSubscribedMeansReachable(t *testing.T) {
	c := newCluster(t, "a", "b")
	c.lb.settle(t)
	c.lb.mu.Lock()
	c.lb.slowTo, c.lb.slowBy = "b", 100*time.Millisecond
	c.lb.mu.Unlock()
	sub := c.join("a", codec.JSON, "s", "user")
	pub := c.join("b", codec.JSON, "p", "user")
	// SUBSCRIBE and wait for SUBSCRIBED only (the helpers also wait for the transport
	// to settle, which would hide the race).
	sub.send(codec.Message{Type: codec.SUBSCRIBE, URI: []byte("com.slow")})
	sub.arrived(1)
	m := codec.Message{Type: codec.PUBLISH, URI: []byte("com.slow"), Args: raw(t, codec.JSON, []any{1})}
	pub.send(m)
	if evs := sub.waitFor(2); len(evs) != 2 || evs[0].Type != codec.SUBSCRIBED || evs[1].Type != codec.EVENT {
		t.Fatalf("subscriber got %s, want SUBSCRIBED then the EVENT", describe(evs))
	}
}

// TestNoEventBeforeSubscribed: a retained PUBLISH forwarded from another router reaches
// the subscriber's router while its SUBSCRIBE waits for the other routers (the
// forward and the barrier's answer come over the same slow link, in that order). As
// on one node, the subscriber gets SUBSCRIBED first and then the publication once, as
// the retained event; never an EVENT before SUBSCRIBED, which a client rejects.
func TestNoEventBeforeSubscribed(t *testing.T) {
	c := newCluster(t, "a", "b", "c")
	c.lb.mu.Lock()
	c.lb.slowPair, c.lb.slowBy = [2]string{"a", "c"}, 100*time.Millisecond
	c.lb.mu.Unlock()
	retainedThenSubscribe(t, c, c.join("a", codec.JSON, "p", "r"), "com.kept")
}

// retainedThenSubscribe publishes a retained event from pub (on router a) and, once pub
// has PUBLISHED (not waiting for the transport to settle, which would let a slow
// forward arrive first), subscribes on router c with get_retained: the subscriber must
// get SUBSCRIBED, then the event once, as the retained one, and nothing more.
func retainedThenSubscribe(t *testing.T, c *cluster, pub *client, topic string) {
	t.Helper()
	m := codec.Message{Type: codec.PUBLISH, URI: []byte(topic), Args: raw(t, codec.JSON, []any{"v"})}
	m.Details.Has, m.Details.Retain, m.Details.Acknowledge = codec.KeyRetain|codec.KeyAcknowledge, true, true
	pub.send(m)
	pub.arrived(1)
	s := c.join("c", codec.CBOR, "s", "r")
	sm := codec.Message{Type: codec.SUBSCRIBE, URI: []byte(topic)}
	sm.Details.Has, sm.Details.GetRetained = codec.KeyGetRetained, true
	s.send(sm)
	ms := s.waitFor(2)
	if len(ms) != 2 || ms[0].Type != codec.SUBSCRIBED || ms[1].Type != codec.EVENT || !ms[1].Details.Retained {
		t.Fatalf("subscriber got %s, want SUBSCRIBED then the retained EVENT", describe(ms))
	}
	if more := s.take(); len(more) != 0 {
		t.Fatalf("and then %s", describe(more))
	}
}

// TestNoStaleForwardAfterSubscribed: with two lanes between routers, a retained PUBLISH
// forwarded on a slow lane must still arrive before the subscribe barrier's answer (which
// goes on every lane), so the subscriber gets it once, as the retained event after
// SUBSCRIBED, as on one node, and not later as a live event.
func TestNoStaleForwardAfterSubscribed(t *testing.T) {
	c := newCluster(t, "a", "b", "c")
	var pub *client
	for pub == nil || pub.s.ID()%2 != 1 { // its forwards on lane 1, a barrier's key-0 answer on lane 0
		pub = c.join("a", codec.JSON, "p", "r")
	}
	c.lb.mu.Lock()
	c.lb.lanes, c.lb.slowLane = 2, 1
	c.lb.slowPair, c.lb.slowBy = [2]string{"a", "c"}, 100*time.Millisecond
	c.lb.mu.Unlock()
	retainedThenSubscribe(t, c, pub, "com.lanes")
}

// TestSubscribeBarrierTimeout: a router that never answers the subscribe barrier (its
// answer lost) holds SUBSCRIBED only until barrierTimeout, not for good.
func TestSubscribeBarrierTimeout(t *testing.T) {
	old := barrierTimeout
	barrierTimeout = 200 * time.Millisecond
	defer func() { barrierTimeout = old }()
	c := newCluster(t, "a", "b")
	c.lb.mu.Lock()
	c.lb.mute = "b"
	c.lb.mu.Unlock()
	s := c.join("a", codec.JSON, "s", "r")
	start := time.Now()
	s.send(codec.Message{Type: codec.SUBSCRIBE, URI: []byte("com.muted")})
	s.arrived(1)
	if ms := s.take(); len(ms) != 1 || ms[0].Type != codec.SUBSCRIBED {
		t.Fatalf("got %s, want SUBSCRIBED", describe(ms))
	}
	if took := time.Since(start); took < barrierTimeout {
		t.Fatalf("SUBSCRIBED after %v, before the timeout: the muted router answered?", took)
	}
}

// TestBarrierUnreachableInsideHeldBacklog: a SUBSCRIBE held behind a REGISTER decision
// runs when that decision comes, inside the engine's processing of the session's held
// messages. If the other router is then unreachable (still live, every send refused),
// the subscribe barrier has nothing to wait for; its end must not call back into the
// engine from inside AwaitInterest, or the session deadlocks on its own hold (and with
// it the link reader that feeds it: seen as a proxy losing its router under load).
func TestBarrierUnreachableInsideHeldBacklog(t *testing.T) {
	c := newCluster(t, "a", "b")
	c.lb.mu.Lock()
	c.lb.slowTo, c.lb.slowBy = "b", 200*time.Millisecond
	c.lb.mu.Unlock()
	s := c.join("a", codec.JSON, "s", "r")
	s.send(codec.Message{Type: codec.REGISTER, URI: []byte("com.held.proc")})
	s.send(codec.Message{Type: codec.SUBSCRIBE, URI: []byte("com.held.topic")})
	c.lb.mu.Lock()
	c.lb.refuseTo = "b" // b's answers still come; nothing more reaches b
	c.lb.mu.Unlock()
	s.arrived(2)
	ms := s.take()
	if len(ms) != 2 || ms[0].Type != codec.REGISTERED || ms[1].Type != codec.SUBSCRIBED {
		t.Fatalf("got %s, want REGISTERED then SUBSCRIBED", describe(ms))
	}
}
