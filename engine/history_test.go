package engine

import (
	"fmt"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/codec"
)

func publishTo(t *testing.T, s *Session, topic string, args []any, opts func(*codec.Details)) {
	t.Helper()
	m := codec.Message{Type: codec.PUBLISH, Request: 1, URI: []byte(topic)}
	if args != nil {
		m.Args = raw(t, s.ser, args)
	}
	if opts != nil {
		opts(&m.Details)
	}
	s.Receive(&m)
}

func subscribeTo(t *testing.T, s *Session, p *memPeer, topic, policy string) uint64 {
	t.Helper()
	m := codec.Message{Type: codec.SUBSCRIBE, Request: 5, URI: []byte(topic)}
	if policy != "" {
		m.Details.Has, m.Details.Match = codec.KeyMatch, []byte(policy)
	}
	s.Receive(&m)
	return p.one(t, codec.SUBSCRIBED).Subscription
}

// getEvents calls wamp.subscription.get_events and returns the events' first argument
// (or the error URI).
func getEvents(t *testing.T, s *Session, p *memPeer, args []any, kwargs map[string]any) ([]any, []map[string]any, string) {
	t.Helper()
	r := metaCall(t, s, p, "wamp.subscription.get_events", args, kwargs)
	if r.Type == codec.ERROR {
		return nil, nil, string(r.URI)
	}
	list, _ := value(t, s.ser, r.Args).([]any)
	kw := value(t, s.ser, r.Kwargs).(map[string]any)
	if kw["count"] != uint64(len(list)) {
		t.Fatalf("kwargs %v for %d events", kw, len(list))
	}
	var firsts []any
	var evs []map[string]any
	for _, e := range list {
		ev := e.(map[string]any)
		evs = append(evs, ev)
		a, _ := ev["args"].([]any)
		if len(a) > 0 {
			firsts = append(firsts, a[0])
		} else {
			firsts = append(firsts, nil)
		}
	}
	return firsts, evs, ""
}

