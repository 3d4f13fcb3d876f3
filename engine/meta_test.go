package engine

import (
	"fmt"
	"testing"

	"github.com/switchyard-wamp/switchyard/codec"
)

func metaCall(t *testing.T, s *Session, p *memPeer, proc string, args []any, kwargs map[string]any) codec.Message {
	t.Helper()
	m := codec.Message{Type: codec.CALL, Request: 77, URI: []byte(proc)}
	if args != nil {
		m.Args = raw(t, s.ser, args)
	}
	if kwargs != nil {
		m.Kwargs = raw(t, s.ser, kwargs)
	}
	s.Receive(&m)
	for _, r := range p.take(t) {
		if r.Request == 77 && (r.Type == codec.RESULT || r.Type == codec.ERROR) {
			return r
		}
	}
	t.Fatalf("no answer to %s", proc)
	return codec.Message{}
}

func TestSessionMetaAPI(t *testing.T) {
	rl := NewRouter(nil).AddRealm("realm1")
	watcher, wp := join(t, rl, codec.JSON)
	watcher.Receive(&codec.Message{Type: codec.SUBSCRIBE, Request: 1, URI: []byte("wamp.session.on_join")})
	watcher.Receive(&codec.Message{Type: codec.SUBSCRIBE, Request: 2, URI: []byte("wamp.session.on_leave")})
	wp.take(t)

	pm := &memPeer{ser: codec.MsgPack}
	other := rl.Join(pm, AuthInfo{AuthID: "bob", AuthRole: "user", AuthMethod: "ticket", AuthProvider: "static"})
	ev := wp.one(t, codec.EVENT)
	d := value(t, codec.JSON, ev.Args).([]any)[0].(map[string]any)
	if d["session"] != other.ID() || d["authid"] != "bob" || d["authrole"] != "user" || d["authmethod"] != "ticket" {
		t.Fatalf("on_join %v", d)
	}

	res := metaCall(t, watcher, wp, "wamp.session.count", nil, nil)
	if value(t, codec.JSON, res.Args).([]any)[0] != uint64(2) {
		t.Fatalf("count %+v", res)
	}
	res = metaCall(t, watcher, wp, "wamp.session.count", []any{[]any{"user"}}, nil)
	if value(t, codec.JSON, res.Args).([]any)[0] != uint64(1) {
		t.Fatalf("count by role %+v", res)
	}
	res = metaCall(t, watcher, wp, "wamp.session.list", []any{[]any{"user"}}, nil)
	if ids := value(t, codec.JSON, res.Args).([]any)[0].([]any); len(ids) != 1 || ids[0] != other.ID() {
		t.Fatalf("list %v", ids)
	}
	res = metaCall(t, watcher, wp, "wamp.session.get", []any{other.ID()}, nil)
	if g := value(t, codec.JSON, res.Args).([]any)[0].(map[string]any); g["authid"] != "bob" {
		t.Fatalf("get %v", g)
	}
	if e := metaCall(t, watcher, wp, "wamp.session.get", []any{uint64(12345)}, nil); e.Type != codec.ERROR || string(e.URI) != ErrNoSuchSession {
		t.Fatalf("get unknown %+v", e)
	}
	if e := metaCall(t, watcher, wp, "wamp.session.kill", []any{watcher.ID()}, nil); string(e.URI) != ErrNoSuchSession {
		t.Fatalf("kill self %+v", e)
	}
	if e := metaCall(t, watcher, wp, "wamp.session.kill", []any{other.ID()}, map[string]any{"reason": "bad uri"}); string(e.URI) != ErrInvalidURI {
		t.Fatalf("kill with a bad reason %+v", e)
	}
	kill := codec.Message{Type: codec.CALL, Request: 78, URI: []byte("wamp.session.kill_by_authid"),
		Args: raw(t, codec.JSON, []any{"bob"}), Kwargs: raw(t, codec.JSON, map[string]any{"reason": "com.example.bye", "message": "go"})}
	watcher.Receive(&kill)
	if g := pm.one(t, codec.GOODBYE); string(g.URI) != "com.example.bye" || string(g.Details.Message) != "go" {
		t.Fatalf("killed session got %+v", g)
	}
	ms := wp.take(t) // on_leave, then the RESULT
	if len(ms) != 2 || ms[0].Type != codec.EVENT || ms[1].Type != codec.RESULT ||
		value(t, codec.JSON, ms[1].Args).([]any)[0] != uint64(1) {
		t.Fatalf("kill_by_authid answered %+v", ms)
	}
	if leave := value(t, codec.JSON, ms[0].Args).([]any); leave[0] != other.ID() || leave[1] != "bob" || leave[2] != "user" {
		t.Fatalf("on_leave %v", leave)
	}
	if rl.SessionCount() != 1 {
		t.Fatalf("%d sessions after kill", rl.SessionCount())
	}
	if e := metaCall(t, watcher, wp, "wamp.session.nonexistent", nil, nil); string(e.URI) != ErrNoSuchProcedure {
		t.Fatalf("unknown meta procedure %+v", e)
	}
}

