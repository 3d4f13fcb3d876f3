package node

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/codec"
)

// Meta API conformance over real sockets: subscription and session meta procedures and
// events, subscription revocation and testaments, as wamp-proto rfc/text/advanced says.

// callOK calls procedure and returns its RESULT, which must be p's next message.
func (p *rawPeer) callOK(procedure string, args []any, kwargs map[string]any) wire {
	p.t.Helper()
	req := p.call(procedure, nil, args, kwargs)
	w := p.expect(codec.RESULT)
	if w.Request != req {
		p.t.Fatalf("%s: RESULT for %d, want %d", p.name, w.Request, req)
	}
	return w
}

// callErr calls procedure and checks that the answer is ERROR uri for this CALL.
func (p *rawPeer) callErr(procedure string, args []any, kwargs map[string]any, uri string) {
	p.t.Helper()
	req := p.call(procedure, nil, args, kwargs)
	w := p.expect(codec.ERROR)
	if w.Request != req || w.ErrType != codec.CALL || w.URI != uri {
		p.t.Fatalf("%s: %s: ERROR %v %d %s, want CALL %d %s", p.name, procedure, w.ErrType, w.Request, w.URI, req, uri)
	}
}

// leave sends GOODBYE and waits for the router's GOODBYE wamp.close.goodbye_and_out.
func (p *rawPeer) leave() {
	p.t.Helper()
	p.send(&codec.Message{Type: codec.GOODBYE, URI: []byte("wamp.close.normal")}, nil, nil)
	if w := p.expect(codec.GOODBYE); w.URI != "wamp.close.goodbye_and_out" {
		p.t.Fatalf("%s: GOODBYE %s", p.name, w.URI)
	}
}

// killed reads the GOODBYE a wamp.session.kill* sends, checks reason and details, and
// answers it.
func (p *rawPeer) killed(reason string, details map[string]any) {
	p.t.Helper()
	w := p.expect(codec.GOODBYE)
	if w.URI != reason || fmt.Sprint(w.Details) != fmt.Sprint(details) {
		p.t.Fatalf("%s: GOODBYE %s %v, want %s %v", p.name, w.URI, w.Details, reason, details)
	}
	p.send(&codec.Message{Type: codec.GOODBYE, URI: []byte("wamp.close.goodbye_and_out")}, nil, nil)
}

// metaEvent reads the next EVENT on sub and checks its details.topic (unless topic is
// "") and its positional arguments: ids by value, "_" for any value.
func (p *rawPeer) metaEvent(sub uint64, topic string, args ...any) wire {
	p.t.Helper()
	ev := p.event(sub)
	ok := (topic == "" || ev.Details["topic"] == topic) && len(ev.Args) == len(args)
	for i := 0; ok && i < len(args); i++ {
		switch want := args[i].(type) {
		case uint64:
			ok = num(ev.Args[i]) == want
		case string:
			ok = want == "_" || ev.Args[i] == want
		}
	}
	if !ok {
		p.t.Fatalf("%s: EVENT %v %v, want %s %v", p.name, ev.Details["topic"], ev.Args, topic, args)
	}
	return ev
}

// checkSubDetails checks a SubscriptionDetails dict {id, created, uri, match}.
func checkSubDetails(t *testing.T, v any, id uint64, uri, match string) {
	t.Helper()
	d, _ := v.(map[string]any)
	created, _ := d["created"].(string)
	if _, err := time.Parse(time.RFC3339Nano, created); err != nil || num(d["id"]) != id || d["uri"] != uri ||
		d["match"] != match || len(d) != 4 {
		t.Fatalf("SubscriptionDetails %v, want id %d uri %s match %s and an ISO 8601 created", v, id, uri, match)
	}
}

// TestConformanceSubscriptionMetaAPI: wamp.subscription.on_create / on_subscribe /
// on_unsubscribe / on_delete with (session, details|id) in the spec's order, and list,
// lookup, match, get, list_subscribers, count_subscribers over the wire.
func TestConformanceSubscriptionMetaAPI(t *testing.T) { conformance(t, conformanceSubscriptionMetaAPI) }

