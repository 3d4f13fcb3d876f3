package span

import (
	"fmt"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/codec"
	"github.com/switchyard-wamp/switchyard/engine"
)

func (cl *client) call(proc string, args []any, set func(d *codec.Details)) uint64 {
	m := codec.Message{Type: codec.CALL, URI: []byte(proc)}
	if args != nil {
		m.Args = raw(cl.c.t, cl.p.ser, args)
	}
	if set != nil {
		set(&m.Details)
	}
	cl.send(m)
	return cl.req
}

func (cl *client) yield(inv uint64, args []any, progress bool) {
	m := codec.Message{Type: codec.YIELD, Request: inv, Args: raw(cl.c.t, cl.p.ser, args)}
	if progress {
		m.Details.Has, m.Details.Progress = codec.KeyProgress, true
	}
	cl.send(m)
}

// A call from any router reaches a callee on any router (exact and pattern
// registrations, mixed serializers), with caller disclosure and application errors.
func TestCallAcrossRouters(t *testing.T) {
	c := newCluster(t, "a", "b", "c")
	callee := c.join("b", codec.MsgPack, "callee", "svc")
	reg := callee.register("com.add", "", "")
	if reg.Type != codec.REGISTERED || reg.Registration != engine.RegistrationID("realm1", "exact", "com.add") {
		t.Fatalf("REGISTER: %+v", reg)
	}
	if pr := callee.register("com.pat.", "prefix", ""); pr.Type != codec.REGISTERED {
		t.Fatalf("pattern REGISTER: %+v", pr)
	}
	c.lb.settle(t)
	for _, from := range []struct {
		router string
		ser    codec.Serializer
	}{{"a", codec.JSON}, {"c", codec.CBOR}, {"b", codec.JSON}} {
		caller := c.join(from.router, from.ser, "caller", "app")
		req := caller.call("com.add", []any{2, 3}, func(d *codec.Details) { d.Has, d.DiscloseMe = codec.KeyDiscloseMe, true })
		inv := callee.one(codec.INVOCATION)
		if inv.Registration != reg.Registration || inv.Details.Caller != caller.s.ID() ||
			string(inv.Details.CallerAuthID) != "caller" {
			t.Fatalf("INVOCATION from %s: %+v", from.router, inv)
		}
		if from.router != "b" {
			if tag, ok := engine.IsRemoteInvocation(inv.Request); !ok || tag != c.spans[from.router].Tag() {
				t.Fatalf("INVOCATION id %d from %s: tag %d, want %d", inv.Request, from.router, tag, c.spans[from.router].Tag())
			}
		}
		args, _ := value(t, codec.MsgPack, inv.Args).([]any)
		callee.yield(inv.Request, []any{args[0].(uint64) + args[1].(uint64)}, false)
		res := caller.one(codec.RESULT)
		if res.Request != req || firstArg(t, from.ser, res) != uint64(5) {
			t.Fatalf("RESULT on %s: %+v", from.router, res)
		}
		req = caller.call("com.pat.x.y", nil, nil)
		inv = callee.one(codec.INVOCATION)
		if string(inv.Details.Procedure) != "com.pat.x.y" {
			t.Fatalf("pattern INVOCATION: %+v", inv)
		}
		callee.send(codec.Message{Type: codec.ERROR, ErrType: codec.INVOCATION, Request: inv.Request,
			URI: []byte("com.error.nope"), Args: raw(t, codec.MsgPack, []any{"why"})})
		e := caller.one(codec.ERROR)
		if e.Request != req || string(e.URI) != "com.error.nope" || firstArg(t, from.ser, e) != "why" {
			t.Fatalf("ERROR on %s: %+v", from.router, e)
		}
	}
	// The registration meta API of another router sees the remote callee.
	meta := c.join("c", codec.JSON, "m", "r")
	meta.call("wamp.registration.lookup", []any{"com.add"}, nil)
	if got := firstArg(t, codec.JSON, meta.one(codec.RESULT)); got != reg.Registration {
		t.Fatalf("lookup on c: %v, want %d", got, reg.Registration)
	}
	meta.call("wamp.registration.list_callees", []any{reg.Registration}, nil)
	if got, _ := firstArg(t, codec.JSON, meta.one(codec.RESULT)).([]any); len(got) != 1 || got[0] != callee.s.ID() {
		t.Fatalf("list_callees on c: %v", got)
	}
}

