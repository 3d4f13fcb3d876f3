package span

import (
	"slices"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/codec"
	"github.com/switchyard-wamp/switchyard/engine"
)

// metaCall calls a meta procedure and returns the RESULT's first argument, or fails.
func (cl *client) metaResult(proc string, args []any, kwargs map[string]any) any {
	cl.c.t.Helper()
	m := codec.Message{Type: codec.CALL, URI: []byte(proc)}
	if args != nil {
		m.Args = raw(cl.c.t, cl.p.ser, args)
	}
	if kwargs != nil {
		m.Kwargs = raw(cl.c.t, cl.p.ser, kwargs)
	}
	cl.send(m)
	r := cl.one(codec.RESULT)
	if r.Args == nil {
		return nil
	}
	return firstArg(cl.c.t, cl.p.ser, r)
}

// metaError calls a meta procedure that must fail with uri.
func (cl *client) metaError(proc string, args []any, uri string) {
	cl.c.t.Helper()
	m := codec.Message{Type: codec.CALL, URI: []byte(proc), Args: raw(cl.c.t, cl.p.ser, args)}
	cl.send(m)
	if e := cl.one(codec.ERROR); string(e.URI) != uri {
		cl.c.t.Fatalf("%s: %s, want %s", proc, e.URI, uri)
	}
}

func idsOf(v any) []uint64 {
	l, _ := v.([]any)
	var out []uint64
	for _, x := range l {
		out = append(out, x.(uint64))
	}
	slices.Sort(out)
	return out
}

func sortedIDs(cls ...*client) []uint64 {
	var out []uint64
	for _, c := range cls {
		out = append(out, c.s.ID())
	}
	slices.Sort(out)
	return out
}

// The session meta API answers for the whole realm: count and list (with authrole
// filters), get, and kill of sessions on other routers.
func TestSessionMetaRealmWide(t *testing.T) {
	c := newCluster(t, "a", "b", "c")
	meta := c.join("a", codec.JSON, "m", "admin")
	x := c.join("b", codec.MsgPack, "x", "user")
	y := c.join("c", codec.CBOR, "y", "user")
	z := c.join("c", codec.JSON, "z", "bot")
	c.lb.settle(t)
	if n := meta.metaResult("wamp.session.count", nil, nil); n != uint64(4) {
		t.Fatalf("count: %v, want 4", n)
	}
	if n := meta.metaResult("wamp.session.count", []any{[]any{"user"}}, nil); n != uint64(2) {
		t.Fatalf("count of users: %v, want 2", n)
	}
	if got := idsOf(meta.metaResult("wamp.session.list", nil, nil)); !slices.Equal(got, sortedIDs(meta, x, y, z)) {
		t.Fatalf("list: %v", got)
	}
	if got := idsOf(meta.metaResult("wamp.session.list", []any{[]any{"bot", "admin"}}, nil)); !slices.Equal(got, sortedIDs(meta, z)) {
		t.Fatalf("list of bots and admins: %v", got)
	}
	d, _ := meta.metaResult("wamp.session.get", []any{y.s.ID()}, nil).(map[string]any)
	if d["session"] != y.s.ID() || d["authid"] != "y" || d["authrole"] != "user" {
		t.Fatalf("get of a session on c: %v", d)
	}
	meta.metaError("wamp.session.get", []any{uint64(12345)}, engine.ErrNoSuchSession)

	// kill of a session on b: it gets GOODBYE with the reason, and is gone realm-wide.
	meta.send(codec.Message{Type: codec.CALL, URI: []byte("wamp.session.kill"), Args: raw(t, codec.JSON, []any{x.s.ID()}),
		Kwargs: raw(t, codec.JSON, map[string]any{"reason": "com.example.kicked", "message": "bye"})})
	if r := meta.one(codec.RESULT); r.Args != nil {
		t.Fatalf("kill result: %+v", r)
	}
	if g := x.one(codec.GOODBYE); string(g.URI) != "com.example.kicked" {
		t.Fatalf("killed session got %+v", g)
	}
	meta.metaError("wamp.session.kill", []any{x.s.ID()}, engine.ErrNoSuchSession)
	meta.metaError("wamp.session.kill", []any{meta.s.ID()}, engine.ErrNoSuchSession)
	// kill_by_authrole reaches c's users; kill_all the rest, never the caller.
	w := c.join("b", codec.JSON, "w", "user")
	c.lb.settle(t)
	if n := meta.metaResult("wamp.session.kill_by_authrole", []any{"user"}, nil); n != uint64(2) {
		t.Fatalf("kill_by_authrole: %v, want 2", n)
	}
	y.one(codec.GOODBYE)
	w.one(codec.GOODBYE)
	if n := meta.metaResult("wamp.session.kill_by_authid", []any{"z"}, nil); n != uint64(1) {
		t.Fatalf("kill_by_authid: %v, want 1", n)
	}
	z.one(codec.GOODBYE)
	v := c.join("c", codec.JSON, "v", "user")
	c.lb.settle(t)
	if n := meta.metaResult("wamp.session.kill_all", nil, nil); n != uint64(1) {
		t.Fatalf("kill_all: %v, want 1", n)
	}
	v.one(codec.GOODBYE)
	if n := meta.metaResult("wamp.session.count", nil, nil); n != uint64(1) {
		t.Fatalf("count after the kills: %v, want 1", n)
	}
}