func conformanceSubscriptionMetaAPI(t *testing.T, on *targets) {
	n := on.start(t, nil)
	w := joinRaw(t, "watcher", n.WebSocketURL(), codec.JSON, nil)
	const meta = "wamp.subscription.on_"
	wsub := w.subscribe(meta, map[string]any{"match": "prefix"})
	// The watcher's own subscription is the first it hears of.
	checkSubDetails(t, w.metaEvent(wsub, meta+"create", w.id, "_").Args[1], wsub, meta, "prefix")
	w.metaEvent(wsub, meta+"subscribe", w.id, wsub)

	a := joinRaw(t, "a", n.RawSocketURL(), codec.MsgPack, nil)
	b := joinRaw(t, "b", n.WebSocketURL(), codec.CBOR, nil)
	sub := a.subscribe("com.m.x", nil)
	checkSubDetails(t, w.metaEvent(wsub, meta+"create", a.id, "_").Args[1], sub, "com.m.x", "exact")
	w.metaEvent(wsub, meta+"subscribe", a.id, sub)
	if b.subscribe("com.m.x", nil) != sub {
		t.Fatal("second subscriber, new subscription")
	}
	w.metaEvent(wsub, meta+"subscribe", b.id, sub) // no on_create
	psub := b.subscribe("com.m.", map[string]any{"match": "prefix"})
	w.metaEvent(wsub, meta+"create", b.id, "_")
	w.metaEvent(wsub, meta+"subscribe", b.id, psub)
	wc := b.subscribe("com..x", map[string]any{"match": "wildcard"})
	w.metaEvent(wsub, meta+"create", b.id, "_")
	w.metaEvent(wsub, meta+"subscribe", b.id, wc)

	c := joinRaw(t, "c", n.RawSocketURL(), codec.JSON, nil)
	lists, _ := c.callOK("wamp.subscription.list", nil, nil).Args[0].(map[string]any)
	if fmt.Sprint(ids(lists["exact"])) != fmt.Sprint([]uint64{sub}) || fmt.Sprint(ids(lists["prefix"])) != fmt.Sprint(sortedIDs(wsub, psub)) ||
		fmt.Sprint(ids(lists["wildcard"])) != fmt.Sprint([]uint64{wc}) || len(lists) != 3 {
		t.Fatalf("list %v; exact %d, prefix %d %d, wildcard %d", lists, sub, wsub, psub, wc)
	}
	for _, tc := range []struct {
		args []any
		want any
	}{
		{[]any{"com.m.x"}, sub},
		{[]any{"com.m.x", map[string]any{"match": "exact"}}, sub},
		{[]any{"com.m.", map[string]any{"match": "prefix"}}, psub},
		{[]any{"com..x", map[string]any{"match": "wildcard"}}, wc},
		{[]any{"com.m.x", map[string]any{"match": "prefix"}}, nil},
		{[]any{"com.unknown"}, nil},
	} {
		if r := c.callOK("wamp.subscription.lookup", tc.args, nil); len(r.Args) != 1 || fmt.Sprint(r.Args[0]) != fmt.Sprint(tc.want) {
			t.Fatalf("lookup %v: %v, want [%v]", tc.args, r.Args, tc.want)
		}
	}
	if r := c.callOK("wamp.subscription.match", []any{"com.m.x"}, nil); fmt.Sprint(ids(r.Args[0])) != fmt.Sprint(sortedIDs(sub, psub, wc)) {
		t.Fatalf("match: %v, want %d %d %d", r.Args, sub, psub, wc)
	}
	if r := c.callOK("wamp.subscription.match", []any{"org.none"}, nil); len(r.Args) != 1 || r.Args[0] != nil {
		t.Fatalf("match nothing: %v, want [null]", r.Args)
	}
	checkSubDetails(t, c.callOK("wamp.subscription.get", []any{sub}, nil).Args[0], sub, "com.m.x", "exact")
	checkSubDetails(t, c.callOK("wamp.subscription.get", []any{psub}, nil).Args[0], psub, "com.m.", "prefix")
	if r := c.callOK("wamp.subscription.list_subscribers", []any{sub}, nil); fmt.Sprint(ids(r.Args[0])) != fmt.Sprint(sortedIDs(a.id, b.id)) {
		t.Fatalf("list_subscribers: %v, want %d %d", r.Args, a.id, b.id)
	}
	if r := c.callOK("wamp.subscription.count_subscribers", []any{sub}, nil); len(r.Args) != 1 || num(r.Args[0]) != 2 {
		t.Fatalf("count_subscribers: %v", r.Args)
	}
	for _, proc := range []string{"get", "list_subscribers", "count_subscribers"} {
		c.callErr("wamp.subscription."+proc, []any{uint64(123456789)}, nil, "wamp.error.no_such_subscription")
	}

	a.send(&codec.Message{Type: codec.UNSUBSCRIBE, Request: a.next(), Subscription: sub}, nil, nil)
	a.expect(codec.UNSUBSCRIBED)
	w.metaEvent(wsub, meta+"unsubscribe", a.id, sub)
	w.sync() // b still subscribed: no on_delete
	b.send(&codec.Message{Type: codec.UNSUBSCRIBE, Request: b.next(), Subscription: sub}, nil, nil)
	b.expect(codec.UNSUBSCRIBED)
	w.metaEvent(wsub, meta+"unsubscribe", b.id, sub)
	w.metaEvent(wsub, meta+"delete", b.id, sub)
	// Leaving removes b from its two pattern subscriptions: on_unsubscribe before on_delete each.
	b.leave()
	var order []string
	for range 4 {
		ev := w.event(wsub)
		order = append(order, fmt.Sprintf("%v %v", ev.Details["topic"], ev.Args))
	}
	for _, s := range []uint64{psub, wc} {
		u := slices.Index(order, fmt.Sprintf("%sunsubscribe [%d %d]", meta, b.id, s))
		d := slices.Index(order, fmt.Sprintf("%sdelete [%d %d]", meta, b.id, s))
		if u < 0 || d < u {
			t.Fatalf("on leave: %v", order)
		}
	}
	if r := c.callOK("wamp.subscription.lookup", []any{"com.m.x"}, nil); r.Args[0] != nil {
		t.Fatalf("deleted subscription still found: %v", r.Args)
	}
}