// Two callees racing for one procedure on two routers: exactly one wins, the other gets
// procedure_already_exists; after the winner leaves, the procedure is free everywhere.
func TestRegistrationUniqueRealmWide(t *testing.T) {
	c := newCluster(t, "a", "b", "c")
	for i := 0; i < 20; i++ {
		proc := fmt.Sprintf("com.race.%d", i)
		x := c.join("a", codec.JSON, "x", "r")
		y := c.join("c", codec.CBOR, "y", "r")
		x.send(codec.Message{Type: codec.REGISTER, URI: []byte(proc)})
		y.send(codec.Message{Type: codec.REGISTER, URI: []byte(proc)})
		mx, my := x.waitFor(1), y.waitFor(1)
		wins := 0
		for _, m := range [][]codec.Message{mx, my} {
			switch {
			case len(m) == 1 && m[0].Type == codec.REGISTERED:
				wins++
			case len(m) == 1 && m[0].Type == codec.ERROR && string(m[0].URI) == engine.ErrProcedureAlreadyExists:
			default:
				t.Fatalf("%s: %s", proc, describe(m))
			}
		}
		if wins != 1 {
			t.Fatalf("%s: %d winners", proc, wins)
		}
		// A third callee on b is refused too, and so is another policy.
		z := c.join("b", codec.MsgPack, "z", "r")
		if m := z.register(proc, "", "roundrobin"); m.Type != codec.ERROR || string(m.URI) != engine.ErrProcedureAlreadyExists {
			t.Fatalf("third callee: %+v", m)
		}
		x.s.Leave()
		y.s.Leave()
		c.lb.settle(t)
		if m := z.register(proc, "", ""); m.Type != codec.REGISTERED {
			t.Fatalf("%s not free after its callee left: %+v", proc, m)
		}
		z.s.Leave()
	}
}

// TestRegisterAgainAfterCalleeLeft: as on one node, a procedure is free again as soon as
// its callee's router has let it go, even while the Unclaim to the owner is still on
// its (slow) way: the owner probes the callee's router before refusing a claim.
func TestRegisterAgainAfterCalleeLeft(t *testing.T) {
	c := newCluster(t, "a", "b", "c")
	// A procedure whose owner is neither a (the leaving callee's router) nor b (the
	// new callee's).
	var proc string
	for i := 0; proc == ""; i++ {
		p := fmt.Sprintf("com.again.%d", i)
		if c.spans["a"].owner(regKey("realm1", policyByte(false, 0), p)) == "c" {
			proc = p
		}
	}
	c.lb.mu.Lock()
	c.lb.slowPair, c.lb.slowBy = [2]string{"a", "c"}, 100*time.Millisecond
	c.lb.mu.Unlock()
	for _, leave := range []string{"leave", "unregister"} {
		x := c.join("a", codec.JSON, "x", "r")
		m := x.register(proc, "", "")
		if m.Type != codec.REGISTERED {
			t.Fatalf("%s: first callee: %+v", leave, m)
		}
		if leave == "leave" {
			x.s.Leave()
		} else {
			x.send(codec.Message{Type: codec.UNREGISTER, Registration: m.Registration})
			x.one(codec.UNREGISTERED)
		}
		y := c.join("b", codec.CBOR, "y", "r")
		if m := y.register(proc, "", ""); m.Type != codec.REGISTERED {
			t.Fatalf("%s: %s still taken after its callee let it go: %+v", leave, proc, m)
		}
		// And it is taken again: a third callee is refused.
		z := c.join("a", codec.MsgPack, "z", "r")
		if m := z.register(proc, "", ""); m.Type != codec.ERROR || string(m.URI) != engine.ErrProcedureAlreadyExists {
			t.Fatalf("%s: third callee: %+v", leave, m)
		}
		y.s.Leave()
		z.s.Leave()
		x.s.Leave()
		c.lb.settle(t)
	}
}

