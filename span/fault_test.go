package span

import (
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/codec"
	"github.com/switchyard-wamp/switchyard/engine"
)

// When a router dies, the others publish to their subscribers the meta events its
// sessions' leaving would have published: on_unsubscribe (and on_delete after its last
// subscriber of a subscription), then on_leave.
func TestRouterDeathPublishesSessionMeta(t *testing.T) {
	c := newCluster(t, "a", "b", "c")
	watch := c.join("a", codec.JSON, "w", "admin")
	for _, topic := range []string{"wamp.session.on_leave", "wamp.subscription.on_unsubscribe", "wamp.subscription.on_delete"} {
		watch.subscribe(topic, "")
	}
	x := c.join("b", codec.MsgPack, "x", "user")
	y := c.join("b", codec.CBOR, "y", "bot")
	sub := x.subscribe("com.topic", "")
	y.subscribe("com.topic", "")
	ysub2 := y.subscribe("com.other.", "prefix")
	c.join("c", codec.JSON, "z", "user").subscribe("com.topic", "") // c keeps com.topic
	c.lb.settle(t)
	watch.take()
	c.kill("b")
	ms := watch.waitFor(7)
	type ev struct {
		topic uint64
		args  []any
	}
	subOf := map[uint64]string{}
	for _, topic := range []string{"wamp.session.on_leave", "wamp.subscription.on_unsubscribe", "wamp.subscription.on_delete"} {
		subOf[engine.SubscriptionID("realm1", "exact", topic)] = topic
	}
	var got []string
	for _, m := range ms {
		if m.Type != codec.EVENT {
			t.Fatalf("watcher got %s", describe(ms))
		}
		args, _ := value(t, codec.JSON, m.Args).([]any)
		got = append(got, subOf[m.Subscription])
		switch subOf[m.Subscription] {
		case "wamp.session.on_leave":
			if args[0] != x.s.ID() && args[0] != y.s.ID() {
				t.Fatalf("on_leave of %v", args)
			}
			if args[0] == y.s.ID() && (args[1] != "y" || args[2] != "bot") {
				t.Fatalf("on_leave details %v", args)
			}
		default:
			if args[1] != sub && args[1] != ysub2 {
				t.Fatalf("%s of %v", subOf[m.Subscription], args)
			}
		}
	}
	count := func(topic string) int {
		n := 0
		for _, g := range got {
			if g == topic {
				n++
			}
		}
		return n
	}
	if count("wamp.session.on_leave") != 2 || count("wamp.subscription.on_unsubscribe") != 3 ||
		count("wamp.subscription.on_delete") != 2 {
		t.Fatalf("events after b died: %v", got)
	}
	if n := c.spans["a"].RemoteSessions("realm1"); n != 1 {
		t.Fatalf("a still knows %d remote sessions, want 1 (z on c)", n)
	}
	watch.none()
}

// Sessions that joined before a router came up are announced to it (resync), so it
// too publishes on_leave for them when their router dies.
func TestSessionsResyncedToNewRouter(t *testing.T) {
	c := newCluster(t, "a", "b")
	x := c.join("b", codec.JSON, "x", "user")
	c.join("b", codec.JSON, "gone", "user").s.Leave()
	c.lb.settle(t)
	if n := c.spans["a"].RemoteSessions("realm1"); n != 1 {
		t.Fatalf("a knows %d sessions of b, want 1", n)
	}
	// A third router joins later.
	c.addRouter("c")
	sp := c.spans["c"]
	c.lb.settle(t)
	if n := sp.RemoteSessions("realm1"); n != 1 {
		t.Fatalf("c knows %d remote sessions, want 1", n)
	}
	watch := c.join("c", codec.JSON, "w", "admin")
	watch.subscribe("wamp.session.on_leave", "")
	c.kill("b")
	if ev := watch.one(codec.EVENT); firstArg(t, codec.JSON, ev) != x.s.ID() {
		t.Fatalf("on_leave on the new router: %+v", ev)
	}
}

