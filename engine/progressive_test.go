package engine

import (
	"testing"

	"github.com/switchyard-wamp/switchyard/codec"
)

func TestProgressiveCallInvocations(t *testing.T) {
	rl := NewRouter(nil).AddRealm("realm1")
	both := Features{CallCanceling: true, ProgressiveCallInvocations: true}
	cp := &memPeer{ser: codec.JSON}
	caller := rl.JoinWith(cp, AuthInfo{AuthID: "up", AuthRole: "anonymous"}, both)
	var callees []*Session
	var peers []*memPeer
	for i := 0; i < 2; i++ { // a shared registration: all chunks must reach one callee
		p := &memPeer{ser: codec.MsgPack}
		s := rl.JoinWith(p, AuthInfo{AuthRole: "anonymous"}, both)
		m := codec.Message{Type: codec.REGISTER, Request: 1, URI: []byte("com.upload")}
		m.Details.Has, m.Details.Invoke = codec.KeyInvoke, []byte("roundrobin")
		s.Receive(&m)
		p.take(t)
		callees, peers = append(callees, s), append(peers, p)
	}
	chunk := func(req uint64, progress, disclose bool, v int) {
		m := codec.Message{Type: codec.CALL, Request: req, URI: []byte("com.upload"), Args: raw(t, codec.JSON, []any{v})}
		if progress {
			m.Details.Has |= codec.KeyProgress
			m.Details.Progress = true
		}
		if disclose {
			m.Details.Has |= codec.KeyDiscloseMe
			m.Details.DiscloseMe = true
		}
		caller.Receive(&m)
	}
	chunk(7, true, true, 1)
	chunk(7, true, false, 2) // options are frozen: still disclosed
	chunk(7, false, false, 3)
	var invs []codec.Message
	var who int
	for i, p := range peers {
		if ms := p.take(t); len(ms) > 0 {
			invs, who = ms, i
		}
	}
	if len(invs) != 3 {
		t.Fatalf("chunks spread or lost: %+v", invs)
	}
	for i, inv := range invs {
		if inv.Request != invs[0].Request || inv.Details.Progress != (i < 2) || inv.Details.Caller != caller.ID() ||
			value(t, codec.MsgPack, inv.Args).([]any)[0] != uint64(i+1) {
			t.Fatalf("INVOCATION %d: %+v", i, inv)
		}
	}
	callees[who].Receive(&codec.Message{Type: codec.YIELD, Request: invs[0].Request})
	if r := cp.one(t, codec.RESULT); r.Request != 7 {
		t.Fatalf("%+v", r)
	}
	// A chunk of a call the callee has already ended goes nowhere.
	chunk(9, true, false, 1)
	for i, x := range peers {
		for _, inv := range x.take(t) {
			callees[i].Receive(&codec.Message{Type: codec.YIELD, Request: inv.Request})
		}
	}
	cp.one(t, codec.RESULT)
	chunk(9, true, false, 2)
	if ms := append(peers[0].take(t), peers[1].take(t)...); len(ms) != 0 {
		t.Fatalf("chunk after the end: %+v", ms)
	}

	// The caller leaving mid-stream interrupts the callee (killnowait).
	chunk(8, true, false, 1)
	var p *memPeer
	for _, x := range peers {
		if len(x.msgs) > 0 {
			p = x
		}
	}
	inv := p.one(t, codec.INVOCATION)
	caller.Leave()
	if in := p.one(t, codec.INTERRUPT); in.Request != inv.Request || string(in.Details.Mode) != "killnowait" {
		t.Fatalf("%+v", in)
	}
}

func TestProgressiveCallInvocationFeatureChecks(t *testing.T) {
	rl := NewRouter(nil).AddRealm("realm1")
	plain, pp := join(t, rl, codec.JSON) // announced nothing
	callee, ep := join(t, rl, codec.JSON)
	callee.Receive(&codec.Message{Type: codec.REGISTER, Request: 1, URI: []byte("p")})
	ep.take(t)
	cp := &memPeer{ser: codec.JSON}
	caller := rl.JoinWith(cp, AuthInfo{AuthRole: "anonymous"}, Features{ProgressiveCallInvocations: true})
	m := codec.Message{Type: codec.CALL, Request: 1, URI: []byte("p")}
	m.Details.Has, m.Details.Progress = codec.KeyProgress, true
	caller.Receive(&m)
	if e := cp.one(t, codec.ERROR); string(e.URI) != ErrFeatureNotSupported {
		t.Fatalf("callee without the feature: %+v", e)
	}
	if plain.Receive(&m) {
		t.Fatal("progressive CALL from a caller that did not announce it was accepted")
	}
	if a := pp.one(t, codec.ABORT); string(a.URI) != ErrProtocolViolation {
		t.Fatalf("%+v", a)
	}
}