// TestConformanceSubscriptionRevocation: wamp.subscription.remove_subscriber sends
// [UNSUBSCRIBED, 0, {subscription, reason}] to a subscriber that announced
// subscription_revocation, nothing to one that did not; both stop getting events and
// wamp.subscription.on_unsubscribe tells about both.
func TestConformanceSubscriptionRevocation(t *testing.T) {
	conformance(t, conformanceSubscriptionRevocation)
}

func conformanceSubscriptionRevocation(t *testing.T, on *targets) {
	n := on.start(t, nil)
	w := joinRaw(t, "watcher", n.WebSocketURL(), codec.CBOR, nil)
	wsub := w.subscribe("wamp.subscription.on_unsubscribe", nil)
	a := joinRaw(t, "a", n.WebSocketURL(), codec.MsgPack, nil)
	roles := allFeatures()
	delete(roles["subscriber"].(map[string]any)["features"].(map[string]any), "subscription_revocation")
	b := joinRaw(t, "b", n.RawSocketURL(), codec.CBOR, map[string]any{"roles": roles})
	c := joinRaw(t, "admin", n.RawSocketURL(), codec.JSON, nil)
	sub := a.subscribe("com.rv", nil)
	b.subscribe("com.rv", nil)

	if r := c.callOK("wamp.subscription.remove_subscriber", []any{sub, a.id}, map[string]any{"reason": "com.example.revoked"}); r.Args != nil {
		t.Fatalf("remove_subscriber result %v", r.Args)
	}
	u := a.expect(codec.UNSUBSCRIBED)
	if u.Request != 0 || num(u.Details["subscription"]) != sub || u.Details["reason"] != "com.example.revoked" || len(u.Details) != 2 {
		t.Fatalf("a: UNSUBSCRIBED %d %v, want [35, 0, {subscription: %d, reason: com.example.revoked}]", u.Request, u.Details, sub)
	}
	w.metaEvent(wsub, "", a.id, sub)

	c.callOK("wamp.subscription.remove_subscriber", []any{sub, b.id}, nil)
	b.sync() // no UNSUBSCRIBED: b did not announce subscription_revocation
	w.metaEvent(wsub, "", b.id, sub)

	c.publishAcked("com.rv", nil, []any{1}, nil)
	a.sync()
	b.sync()
	c.callErr("wamp.subscription.remove_subscriber", []any{sub, a.id}, nil, "wamp.error.no_such_subscription")
	c.callErr("wamp.subscription.remove_subscriber", []any{sub, uint64(987654321)}, nil, "wamp.error.no_such_session")
}

