package engine

import (
	"testing"

	"github.com/switchyard-wamp/switchyard/codec"
)

func registerInvoke(t *testing.T, s *Session, p *memPeer, uri, policy string) codec.Message {
	t.Helper()
	m := codec.Message{Type: codec.REGISTER, Request: 1, URI: []byte(uri)}
	if policy != "" {
		m.Details.Has, m.Details.Invoke = codec.KeyInvoke, []byte(policy)
	}
	s.Receive(&m)
	ms := p.take(t)
	if len(ms) != 1 {
		t.Fatalf("REGISTER %s %s: %d replies", uri, policy, len(ms))
	}
	return ms[0]
}

// callOnce calls proc and returns the index of the callee peer that got the INVOCATION,
// answering it so that nothing stays pending.
func callOnce(t *testing.T, caller *Session, cp *memPeer, proc string, callees []*Session, peers []*memPeer) int {
	t.Helper()
	caller.Receive(&codec.Message{Type: codec.CALL, Request: 1, URI: []byte(proc)})
	got := -1
	for i, p := range peers {
		for _, m := range p.take(t) {
			if m.Type != codec.INVOCATION || got >= 0 {
				t.Fatalf("unexpected %v at callee %d", m.Type, i)
			}
			got = i
			callees[i].Receive(&codec.Message{Type: codec.YIELD, Request: m.Request})
		}
	}
	if got < 0 {
		t.Fatalf("no callee got the call: caller saw %+v", cp.take(t))
	}
	cp.one(t, codec.RESULT)
	return got
}

func TestSharedRegistrations(t *testing.T) {
	for _, tc := range []struct {
		policy string
		want   func(call int, n int, got int) bool
	}{
		{"roundrobin", func(call, n, got int) bool { return got == call%n }},
		{"first", func(_, _, got int) bool { return got == 0 }},
		{"last", func(_, n, got int) bool { return got == n-1 }},
		{"random", func(_, n, got int) bool { return got >= 0 && got < n }},
	} {
		t.Run(tc.policy, func(t *testing.T) {
			rl := NewRouter(nil).AddRealm("realm1")
			caller, cp := join(t, rl, codec.JSON)
			var callees []*Session
			var peers []*memPeer
			var regID uint64
			for i := 0; i < 3; i++ {
				s, p := join(t, rl, codec.JSON)
				r := registerInvoke(t, s, p, "com.svc", tc.policy)
				if r.Type != codec.REGISTERED || (regID != 0 && r.Registration != regID) {
					t.Fatalf("callee %d: %+v (want registration %d)", i, r, regID)
				}
				regID = r.Registration
				callees, peers = append(callees, s), append(peers, p)
			}
			seen := map[int]int{}
			for c := 0; c < 30; c++ {
				got := callOnce(t, caller, cp, "com.svc", callees, peers)
				if !tc.want(c, 3, got) {
					t.Fatalf("call %d went to callee %d", c, got)
				}
				seen[got]++
			}
			if tc.policy == "random" && len(seen) < 2 {
				t.Fatalf("random used one callee for 30 calls: %v", seen)
			}
			// A callee that leaves stops getting calls; the last one takes the
			// registration with it.
			callees[0].Leave()
			for c := 0; c < 4; c++ {
				if got := callOnce(t, caller, cp, "com.svc", callees, peers); got == 0 {
					t.Fatal("call reached a callee that left")
				}
			}
			callees[1].Leave()
			callees[2].Leave()
			caller.Receive(&codec.Message{Type: codec.CALL, Request: 2, URI: []byte("com.svc")})
			if e := cp.one(t, codec.ERROR); string(e.URI) != ErrNoSuchProcedure {
				t.Fatalf("%+v", e)
			}
		})
	}
}

func TestSharedRegistrationConflicts(t *testing.T) {
	rl := NewRouter(nil).AddRealm("realm1")
	a, ap := join(t, rl, codec.JSON)
	b, bp := join(t, rl, codec.JSON)
	registerInvoke(t, a, ap, "p.single", "")
	if e := registerInvoke(t, b, bp, "p.single", "roundrobin"); string(e.URI) != ErrProcedureAlreadyExists {
		t.Fatalf("shared join of a single registration: %+v", e)
	}
	registerInvoke(t, a, ap, "p.rr", "roundrobin")
	if e := registerInvoke(t, b, bp, "p.rr", "random"); string(e.URI) != ErrProcedureExistsOtherPolicy {
		t.Fatalf("another policy: %+v", e)
	}
	if e := registerInvoke(t, a, ap, "p.rr", "roundrobin"); string(e.URI) != ErrProcedureAlreadyExists {
		t.Fatalf("same callee twice: %+v", e)
	}
	if e := registerInvoke(t, b, bp, "p.x", "sticky"); string(e.URI) != ErrOptionNotAllowed {
		t.Fatalf("unknown policy: %+v", e)
	}
	r := registerInvoke(t, b, bp, "p.rr", "roundrobin")
	b.Receive(&codec.Message{Type: codec.UNREGISTER, Request: 3, Registration: r.Registration})
	bp.one(t, codec.UNREGISTERED)
	if _, ok := rl.dealer.regs.Get([]byte("p.rr")); !ok {
		t.Fatal("unregister of one callee removed the shared registration")
	}
}
