package engine

import (
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/codec"
)

// wait returns the messages p has received once there are at least n (fails after 2s).
func (p *memPeer) wait(t *testing.T, n int) []codec.Message {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	var got []codec.Message
	for {
		got = append(got, p.take(t)...)
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("want %d messages, got %d: %+v", n, len(got), got)
		}
		time.Sleep(time.Millisecond)
	}
}

// authzRealm is a realm whose role "backend" may register the authorizer procedure and
// subscribe everywhere; every other role is up to the dynamic authorizer.
func authzRealm(t *testing.T, timeout time.Duration) (*Realm, *Session, *memPeer) {
	t.Helper()
	rl := NewRouter(nil).AddRealm("realm1")
	backend, err := NewRolePermissions([]Rule{
		{URI: "authz.decide", Allow: Permission{Register: true}},
		{URI: "", Match: "prefix", Allow: Permission{Subscribe: true}},
	})
	if err != nil {
		t.Fatal(err)
	}
	rl.SetRoles(map[string]*RolePermissions{"backend": backend})
	rl.SetAuthorizer(&Authorizer{Procedure: "authz.decide", CacheSize: 100, Timeout: timeout})
	bp := &memPeer{ser: codec.JSON}
	b := rl.Join(bp, AuthInfo{AuthID: "svc", AuthRole: "backend"})
	b.Receive(&codec.Message{Type: codec.REGISTER, Request: 1, URI: []byte("authz.decide")})
	bp.one(t, codec.REGISTERED)
	return rl, b, bp
}

// answer reads one INVOCATION of the authorizer, checks its arguments and yields result.
func answer(t *testing.T, b *Session, bp *memPeer, uri, action string, result any) {
	t.Helper()
	inv := bp.wait(t, 1)
	if len(inv) != 1 || inv[0].Type != codec.INVOCATION {
		t.Fatalf("want one INVOCATION, got %+v", inv)
	}
	args, _ := value(t, codec.JSON, inv[0].Args).([]any)
	details, _ := args[0].(map[string]any)
	if len(args) != 4 || args[1] != uri || args[2] != action || details["authid"] != "joe" || details["authrole"] != "user" {
		t.Fatalf("authorizer called with %v", args)
	}
	b.Receive(&codec.Message{Type: codec.YIELD, Request: inv[0].Request, Args: raw(t, codec.JSON, []any{result})})
}

func TestDynamicAuthorizer(t *testing.T) {
	rl, b, bp := authzRealm(t, 2*time.Second)
	up := &memPeer{ser: codec.MsgPack}
	u := rl.Join(up, AuthInfo{AuthID: "joe", AuthRole: "user"})

	// Two messages while the first waits for its decision: they are answered in order.
	u.Receive(&codec.Message{Type: codec.SUBSCRIBE, Request: 1, URI: []byte("com.a")})
	pub := codec.Message{Type: codec.PUBLISH, Request: 2, URI: []byte("com.b"), Args: raw(t, codec.MsgPack, []any{1})}
	pub.Details.Has, pub.Details.Acknowledge = codec.KeyAcknowledge, true
	u.Receive(&pub)
	if ms := up.take(t); len(ms) != 0 {
		t.Fatalf("answered before the authorizer: %+v", ms)
	}
	answer(t, b, bp, "com.a", "subscribe", true)
	answer(t, b, bp, "com.b", "publish", map[string]any{"allow": false})
	ms := up.wait(t, 2)
	if ms[0].Type != codec.SUBSCRIBED || ms[0].Request != 1 || ms[1].Type != codec.ERROR ||
		ms[1].Request != 2 || string(ms[1].URI) != ErrNotAuthorized {
		t.Fatalf("got %+v", ms)
	}

	// Cached: no second call.
	u.Receive(&codec.Message{Type: codec.SUBSCRIBE, Request: 3, URI: []byte("com.a")})
	up.one(t, codec.SUBSCRIBED)
	if ms := bp.take(t); len(ms) != 0 {
		t.Fatalf("cached decision asked again: %+v", ms)
	}

	// disclose: the subscriber sees the publisher although it did not ask.
	b.Receive(&codec.Message{Type: codec.SUBSCRIBE, Request: 2, URI: []byte("com.c")})
	bp.one(t, codec.SUBSCRIBED)
	u.Receive(&codec.Message{Type: codec.PUBLISH, Request: 4, URI: []byte("com.c"), Args: raw(t, codec.MsgPack, []any{1})})
	answer(t, b, bp, "com.c", "publish", map[string]any{"allow": true, "disclose": true})
	ev := bp.wait(t, 1)
	if ev[0].Type != codec.EVENT || ev[0].Details.Publisher != u.ID() || string(ev[0].Details.PublisherAuthID) != "joe" {
		t.Fatalf("event %+v", ev)
	}

	// "cache": false asks every time.
	for req := uint64(5); req < 7; req++ {
		u.Receive(&codec.Message{Type: codec.CALL, Request: req, URI: []byte("com.proc")})
		answer(t, b, bp, "com.proc", "call", map[string]any{"allow": true, "cache": false})
		if e := up.wait(t, 1); e[0].Type != codec.ERROR || string(e[0].URI) != ErrNoSuchProcedure {
			t.Fatalf("allowed call to nowhere: %+v", e)
		}
	}
}

