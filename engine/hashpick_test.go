package engine

import (
	"fmt"
	"testing"

	"github.com/switchyard-wamp/switchyard/codec"
)

// callKey calls proc with the key (as rkey when byRKey, else as the first positional
// argument) and returns the index of the callee that got it.
func callKey(t *testing.T, caller *Session, cp *memPeer, proc, key string, byRKey bool, callees []*Session, peers []*memPeer) int {
	t.Helper()
	m := codec.Message{Type: codec.CALL, Request: 1, URI: []byte(proc)}
	if byRKey {
		m.Details.Has, m.Details.RKey = codec.KeyRKey, []byte(key)
	} else {
		m.Args = raw(t, caller.ser, []any{key, "other"})
	}
	caller.Receive(&m)
	got := -1
	for i, p := range peers {
		for _, inv := range p.take(t) {
			if inv.Type != codec.INVOCATION || got >= 0 {
				t.Fatalf("unexpected %v at callee %d", inv.Type, i)
			}
			got = i
			callees[i].Receive(&codec.Message{Type: codec.YIELD, Request: inv.Request})
		}
	}
	if got < 0 {
		t.Fatalf("no callee got the call: caller saw %+v", cp.take(t))
	}
	cp.one(t, codec.RESULT)
	return got
}

func TestHashInvocationPolicy(t *testing.T) {
	for _, byRKey := range []bool{false, true} {
		t.Run(fmt.Sprintf("rkey=%v", byRKey), func(t *testing.T) {
			rl := NewRouter(nil).AddRealm("realm1")
			caller, cp := join(t, rl, codec.MsgPack)
			var callees []*Session
			var peers []*memPeer
			for i := 0; i < 4; i++ {
				s, p := join(t, rl, codec.JSON)
				policy := "hash"
				if i == 1 {
					policy = "jump_consistent_hash" // Bondy's name: the same policy
				}
				if r := registerInvoke(t, s, p, "com.svc", policy); r.Type != codec.REGISTERED {
					t.Fatalf("callee %d: %+v", i, r)
				}
				callees, peers = append(callees, s), append(peers, p)
			}
			const keys = 200
			first := make([]int, keys)
			count := map[int]int{}
			for k := 0; k < keys; k++ {
				key := fmt.Sprintf("user-%d", k)
				first[k] = callKey(t, caller, cp, "com.svc", key, byRKey, callees, peers)
				if again := callKey(t, caller, cp, "com.svc", key, byRKey, callees, peers); again != first[k] {
					t.Fatalf("key %s went to %d then %d", key, first[k], again)
				}
				count[first[k]]++
			}
			for i := range callees {
				if count[i] < keys/4/3 {
					t.Errorf("callee %d got %d of %d keys: %v", i, count[i], keys, count)
				}
			}
			// Callee 1 leaves: only its keys move.
			callees[1].Leave()
			moved := 0
			for k := 0; k < keys; k++ {
				got := callKey(t, caller, cp, "com.svc", fmt.Sprintf("user-%d", k), byRKey, callees, peers)
				if got == 1 {
					t.Fatal("a key reached the callee that left")
				}
				if got != first[k] {
					if first[k] != 1 {
						t.Fatalf("key %d moved from %d to %d though its callee stayed", k, first[k], got)
					}
					moved++
				}
			}
			if moved != count[1] {
				t.Fatalf("%d keys moved, callee 1 had %d", moved, count[1])
			}
		})
	}
}

func TestHashPolicyConflicts(t *testing.T) {
	rl := NewRouter(nil).AddRealm("realm1")
	a, ap := join(t, rl, codec.JSON)
	b, bp := join(t, rl, codec.JSON)
	registerInvoke(t, a, ap, "p.h", "hash")
	if e := registerInvoke(t, b, bp, "p.h", "roundrobin"); string(e.URI) != ErrProcedureExistsOtherPolicy {
		t.Fatalf("another policy joined a hash registration: %+v", e)
	}
	rl.dealer.regs.mu.Lock()
	reg, _ := rl.dealer.regs.getLocked("p.h")
	rl.dealer.regs.mu.Unlock()
	if reg.invoke != invokeHash {
		t.Fatalf("invoke %q", reg.invoke)
	}
}
