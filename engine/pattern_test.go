package engine

import (
	"testing"

	"github.com/switchyard-wamp/switchyard/codec"
	"github.com/switchyard-wamp/switchyard/engine/match"
)

func withMatch(m codec.Message, policy string) *codec.Message {
	m.Details.Has, m.Details.Match = codec.KeyMatch, []byte(policy)
	return &m
}

func TestPatternSubscriptions(t *testing.T) {
	rl := NewRouter(nil).AddRealm("realm1")
	pub, _ := join(t, rl, codec.JSON)
	exact, ep := join(t, rl, codec.JSON)
	prefix, pp := join(t, rl, codec.MsgPack)
	wild, wp := join(t, rl, codec.CBOR)
	exact.Receive(&codec.Message{Type: codec.SUBSCRIBE, Request: 1, URI: []byte("com.myapp.topic.emergency")})
	prefix.Receive(withMatch(codec.Message{Type: codec.SUBSCRIBE, Request: 1, URI: []byte("com.myapp.topic.emerg")}, "prefix"))
	wild.Receive(withMatch(codec.Message{Type: codec.SUBSCRIBE, Request: 1, URI: []byte("com.myapp..emergency")}, "wildcard"))
	esub, psub, wsub := ep.one(t, codec.SUBSCRIBED), pp.one(t, codec.SUBSCRIBED), wp.one(t, codec.SUBSCRIBED)
	if esub.Subscription == psub.Subscription || psub.Subscription == wsub.Subscription {
		t.Fatal("pattern subscriptions share an id with another policy")
	}

	pub.Receive(&codec.Message{Type: codec.PUBLISH, Request: 2, URI: []byte("com.myapp.topic.emergency")})
	if e := ep.one(t, codec.EVENT); e.Details.Has&codec.KeyTopic != 0 {
		t.Fatalf("exact match must not carry details.topic: %+v", e.Details)
	}
	for _, p := range []*memPeer{pp, wp} {
		e := p.one(t, codec.EVENT)
		if string(e.Details.Topic) != "com.myapp.topic.emergency" {
			t.Fatalf("pattern EVENT without the concrete topic: %+v", e.Details)
		}
	}
	// Prefix is a string prefix (spec: com.myapp.topic.emerg matches ...emergency-low);
	// wildcard needs the same number of components.
	pub.Receive(&codec.Message{Type: codec.PUBLISH, Request: 3, URI: []byte("com.myapp.topic.emergency-low")})
	pp.one(t, codec.EVENT)
	pub.Receive(&codec.Message{Type: codec.PUBLISH, Request: 4, URI: []byte("com.myapp.other.emergency")})
	wp.one(t, codec.EVENT)
	pub.Receive(&codec.Message{Type: codec.PUBLISH, Request: 5, URI: []byte("com.myapp.a.b.emergency")})
	for _, p := range []*memPeer{ep, pp, wp} {
		if ms := p.take(t); len(ms) != 0 {
			t.Fatalf("unexpected events %+v", ms)
		}
	}
	prefix.Leave()
	wild.Receive(&codec.Message{Type: codec.UNSUBSCRIBE, Request: 9, Subscription: wsub.Subscription})
	wp.one(t, codec.UNSUBSCRIBED)
	if rl.broker.patterns.Len() != 0 || len(rl.broker.byPattern) != 0 {
		t.Fatalf("pattern subscriptions left: %d", rl.broker.patterns.Len())
	}
}