func TestEventHistory(t *testing.T) {
	rl := NewRouter(nil).AddRealm("realm1")
	if err := rl.SetStore(StoreConfig{History: []HistoryRule{
		{URI: "com.log.auth", Limit: 3},
		{URI: "com.log.", Match: "prefix", Limit: 10},
		{URI: "bad.", Match: "nope", Limit: 1},
	}}); err == nil {
		t.Fatal("bad match accepted")
	}
	if err := rl.SetStore(StoreConfig{History: []HistoryRule{
		{URI: "com.log.auth", Limit: 3},
		{URI: "com.log.", Match: "prefix", Limit: 10},
	}}); err != nil {
		t.Fatal(err)
	}
	pub, _ := join(t, rl, codec.JSON)
	sub, sp := join(t, rl, codec.MsgPack)
	exact := subscribeTo(t, sub, sp, "com.log.auth", "")
	pattern := subscribeTo(t, sub, sp, "com.log.", "prefix")
	other := subscribeTo(t, sub, sp, "com.other", "")
	before := time.Now()
	for i := 1; i <= 5; i++ {
		publishTo(t, pub, "com.log.auth", []any{uint64(i)}, nil)
	}
	publishTo(t, pub, "com.log.basket", []any{"b"}, func(d *codec.Details) {
		d.Has, d.DiscloseMe = codec.KeyDiscloseMe, true
	})
	publishTo(t, pub, "com.other", []any{"x"}, nil)
	// Filtered by session id: not stored (spec).
	publishTo(t, pub, "com.log.auth", []any{"secret"}, func(d *codec.Details) {
		d.Has, d.Exclude = codec.KeyExclude, raw(t, codec.JSON, []any{uint64(1)})
	})
	// Filtered by authrole: stored, and hidden from requesters it excludes.
	publishTo(t, pub, "com.log.basket", []any{"admins"}, func(d *codec.Details) {
		d.Has, d.EligibleAuthRole = codec.KeyEligibleAuthRole, raw(t, codec.JSON, []any{"admin"})
	})
	sp.take(t)

	got, evs, _ := getEvents(t, sub, sp, []any{exact}, nil)
	if fmt.Sprint(got) != "[3 4 5]" {
		t.Fatalf("exact history %v, want the last 3", got)
	}
	ev := evs[0]
	if ev["subscription"] != exact || ev["publication"] == nil || len(ev["details"].(map[string]any)) != 0 {
		t.Fatalf("event %v", ev)
	}
	ts, err := time.Parse(time.RFC3339, ev["timestamp"].(string))
	if err != nil || ts.Before(before.Truncate(time.Millisecond)) {
		t.Fatalf("timestamp %v: %v", ev["timestamp"], err)
	}
	got, evs, _ = getEvents(t, sub, sp, []any{pattern}, nil)
	if fmt.Sprint(got) != "[3 4 5 b]" {
		t.Fatalf("pattern history %v", got)
	}
	if d := evs[3]["details"].(map[string]any); d["topic"] != "com.log.basket" || d["publisher"] != pub.ID() || d["publisher_authrole"] != "anonymous" {
		t.Fatalf("pattern event details %v", d)
	}
	if got, _, _ = getEvents(t, sub, sp, []any{other}, nil); len(got) != 0 {
		t.Fatalf("topic without a rule has history %v", got)
	}
	// limit (positional, as Crossbar; and kwargs), reverse, topic, publication filters.
	if got, _, _ = getEvents(t, sub, sp, []any{exact, uint64(2)}, nil); fmt.Sprint(got) != "[3 4]" {
		t.Fatalf("limit 2: %v", got)
	}
	if got, _, _ = getEvents(t, sub, sp, []any{exact}, map[string]any{"limit": uint64(2), "reverse": true}); fmt.Sprint(got) != "[5 4]" {
		t.Fatalf("reverse limit 2: %v", got)
	}
	if got, _, _ = getEvents(t, sub, sp, []any{pattern}, map[string]any{"topic": "com.log.basket"}); fmt.Sprint(got) != "[b]" {
		t.Fatalf("topic filter: %v", got)
	}
	_, all, _ := getEvents(t, sub, sp, []any{pattern}, nil)
	p4 := all[1]["publication"]
	if got, _, _ = getEvents(t, sub, sp, []any{pattern}, map[string]any{"after_publication": p4}); fmt.Sprint(got) != "[5 b]" {
		t.Fatalf("after_publication: %v", got)
	}
	if got, _, _ = getEvents(t, sub, sp, []any{pattern}, map[string]any{"until_publication": p4, "from_time": before.UTC().Format(time.RFC3339Nano)}); fmt.Sprint(got) != "[3 4]" {
		t.Fatalf("until_publication: %v", got)
	}
	if got, _, _ = getEvents(t, sub, sp, []any{pattern}, map[string]any{"before_time": before.Add(-time.Hour).Format(time.RFC3339)}); len(got) != 0 {
		t.Fatalf("before_time: %v", got)
	}
	// An admin sees the admins-only event.
	ap := &memPeer{ser: codec.JSON}
	as := rl.Join(ap, AuthInfo{AuthID: "root", AuthRole: "admin"})
	if got, _, _ = getEvents(t, as, ap, []any{pattern}, map[string]any{"topic": "com.log.basket"}); fmt.Sprint(got) != "[b admins]" {
		t.Fatalf("admin view: %v", got)
	}
	// Errors.
	if _, _, e := getEvents(t, sub, sp, []any{uint64(424242)}, nil); e != ErrNoSuchSubscription {
		t.Fatalf("unknown subscription: %q", e)
	}
	if _, _, e := getEvents(t, sub, sp, []any{exact}, map[string]any{"limit": "ten"}); e != ErrInvalidArgument {
		t.Fatalf("bad limit: %q", e)
	}
	// Reconfiguring drops histories no rule names and resizes the others.
	if err := rl.SetStore(StoreConfig{History: []HistoryRule{{URI: "com.log.auth", Limit: 2}}}); err != nil {
		t.Fatal(err)
	}
	if got, _, _ = getEvents(t, sub, sp, []any{pattern}, nil); fmt.Sprint(got) != "[4 5]" {
		t.Fatalf("after reconfiguration: %v", got)
	}
	if err := rl.SetStore(StoreConfig{}); err != nil {
		t.Fatal(err)
	}
	if got, _, _ = getEvents(t, sub, sp, []any{exact}, nil); len(got) != 0 {
		t.Fatalf("history kept without rules: %v", got)
	}
}

func TestHistoryTopicsBound(t *testing.T) {
	rl := NewRouter(nil).AddRealm("realm1")
	if err := rl.SetStore(StoreConfig{HistoryTopics: 2, History: []HistoryRule{{URI: "t.", Match: "prefix", Limit: 5}}}); err != nil {
		t.Fatal(err)
	}
	pub, _ := join(t, rl, codec.JSON)
	sub, sp := join(t, rl, codec.JSON)
	all := subscribeTo(t, sub, sp, "t.", "prefix")
	for _, topic := range []string{"t.a", "t.b", "t.c"} {
		publishTo(t, pub, topic, []any{topic}, nil)
	}
	sp.take(t)
	if got, _, _ := getEvents(t, sub, sp, []any{all}, nil); fmt.Sprint(got) != "[t.b t.c]" {
		t.Fatalf("with 2 history topics: %v", got)
	}
}

