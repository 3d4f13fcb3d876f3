package node

import (
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/codec"
	"github.com/switchyard-wamp/switchyard/engine"
)

// TestCallerIdentificationConformance: disclose_me puts caller, caller_authid and
// caller_authrole in INVOCATION.Details; a role permission forces it
// (ap_rpc_caller_identification.md, docs/features.md authorization).
func TestCallerIdentificationConformance(t *testing.T) {
	conformance(t, callerIdentificationConformance)
}

func callerIdentificationConformance(t *testing.T, on *targets) {
	perms, err := engine.NewRolePermissions([]engine.Rule{
		{URI: "", Match: "prefix", Allow: engine.Permission{Call: true, Register: true, Publish: true, Subscribe: true}},
		{URI: "com.forced.", Match: "prefix", Allow: engine.Permission{Call: true, Register: true, DiscloseCaller: true}},
	})
	if err != nil {
		t.Fatal(err)
	}
	n := on.start(t, func(c *Config) {
		c.Roles = map[string]map[string]*engine.RolePermissions{"realm1": {"anonymous": perms}}
	})
	caller := joinRaw(t, "caller", n.RawSocketURL(), codec.MsgPack, nil)
	callee := joinRaw(t, "callee", n.WebSocketURL(), codec.CBOR, nil)
	callee.register("com.who", nil)
	callee.register("com.forced.who", nil)
	keys := []string{"caller", "caller_authid", "caller_authrole"}
	for _, c := range []struct {
		name, proc string
		opts       map[string]any
		disclosed  bool
	}{
		{"disclose_me", "com.who", map[string]any{"disclose_me": true}, true},
		{"not-asked", "com.who", nil, false},
		{"disclose_me-false", "com.who", map[string]any{"disclose_me": false}, false},
		{"forced-by-permission", "com.forced.who", nil, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			caller.on(t)
			callee.on(t)
			req := caller.call(c.proc, c.opts, nil, nil)
			inv := callee.expect(codec.INVOCATION)
			if c.disclosed {
				want := map[string]any{"caller": caller.id, "caller_authid": caller.welcome["authid"], "caller_authrole": "anonymous"}
				for _, k := range keys {
					if inv.Details[k] != want[k] {
						t.Fatalf("INVOCATION details %v: %s = %v, want %v", inv.Details, k, inv.Details[k], want[k])
					}
				}
			} else {
				for _, k := range keys {
					if _, ok := inv.Details[k]; ok {
						t.Fatalf("INVOCATION details %v: %s disclosed though not asked", inv.Details, k)
					}
				}
			}
			callee.yield(inv.Request, nil, nil)
			caller.expectResult(req, false)
		})
	}
}

// TestCalleeLeavesConformance: a callee that leaves mid-call ends the call with ERROR
// wamp.error.canceled, also for progressive calls; a caller that leaves mid-call gets its
// invocation interrupted (basic profile "Caller Leaving During RPC Invocation", quoted by
// the progressive call results and invocations sections).
func TestCalleeLeavesConformance(t *testing.T) { conformance(t, calleeLeavesConformance) }

func calleeLeavesConformance(t *testing.T, on *targets) {
	n := on.start(t, nil)
	ws, rs := n.WebSocketURL(), n.RawSocketURL()
	caller := joinRaw(t, "caller", ws, codec.CBOR, nil)
	for _, c := range []struct {
		name string
		run  func(t *testing.T, callee *rawPeer) uint64 // starts the call, returns its request
	}{
		{"plain", func(t *testing.T, callee *rawPeer) uint64 {
			req := caller.call("com.gone", nil, []any{1}, nil)
			callee.expect(codec.INVOCATION)
			return req
		}},
		{"progressive-results", func(t *testing.T, callee *rawPeer) uint64 {
			req := caller.call("com.gone", map[string]any{"receive_progress": true}, nil, nil)
			inv := callee.expect(codec.INVOCATION)
			callee.yield(inv.Request, map[string]any{"progress": true}, []any{"part"})
			caller.expectResult(req, true, "part")
			return req
		}},
		{"progressive-invocations", func(t *testing.T, callee *rawPeer) uint64 {
			req := caller.call("com.gone", map[string]any{"progress": true}, []any{"c1"}, nil)
			callee.expectInvocation("c1")
			return req
		}},
	} {
		for _, leave := range []string{"goodbye", "disconnect"} {
			t.Run(c.name+"/"+leave, func(t *testing.T) {
				caller.on(t)
				callee := joinRaw(t, "callee", rs, codec.JSON, nil)
				callee.register("com.gone", nil)
				req := c.run(t, callee)
				if leave == "goodbye" {
					callee.send(&codec.Message{Type: codec.GOODBYE, URI: []byte("wamp.close.close_realm")}, nil, nil)
					callee.expect(codec.GOODBYE)
				} else {
					callee.tr.Close()
				}
				caller.expectCallError(req, "wamp.error.canceled")
				if c.name == "progressive-invocations" {
					// Later chunks of the ended call go nowhere.
					caller.send(&codec.Message{Type: codec.CALL, Request: req, URI: []byte("com.gone")}, []any{"c2"}, nil)
					caller.expectNothing(50 * time.Millisecond)
				}
			})
		}
	}
	t.Run("caller-leaves", func(t *testing.T) {
		callee := joinRaw(t, "callee", rs, codec.MsgPack, nil)
		callee.register("com.left", nil)
		gone := joinRaw(t, "gone", ws, codec.JSON, nil)
		gone.call("com.left", nil, nil, nil)
		inv := callee.expect(codec.INVOCATION)
		gone.tr.Close()
		callee.expectInterrupt(inv.Request, "killnowait", "")
	})
}