// The subscription meta API sees the subscriptions of every router: a router with no
// local subscriber finds a topic subscribed elsewhere (list, lookup, match, get,
// list_subscribers, count_subscribers), and remove_subscriber reaches another router.
func TestSubscriptionMetaRealmWide(t *testing.T) {
	c := newCluster(t, "a", "b", "c")
	meta := c.join("a", codec.JSON, "m", "admin")
	s1 := c.join("b", codec.MsgPack, "s1", "user")
	s2 := c.join("c", codec.CBOR, "s2", "user")
	s3 := c.join("c", codec.JSON, "s3", "user")
	exact := s1.subscribe("com.topic", "")
	if s2.subscribe("com.topic", "") != exact {
		t.Fatal("subscription ids differ between routers")
	}
	prefix := s3.subscribe("com.", "prefix")
	c.lb.settle(t)
	lists, _ := meta.metaResult("wamp.subscription.list", nil, nil).(map[string]any)
	if got := idsOf(lists["exact"]); !slices.Equal(got, []uint64{exact}) {
		t.Fatalf("list exact: %v", lists)
	}
	if got := idsOf(lists["prefix"]); !slices.Equal(got, []uint64{prefix}) {
		t.Fatalf("list prefix: %v", lists)
	}
	if id := meta.metaResult("wamp.subscription.lookup", []any{"com.topic"}, nil); id != exact {
		t.Fatalf("lookup: %v, want %d", id, exact)
	}
	if id := meta.metaResult("wamp.subscription.lookup", []any{"com.", map[string]any{"match": "prefix"}}, nil); id != prefix {
		t.Fatalf("lookup prefix: %v, want %d", id, prefix)
	}
	if id := meta.metaResult("wamp.subscription.lookup", []any{"com.none"}, nil); id != nil {
		t.Fatalf("lookup of nothing: %v", id)
	}
	want := []uint64{exact, prefix}
	slices.Sort(want)
	if got := idsOf(meta.metaResult("wamp.subscription.match", []any{"com.topic"}, nil)); !slices.Equal(got, want) {
		t.Fatalf("match: %v, want %v", got, want)
	}
	if got := meta.metaResult("wamp.subscription.match", []any{"org.x"}, nil); got != nil {
		t.Fatalf("match of nothing: %v", got)
	}
	d, _ := meta.metaResult("wamp.subscription.get", []any{exact}, nil).(map[string]any)
	if d["uri"] != "com.topic" || d["match"] != "exact" || d["id"] != exact {
		t.Fatalf("get: %v", d)
	}
	if got := idsOf(meta.metaResult("wamp.subscription.list_subscribers", []any{exact}, nil)); !slices.Equal(got, sortedIDs(s1, s2)) {
		t.Fatalf("list_subscribers: %v", got)
	}
	if n := meta.metaResult("wamp.subscription.count_subscribers", []any{exact}, nil); n != uint64(2) {
		t.Fatalf("count_subscribers: %v", n)
	}
	meta.metaError("wamp.subscription.get", []any{uint64(999)}, engine.ErrNoSuchSubscription)
	meta.metaError("wamp.subscription.count_subscribers", []any{uint64(999)}, engine.ErrNoSuchSubscription)

	// remove_subscriber of the subscriber on b: b stops getting the topic.
	if r := meta.metaResult("wamp.subscription.remove_subscriber", []any{exact, s1.s.ID()}, nil); r != nil {
		t.Fatalf("remove_subscriber: %v", r)
	}
	meta.metaError("wamp.subscription.remove_subscriber", []any{exact, s1.s.ID()}, engine.ErrNoSuchSubscription)
	meta.metaError("wamp.subscription.remove_subscriber", []any{exact, uint64(4242)}, engine.ErrNoSuchSession)
	if got := idsOf(meta.metaResult("wamp.subscription.list_subscribers", []any{exact}, nil)); !slices.Equal(got, sortedIDs(s2)) {
		t.Fatalf("list_subscribers after remove: %v", got)
	}
	meta.send(codec.Message{Type: codec.PUBLISH, URI: []byte("com.topic")})
	s2.one(codec.EVENT)
	s1.none()
}