// A caller's router dies while its call runs on a callee here: the callee gets
// INTERRUPT at once, and its late YIELD is dropped without a send to the dead router.
func TestDeadCallersRouterInterruptsCallee(t *testing.T) {
	c := newCluster(t, "a", "b", "c")
	callee := c.join("a", codec.JSON, "callee", "svc")
	callee.register("com.slow", "", "")
	c.lb.settle(t)
	caller := c.join("b", codec.CBOR, "caller", "app")
	caller.call("com.slow", nil, nil)
	inv := callee.one(codec.INVOCATION)
	other := c.join("c", codec.JSON, "caller2", "app")
	other.call("com.slow", nil, nil)
	inv2 := callee.one(codec.INVOCATION)
	c.kill("b")
	in := callee.one(codec.INTERRUPT)
	if in.Request != inv.Request || string(in.Details.Mode) != "killnowait" {
		t.Fatalf("INTERRUPT %+v for invocation %d", in, inv.Request)
	}
	failed := c.lb.failed.Load()
	callee.yield(inv.Request, []any{"late"}, false)
	c.lb.settle(t)
	if d := c.lb.failed.Load() - failed; d != 0 {
		t.Fatalf("the late YIELD was sent towards the dead router (%d refused sends)", d)
	}
	// The call from c is untouched.
	callee.yield(inv2.Request, []any{"ok"}, false)
	if r := other.one(codec.RESULT); firstArg(t, codec.JSON, r) != "ok" {
		t.Fatalf("call from c: %+v", r)
	}
	if n := inflightOf(c.spans["a"]); n != 0 {
		t.Fatalf("%d invocations still tracked", n)
	}
}