// Shared registrations span routers with every invocation policy.
func TestSharedRegistrationAcrossRouters(t *testing.T) {
	for _, policy := range []string{"roundrobin", "first", "last"} {
		t.Run(policy, func(t *testing.T) {
			c := newCluster(t, "a", "b", "c")
			var callees []*client
			for i, r := range []string{"b", "c", "a"} {
				cl := c.join(r, []codec.Serializer{codec.JSON, codec.MsgPack, codec.CBOR}[i], fmt.Sprint("callee", i), "svc")
				if m := cl.register("com.shared", "", policy); m.Type != codec.REGISTERED {
					t.Fatalf("callee %d: %+v", i, m)
				}
				c.lb.settle(t)
				callees = append(callees, cl)
			}
			other := c.join("c", codec.JSON, "o", "svc")
			if m := other.register("com.shared", "", "random"); m.Type != codec.ERROR ||
				string(m.URI) != engine.ErrProcedureExistsOtherPolicy {
				t.Fatalf("other policy: %+v", m)
			}
			for _, from := range []string{"a", "b", "c"} {
				caller := c.join(from, codec.JSON, "caller", "app")
				for k := 0; k < 3; k++ {
					caller.call("com.shared", nil, nil)
					c.lb.settle(t)
					want := map[string]int{"first": 0, "last": 2, "roundrobin": k}[policy]
					for i, cl := range callees {
						ms := cl.take()
						if got := len(ms) == 1; got != (i == want) {
							t.Fatalf("%s call %d from %s: callee %d got %s", policy, k, from, i, describe(ms))
						}
						if i == want {
							cl.yield(ms[0].Request, []any{i}, false)
						}
					}
					if got := firstArg(t, codec.JSON, caller.one(codec.RESULT)); got != uint64(want) {
						t.Fatalf("result from callee %v, want %d", got, want)
					}
				}
			}
		})
	}
}

// Progressive results cross routers in order; cancel (killnowait and kill) and the
// router's timeout work for a callee on another router.
func TestProgressiveCancelTimeoutAcrossRouters(t *testing.T) {
	c := newCluster(t, "a", "b", "c")
	callee := c.join("c", codec.CBOR, "callee", "svc")
	callee.register("com.slow", "", "")
	c.lb.settle(t)
	caller := c.join("a", codec.JSON, "caller", "app")

	req := caller.call("com.slow", nil, func(d *codec.Details) { d.Has, d.ReceiveProgress = codec.KeyReceiveProgress, true })
	inv := callee.one(codec.INVOCATION)
	if !inv.Details.ReceiveProgress {
		t.Fatalf("INVOCATION without receive_progress: %+v", inv.Details)
	}
	for i := 0; i < 5; i++ {
		callee.yield(inv.Request, []any{i}, true)
	}
	callee.yield(inv.Request, []any{"done"}, false)
	ms := caller.waitFor(6)
	for i, m := range ms {
		if m.Type != codec.RESULT || m.Request != req || m.Details.Progress != (i < 5) {
			t.Fatalf("progressive result %d: %+v", i, m)
		}
		if i < 5 && firstArg(t, codec.JSON, m) != uint64(i) {
			t.Fatalf("progressive results out of order: %d carries %v", i, firstArg(t, codec.JSON, m))
		}
	}

	// killnowait: the caller gets canceled at once, the callee an INTERRUPT, and its late
	// answer is dropped.
	req = caller.call("com.slow", nil, nil)
	inv = callee.one(codec.INVOCATION)
	caller.send(codec.Message{Type: codec.CANCEL, Request: req, Details: codec.Details{Has: codec.KeyMode, Mode: []byte("killnowait")}})
	if e := caller.one(codec.ERROR); e.Request != req || string(e.URI) != engine.ErrCanceled {
		t.Fatalf("cancel: %+v", e)
	}
	if in := callee.one(codec.INTERRUPT); in.Request != inv.Request {
		t.Fatalf("INTERRUPT %+v for invocation %d", in, inv.Request)
	}
	callee.yield(inv.Request, []any{"late"}, false)
	caller.none()

	// kill: INTERRUPT, and the callee's ERROR answers the caller.
	req = caller.call("com.slow", nil, nil)
	inv = callee.one(codec.INVOCATION)
	caller.send(codec.Message{Type: codec.CANCEL, Request: req, Details: codec.Details{Has: codec.KeyMode, Mode: []byte("kill")}})
	callee.one(codec.INTERRUPT)
	callee.send(codec.Message{Type: codec.ERROR, ErrType: codec.INVOCATION, Request: inv.Request, URI: []byte(engine.ErrCanceled)})
	if e := caller.one(codec.ERROR); e.Request != req || string(e.URI) != engine.ErrCanceled {
		t.Fatalf("kill: %+v", e)
	}

	// timeout
	req = caller.call("com.slow", nil, func(d *codec.Details) { d.Has, d.Timeout = codec.KeyTimeout, 30 })
	callee.one(codec.INVOCATION)
	time.Sleep(60 * time.Millisecond)
	if e := caller.one(codec.ERROR); e.Request != req || string(e.URI) != engine.ErrTimeout {
		t.Fatalf("timeout: %+v", e)
	}
	callee.one(codec.INTERRUPT)
}