// TestConformanceSessionMetaAPI: on_join (SessionDetails) and on_leave (session, authid,
// authrole); count and list with an authrole filter; get; kill (GOODBYE with the given
// reason and message, never the caller itself), kill_by_authid, kill_by_authrole and
// kill_all (default reason wamp.close.normal, result: how many were closed).
func TestConformanceSessionMetaAPI(t *testing.T) { conformance(t, conformanceSessionMetaAPI) }

func conformanceSessionMetaAPI(t *testing.T, on *targets) {
	n := authNode(t, on, nil)
	w := joinRaw(t, "watcher", n.WebSocketURL(), codec.CBOR, nil)
	jsub, lsub := w.subscribe("wamp.session.on_join", nil), w.subscribe("wamp.session.on_leave", nil)
	joined := func(p *rawPeer, authid, authrole, method string) {
		t.Helper()
		ev := w.event(jsub)
		d, _ := ev.Args[0].(map[string]any)
		if len(ev.Args) != 1 || num(d["session"]) != p.id || d["authid"] != authid || d["authrole"] != authrole ||
			d["authmethod"] != method || d["authprovider"] == nil {
			t.Fatalf("on_join %v, want session %d %s %s %s", ev.Args, p.id, authid, authrole, method)
		}
	}
	left := func(p *rawPeer, authid, authrole string) {
		t.Helper()
		if ev := w.event(lsub); fmt.Sprint(ev.Args) != fmt.Sprint([]any{p.id, authid, authrole}) {
			t.Fatalf("on_leave %v, want [%d %s %s]", ev.Args, p.id, authid, authrole)
		}
	}
	joe := joinTicket(t, "joe", n.RawSocketURL(), codec.MsgPack, "joe")
	joined(joe, "joe", "user", "ticket")
	ann := joinTicket(t, "ann", n.WebSocketURL(), codec.JSON, "ann")
	joined(ann, "ann", "admin", "ticket")
	c := joinRaw(t, "caller", n.RawSocketURL(), codec.JSON, nil)
	joined(c, c.welcome["authid"].(string), "guest", "anonymous")

	all := sortedIDs(w.id, joe.id, ann.id, c.id)
	for _, tc := range []struct {
		args []any
		want []uint64
	}{
		{nil, all},
		{[]any{[]any{"user", "admin"}}, sortedIDs(joe.id, ann.id)},
		{[]any{[]any{"admin"}}, []uint64{ann.id}},
		{[]any{[]any{"nobody"}}, []uint64{}},
	} {
		if r := c.callOK("wamp.session.count", tc.args, nil); len(r.Args) != 1 || num(r.Args[0]) != uint64(len(tc.want)) {
			t.Fatalf("count %v: %v, want %d", tc.args, r.Args, len(tc.want))
		}
		if r := c.callOK("wamp.session.list", tc.args, nil); fmt.Sprint(ids(r.Args[0])) != fmt.Sprint(tc.want) {
			t.Fatalf("list %v: %v, want %v", tc.args, r.Args, tc.want)
		}
	}
	d, _ := c.callOK("wamp.session.get", []any{joe.id}, nil).Args[0].(map[string]any)
	if num(d["session"]) != joe.id || d["authid"] != "joe" || d["authrole"] != "user" || d["authmethod"] != "ticket" || d["authprovider"] == nil {
		t.Fatalf("get: %v", d)
	}
	c.callErr("wamp.session.get", []any{uint64(987654321)}, nil, "wamp.error.no_such_session")
	c.callErr("wamp.session.kill", []any{uint64(987654321)}, nil, "wamp.error.no_such_session")
	c.callErr("wamp.session.kill", []any{c.id}, nil, "wamp.error.no_such_session")
	c.callErr("wamp.session.kill", []any{joe.id}, map[string]any{"reason": "not a uri"}, "wamp.error.invalid_uri")

	c.callOK("wamp.session.kill", []any{joe.id}, map[string]any{"reason": "com.example.kicked", "message": "go away"})
	joe.killed("com.example.kicked", map[string]any{"message": "go away"})
	left(joe, "joe", "user")

	if r := c.callOK("wamp.session.kill_by_authid", []any{"ann"}, nil); fmt.Sprint(r.Args) != "[1]" {
		t.Fatalf("kill_by_authid: %v", r.Args)
	}
	ann.killed("wamp.close.normal", map[string]any{})
	left(ann, "ann", "admin")

	joe2 := joinTicket(t, "joe2", n.WebSocketURL(), codec.CBOR, "joe")
	joined(joe2, "joe", "user", "ticket")
	bob := joinTicket(t, "bob", n.RawSocketURL(), codec.JSON, "bob")
	joined(bob, "bob", "user", "ticket")
	if r := c.callOK("wamp.session.kill_by_authrole", []any{"user"}, map[string]any{"message": "role gone"}); fmt.Sprint(r.Args) != "[2]" {
		t.Fatalf("kill_by_authrole: %v", r.Args)
	}
	joe2.killed("wamp.close.normal", map[string]any{"message": "role gone"})
	bob.killed("wamp.close.normal", map[string]any{"message": "role gone"})
	got := map[uint64]bool{}
	for range 2 {
		got[num(w.event(lsub).Args[0])] = true
	}
	if !got[joe2.id] || !got[bob.id] {
		t.Fatalf("on_leave for %v, want %d %d", got, joe2.id, bob.id)
	}
	// The caller's own authrole: everyone else with it goes, the caller stays.
	if r := c.callOK("wamp.session.kill_by_authrole", []any{"guest"}, map[string]any{"reason": "com.example.bye"}); fmt.Sprint(r.Args) != "[1]" {
		t.Fatalf("kill_by_authrole guest: %v", r.Args)
	}
	w.killed("com.example.bye", map[string]any{})

	x := joinRaw(t, "x", n.WebSocketURL(), codec.MsgPack, nil)
	if r := c.callOK("wamp.session.kill_all", nil, nil); fmt.Sprint(r.Args) != "[1]" {
		t.Fatalf("kill_all: %v", r.Args)
	}
	x.killed("wamp.close.normal", map[string]any{})
	if r := c.callOK("wamp.session.count", nil, nil); fmt.Sprint(r.Args) != "[1]" {
		t.Fatalf("count after kill_all: %v", r.Args)
	}
}