// remove_callee of a callee on another router: the registration goes realm-wide.
func TestRemoveCalleeAcrossRouters(t *testing.T) {
	c := newCluster(t, "a", "b", "c")
	callee := c.join("b", codec.MsgPack, "callee", "svc")
	reg := callee.register("com.p", "", "")
	c.lb.settle(t)
	meta := c.join("a", codec.JSON, "m", "admin")
	if r := meta.metaResult("wamp.registration.remove_callee", []any{reg.Registration, callee.s.ID()}, nil); r != nil {
		t.Fatalf("remove_callee: %v", r)
	}
	c.lb.settle(t)
	for _, r := range []string{"a", "b", "c"} {
		caller := c.join(r, codec.JSON, "caller", "app")
		caller.call("com.p", nil, nil)
		if e := caller.one(codec.ERROR); string(e.URI) != engine.ErrNoSuchProcedure {
			t.Fatalf("call on %s after remove_callee: %+v", r, e)
		}
	}
	meta.metaError("wamp.registration.remove_callee", []any{reg.Registration, callee.s.ID()}, engine.ErrNoSuchRegistration)
	meta.metaError("wamp.registration.remove_callee", []any{reg.Registration, uint64(4242)}, engine.ErrNoSuchSession)
	// The procedure is free again.
	other := c.join("c", codec.JSON, "o", "svc")
	if m := other.register("com.p", "", ""); m.Type != codec.REGISTERED {
		t.Fatalf("register after remove_callee: %+v", m)
	}
}

// A dead router can answer nothing: a realm-wide meta call answers with the live
// routers' parts at once, and a router that stays silent is left out after the timeout.
func TestMetaQueryRouterDownAndTimeout(t *testing.T) {
	c := newCluster(t, "a", "b", "c")
	meta := c.join("a", codec.JSON, "m", "admin")
	c.join("b", codec.JSON, "x", "user")
	c.join("c", codec.JSON, "y", "user")
	c.lb.settle(t)
	// c stops answering (its link is up, but it never delivers): the call ends after the
	// timeout with a and b counted.
	c.lb.mu.Lock()
	c.lb.down["c"] = true // messages to c are refused from now on: counted as no reply
	c.lb.mu.Unlock()
	if n := meta.metaResult("wamp.session.count", nil, nil); n != uint64(2) {
		t.Fatalf("count without c: %v, want 2", n)
	}
	c.lb.mu.Lock()
	c.lb.down["c"] = false
	c.lb.mute = "b" // b hangs: it gets the query and never answers
	c.lb.mu.Unlock()
	c.spans["a"].SetQueryTimeout(time.Minute)
	meta.send(codec.Message{Type: codec.CALL, URI: []byte("wamp.session.count")})
	meta.none()
	// b is declared dead: the call ends at once with the others' parts.
	c.kill("b")
	if r := meta.one(codec.RESULT); firstArg(t, codec.JSON, r) != uint64(2) {
		t.Fatalf("count after b died: %+v", r)
	}
	// c hangs and stays in the membership: the timeout ends the call.
	c.spans["a"].SetQueryTimeout(100 * time.Millisecond)
	c.lb.mu.Lock()
	c.lb.mute = "c"
	c.lb.mu.Unlock()
	start := time.Now()
	if n := meta.metaResult("wamp.session.count", nil, nil); n != uint64(1) {
		t.Fatalf("count with c silent: %v, want 1", n)
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Fatalf("answered after %v, before the timeout", d)
	}
}