// A callee leaving, or its router dying, ends the calls in flight to it with an ERROR;
// a caller leaving interrupts its call on a callee on another router.
func TestCallEndsWhenCalleeOrRouterGoes(t *testing.T) {
	c := newCluster(t, "a", "b", "c")
	caller := c.join("a", codec.JSON, "caller", "app")
	watch := c.join("a", codec.JSON, "w", "r")
	watch.subscribe("wamp.registration.on_unregister", "")

	callee := c.join("b", codec.MsgPack, "callee", "svc")
	reg := callee.register("com.p", "", "")
	c.lb.settle(t)
	req := caller.call("com.p", nil, nil)
	callee.one(codec.INVOCATION)
	callee.s.Leave()
	if e := caller.one(codec.ERROR); e.Request != req || string(e.URI) != engine.ErrCanceled {
		t.Fatalf("callee left: %+v", e)
	}
	if ev := watch.one(codec.EVENT); firstArg(t, codec.JSON, ev) != callee.s.ID() {
		t.Fatalf("on_unregister: %+v", ev)
	}
	caller.call("com.p", nil, nil)
	if e := caller.one(codec.ERROR); string(e.URI) != engine.ErrNoSuchProcedure {
		t.Fatalf("registration survived its callee: %+v", e)
	}

	// Caller leaves: the callee on another router gets INTERRUPT.
	callee = c.join("b", codec.MsgPack, "callee", "svc")
	callee.register("com.p", "", "")
	c.lb.settle(t)
	c2 := c.join("c", codec.CBOR, "caller2", "app")
	c2.call("com.p", nil, nil)
	inv := callee.one(codec.INVOCATION)
	c2.s.Leave()
	if in := callee.one(codec.INTERRUPT); in.Request != inv.Request {
		t.Fatalf("caller left: %+v", in)
	}

	// The callee's router dies mid-call: ERROR at once, and the procedure is gone.
	req = caller.call("com.p", nil, nil)
	callee.one(codec.INVOCATION)
	watch.take()
	c.kill("b")
	if e := caller.one(codec.ERROR); e.Request != req || string(e.URI) != engine.ErrCanceled {
		t.Fatalf("router died: %+v", e)
	}
	if ev := watch.one(codec.EVENT); firstArg(t, codec.JSON, ev) != callee.s.ID() {
		t.Fatalf("on_unregister after router death: %+v", ev)
	}
	caller.call("com.p", nil, nil)
	if e := caller.one(codec.ERROR); string(e.URI) != engine.ErrNoSuchProcedure {
		t.Fatalf("dead router's registration survived: %+v", e)
	}
	// The procedure can be registered again (its owner may have been b).
	again := c.join("c", codec.JSON, "again", "svc")
	if m := again.register("com.p", "", ""); m.Type != codec.REGISTERED || m.Registration != reg.Registration {
		t.Fatalf("register after router death: %+v", m)
	}
}

// Progressive call invocations: the chunks of one CALL reach a callee on another router
// as INVOCATIONs of one invocation id, in order.
func TestProgressiveInvocationsAcrossRouters(t *testing.T) {
	c := newCluster(t, "a", "b", "c")
	callee := c.join("b", codec.JSON, "callee", "svc")
	callee.register("com.upload", "", "")
	c.lb.settle(t)
	caller := c.join("a", codec.CBOR, "caller", "app")
	chunk := func(i int, progress bool) {
		m := codec.Message{Type: codec.CALL, Request: 77, URI: []byte("com.upload"), Args: raw(t, codec.CBOR, []any{i})}
		if progress {
			m.Details.Has, m.Details.Progress = codec.KeyProgress, true
		}
		caller.send(m)
	}
	for i := 0; i < 3; i++ {
		chunk(i, true)
	}
	chunk(3, false)
	ms := callee.waitFor(4)
	for i, m := range ms {
		if m.Type != codec.INVOCATION || m.Request != ms[0].Request || m.Details.Progress != (i < 3) ||
			firstArg(t, codec.JSON, m) != uint64(i) {
			t.Fatalf("chunk %d: %+v", i, m)
		}
	}
	callee.yield(ms[0].Request, []any{"ok"}, false)
	if r := caller.one(codec.RESULT); r.Request != 77 {
		t.Fatalf("RESULT %+v", r)
	}
}

