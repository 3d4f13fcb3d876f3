package node

import (
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/codec"
)

// Dealer conformance over real sockets (issue #4): one test per advanced dealer feature,
// with rawPeers on WebSocket and RawSocket and a different serializer per peer, checking
// the messages the WAMP spec (wamp-proto rfc/text/advanced) prescribes.

// deviation skips a test written to the spec where switchyard deviates from it, unless
// SWITCHYARD_CONFORMANCE_DEVIATIONS=1 asks to run it and see it fail.
func deviation(t *testing.T, reason string) {
	t.Helper()
	if os.Getenv("SWITCHYARD_CONFORMANCE_DEVIATIONS") != "1" {
		t.Skip("deviation: " + reason)
	}
}

// rolesWithout is allFeatures minus the named features in every role, for HELLO
// extra {"roles": ...}.
func rolesWithout(names ...string) map[string]any {
	roles := allFeatures()
	for _, r := range roles {
		f := r.(map[string]any)["features"].(map[string]any)
		for _, n := range names {
			delete(f, n)
		}
	}
	return roles
}

// yield answers invocation inv with a YIELD of args and options opts.
func (p *rawPeer) yield(inv uint64, opts map[string]any, args []any) {
	p.t.Helper()
	p.send(&codec.Message{Type: codec.YIELD, Request: inv, DictAny: opts}, args, nil)
}

// invocationError answers invocation inv with ERROR uri.
func (p *rawPeer) invocationError(inv uint64, uri string) {
	p.t.Helper()
	p.send(&codec.Message{Type: codec.ERROR, ErrType: codec.INVOCATION, Request: inv, URI: []byte(uri)}, nil, nil)
}

// cancel sends CANCEL for call request req with mode (none when empty).
func (p *rawPeer) cancel(req uint64, mode string) {
	p.t.Helper()
	opts := map[string]any{}
	if mode != "" {
		opts["mode"] = mode
	}
	p.send(&codec.Message{Type: codec.CANCEL, Request: req, DictAny: opts}, nil, nil)
}

// expectCallError reads the ERROR answering CALL req and checks its URI.
func (p *rawPeer) expectCallError(req uint64, uri string) wire {
	p.t.Helper()
	e := p.expect(codec.ERROR)
	if e.ErrType != codec.CALL || e.Request != req || e.URI != uri {
		p.t.Fatalf("%s: want [ERROR, CALL, %d, %s], got [ERROR, %v, %d, %s]", p.name, req, uri, e.ErrType, e.Request, e.URI)
	}
	return e
}

// expectResult reads the RESULT of CALL req; progress says whether it must be progressive.
func (p *rawPeer) expectResult(req uint64, progress bool, args ...any) wire {
	p.t.Helper()
	r := p.expect(codec.RESULT)
	if r.Request != req || (r.Details["progress"] == true) != progress || fmt.Sprintf("%v", r.Args) != fmt.Sprintf("%v", args) {
		p.t.Fatalf("%s: want [RESULT, %d, {progress: %v}, %v], got [RESULT, %d, %v, %v]", p.name, req, progress, args, r.Request, r.Details, r.Args)
	}
	return r
}

// expectInvocation reads an INVOCATION and checks its positional arguments.
func (p *rawPeer) expectInvocation(args ...any) wire {
	p.t.Helper()
	inv := p.expect(codec.INVOCATION)
	if fmt.Sprintf("%v", inv.Args) != fmt.Sprintf("%v", args) {
		p.t.Fatalf("%s: INVOCATION args %v, want %v", p.name, inv.Args, args)
	}
	return inv
}

// expectInterrupt reads INTERRUPT for invocation inv and checks its mode and reason.
func (p *rawPeer) expectInterrupt(inv uint64, mode, reason string) {
	p.t.Helper()
	m := p.expect(codec.INTERRUPT)
	if m.Request != inv || m.Details["mode"] != mode || (reason != "" && m.Details["reason"] != reason) {
		p.t.Fatalf("%s: want [INTERRUPT, %d, {mode: %s, reason: %s}], got [INTERRUPT, %d, %v]", p.name, inv, mode, reason, m.Request, m.Details)
	}
}

// meta calls a meta procedure and returns its RESULT.
func (p *rawPeer) meta(proc string, args []any, kwargs map[string]any) wire {
	p.t.Helper()
	req := p.call(proc, nil, args, kwargs)
	r := p.expect(codec.RESULT)
	if r.Request != req {
		p.t.Fatalf("%s: RESULT for %d, want %d", p.name, r.Request, req)
	}
	return r
}