func TestTestaments(t *testing.T) {
	rl := NewRouter(nil).AddRealm("realm1")
	watcher, wp := join(t, rl, codec.CBOR)
	watcher.Receive(&codec.Message{Type: codec.SUBSCRIBE, Request: 1, URI: []byte("com.app.gone")})
	wp.take(t)
	for _, tc := range []struct {
		name  string
		flush string // scope flushed before leaving; "" none
		end   func(*Session)
		want  []string
	}{
		{"goodbye", "", func(s *Session) { s.Receive(&codec.Message{Type: codec.GOODBYE, URI: []byte(CloseRealm)}) }, []string{"detached", "destroyed"}},
		{"lost-transport", "", func(s *Session) { s.Leave() }, []string{"detached", "destroyed"}},
		{"flushed", "destroyed", func(s *Session) { s.Leave() }, []string{"detached"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, p := join(t, rl, codec.JSON)
			// destroyed first, detached second: the router must still send detached first.
			for _, scope := range []string{"destroyed", "detached"} {
				r := metaCall(t, s, p, "wamp.session.add_testament",
					[]any{"com.app.gone", []any{scope}, map[string]any{"who": "app1"}}, map[string]any{"scope": scope})
				if r.Type != codec.RESULT {
					t.Fatalf("add_testament: %+v", r)
				}
			}
			if tc.flush != "" {
				metaCall(t, s, p, "wamp.session.flush_testaments", nil, map[string]any{"scope": tc.flush})
			}
			tc.end(s)
			var got []string
			for _, m := range wp.take(t) {
				a := value(t, codec.CBOR, m.Args).([]any)
				kw := value(t, codec.CBOR, m.Kwargs).(map[string]any)
				if kw["who"] != "app1" {
					t.Fatalf("testament kwargs %v", kw)
				}
				got = append(got, a[0].(string))
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("testaments %v, want %v", got, tc.want)
			}
		})
	}
}

func TestSubscriptionAndRegistrationMeta(t *testing.T) {
	rl := NewRouter(nil).AddRealm("realm1")
	w, wp := join(t, rl, codec.JSON)
	for i, topic := range []string{"wamp.subscription.on_create", "wamp.subscription.on_subscribe",
		"wamp.subscription.on_unsubscribe", "wamp.subscription.on_delete", "wamp.registration.on_create",
		"wamp.registration.on_register", "wamp.registration.on_unregister", "wamp.registration.on_delete"} {
		w.Receive(&codec.Message{Type: codec.SUBSCRIBE, Request: uint64(i + 1), URI: []byte(topic)})
	}
	wp.take(t)
	// The meta subscriptions themselves produced on_create/on_subscribe for the later ones;
	// start counting from here.
	s, sp := join(t, rl, codec.MsgPack)
	s.Receive(withMatch(codec.Message{Type: codec.SUBSCRIBE, Request: 1, URI: []byte("com.a.")}, "prefix"))
	sid := sp.one(t, codec.SUBSCRIBED).Subscription
	s.Receive(&codec.Message{Type: codec.REGISTER, Request: 2, URI: []byte("com.a.p")})
	rid := sp.one(t, codec.REGISTERED).Registration
	events := func() []string {
		var out []string
		for _, m := range wp.take(t) {
			if m.Type != codec.EVENT {
				continue
			}
			a := value(t, codec.JSON, m.Args).([]any)
			if a[0] != s.ID() {
				t.Fatalf("meta event about session %v, want %d", a[0], s.ID())
			}
			out = append(out, fmt.Sprint(len(a)))
		}
		return out
	}
	if ev := events(); len(ev) != 4 {
		t.Fatalf("want on_create+on_subscribe+on_create+on_register, got %v", ev)
	}

	res := metaCall(t, w, wp, "wamp.subscription.lookup", []any{"com.a.", map[string]any{"match": "prefix"}}, nil)
	if value(t, codec.JSON, res.Args).([]any)[0] != sid {
		t.Fatalf("lookup %+v", res)
	}
	res = metaCall(t, w, wp, "wamp.subscription.lookup", []any{"com.a."}, nil)
	if value(t, codec.JSON, res.Args).([]any)[0] != nil {
		t.Fatalf("exact lookup of a prefix subscription must be null: %+v", res)
	}
	res = metaCall(t, w, wp, "wamp.subscription.match", []any{"com.a.b"}, nil)
	if ids := value(t, codec.JSON, res.Args).([]any)[0].([]any); len(ids) != 1 || ids[0] != sid {
		t.Fatalf("match %v", ids)
	}
	res = metaCall(t, w, wp, "wamp.subscription.get", []any{sid}, nil)
	if d := value(t, codec.JSON, res.Args).([]any)[0].(map[string]any); d["uri"] != "com.a." || d["match"] != "prefix" {
		t.Fatalf("get %v", d)
	}
	res = metaCall(t, w, wp, "wamp.subscription.list_subscribers", []any{sid}, nil)
	if ids := value(t, codec.JSON, res.Args).([]any)[0].([]any); len(ids) != 1 || ids[0] != s.ID() {
		t.Fatalf("list_subscribers %v", ids)
	}
	if e := metaCall(t, w, wp, "wamp.subscription.count_subscribers", []any{uint64(999999)}, nil); string(e.URI) != ErrNoSuchSubscription {
		t.Fatalf("%+v", e)
	}
	res = metaCall(t, w, wp, "wamp.registration.match", []any{"com.a.p"}, nil)
	if value(t, codec.JSON, res.Args).([]any)[0] != rid {
		t.Fatalf("registration.match %+v", res)
	}
	res = metaCall(t, w, wp, "wamp.registration.get", []any{rid}, nil)
	if d := value(t, codec.JSON, res.Args).([]any)[0].(map[string]any); d["uri"] != "com.a.p" || d["invoke"] != "single" || d["match"] != "exact" {
		t.Fatalf("registration.get %v", d)
	}
	res = metaCall(t, w, wp, "wamp.registration.count_callees", []any{rid}, nil)
	if value(t, codec.JSON, res.Args).([]any)[0] != uint64(1) {
		t.Fatalf("count_callees %+v", res)
	}
	res = metaCall(t, w, wp, "wamp.registration.list", nil, nil)
	if l := value(t, codec.JSON, res.Args).([]any)[0].(map[string]any); len(l["exact"].([]any)) != 1 {
		t.Fatalf("registration.list %v", l)
	}
	s.Leave()
	if ev := events(); len(ev) != 4 {
		t.Fatalf("want on_unsubscribe+on_delete+on_unregister+on_delete, got %v", ev)
	}
}