func TestPatternRegistrationsPrecedence(t *testing.T) {
	rl := NewRouter(nil).AddRealm("realm1")
	caller, cp := join(t, rl, codec.JSON)
	type callee struct {
		s *Session
		p *memPeer
	}
	reg := func(uri, policy string) callee {
		s, p := join(t, rl, codec.JSON)
		m := &codec.Message{Type: codec.REGISTER, Request: 1, URI: []byte(uri)}
		if policy != "" {
			m = withMatch(*m, policy)
		}
		s.Receive(m)
		p.one(t, codec.REGISTERED)
		return callee{s, p}
	}
	exact := reg("com.myapp.myobject1.myprocedure1", "")
	short := reg("com.myapp", "prefix")
	long := reg("com.myapp.myobject1", "prefix")
	wild := reg("com.myapp..myprocedure1", "wildcard")
	wild2 := reg("com...myprocedure1", "wildcard")

	expect := func(uri string, want callee, pattern bool) {
		t.Helper()
		caller.Receive(&codec.Message{Type: codec.CALL, Request: 7, URI: []byte(uri)})
		inv := want.p.one(t, codec.INVOCATION)
		if pattern != (inv.Details.Has&codec.KeyProcedure != 0) || (pattern && string(inv.Details.Procedure) != uri) {
			t.Fatalf("%s: details %+v", uri, inv.Details)
		}
		want.s.Receive(&codec.Message{Type: codec.YIELD, Request: inv.Request})
		cp.one(t, codec.RESULT)
	}
	expect("com.myapp.myobject1.myprocedure1", exact, false) // exact beats every pattern
	expect("com.myapp.myobject1.other", long, true)          // longest prefix wins
	expect("com.myapp.myobject2.myprocedure1", short, true)  // any prefix beats a wildcard
	exact.s.Leave()
	short.s.Leave()
	long.s.Leave()
	expect("com.myapp.myobject2.myprocedure1", wild, true) // more literal components first
	expect("com.other.x.myprocedure1", wild2, true)

	dup, dp := join(t, rl, codec.JSON)
	dup.Receive(withMatch(codec.Message{Type: codec.REGISTER, Request: 3, URI: []byte("com.myapp..myprocedure1")}, "wildcard"))
	if e := dp.one(t, codec.ERROR); string(e.URI) != ErrProcedureAlreadyExists {
		t.Fatalf("%+v", e)
	}
	// The same string under another policy is another registration.
	dup.Receive(withMatch(codec.Message{Type: codec.REGISTER, Request: 4, URI: []byte("com.myapp..myprocedure1")}, "prefix"))
	dp.one(t, codec.REGISTERED)
}

func TestDisclosure(t *testing.T) {
	rl := NewRouter(nil).AddRealm("realm1")
	pub, _ := join(t, rl, codec.JSON)
	sub, sp := join(t, rl, codec.CBOR)
	sub.Receive(&codec.Message{Type: codec.SUBSCRIBE, Request: 1, URI: []byte("t")})
	sub.Receive(&codec.Message{Type: codec.REGISTER, Request: 2, URI: []byte("p")})
	sp.take(t)
	m := codec.Message{Type: codec.PUBLISH, Request: 3, URI: []byte("t")}
	pub.Receive(&m)
	if e := sp.one(t, codec.EVENT); e.Details.Has != 0 {
		t.Fatalf("publisher disclosed without disclose_me: %+v", e.Details)
	}
	m.Details.Has, m.Details.DiscloseMe = codec.KeyDiscloseMe, true
	pub.Receive(&m)
	e := sp.one(t, codec.EVENT)
	if e.Details.Publisher != pub.ID() || string(e.Details.PublisherAuthID) != "a" || string(e.Details.PublisherAuthRole) != "anonymous" {
		t.Fatalf("EVENT details %+v", e.Details)
	}
	c := codec.Message{Type: codec.CALL, Request: 4, URI: []byte("p")}
	c.Details.Has, c.Details.DiscloseMe = codec.KeyDiscloseMe, true
	pub.Receive(&c)
	inv := sp.one(t, codec.INVOCATION)
	if inv.Details.Caller != pub.ID() || string(inv.Details.CallerAuthID) != "a" || string(inv.Details.CallerAuthRole) != "anonymous" {
		t.Fatalf("INVOCATION details %+v", inv.Details)
	}
}