// autoYield answers every INVOCATION p gets with YIELD [p.name] in a goroutine until p's
// transport closes, and counts them. The goroutine uses p's transport and channel only:
// the rawPeer helpers report to t, which belongs to the test goroutine.
func autoYield(t *testing.T, p *rawPeer) *atomic.Int64 {
	var n atomic.Int64
	p.start()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for r := range p.in {
			if r.w.Type != codec.INVOCATION {
				continue
			}
			n.Add(1)
			args, _ := codec.AppendValue(nil, p.ser, []any{p.name})
			if p.tr.Send(&codec.Message{Type: codec.YIELD, Request: r.w.Request, DictAny: map[string]any{}, Args: args}) != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { p.tr.Close(); <-done })
	return &n
}

// callFor calls procedure and returns the name of the callee that answered (autoYield).
func callFor(p *rawPeer, procedure string) string {
	p.t.Helper()
	req := p.call(procedure, nil, nil, nil)
	r := p.expect(codec.RESULT)
	if r.Request != req || len(r.Args) != 1 {
		p.t.Fatalf("%s: RESULT %d %v for call %d", p.name, r.Request, r.Args, req)
	}
	return r.Args[0].(string)
}

// waitCallees polls wamp.registration.count_callees until reg has n callees.
func waitCallees(p *rawPeer, reg uint64, n uint64) {
	p.t.Helper()
	for deadline := time.Now().Add(3 * time.Second); ; {
		r := p.meta("wamp.registration.count_callees", []any{reg}, nil)
		if r.Args[0] == n {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("registration %d: %v callees, want %d", reg, r.Args[0], n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSharedRegistrationConformance: REGISTER.Options.invoke single, roundrobin, random,
// first, last (ap_rpc_shared_registration.md).
func TestSharedRegistrationConformance(t *testing.T) { conformance(t, sharedRegistrationConformance) }

func sharedRegistrationConformance(t *testing.T, on *targets) {
	n := on.start(t, nil)
	ws, rs := n.WebSocketURL(), n.RawSocketURL()
	caller := joinRaw(t, "caller", ws, codec.JSON, nil)
	// callees registers procedure with policy on three callees (one per serializer,
	// alternating transports) in order a, b, c.
	callees := func(procedure, policy string) (uint64, []*rawPeer) {
		var ps []*rawPeer
		var reg uint64
		for i, ser := range sers {
			url := ws
			if i%2 == 1 {
				url = rs
			}
			p := joinRaw(t, string(rune('a'+i)), url, ser, nil)
			id := p.register(procedure, map[string]any{"invoke": policy})
			if i > 0 && id != reg {
				t.Fatalf("%s: callee %s got registration %d, want the shared %d", policy, p.name, id, reg)
			}
			reg = id
			ps = append(ps, p)
		}
		return reg, ps
	}

	t.Run("single", func(t *testing.T) {
		caller.on(t)
		a := joinRaw(t, "a", rs, codec.MsgPack, nil)
		b := joinRaw(t, "b", ws, codec.CBOR, nil)
		a.register("com.single", map[string]any{"invoke": "single"})
		a.register("com.default", nil)
		for _, proc := range []string{"com.single", "com.default"} {
			for _, opts := range []map[string]any{nil, {"invoke": "single"}, {"invoke": "roundrobin"}} {
				req := b.next()
				b.send(&codec.Message{Type: codec.REGISTER, Request: req, URI: []byte(proc), DictAny: opts}, nil, nil)
				e := b.expect(codec.ERROR)
				if e.ErrType != codec.REGISTER || e.Request != req || e.URI != "wamp.error.procedure_already_exists" {
					t.Fatalf("second REGISTER %s %v: [ERROR, %v, %d, %s]", proc, opts, e.ErrType, e.Request, e.URI)
				}
			}
		}
	})
	t.Run("mixing-policies-refused", func(t *testing.T) {
		caller.on(t)
		a := joinRaw(t, "a", rs, codec.CBOR, nil)
		b := joinRaw(t, "b", ws, codec.MsgPack, nil)
		a.register("com.mixed", map[string]any{"invoke": "first"})
		for _, policy := range []string{"roundrobin", "random", "last", "single"} {
			req := b.next()
			b.send(&codec.Message{Type: codec.REGISTER, Request: req, URI: []byte("com.mixed"),
				DictAny: map[string]any{"invoke": policy}}, nil, nil)
			e := b.expect(codec.ERROR)
			if e.ErrType != codec.REGISTER || e.Request != req || e.URI != "wamp.error.procedure_exists_with_different_invocation_policy" {
				t.Fatalf("REGISTER invoke=%s over first: [ERROR, %v, %d, %s]", policy, e.ErrType, e.Request, e.URI)
			}
		}
	})
	t.Run("roundrobin", func(t *testing.T) {
		caller.on(t)
		_, ps := callees("com.rr", "roundrobin")
		for _, p := range ps {
			autoYield(t, p)
		}
		var got []string
		for i := 0; i < 7; i++ {
			got = append(got, callFor(caller, "com.rr"))
		}
		if fmt.Sprint(got) != "[a b c a b c a]" {
			t.Fatalf("roundrobin order %v, want registration order a b c looping", got)
		}
	})
	t.Run("random", func(t *testing.T) {
		caller.on(t)
		_, ps := callees("com.random", "random")
		var counts []*atomic.Int64
		for _, p := range ps {
			counts = append(counts, autoYield(t, p))
		}
		for i := 0; i < 90; i++ {
			callFor(caller, "com.random")
		}
		for i, c := range counts {
			if c.Load() == 0 {
				t.Fatalf("random: callee %s got none of 90 calls (%d %d %d)", ps[i].name, counts[0].Load(), counts[1].Load(), counts[2].Load())
			}
		}
	})
	// first and last: calls go to one end of the registration order; when that callee
	// leaves, to the next one.
	for _, tc := range []struct {
		policy      string
		leaving     int
		want, after string
	}{{"first", 0, "a", "b"}, {"last", 2, "c", "b"}} {
		t.Run(tc.policy, func(t *testing.T) {
			caller.on(t)
			proc := "com." + tc.policy
			reg, ps := callees(proc, tc.policy)
			for _, p := range ps {
				autoYield(t, p)
			}
			for i := 0; i < 3; i++ {
				if got := callFor(caller, proc); got != tc.want {
					t.Fatalf("%s: call went to %s, want %s", tc.policy, got, tc.want)
				}
			}
			ps[tc.leaving].tr.Close()
			waitCallees(caller, reg, 2)
			if got := callFor(caller, proc); got != tc.after {
				t.Fatalf("%s after %s left: call went to %s, want %s", tc.policy, tc.want, got, tc.after)
			}
		})
	}
	t.Run("last-joins", func(t *testing.T) {
		caller.on(t)
		_, ps := callees("com.last2", "last")
		for _, p := range ps {
			autoYield(t, p)
		}
		// A callee that joins now is the last one.
		d := joinRaw(t, "d", rs, codec.JSON, nil)
		d.register("com.last2", map[string]any{"invoke": "last"})
		autoYield(t, d)
		if got := callFor(caller, "com.last2"); got != "d" {
			t.Fatalf("last after d joined: call went to %s, want d", got)
		}
	})
}

// TestProgressiveCallResultsConformance: receive_progress and YIELD progress=true
// (ap_rpc_progressive_call_results.md).
func TestProgressiveCallResultsConformance(t *testing.T) {
	conformance(t, progressiveCallResultsConformance)
}

func progressiveCallResultsConformance(t *testing.T, on *targets) {
	n := on.start(t, nil)
	caller := joinRaw(t, "caller", n.WebSocketURL(), codec.JSON, nil)
	callee := joinRaw(t, "callee", n.RawSocketURL(), codec.CBOR, nil)
	callee.register("com.stream", nil)

	t.Run("receive_progress", func(t *testing.T) {
		caller.on(t)
		callee.on(t)
		req := caller.call("com.stream", map[string]any{"receive_progress": true}, []any{2010}, nil)
		inv := callee.expectInvocation(2010)
		if inv.Details["receive_progress"] != true {
			t.Fatalf("INVOCATION details %v: want receive_progress=true", inv.Details)
		}
		callee.yield(inv.Request, map[string]any{"progress": true}, []any{"Y2010", 120})
		caller.expectResult(req, true, "Y2010", 120)
		callee.yield(inv.Request, map[string]any{"progress": true}, nil)
		caller.expectResult(req, true)
		callee.yield(inv.Request, nil, []any{"Total", 490})
		caller.expectResult(req, false, "Total", 490)
		// The call is over: a stray YIELD after the final one goes nowhere.
		callee.yield(inv.Request, map[string]any{"progress": true}, []any{"late"})
		caller.expectNothing(100 * time.Millisecond)
	})
	t.Run("progress-then-error", func(t *testing.T) {
		caller.on(t)
		callee.on(t)
		req := caller.call("com.stream", map[string]any{"receive_progress": true}, nil, nil)
		inv := callee.expect(codec.INVOCATION)
		callee.yield(inv.Request, map[string]any{"progress": true}, []any{1})
		caller.expectResult(req, true, 1)
		callee.invocationError(inv.Request, "com.myapp.invalid_revenue_year")
		caller.expectCallError(req, "com.myapp.invalid_revenue_year")
	})
	t.Run("without-receive_progress", func(t *testing.T) {
		caller.on(t)
		callee.on(t)
		// The caller did not ask: the router forwards no progressive RESULT (it drops the
		// progressive YIELDs) and the call ends with the final YIELD.
		req := caller.call("com.stream", nil, []any{1}, nil)
		inv := callee.expectInvocation(1)
		if _, ok := inv.Details["receive_progress"]; ok {
			t.Fatalf("INVOCATION details %v: receive_progress the caller did not ask for", inv.Details)
		}
		callee.yield(inv.Request, map[string]any{"progress": true}, []any{"chunk"})
		caller.expectNothing(100 * time.Millisecond)
		callee.yield(inv.Request, nil, []any{"final"})
		caller.expectResult(req, false, "final")
	})
	t.Run("callee-without-call_canceling", func(t *testing.T) {
		deviation(t, "deliberate: receive_progress goes to callees without call_canceling too (AutobahnJS callees announce progressive_call_results but not call_canceling; docs/features.md)")
		caller.on(t)
		callee.on(t)
		plain := joinRaw(t, "plain", n.WebSocketURL(), codec.MsgPack, map[string]any{"roles": rolesWithout("call_canceling")})
		plain.register("com.stream.plain", nil)
		caller.call("com.stream.plain", map[string]any{"receive_progress": true}, nil, nil)
		inv := plain.expect(codec.INVOCATION)
		if _, ok := inv.Details["receive_progress"]; ok {
			t.Fatalf("INVOCATION details %v: receive_progress to a callee without call_canceling", inv.Details)
		}
	})
	t.Run("caller-leaves", func(t *testing.T) {
		caller.on(t)
		callee.on(t)
		gone := joinRaw(t, "gone", n.RawSocketURL(), codec.MsgPack, nil)
		gone.call("com.stream", map[string]any{"receive_progress": true}, nil, nil)
		inv := callee.expect(codec.INVOCATION)
		callee.yield(inv.Request, map[string]any{"progress": true}, []any{1})
		gone.expect(codec.RESULT)
		gone.tr.Close()
		callee.expectInterrupt(inv.Request, "killnowait", "")
	})
}

// TestProgressiveCallInvocationsConformance: CALL progress=true chunks
// (ap_10_rpc_progressive_call_invocations.md).
func TestProgressiveCallInvocationsConformance(t *testing.T) {
	conformance(t, progressiveCallInvocationsConformance)
}

func progressiveCallInvocationsConformance(t *testing.T, on *targets) {
	n := on.start(t, nil)
	ws, rs := n.WebSocketURL(), n.RawSocketURL()
	caller := joinRaw(t, "caller", ws, codec.MsgPack, nil)
	a := joinRaw(t, "a", rs, codec.JSON, nil)
	b := joinRaw(t, "b", ws, codec.CBOR, nil)
	reg := a.register("com.upload", map[string]any{"invoke": "roundrobin"})
	b.register("com.upload", map[string]any{"invoke": "roundrobin"})

	t.Run("chunks-to-one-callee", func(t *testing.T) {
		caller.on(t)
		a.on(t)
		b.on(t)
		// Round robin would move every new CALL to the next callee; the chunks of one
		// progressive call stay on the callee of the first.
		req := caller.call("com.upload", map[string]any{"progress": true, "disclose_me": true}, []any{"c1"}, nil)
		first := a.expectInvocation("c1")
		if first.Registration != reg || first.Details["progress"] != true || first.Details["caller"] != caller.id {
			t.Fatalf("first INVOCATION reg %d details %v", first.Registration, first.Details)
		}
		caller.send(&codec.Message{Type: codec.CALL, Request: req, URI: []byte("com.upload"),
			DictAny: map[string]any{"progress": true}}, []any{"c2"}, nil)
		inv := a.expectInvocation("c2")
		// Options are frozen at the first CALL: disclose_me holds for every chunk.
		if inv.Request != first.Request || inv.Details["progress"] != true || inv.Details["caller"] != caller.id {
			t.Fatalf("second INVOCATION [%d, %v], want id %d with progress and caller", inv.Request, inv.Details, first.Request)
		}
		caller.send(&codec.Message{Type: codec.CALL, Request: req, URI: []byte("com.upload")}, []any{"c3"}, nil)
		inv = a.expectInvocation("c3")
		if inv.Request != first.Request || inv.Details["progress"] == true {
			t.Fatalf("final INVOCATION [%d, %v], want id %d without progress", inv.Request, inv.Details, first.Request)
		}
		b.expectNothing(50 * time.Millisecond)
		a.yield(inv.Request, nil, []any{"stored"})
		caller.expectResult(req, false, "stored")
		// The next call goes on round robin.
		req = caller.call("com.upload", nil, []any{"x"}, nil)
		inv = b.expectInvocation("x")
		b.yield(inv.Request, nil, nil)
		caller.expectResult(req, false)
	})
	t.Run("callee-without-feature", func(t *testing.T) {
		caller.on(t)
		a.on(t)
		b.on(t)
		for _, missing := range []string{"progressive_call_invocations", "call_canceling"} {
			c := joinRaw(t, "c", rs, codec.CBOR, map[string]any{"roles": rolesWithout(missing)})
			c.register("com.upload.no."+missing, nil)
			req := caller.call("com.upload.no."+missing, map[string]any{"progress": true}, []any{"c1"}, nil)
			caller.expectCallError(req, "wamp.error.feature_not_supported")
			c.expectNothing(50 * time.Millisecond)
		}
	})
	t.Run("caller-without-feature", func(t *testing.T) {
		caller.on(t)
		a.on(t)
		b.on(t)
		// A CALL with progress=true from a caller that did not announce the feature is a
		// protocol error: the session is aborted.
		c := joinRaw(t, "c", ws, codec.JSON, map[string]any{"roles": rolesWithout("progressive_call_invocations")})
		c.call("com.upload", map[string]any{"progress": true}, []any{"c1"}, nil)
		if m := c.expect(codec.ABORT); m.URI != "wamp.error.protocol_violation" {
			t.Fatalf("ABORT %s, want wamp.error.protocol_violation", m.URI)
		}
	})
	t.Run("caller-leaves", func(t *testing.T) {
		caller.on(t)
		a.on(t)
		b.on(t)
		// Progressive call cancellation: INTERRUPT killnowait to the callee.
		c := joinRaw(t, "c", rs, codec.MsgPack, nil)
		c.call("com.upload", map[string]any{"progress": true}, []any{"c1"}, nil)
		callee := a
		inv, ok := a.recv(time.Second)
		if !ok {
			callee = b
			inv = b.expect(codec.INVOCATION)
		}
		c.tr.Close()
		callee.expectInterrupt(inv.Request, "killnowait", "")
	})
}

// TestCallCancelingConformance: CANCEL modes skip, kill, killnowait
// (ap_rpc_call_canceling.md).
func TestCallCancelingConformance(t *testing.T) { conformance(t, callCancelingConformance) }

func callCancelingConformance(t *testing.T, on *targets) {
	n := on.start(t, nil)
	caller := joinRaw(t, "caller", n.RawSocketURL(), codec.CBOR, nil)
	callee := joinRaw(t, "callee", n.WebSocketURL(), codec.JSON, nil)
	plain := joinRaw(t, "plain", n.RawSocketURL(), codec.MsgPack, map[string]any{"roles": rolesWithout("call_canceling")})
	callee.register("com.slow", nil)
	plain.register("com.slow.plain", nil)

	start := func(p *rawPeer, proc string) (req, inv uint64) {
		t.Helper()
		req = caller.call(proc, nil, []any{1}, nil)
		return req, p.expect(codec.INVOCATION).Request
	}
	t.Run("skip", func(t *testing.T) {
		caller.on(t)
		callee.on(t)
		plain.on(t)
		req, inv := start(callee, "com.slow")
		caller.cancel(req, "skip")
		caller.expectCallError(req, "wamp.error.canceled")
		callee.expectNothing(100 * time.Millisecond) // no INTERRUPT
		callee.yield(inv, nil, []any{"late"})        // discarded
		caller.expectNothing(100 * time.Millisecond)
	})
	t.Run("kill-callee-errors", func(t *testing.T) {
		caller.on(t)
		callee.on(t)
		plain.on(t)
		req, inv := start(callee, "com.slow")
		caller.cancel(req, "kill")
		callee.expectInterrupt(inv, "kill", "")
		caller.expectNothing(100 * time.Millisecond) // ERROR only after the callee answers
		callee.invocationError(inv, "wamp.error.canceled")
		caller.expectCallError(req, "wamp.error.canceled")
	})
	t.Run("kill-callee-finishes", func(t *testing.T) {
		caller.on(t)
		callee.on(t)
		plain.on(t)
		req, inv := start(callee, "com.slow")
		caller.cancel(req, "kill")
		callee.expectInterrupt(inv, "kill", "")
		callee.yield(inv, nil, []any{"done anyway"})
		caller.expectResult(req, false, "done anyway")
	})
	t.Run("killnowait", func(t *testing.T) {
		caller.on(t)
		callee.on(t)
		plain.on(t)
		req, inv := start(callee, "com.slow")
		caller.cancel(req, "killnowait")
		caller.expectCallError(req, "wamp.error.canceled")
		callee.expectInterrupt(inv, "killnowait", "")
		callee.invocationError(inv, "wamp.error.canceled") // discarded
		caller.expectNothing(100 * time.Millisecond)
	})
	for _, mode := range []string{"kill", "killnowait"} {
		t.Run(mode+"-callee-without-call_canceling", func(t *testing.T) {
			caller.on(t)
			callee.on(t)
			plain.on(t)
			// The callee cannot be interrupted: the behavior is skip.
			req, inv := start(plain, "com.slow.plain")
			caller.cancel(req, mode)
			caller.expectCallError(req, "wamp.error.canceled")
			plain.expectNothing(100 * time.Millisecond)
			plain.yield(inv, nil, []any{"late"})
			caller.expectNothing(100 * time.Millisecond)
		})
	}
	t.Run("after-the-result", func(t *testing.T) {
		caller.on(t)
		callee.on(t)
		plain.on(t)
		req, inv := start(callee, "com.slow")
		callee.yield(inv, nil, []any{"r"})
		caller.expectResult(req, false, "r")
		caller.cancel(req, "killnowait")
		caller.expectNothing(100 * time.Millisecond)
		callee.expectNothing(50 * time.Millisecond)
	})
}

// TestCallTimeoutConformance: a dealer-initiated timeout is a killnowait cancel for a
// canceling callee and skip otherwise, with wamp.error.timeout (ap_11_rpc_call_timeout.md).
func TestCallTimeoutConformance(t *testing.T) { conformance(t, callTimeoutConformance) }

func callTimeoutConformance(t *testing.T, on *targets) {
	n := on.start(t, nil)
	caller := joinRaw(t, "caller", n.WebSocketURL(), codec.MsgPack, nil)
	callee := joinRaw(t, "callee", n.RawSocketURL(), codec.CBOR, nil)
	plain := joinRaw(t, "plain", n.WebSocketURL(), codec.JSON, map[string]any{"roles": rolesWithout("call_canceling")})
	callee.register("com.slow", nil)
	plain.register("com.slow.plain", nil)
	for _, c := range []struct {
		p    *rawPeer
		proc string
	}{{callee, "com.slow"}, {plain, "com.slow.plain"}} {
		t.Run(c.p.name, func(t *testing.T) {
			caller.on(t)
			callee.on(t)
			plain.on(t)
			began := time.Now()
			req := caller.call(c.proc, map[string]any{"timeout": 150}, nil, nil)
			inv := c.p.expect(codec.INVOCATION)
			caller.expectCallError(req, "wamp.error.timeout")
			if d := time.Since(began); d < 140*time.Millisecond {
				t.Fatalf("timed out after %v, before the 150 ms asked", d)
			}
			if c.p == callee {
				c.p.expectInterrupt(inv.Request, "killnowait", "wamp.error.timeout")
			} else {
				c.p.expectNothing(100 * time.Millisecond)
			}
			c.p.yield(inv.Request, nil, []any{"late"})
			caller.expectNothing(100 * time.Millisecond)
		})
	}
	t.Run("answered-in-time", func(t *testing.T) {
		caller.on(t)
		callee.on(t)
		plain.on(t)
		req := caller.call("com.slow", map[string]any{"timeout": 150}, nil, nil)
		inv := callee.expect(codec.INVOCATION)
		callee.yield(inv.Request, nil, []any{"ok"})
		caller.expectResult(req, false, "ok")
		time.Sleep(200 * time.Millisecond)
		callee.expectNothing(10 * time.Millisecond)
		caller.expectNothing(10 * time.Millisecond)
	})
}