// TestRegistrationMetaAPIConformance: wamp.registration.* procedures, meta events and
// remove_callee with registration revocation (ap_rpc_registration_meta_api.md,
// ap_rpc_registration_revocation.md).
func TestRegistrationMetaAPIConformance(t *testing.T) { conformance(t, registrationMetaAPIConformance) }

func registrationMetaAPIConformance(t *testing.T, on *targets) {
	n := on.start(t, nil)
	ws, rs := n.WebSocketURL(), n.RawSocketURL()
	m := joinRaw(t, "meta", ws, codec.JSON, nil)
	events := []string{"on_create", "on_register", "on_unregister", "on_delete"}
	subs := map[uint64]string{}
	for _, e := range events {
		subs[m.subscribe("wamp.registration."+e, nil)] = e
	}
	// expectMeta reads the next meta event and checks its name and arguments.
	expectMeta := func(event string, session, reg uint64) map[string]any {
		t.Helper()
		ev := m.expect(codec.EVENT)
		if subs[ev.Subscription] != event || len(ev.Args) != 2 || ev.Args[0] != session {
			t.Fatalf("want %s [%d, ...], got %s %v", event, session, subs[ev.Subscription], ev.Args)
		}
		if event == "on_create" {
			d, _ := ev.Args[1].(map[string]any)
			return d
		}
		if ev.Args[1] != reg {
			t.Fatalf("%s registration %v, want %d", event, ev.Args[1], reg)
		}
		return nil
	}
	a := joinRaw(t, "a", rs, codec.MsgPack, nil)
	b := joinRaw(t, "b", ws, codec.CBOR, map[string]any{"roles": rolesWithout("registration_revocation")})

	reg := a.register("com.meta.p", map[string]any{"invoke": "roundrobin"})
	d := expectMeta("on_create", a.id, 0)
	if d["id"] != reg || d["uri"] != "com.meta.p" || d["match"] != "exact" || d["invoke"] != "roundrobin" {
		t.Fatalf("on_create details %v", d)
	}
	if _, err := time.Parse(time.RFC3339, d["created"].(string)); err != nil {
		t.Fatalf("on_create created %v: %v", d["created"], err)
	}
	expectMeta("on_register", a.id, reg)
	b.register("com.meta.p", map[string]any{"invoke": "roundrobin"})
	expectMeta("on_register", b.id, reg) // no on_create: the registration exists
	preg := b.register("com.meta.", map[string]any{"match": "prefix"})
	expectMeta("on_create", b.id, 0)
	expectMeta("on_register", b.id, preg)
	wreg := a.register("com.meta..w", map[string]any{"match": "wildcard"})
	expectMeta("on_create", a.id, 0)
	expectMeta("on_register", a.id, wreg)

	c := joinRaw(t, "c", rs, codec.CBOR, nil)
	l := c.meta("wamp.registration.list", nil, nil).Args[0].(map[string]any)
	if !sameIDs(l["exact"], reg) || !sameIDs(l["prefix"], preg) || !sameIDs(l["wildcard"], wreg) {
		t.Fatalf("list %v, want exact [%d] prefix [%d] wildcard [%d]", l, reg, preg, wreg)
	}
	for _, q := range []struct {
		proc string
		args []any
		want any
	}{
		{"wamp.registration.lookup", []any{"com.meta.p"}, reg},
		{"wamp.registration.lookup", []any{"com.meta.p", map[string]any{"match": "exact"}}, reg},
		{"wamp.registration.lookup", []any{"com.meta.", map[string]any{"match": "prefix"}}, preg},
		{"wamp.registration.lookup", []any{"com.meta..w", map[string]any{"match": "wildcard"}}, wreg},
		{"wamp.registration.lookup", []any{"com.meta."}, nil}, // exact by default
		{"wamp.registration.lookup", []any{"com.unknown"}, nil},
		{"wamp.registration.match", []any{"com.meta.p"}, reg},
		{"wamp.registration.match", []any{"com.meta.q"}, preg},
		{"wamp.registration.match", []any{"org.other"}, nil},
		{"wamp.registration.count_callees", []any{reg}, uint64(2)},
		{"wamp.registration.count_callees", []any{preg}, uint64(1)},
	} {
		if r := c.meta(q.proc, q.args, nil); len(r.Args) != 1 || r.Args[0] != q.want {
			t.Fatalf("%s %v: %v, want [%v]", q.proc, q.args, r.Args, q.want)
		}
	}
	if r := c.meta("wamp.registration.list_callees", []any{reg}, nil); !sameIDs(r.Args[0], a.id, b.id) {
		t.Fatalf("list_callees %v, want [%d %d]", r.Args, a.id, b.id)
	}
	g := c.meta("wamp.registration.get", []any{preg}, nil).Args[0].(map[string]any)
	if g["id"] != preg || g["uri"] != "com.meta." || g["match"] != "prefix" || g["invoke"] != "single" || g["created"] == nil {
		t.Fatalf("get %v", g)
	}
	for _, proc := range []string{"get", "list_callees", "count_callees"} {
		req := c.call("wamp.registration."+proc, nil, []any{uint64(424242)}, nil)
		c.expectCallError(req, "wamp.error.no_such_registration")
	}

	// remove_callee: a (announced registration_revocation) is told, b is not.
	c.meta("wamp.registration.remove_callee", []any{reg, a.id}, map[string]any{"reason": "moving endpoint"})
	u := a.expect(codec.UNREGISTERED)
	if u.Request != 0 || u.Details["registration"] != reg || u.Details["reason"] != "moving endpoint" {
		t.Fatalf("revocation [UNREGISTERED, %d, %v], want [67, 0, {registration: %d, reason: moving endpoint}]", u.Request, u.Details, reg)
	}
	expectMeta("on_unregister", a.id, reg)
	c.meta("wamp.registration.remove_callee", []any{reg, b.id}, nil)
	b.expectNothing(50 * time.Millisecond)
	expectMeta("on_unregister", b.id, reg)
	expectMeta("on_delete", b.id, reg)
	if r := c.meta("wamp.registration.lookup", []any{"com.meta.p"}, nil); r.Args[0] != nil {
		t.Fatalf("lookup after the last callee was removed: %v", r.Args)
	}
	req := c.call("wamp.registration.remove_callee", nil, []any{preg, a.id}, nil)
	c.expectCallError(req, "wamp.error.no_such_registration")

	// UNREGISTER, and a callee leaving, end with on_unregister then on_delete.
	ureq := b.next()
	b.send(&codec.Message{Type: codec.UNREGISTER, Request: ureq, Registration: preg}, nil, nil)
	if r := b.expect(codec.UNREGISTERED); r.Request != ureq {
		t.Fatalf("UNREGISTERED for %d, want %d", r.Request, ureq)
	}
	expectMeta("on_unregister", b.id, preg)
	expectMeta("on_delete", b.id, preg)
	a.tr.Close()
	expectMeta("on_unregister", a.id, wreg)
	expectMeta("on_delete", a.id, wreg)
	m.expectNothing(50 * time.Millisecond)
}

// sameIDs reports whether list (a decoded []any) holds exactly ids, in any order.
func sameIDs(list any, ids ...uint64) bool {
	l, _ := list.([]any)
	if len(l) != len(ids) {
		return false
	}
	for _, id := range ids {
		found := false
		for _, v := range l {
			found = found || v == id
		}
		if !found {
			return false
		}
	}
	return true
}