// A REGISTER that needs both the dynamic authorizer (a callee on another router) and
// the realm-wide decision: the two decisions run in turn, the session's later messages
// wait behind them in order, and a denial stops the REGISTER before any claim.
func TestRegisterWithAuthorizerAcrossRouters(t *testing.T) {
	c := newCluster(t, "a", "b", "c")
	backend, err := engine.NewRolePermissions([]engine.Rule{
		{URI: "authz.decide", Allow: engine.Permission{Register: true}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range c.names {
		c.realms[n].SetRoles(map[string]*engine.RolePermissions{"backend": backend})
		c.realms[n].SetAuthorizer(&engine.Authorizer{Procedure: "authz.decide", Timeout: 2 * time.Second})
	}
	authz := c.join("c", codec.JSON, "authz", "backend")
	if m := authz.register("authz.decide", "", ""); m.Type != codec.REGISTERED {
		t.Fatalf("authorizer REGISTER: %+v", m)
	}
	c.lb.settle(t)
	// The authorizer allows everything but the registration of com.denied.
	decide := func(n int) {
		t.Helper()
		for i := 0; i < n; i++ {
			inv := authz.one(codec.INVOCATION)
			args, _ := value(t, codec.JSON, inv.Args).([]any)
			authz.yield(inv.Request, []any{args[1] != "com.denied"}, false)
		}
	}
	user := c.join("a", codec.MsgPack, "u", "user")
	rival := c.join("b", codec.JSON, "r", "backend2") // no static role either
	user.send(codec.Message{Type: codec.REGISTER, URI: []byte("com.p")})
	user.send(codec.Message{Type: codec.CALL, URI: []byte("com.p")}) // waits behind the REGISTER
	decide(1)                                                        // register com.p
	user.one(codec.REGISTERED)
	decide(1) // call com.p
	inv := user.one(codec.INVOCATION)
	user.yield(inv.Request, []any{"me"}, false)
	if r := user.one(codec.RESULT); r.Request != 2 {
		t.Fatalf("RESULT %+v", r)
	}
	// A rival on another router: allowed by the authorizer, refused realm-wide.
	rival.send(codec.Message{Type: codec.REGISTER, URI: []byte("com.p")})
	decide(1)
	if e := rival.one(codec.ERROR); string(e.URI) != engine.ErrProcedureAlreadyExists {
		t.Fatalf("rival REGISTER: %+v", e)
	}
	// Denied by the authorizer: no claim reaches any router.
	claims := 0
	for _, n := range c.names {
		for _, m := range c.names {
			claims += c.lb.count(n, m, KindClaim)
		}
	}
	user.send(codec.Message{Type: codec.REGISTER, URI: []byte("com.denied")})
	decide(1)
	if e := user.one(codec.ERROR); string(e.URI) != engine.ErrNotAuthorized {
		t.Fatalf("denied REGISTER: %+v", e)
	}
	after := 0
	for _, n := range c.names {
		for _, m := range c.names {
			after += c.lb.count(n, m, KindClaim)
		}
	}
	if after != claims {
		t.Fatalf("a denied REGISTER sent %d claims", after-claims)
	}
	// The registration is realm-wide: a caller on b reaches it.
	caller := c.join("b", codec.JSON, "caller", "user")
	caller.call("com.p", nil, nil)
	decide(1)
	inv = user.one(codec.INVOCATION)
	user.yield(inv.Request, []any{"again"}, false)
	if r := caller.one(codec.RESULT); firstArg(t, codec.JSON, r) != "again" {
		t.Fatalf("call from b: %+v", r)
	}
}

// TestOneSidedDownIsResynced: a router that thought another was down (and dropped its
// interest) sees it live again while the other never noticed anything: it asks for a
// resync, so the other's subscribers get events again.
func TestOneSidedDownIsResynced(t *testing.T) {
	c := newCluster(t, "a", "b")
	sub := c.join("b", codec.JSON, "s", "user")
	sub.subscribe("com.onesided", "")
	c.lb.settle(t)
	// Only a saw b go and come back.
	c.spans["a"].RouterDown("b")
	c.spans["a"].SetRouters([]string{"a", "b"})
	c.lb.settle(t)
	pub := c.join("a", codec.JSON, "p", "user")
	pub.send(codec.Message{Type: codec.PUBLISH, URI: []byte("com.onesided"), Args: raw(t, codec.JSON, []any{1})})
	if evs := sub.waitFor(1); len(evs) != 1 || evs[0].Type != codec.EVENT {
		t.Fatalf("subscriber on b after a's one-sided down/up: %s", describe(evs))
	}
}

// A reset (RouterReset after a failed link, the router still there) on the callee's
// router, after the caller's router had already reset and sent the INVOCATION: the
// callee's router drops the invocation's answer, so it must end the call itself with
// ERROR wamp.error.canceled, or the caller would wait for good.
func TestLateResetEndsCallsOfTheCallersRouter(t *testing.T) {
	c := newCluster(t, "a", "b")
	callee := c.join("b", codec.JSON, "callee", "svc")
	callee.register("com.reset", "", "")
	c.lb.settle(t)
	// a resets first (and is resynced): b still tracks nothing.
	c.spans["a"].RouterReset("b")
	c.spans["a"].SetRouters([]string{"a", "b"})
	c.lb.settle(t)
	caller := c.join("a", codec.JSON, "caller", "app")
	req := caller.call("com.reset", nil, nil)
	inv := callee.one(codec.INVOCATION)
	// b resets late, with the invocation in flight.
	c.spans["b"].RouterReset("a")
	c.spans["b"].SetRouters([]string{"a", "b"})
	callee.yield(inv.Request, []any{"late"}, false)
	e := caller.one(codec.ERROR)
	if e.Request != req || string(e.URI) != engine.ErrCanceled {
		t.Fatalf("caller got %s (request %d, uri %s), want ERROR %s for request %d",
			e.Type, e.Request, e.URI, engine.ErrCanceled, req)
	}
}

// When a router dies, the others publish its sessions' testaments to their own
// subscribers, as the router would have when the sessions left: each subscriber of the
// realm gets each testament once, with the dead session as its publisher (disclosed
// when the testament asked for it), before that session's on_leave; a flushed testament
// is not published, and a router that is reset (not dead) publishes nothing.
func TestRouterDeathPublishesTestaments(t *testing.T) {
	c := newCluster(t, "a", "b", "c")
	onA := c.join("a", codec.JSON, "w", "admin")
	onC := c.join("c", codec.CBOR, "w2", "admin")
	for _, w := range []*client{onA, onC} {
		w.subscribe("com.will", "")
		w.subscribe("wamp.session.on_leave", "")
	}
	x := c.join("b", codec.MsgPack, "x", "user")
	x.metaResult("wamp.session.add_testament", []any{"com.will", []any{"x gone"}},
		map[string]any{"publish_options": map[string]any{"disclose_me": true}})
	x.metaResult("wamp.session.add_testament", []any{"com.will", []any{"flushed"}}, map[string]any{"scope": "detached"})
	x.metaResult("wamp.session.flush_testaments", nil, map[string]any{"scope": "detached"})
	c.lb.settle(t)
	onA.take()
	onC.take()
	c.spans["a"].RouterReset("b") // not a death: nothing to publish
	c.spans["c"].RouterReset("b")
	onA.none()
	onC.none()
	c.spans["a"].SetRouters(c.names)
	c.spans["c"].SetRouters(c.names)
	c.lb.settle(t)
	c.kill("b")
	willID := engine.SubscriptionID("realm1", "exact", "com.will")
	for _, w := range []*client{onA, onC} {
		ms := w.waitFor(2)
		if len(ms) != 2 || ms[0].Type != codec.EVENT || ms[0].Subscription != willID || ms[1].Type != codec.EVENT {
			t.Fatalf("subscriber on %s got %s, want the testament then on_leave", w.router, describe(ms))
		}
		if args, _ := value(t, w.p.ser, ms[0].Args).([]any); len(args) != 1 || args[0] != "x gone" {
			t.Fatalf("testament args %v", args)
		}
		if ms[0].Details.Publisher != x.s.ID() {
			t.Fatalf("testament publisher %d, want %d (disclose_me)", ms[0].Details.Publisher, x.s.ID())
		}
	}
	if ms := onA.waitFor(0); len(ms) != 0 {
		t.Fatalf("more after the testament: %s", describe(ms))
	}
}

// A dying router's links often fail one by one: the others reset it (one failed link
// while others are up) just before they see it dead. Its sessions must still get their
// on_leave then, and after a reset whose resync completes, only the sessions the
// resync did not announce again are forgotten (silently).
func TestDeathRightAfterAResetPublishesMeta(t *testing.T) {
	c := newCluster(t, "a", "b", "c")
	watch := c.join("a", codec.JSON, "w", "admin")
	watch.subscribe("wamp.session.on_leave", "")
	x := c.join("b", codec.MsgPack, "x", "user")
	c.lb.settle(t)
	watch.take()
	c.spans["a"].RouterReset("b")
	c.spans["a"].SetRouters(c.names) // resync with b: x is announced again
	c.lb.settle(t)
	if n := c.spans["a"].RemoteSessions("realm1"); n != 1 {
		t.Fatalf("after a reset and its resync, a knows %d sessions of the others, want 1 (x)", n)
	}
	c.spans["a"].RouterReset("b") // and now b dies before answering the resync
	c.kill("b")
	ms := watch.waitFor(1)
	if len(ms) != 1 || ms[0].Type != codec.EVENT {
		t.Fatalf("watcher got %s, want on_leave of x", describe(ms))
	}
	if args, _ := value(t, codec.JSON, ms[0].Args).([]any); len(args) == 0 || args[0] != x.s.ID() {
		t.Fatalf("on_leave of %v, want %d", args, x.s.ID())
	}
}

// The registration meta events of a dying router's callees, as its sessions' on_leave:
// published once when it dies right after a reset (before the resync ends), and once
// when it dies after a completed resync.
func TestDeathRightAfterAResetPublishesRegistrationMeta(t *testing.T) {
	c := newCluster(t, "a", "b", "c")
	watch := c.join("a", codec.JSON, "w", "admin")
	watch.subscribe("wamp.registration.on_unregister", "")
	watch.subscribe("wamp.registration.on_delete", "")
	for _, resynced := range []bool{true, false} {
		x := c.join("b", codec.MsgPack, "x", "user")
		if m := x.register("com.dies", "", ""); m.Type != codec.REGISTERED {
			t.Fatalf("register: %+v", m)
		}
		c.lb.settle(t)
		watch.take()
		c.spans["a"].RouterReset("b")
		if resynced {
			c.spans["a"].SetRouters(c.names)
			c.lb.settle(t)
		}
		watch.none()
		c.kill("b")
		ms := watch.waitFor(2)
		if len(ms) != 2 || ms[0].Type != codec.EVENT || ms[1].Type != codec.EVENT {
			t.Fatalf("resynced %v: watcher got %s, want on_unregister and on_delete of x", resynced, describe(ms))
		}
		for _, m := range ms {
			if args, _ := value(t, codec.JSON, m.Args).([]any); len(args) != 2 || args[0] != x.s.ID() {
				t.Fatalf("resynced %v: meta event %v, want x's", resynced, args)
			}
		}
		// b comes back for the next round.
		c.start("b")
		for _, n := range c.names {
			c.spans[n].SetRouters(c.names)
		}
		c.lb.settle(t)
	}
}

// A router that restarts before the others see its old links die: its new incarnation's
// resync request carries a new epoch, and the others drop what the old one told them
// (with the meta events of its sessions' leaving) instead of keeping a dead callee that
// holds its procedure realm-wide and sessions that are gone.
func TestFastRestartDropsThePreviousIncarnation(t *testing.T) {
	c := newCluster(t, "a", "b", "c")
	watch := c.join("a", codec.JSON, "w", "admin")
	watch.subscribe("wamp.session.on_leave", "")
	x := c.join("b", codec.MsgPack, "x", "user")
	if m := x.register("com.restart", "", ""); m.Type != codec.REGISTERED {
		t.Fatalf("register: %+v", m)
	}
	c.lb.settle(t)
	watch.take()
	// b restarts: a new Span under the same name, on the same transport; a and c are
	// not told that the old one died.
	c.start("b").SetRouters(c.names)
	c.lb.settle(t)
	ms := watch.waitFor(1)
	if len(ms) != 1 || ms[0].Type != codec.EVENT {
		t.Fatalf("watcher got %s, want on_leave of the old incarnation's session", describe(ms))
	}
	if args, _ := value(t, codec.JSON, ms[0].Args).([]any); len(args) == 0 || args[0] != x.s.ID() {
		t.Fatalf("on_leave of %v, want %d", args, x.s.ID())
	}
	for _, n := range []string{"a", "c"} {
		if k := c.spans[n].RemoteSessions("realm1"); n == "c" && k != 1 || n == "a" && k != 0 {
			t.Fatalf("router %s knows %d sessions of the others after b's restart", n, k)
		}
	}
	y := c.join("a", codec.CBOR, "y", "user")
	if m := y.register("com.restart", "", ""); m.Type != codec.REGISTERED {
		t.Fatalf("the old incarnation's procedure is still taken: %+v", m)
	}
}

// A session that leaves while the announcements of its router are being lost (the
// reset's case) is not announced again by the resync, and its end forgets it: the
// realm does not keep counting a session that is gone.
func TestResyncForgetsASessionThatLeftDuringTheReset(t *testing.T) {
	c := newCluster(t, "a", "b", "c")
	x := c.join("b", codec.MsgPack, "x", "user")
	c.lb.settle(t)
	c.spans["a"].RouterReset("b")
	c.lb.mu.Lock()
	c.lb.refuseTo = "a" // x's leave does not reach a
	c.lb.mu.Unlock()
	x.s.Leave()
	c.lb.settle(t)
	c.lb.mu.Lock()
	c.lb.refuseTo = ""
	c.lb.mu.Unlock()
	if n := c.spans["a"].RemoteSessions("realm1"); n != 1 {
		t.Fatalf("before the resync, a knows %d sessions of the others, want x (stale)", n)
	}
	c.spans["a"].SetRouters(c.names) // resync with b: x is not among its sessions
	c.lb.settle(t)
	if n := c.spans["a"].RemoteSessions("realm1"); n != 0 {
		t.Fatalf("after the resync, a knows %d sessions of the others, want 0", n)
	}
}