// TestConformanceTestaments: wamp.session.add_testament(topic, args, kwargs) with
// ArgumentsKw scope "destroyed" (default) or "detached" and flush_testaments(scope):
// the testaments are published when the session says GOODBYE and when its transport is
// lost, detached first, each scope in the order added; flushed ones never.
func TestConformanceTestaments(t *testing.T) { conformance(t, conformanceTestaments) }

func conformanceTestaments(t *testing.T, on *targets) {
	n := on.start(t, nil)
	w := joinRaw(t, "watcher", n.WebSocketURL(), codec.JSON, nil)
	gone := w.subscribe("com.gone", nil)
	expectTestaments := func(want ...string) {
		t.Helper()
		for _, s := range want {
			if ev := w.event(gone); fmt.Sprint(ev.Args, ev.Kwargs) != s {
				t.Fatalf("testament %v %v, want %s", ev.Args, ev.Kwargs, s)
			}
		}
	}

	a := joinRaw(t, "a", n.RawSocketURL(), codec.MsgPack, nil)
	if r := a.callOK("wamp.session.add_testament", []any{"com.gone", []any{"a-destroyed-1"}, map[string]any{"who": "a"}}, nil); r.Args != nil || r.Kwargs != nil {
		t.Fatalf("add_testament returned %v %v", r.Args, r.Kwargs)
	}
	a.callOK("wamp.session.add_testament", []any{"com.gone", []any{"a-detached"}, map[string]any{}}, map[string]any{"scope": "detached"})
	a.callOK("wamp.session.add_testament", []any{"com.gone", []any{"a-destroyed-2"}, map[string]any{}}, map[string]any{"scope": "destroyed"})
	w.sync()
	a.leave()
	expectTestaments("[a-detached] map[]", "[a-destroyed-1] map[who:a]", "[a-destroyed-2] map[]")

	b := joinRaw(t, "b", n.WebSocketURL(), codec.CBOR, nil)
	b.callOK("wamp.session.add_testament", []any{"com.gone", []any{"b-flushed-destroyed"}, map[string]any{}}, nil)
	if r := b.callOK("wamp.session.flush_testaments", nil, nil); r.Args != nil {
		t.Fatalf("flush_testaments returned %v", r.Args)
	}
	b.callOK("wamp.session.add_testament", []any{"com.gone", []any{"b-flushed-detached"}, map[string]any{}}, map[string]any{"scope": "detached"})
	b.callOK("wamp.session.flush_testaments", nil, map[string]any{"scope": "detached"})
	b.callOK("wamp.session.add_testament", []any{"com.gone", []any{"b-destroyed"}, map[string]any{}}, nil)
	b.callOK("wamp.session.add_testament", []any{"com.gone", []any{"b-detached"}, map[string]any{}}, map[string]any{"scope": "detached"})
	w.sync()
	b.tr.Close() // transport lost, no GOODBYE
	// A flushed testament would come before the kept one of its scope.
	expectTestaments("[b-detached] map[]", "[b-destroyed] map[]")
}