// TestAnnouncedFeatures pins WELCOME's feature list to what docs/features.md documents:
// a feature is announced exactly when it works, so adding one must be deliberate.
func TestAnnouncedFeatures(t *testing.T) {
	want := map[string][]string{
		"broker": {"event_history", "event_retention", "pattern_based_subscription", "payload_passthru_mode",
			"publisher_exclusion", "publisher_identification", "session_meta_api",
			"subscriber_blackwhite_listing", "subscription_meta_api", "subscription_revocation"},
		"dealer": {"call_canceling", "call_timeout", "caller_identification", "pattern_based_registration",
			"payload_passthru_mode", "progressive_call_invocations", "progressive_call_results",
			"registration_meta_api", "registration_revocation", "session_meta_api",
			"shared_registration", "testament_meta_api"},
	}
	roles := RouterRoles()
	if len(roles) != len(want) {
		t.Fatalf("roles %v", roles)
	}
	for role, names := range want {
		features := roles[role].(map[string]any)["features"].(map[string]any)
		if len(features) != len(names) {
			t.Errorf("%s announces %d features, want %d: %v", role, len(features), len(names), features)
		}
		for _, n := range names {
			if features[n] != true {
				t.Errorf("%s does not announce %s", role, n)
			}
		}
	}
}

func TestRevocation(t *testing.T) {
	rl := NewRouter(nil).AddRealm("realm1")
	admin, ap := join(t, rl, codec.JSON)
	sp := &memPeer{ser: codec.MsgPack}
	s := rl.JoinWith(sp, AuthInfo{AuthRole: "anonymous"}, Features{SubscriptionRevocation: true})
	s.Receive(&codec.Message{Type: codec.SUBSCRIBE, Request: 1, URI: []byte("t")})
	subID := sp.one(t, codec.SUBSCRIBED).Subscription
	old, op := join(t, rl, codec.JSON) // announced no revocation support
	old.Receive(&codec.Message{Type: codec.REGISTER, Request: 1, URI: []byte("p")})
	regID := op.one(t, codec.REGISTERED).Registration

	if r := metaCall(t, admin, ap, "wamp.subscription.remove_subscriber", []any{subID, s.ID()}, map[string]any{"reason": "bye"}); r.Type != codec.RESULT {
		t.Fatalf("%+v", r)
	}
	u := sp.one(t, codec.UNSUBSCRIBED)
	if u.Request != 0 {
		t.Fatalf("revocation UNSUBSCRIBED %+v", u)
	}
	if d := value(t, codec.MsgPack, u.Dict).(map[string]any); d["subscription"] != subID || d["reason"] != "bye" {
		t.Fatalf("revocation details %v", d)
	}
	if r := metaCall(t, admin, ap, "wamp.registration.remove_callee", []any{regID, old.ID()}, nil); r.Type != codec.RESULT {
		t.Fatalf("%+v", r)
	}
	if ms := op.take(t); len(ms) != 0 {
		t.Fatalf("a callee without registration_revocation was told: %+v", ms)
	}
	admin.Receive(&codec.Message{Type: codec.CALL, Request: 3, URI: []byte("p")})
	if e := ap.one(t, codec.ERROR); string(e.URI) != ErrNoSuchProcedure {
		t.Fatalf("registration survived its revoked callee: %+v", e)
	}
	if e := metaCall(t, admin, ap, "wamp.subscription.remove_subscriber", []any{subID, s.ID()}, nil); string(e.URI) != ErrNoSuchSubscription {
		t.Fatalf("%+v", e)
	}
}