func TestDynamicAuthorizerFailures(t *testing.T) {
	rl, b, bp := authzRealm(t, 50*time.Millisecond)
	up := &memPeer{ser: codec.JSON}
	u := rl.Join(up, AuthInfo{AuthID: "joe", AuthRole: "user"})
	// No answer within the timeout: denied.
	u.Receive(&codec.Message{Type: codec.REGISTER, Request: 1, URI: []byte("com.p")})
	if ms := up.wait(t, 1); ms[0].Type != codec.ERROR || string(ms[0].URI) != ErrNotAuthorized {
		t.Fatalf("%+v", ms)
	}
	bp.take(t)
	// The authorizer answers with an error, then with nonsense: denied, not cached.
	for i, res := range []any{nil, "yes"} {
		u.Receive(&codec.Message{Type: codec.REGISTER, Request: uint64(2 + i), URI: []byte("com.p")})
		inv := bp.wait(t, 1)
		if res == nil {
			b.Receive(&codec.Message{Type: codec.ERROR, ErrType: codec.INVOCATION, Request: inv[0].Request, URI: []byte("app.error")})
		} else {
			b.Receive(&codec.Message{Type: codec.YIELD, Request: inv[0].Request, Args: raw(t, codec.JSON, []any{res})})
		}
		if ms := up.wait(t, 1); ms[0].Type != codec.ERROR || string(ms[0].URI) != ErrNotAuthorized {
			t.Fatalf("%+v", ms)
		}
	}
	// The authorizer leaves: the session's actions are denied, nothing hangs.
	b.Leave()
	u.Receive(&codec.Message{Type: codec.REGISTER, Request: 9, URI: []byte("com.q")})
	if ms := up.wait(t, 1); ms[0].Type != codec.ERROR || string(ms[0].URI) != ErrNotAuthorized {
		t.Fatalf("%+v", ms)
	}
}

func TestForcedDisclosure(t *testing.T) {
	rl := NewRouter(nil).AddRealm("realm1")
	perms, err := NewRolePermissions([]Rule{{URI: "", Match: "prefix",
		Allow: Permission{Publish: true, Subscribe: true, DisclosePublisher: true}}})
	if err != nil {
		t.Fatal(err)
	}
	rl.SetRoles(map[string]*RolePermissions{"user": perms})
	sp := &memPeer{ser: codec.JSON}
	s := rl.Join(sp, AuthInfo{AuthID: "sub", AuthRole: "user"})
	p := rl.Join(&memPeer{ser: codec.JSON}, AuthInfo{AuthID: "pub", AuthRole: "user"})
	s.Receive(&codec.Message{Type: codec.SUBSCRIBE, Request: 1, URI: []byte("t")})
	sp.one(t, codec.SUBSCRIBED)
	p.Receive(&codec.Message{Type: codec.PUBLISH, Request: 1, URI: []byte("t")})
	ev := sp.one(t, codec.EVENT)
	if ev.Details.Publisher != p.ID() || string(ev.Details.PublisherAuthID) != "pub" {
		t.Fatalf("publisher not disclosed: %+v", ev.Details)
	}
}

// BenchmarkAuthorizeDynamic is the dynamic authorizer's cached path.
func BenchmarkAuthorizeDynamic(b *testing.B) {
	rl := NewRouter(nil).AddRealm("realm1")
	rl.SetRoles(map[string]*RolePermissions{})
	rl.SetAuthorizer(&Authorizer{Procedure: "authz.decide", CacheSize: 10})
	s := rl.Join(&sinkPeer{ser: codec.JSON}, AuthInfo{AuthRole: "user"})
	s.authz.cache[2] = map[string]authzDecision{"com.app.orders.list": {allow: true}}
	m := codec.Message{Type: codec.CALL, Request: 1, URI: []byte("com.app.orders.list")}
	sc := getScratch()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if !s.authorized(codec.CALL, &m, sc) {
			b.Fatal("denied")
		}
	}
}