// TestClaimProbeTimeout: an owner whose probe of a conflicting callee's router gets no
// answer decides the claim on its table after barrierTimeout instead of holding it.
func TestClaimProbeTimeout(t *testing.T) {
	old := barrierTimeout
	barrierTimeout = 200 * time.Millisecond
	defer func() { barrierTimeout = old }()
	c := newCluster(t, "a", "b", "c")
	var proc string
	for i := 0; proc == ""; i++ { // owned by c, callee on a, claimant on b
		if p := fmt.Sprintf("com.probe.%d", i); c.spans["a"].owner(regKey("realm1", policyByte(false, 0), p)) == "c" {
			proc = p
		}
	}
	x := c.join("a", codec.JSON, "x", "r")
	if m := x.register(proc, "", ""); m.Type != codec.REGISTERED {
		t.Fatalf("first callee: %+v", m)
	}
	c.lb.mu.Lock()
	c.lb.mute = "a" // the probe reaches a and is never answered
	c.lb.mu.Unlock()
	y := c.join("b", codec.CBOR, "y", "r")
	y.send(codec.Message{Type: codec.REGISTER, URI: []byte(proc)})
	y.arrived(1)
	if ms := y.take(); len(ms) != 1 || ms[0].Type != codec.ERROR || string(ms[0].URI) != engine.ErrProcedureAlreadyExists {
		t.Fatalf("second callee got %s, want procedure_already_exists", describe(ms))
	}
	c.lb.mu.Lock()
	c.lb.mute = ""
	c.lb.mu.Unlock()
}

// TestRegAddAfterGoneLeavesNoGhost: a callee that leaves before its REGISTER is
// answered: its router's "gone" reaches a third router before the owner's broadcast of
// the registration does (they travel on different keys). That late broadcast must not
// make a ghost of the departed callee there, which nothing would remove.
func TestRegAddAfterGoneLeavesNoGhost(t *testing.T) {
	c := newCluster(t, "a", "b", "c")
	var proc string
	for i := 0; proc == ""; i++ {
		if p := fmt.Sprintf("com.late.%d", i); c.spans["a"].owner(regKey("realm1", policyByte(false, 0), p)) == "a" {
			proc = p
		}
	}
	c.lb.mu.Lock()
	c.lb.slowPair, c.lb.slowBy = [2]string{"a", "c"}, 100*time.Millisecond
	c.lb.mu.Unlock()
	x := c.join("b", codec.JSON, "x", "r")
	x.send(codec.Message{Type: codec.REGISTER, URI: []byte(proc)})
	x.s.Leave()
	c.lb.settle(t)
	if _, ok := c.spans["c"].state("realm1").ghosts.Load(x.s.ID()); ok {
		t.Fatal("router c keeps a ghost of the departed callee")
	}
	if rl := c.realms["c"]; rl.HasSession(x.s.ID()) {
		t.Fatal("router c's realm still has the departed callee's ghost session")
	}
	// The procedure is free realm-wide.
	y := c.join("c", codec.CBOR, "y", "r")
	if m := y.register(proc, "", ""); m.Type != codec.REGISTERED {
		t.Fatalf("after the callee left: %+v", m)
	}
}

// TestGhostRegisteredOnceTheStaleCalleeGoes: router b still holds a callee of router c
// that the owner a has already dropped (a saw c die first). The owner accepts a new
// callee on a and b adds it to its table, but b's engine still has the stale callee
// registered and refuses the new one's ghost. When b drops c's callee, the new callee's
// ghost must take the registration, or calls from b find no procedure for good.
func TestGhostRegisteredOnceTheStaleCalleeGoes(t *testing.T) {
	c := newCluster(t, "a", "b", "c")
	var proc string
	for i := 0; proc == ""; i++ {
		if p := fmt.Sprintf("com.stale.%d", i); c.spans["a"].owner(regKey("realm1", policyByte(false, 0), p)) == "a" {
			proc = p
		}
	}
	x := c.join("c", codec.JSON, "x", "r")
	if m := x.register(proc, "", ""); m.Type != codec.REGISTERED {
		t.Fatalf("first callee: %+v", m)
	}
	c.spans["a"].RouterDown("c") // a alone has seen c die
	y := c.join("a", codec.CBOR, "y", "r")
	if m := y.register(proc, "", ""); m.Type != codec.REGISTERED {
		t.Fatalf("callee on a after c's death there: %+v", m)
	}
	c.lb.settle(t)
	c.spans["b"].RouterDown("c") // now b drops c's callee too
	caller := c.join("b", codec.MsgPack, "caller", "r")
	caller.send(codec.Message{Type: codec.CALL, URI: []byte(proc)})
	inv := y.one(codec.INVOCATION)
	y.send(codec.Message{Type: codec.YIELD, Request: inv.Request})
	if m := caller.one(codec.RESULT); m.Type != codec.RESULT {
		t.Fatalf("caller on b: %+v", m)
	}
}