func TestEventRetention(t *testing.T) {
	rl := NewRouter(nil).AddRealm("realm1")
	pub, _ := join(t, rl, codec.JSON)
	publish := func(topic string, v any, retain bool) {
		m := codec.Message{Type: codec.PUBLISH, Request: 1, URI: []byte(topic), Args: raw(t, codec.JSON, []any{v})}
		if retain {
			m.Details.Has, m.Details.Retain = codec.KeyRetain, true
		}
		pub.Receive(&m)
	}
	publish("com.room.temp", 20.5, true)
	publish("com.room.temp", 21.5, true)
	publish("com.room.temp", 99.0, false) // not retained: the retained one stays 21.5
	publish("com.room.light", "on", true)

	s, p := join(t, rl, codec.CBOR)
	sub := codec.Message{Type: codec.SUBSCRIBE, Request: 2, URI: []byte("com.room.temp")}
	sub.Details.Has, sub.Details.GetRetained = codec.KeyGetRetained, true
	s.Receive(&sub)
	ms := p.take(t)
	if len(ms) != 2 || ms[0].Type != codec.SUBSCRIBED || ms[1].Type != codec.EVENT {
		t.Fatalf("want SUBSCRIBED then the retained EVENT, got %+v", ms)
	}
	if !ms[1].Details.Retained || value(t, codec.CBOR, ms[1].Args).([]any)[0] != 21.5 || ms[1].Subscription != ms[0].Subscription {
		t.Fatalf("retained EVENT %+v", ms[1])
	}
	// Without get_retained nothing is replayed; a prefix pattern gets every match.
	s.Receive(&codec.Message{Type: codec.SUBSCRIBE, Request: 3, URI: []byte("com.room.light")})
	p.one(t, codec.SUBSCRIBED)
	pat := withMatch(codec.Message{Type: codec.SUBSCRIBE, Request: 4, URI: []byte("com.room.")}, "prefix")
	pat.Details.Has |= codec.KeyGetRetained
	pat.Details.GetRetained = true
	s.Receive(pat)
	ms = p.take(t)
	topics := map[string]bool{}
	for _, m := range ms[1:] {
		topics[string(m.Details.Topic)] = m.Details.Retained
	}
	if len(ms) != 3 || !topics["com.room.temp"] || !topics["com.room.light"] {
		t.Fatalf("pattern replay %+v", ms)
	}
	if !patternMatches("a..c", match.Wildcard, "a.b.c") || patternMatches("a..c", match.Wildcard, "a.b.b.c") {
		t.Fatal("patternMatches wildcard")
	}
}

func TestBlackWhiteListing(t *testing.T) {
	rl := NewRouter(nil).AddRealm("realm1")
	pub, _ := join(t, rl, codec.JSON)
	type rcv struct {
		s *Session
		p *memPeer
	}
	var rs []rcv
	for i, a := range []AuthInfo{{AuthID: "alice", AuthRole: "admin"}, {AuthID: "bob", AuthRole: "user"}, {AuthID: "carol", AuthRole: "user"}} {
		p := &memPeer{ser: serializers[i]}
		s := rl.Join(p, a)
		s.Receive(&codec.Message{Type: codec.SUBSCRIBE, Request: 1, URI: []byte("t")})
		p.take(t)
		rs = append(rs, rcv{s, p})
	}
	got := func(opts map[string]any) string {
		t.Helper()
		m := codec.Message{Type: codec.PUBLISH, Request: 2, URI: []byte("t")}
		// Encode the options as a client would and decode them with the codec.
		b, err := codec.AppendValue(nil, codec.JSON, []any{16, 2, opts, "t"})
		if err != nil {
			t.Fatal(err)
		}
		if err := codec.For(codec.JSON).Decode(b, &m); err != nil {
			t.Fatal(err)
		}
		pub.Receive(&m)
		out := ""
		for _, r := range rs {
			if len(r.p.take(t)) > 0 {
				out += r.s.auth.AuthID[:1]
			}
		}
		return out
	}
	for _, tc := range []struct {
		opts map[string]any
		want string
	}{
		{map[string]any{}, "abc"},
		{map[string]any{"exclude": []any{rs[1].s.ID()}}, "ac"},
		{map[string]any{"eligible": []any{rs[0].s.ID(), rs[2].s.ID()}}, "ac"},
		{map[string]any{"exclude_authrole": []any{"user"}}, "a"},
		{map[string]any{"eligible_authrole": []any{"user"}, "exclude_authid": []any{"carol"}}, "b"},
		{map[string]any{"eligible_authid": []any{"alice", "carol"}, "eligible": []any{rs[2].s.ID()}}, "c"},
	} {
		if g := got(tc.opts); g != tc.want {
			t.Errorf("%v: delivered to %q, want %q", tc.opts, g, tc.want)
		}
	}
}
