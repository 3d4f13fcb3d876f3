package span

import (
	"fmt"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/codec"
	"github.com/switchyard-wamp/switchyard/engine"
)

// joinRevocable joins a callee that announces registration_revocation.
func (c *cluster) joinRevocable(router, authid string) *client {
	p := &peer{ser: codec.JSON}
	f := allFeatures
	f.RegistrationRevocation = true
	s := c.realms[router].JoinWith(p, engine.AuthInfo{AuthID: authid, AuthRole: "svc",
		AuthMethod: "anonymous", AuthProvider: "static"}, f)
	return &client{c: c, router: router, s: s, p: p}
}

// partition cuts b off from a and c: each side decides registrations on its own.
func (c *cluster) partition() {
	for _, n := range []string{"a", "c"} {
		c.spans[n].RouterDown("b")
		c.spans["b"].RouterDown(n)
	}
	c.lb.settle(c.t)
}

// heal makes every router see every other again (the resync both ways).
func (c *cluster) heal() {
	for _, n := range c.names {
		c.spans[n].SetRouters(c.names)
	}
	c.lb.settle(c.t)
}

// TestPartitionHealSettlesConflicts: while b is cut off from a and c, a callee on b and
// one on c both register the same single procedure (each side's owner accepts its own).
// When the partition heals, exactly one of them keeps it, the same one for every
// router: the other gets UNREGISTERED (it announced registration_revocation) with the
// reason, calls from every router reach the one kept, and the realm-wide meta API lists
// it alone. The rule does not favour a side: over these procedures each side keeps some.
// The same holds for two shared registrations of different invoke policies.
func TestPartitionHealSettlesConflicts(t *testing.T) {
	defer func(g time.Duration) { conflictGrace = g }(conflictGrace)
	conflictGrace = 20 * time.Millisecond
	c := newCluster(t, "a", "b", "c")
	c.partition()
	type pair struct{ onB, onC *client }
	procs := map[string]string{} // procedure -> the invoke policy on b (c uses another, or single)
	for i := range 8 {
		procs[fmt.Sprintf("com.split.%d", i)] = ""
	}
	procs["com.split.policies"] = "roundrobin"
	pairs := map[string]pair{}
	for p, invoke := range procs {
		pr := pair{c.joinRevocable("b", "callee-b"), c.joinRevocable("c", "callee-c")}
		onC := ""
		if invoke != "" {
			onC = "random"
		}
		for _, r := range []struct {
			cl     *client
			invoke string
		}{{pr.onB, invoke}, {pr.onC, onC}} {
			if m := r.cl.register(p, "", r.invoke); m.Type != codec.REGISTERED {
				t.Fatalf("%s on %s during the partition: %s", p, r.cl.router, describe([]codec.Message{m}))
			}
		}
		pairs[p] = pr
	}
	c.heal()
	// Each loser is revoked after the grace: wait for one UNREGISTERED per procedure.
	deadline := time.Now().Add(3 * time.Second)
	for got := 0; got < len(pairs); {
		got = 0
		for _, pr := range pairs {
			for _, x := range []*client{pr.onB, pr.onC} {
				x.p.mu.Lock()
				got += len(x.p.msgs)
				x.p.mu.Unlock()
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d conflicts settled", got, len(pairs))
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.lb.settle(t)

	callers := []*client{c.join("a", codec.JSON, "caller-a", "app"), c.join("b", codec.CBOR, "caller-b", "app"),
		c.join("c", codec.MsgPack, "caller-c", "app")}
	kept := map[string]int{}
	for p, pr := range pairs {
		regID := engine.RegistrationID("realm1", "exact", p)
		var keeper, loser *client
		for _, x := range []*client{pr.onB, pr.onC} {
			ms := x.take()
			switch {
			case len(ms) == 0:
				if keeper != nil {
					t.Fatalf("%s: both callees kept it after the heal", p)
				}
				keeper = x
			case len(ms) == 1 && ms[0].Type == codec.UNREGISTERED:
				if loser != nil {
					t.Fatalf("%s: both callees were revoked", p)
				}
				loser = x
				d, _ := value(t, x.p.ser, ms[0].Dict).(map[string]any)
				if fmt.Sprint(d["registration"]) != fmt.Sprint(regID) || d["reason"] != ReasonRegistrationConflict {
					t.Fatalf("%s: UNREGISTERED %+v, want registration %d and reason %s", p, ms[0], regID, ReasonRegistrationConflict)
				}
			default:
				t.Fatalf("%s: callee on %s got %s", p, x.router, describe(ms))
			}
		}
		if keeper == nil || loser == nil {
			t.Fatalf("%s: no conflict settled (kept %v, revoked %v)", p, keeper != nil, loser != nil)
		}
		kept[keeper.router]++
		for _, caller := range callers {
			req := caller.call(p, []any{caller.router}, nil)
			inv := keeper.one(codec.INVOCATION)
			keeper.yield(inv.Request, []any{"kept"}, false)
			if r := caller.one(codec.RESULT); r.Request != req || firstArg(t, caller.p.ser, r) != "kept" {
				t.Fatalf("%s from %s: %+v", p, caller.router, r)
			}
		}
		loser.none()
		for _, caller := range callers {
			ids := idsOf(caller.metaResult("wamp.registration.list_callees", []any{regID}, nil))
			if len(ids) != 1 || ids[0] != keeper.s.ID() {
				t.Fatalf("%s: list_callees on %s = %v, want [%d]", p, caller.router, ids, keeper.s.ID())
			}
		}
	}
	if kept["b"] == 0 || kept["c"] == 0 {
		t.Fatalf("one side kept every procedure (%v): choose names that exercise both", kept)
	}
}

// TestDeadWinnerRevokesNothing: a conflict settled in favour of a router that dies
// before the grace ends is no conflict any more. b and a each register the procedure
// during a partition (b's callee would keep it); the partition heals, every router sees
// the conflict, and b dies within the grace. a's callee must keep its registration: no
// UNREGISTERED, and calls from a and c reach it.
func TestDeadWinnerRevokesNothing(t *testing.T) {
	defer func(g time.Duration) { conflictGrace = g }(conflictGrace)
	conflictGrace = 300 * time.Millisecond
	proc := ""
	for i := 0; proc == ""; i++ {
		p := fmt.Sprintf("com.dead.%d", i)
		if beats(regKey("realm1", policyByte(false, 0), p), callee{router: "b", id: 2}, callee{router: "a", id: 1}) {
			proc = p // b's callee would keep it
		}
	}
	c := newCluster(t, "a", "b", "c")
	c.partition()
	onA, onB := c.joinRevocable("a", "on-a"), c.joinRevocable("b", "on-b")
	for _, x := range []*client{onA, onB} {
		if m := x.register(proc, "", ""); m.Type != codec.REGISTERED {
			t.Fatalf("REGISTER on %s: %s", x.router, describe([]codec.Message{m}))
		}
	}
	c.heal() // the conflict is seen everywhere; a's callee is to lose after the grace
	c.kill("b")
	time.Sleep(2 * conflictGrace)
	onA.none()
	for _, on := range []string{"a", "c"} {
		caller := c.join(on, codec.JSON, "caller-"+on, "app")
		req := caller.call(proc, nil, nil)
		inv := onA.one(codec.INVOCATION)
		onA.yield(inv.Request, []any{"kept"}, false)
		if r := caller.one(codec.RESULT); r.Request != req || firstArg(t, codec.JSON, r) != "kept" {
			t.Fatalf("call from %s: %+v", on, r)
		}
	}
}

// TestRevokedLoserHandsOverAtOnce: the router of a callee that lost a conflict routes
// the procedure to the winner's ghost as soon as it has revoked its own callee, not only
// once the removal has come back from the owner (here c, whose messages to a are slow):
// a call there meanwhile must reach the winner, not get no_such_procedure.
func TestRevokedLoserHandsOverAtOnce(t *testing.T) {
	defer func(g time.Duration) { conflictGrace = g }(conflictGrace)
	conflictGrace = 100 * time.Millisecond
	proc := ""
	for i := 0; proc == ""; i++ {
		p := fmt.Sprintf("com.handover.%d", i)
		key := regKey("realm1", policyByte(false, 0), p)
		if beats(key, callee{router: "b", id: 2}, callee{router: "a", id: 1}) && ownerAmong(key, []string{"a", "b", "c"}) == "c" {
			proc = p // b's callee keeps it; c owns it
		}
	}
	c := newCluster(t, "a", "b", "c")
	c.partition()
	onA, onB := c.joinRevocable("a", "on-a"), c.joinRevocable("b", "on-b")
	for _, x := range []*client{onA, onB} {
		if m := x.register(proc, "", ""); m.Type != codec.REGISTERED {
			t.Fatalf("REGISTER on %s: %s", x.router, describe([]codec.Message{m}))
		}
	}
	caller := c.join("a", codec.JSON, "caller-a", "app")
	c.heal()
	c.lb.mu.Lock()
	c.lb.slowPair, c.lb.slowBy = [2]string{"c", "a"}, 500*time.Millisecond
	c.lb.mu.Unlock()
	onA.arrived(1) // revoked after the grace (not waiting for the slow removal)
	if ms := onA.take(); len(ms) != 1 || ms[0].Type != codec.UNREGISTERED {
		t.Fatalf("the loser got %s, want UNREGISTERED", describe(ms))
	}
	req := caller.call(proc, nil, nil) // c's removal of the loser is still on its way to a
	inv := onB.one(codec.INVOCATION)
	onB.yield(inv.Request, []any{"kept"}, false)
	if r := caller.one(codec.RESULT); r.Request != req || firstArg(t, codec.JSON, r) != "kept" {
		t.Fatalf("call on the loser's router right after the revocation: %s", describe([]codec.Message{r}))
	}
}