func TestRetainedTopicsBound(t *testing.T) {
	rl := NewRouter(nil).AddRealm("realm1")
	if err := rl.SetStore(StoreConfig{RetainedTopics: 2}); err != nil {
		t.Fatal(err)
	}
	pub, _ := join(t, rl, codec.JSON)
	retain := func(d *codec.Details) { d.Has, d.Retain = codec.KeyRetain, true }
	publishTo(t, pub, "r.a", []any{"a1"}, retain)
	publishTo(t, pub, "r.b", []any{"b1"}, retain)
	publishTo(t, pub, "r.a", []any{"a2"}, retain) // r.a is now the newest
	publishTo(t, pub, "r.c", []any{"c1"}, retain) // evicts r.b, the oldest stored
	sub, sp := join(t, rl, codec.JSON)
	m := codec.Message{Type: codec.SUBSCRIBE, Request: 1, URI: []byte("r."), Details: codec.Details{
		Has: codec.KeyMatch | codec.KeyGetRetained, Match: []byte("prefix"), GetRetained: true}}
	sub.Receive(&m)
	got := map[string]bool{}
	for _, r := range sp.take(t) {
		if r.Type == codec.EVENT {
			got[value(t, codec.JSON, r.Args).([]any)[0].(string)] = true
		}
	}
	if len(got) != 2 || !got["a2"] || !got["c1"] {
		t.Fatalf("retained after eviction: %v", got)
	}
	for i := 0; i < 100; i++ {
		publishTo(t, pub, "r.a", []any{"again"}, retain)
	}
	rl.broker.retained.mu.Lock()
	n := len(rl.broker.retained.order)
	rl.broker.retained.mu.Unlock()
	if n > 2*2+16 {
		t.Fatalf("retained order grew to %d entries for 2 topics", n)
	}
}

// TestHistoryConcurrent publishes to one history topic from several sessions while
// another reads the history (run with -race): every event read is whole, at most
// limit of them, oldest first.
func TestHistoryConcurrent(t *testing.T) {
	rl := NewRouter(nil).AddRealm("realm1")
	if err := rl.SetStore(StoreConfig{History: []HistoryRule{{URI: "c.t", Limit: 8}}}); err != nil {
		t.Fatal(err)
	}
	sub, sp := join(t, rl, codec.JSON)
	id := subscribeTo(t, sub, sp, "c.t", "")
	done := make(chan struct{})
	for w := 0; w < 4; w++ {
		pub, _ := joinSink(rl, codec.MsgPack)
		go func() {
			defer func() { done <- struct{}{} }()
			m := codec.Message{Type: codec.PUBLISH, Request: 1, URI: []byte("c.t"), Args: raw(t, codec.MsgPack, []any{"x"})}
			for i := 0; i < 500; i++ {
				pub.Receive(&m)
			}
		}()
	}
	for finished := 0; finished < 4; {
		select {
		case <-done:
			finished++
		default:
			evs := rl.broker.history.eventsOf(&subscription{id: id, topic: "c.t"})
			if len(evs) > 8 {
				t.Fatalf("%d events in a ring of 8", len(evs))
			}
			for _, ev := range evs {
				if ev.args == nil || ev.topic != "c.t" {
					t.Fatalf("torn event %+v", ev)
				}
			}
		}
	}
	sp.take(t)
}

// TestHistoryNeedsSubscribePermission: get_events answers only sessions that may
// subscribe to the subscription's topic (the spec's security note).
func TestHistoryNeedsSubscribePermission(t *testing.T) {
	rl := NewRouter(nil).AddRealm("realm1")
	if err := rl.SetStore(StoreConfig{History: []HistoryRule{{URI: "com.", Match: "prefix", Limit: 10}}}); err != nil {
		t.Fatal(err)
	}
	reader, _ := NewRolePermissions([]Rule{{URI: "com.", Match: "prefix", Allow: Permission{Subscribe: true}},
		{URI: "wamp.", Match: "prefix", Allow: Permission{Call: true}}})
	outsider, _ := NewRolePermissions([]Rule{{URI: "wamp.", Match: "prefix", Allow: Permission{Call: true}}})
	rl.SetRoles(map[string]*RolePermissions{"reader": reader, "outsider": outsider})
	rp := &memPeer{ser: codec.JSON}
	r := rl.Join(rp, AuthInfo{AuthID: "r", AuthRole: "reader"})
	op := &memPeer{ser: codec.JSON}
	o := rl.Join(op, AuthInfo{AuthID: "o", AuthRole: "outsider"})
	sub := subscribeTo(t, r, rp, "com.news", "")
	if _, _, e := getEvents(t, r, rp, []any{sub}, nil); e != "" {
		t.Fatalf("reader: %s", e)
	}
	if _, _, e := getEvents(t, o, op, []any{sub}, nil); e != ErrNotAuthorized {
		t.Fatalf("outsider got %q, want %s", e, ErrNotAuthorized)
	}
}