// TestConformanceTestamentPublishOptions: add_testament's ArgumentsKw publish_options are
// the testament's Publish.Options (here: exclude the watcher, disclose the publisher).
func TestConformanceTestamentPublishOptions(t *testing.T) {
	conformance(t, conformanceTestamentPublishOptions)
}

func conformanceTestamentPublishOptions(t *testing.T, on *targets) {
	n := on.start(t, nil)
	w1 := joinRaw(t, "w1", n.WebSocketURL(), codec.JSON, nil)
	w2 := joinRaw(t, "w2", n.RawSocketURL(), codec.CBOR, nil)
	w1.subscribe("com.gone", nil)
	s2 := w2.subscribe("com.gone", nil)
	a := joinRaw(t, "a", n.RawSocketURL(), codec.MsgPack, nil)
	a.callOK("wamp.session.add_testament", []any{"com.gone", []any{"bye"}, map[string]any{}},
		map[string]any{"publish_options": map[string]any{"exclude": []any{w1.id}, "disclose_me": true}})
	a.leave()
	if ev := w2.event(s2); ev.Args[0] != "bye" || num(ev.Details["publisher"]) != a.id {
		t.Fatalf("w2: EVENT.Details %v args %v, want publisher %d", ev.Details, ev.Args, a.id)
	}
	w1.expectNothing(200 * time.Millisecond)
}

// TestConformanceKillAllQuiet: "Closing all sessions in the realm will not generate
// session meta events or testament events" (wamp.session.kill_all), even for the caller,
// who stays.
func TestConformanceKillAllQuiet(t *testing.T) { conformance(t, conformanceKillAllQuiet) }

func conformanceKillAllQuiet(t *testing.T, on *targets) {
	n := on.start(t, nil)
	c := joinRaw(t, "caller", n.WebSocketURL(), codec.JSON, nil)
	c.subscribe("wamp.session.on_leave", nil)
	c.subscribe("com.gone", nil)
	x := joinRaw(t, "x", n.RawSocketURL(), codec.CBOR, nil)
	x.callOK("wamp.session.add_testament", []any{"com.gone", []any{"x"}, map[string]any{}}, nil)
	if r := c.callOK("wamp.session.kill_all", nil, nil); fmt.Sprint(r.Args) != "[1]" {
		t.Fatalf("kill_all: %v", r.Args)
	}
	x.killed("wamp.close.normal", map[string]any{})
	c.expectNothing(200 * time.Millisecond)
}
