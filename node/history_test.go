package node

import (
	"context"
	"fmt"
	"testing"

	"github.com/switchyard-wamp/switchyard/client"
	"github.com/switchyard-wamp/switchyard/codec"
	"github.com/switchyard-wamp/switchyard/engine"
)

// TestEventHistoryOverSockets: wamp.subscription.get_events returns the events kept for
// a topic named by the realm's history rules, in the spec's shape, across serializers.
func TestEventHistoryOverSockets(t *testing.T) {
	n := startNode(t, func(c *Config) {
		c.Store = map[string]engine.StoreConfig{"realm1": {History: []engine.HistoryRule{
			{URI: "com.log.", Match: "prefix", Limit: 3}}}}
	})
	ctx := ctxT(t)
	pub := connect(t, endpoints(n)[0], codec.JSON)
	sub := connect(t, endpoints(n)[2], codec.CBOR)
	s, err := sub.Subscribe(ctx, "com.log.auth", func(*client.Event) {}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 4; i++ {
		if err := pub.Publish(ctx, "com.log.auth", []any{uint64(i)}, map[string]any{"n": uint64(i)}, client.Acknowledge()); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.Publish(ctx, "com.other", []any{"x"}, nil, client.Acknowledge()); err != nil {
		t.Fatal(err)
	}
	res, err := sub.Call(ctx, "wamp.subscription.get_events", []any{s.ID()}, map[string]any{"limit": 2, "reverse": true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Args) != 2 || res.Kwargs["count"] != uint64(2) {
		t.Fatalf("get_events: %+v", res)
	}
	ev := res.Args[0].(map[string]any)
	if ev["subscription"] != s.ID() || fmt.Sprint(ev["args"]) != "[4]" || fmt.Sprint(ev["kwargs"]) != "map[n:4]" {
		t.Fatalf("newest event %v", ev)
	}
	if _, ok := ev["timestamp"].(string); !ok {
		t.Fatalf("timestamp %v", ev["timestamp"])
	}
	if ev1 := res.Args[1].(map[string]any); fmt.Sprint(ev1["args"]) != "[3]" {
		t.Fatalf("second event %v", ev1)
	}
	res, err = sub.Call(ctx, "wamp.subscription.get_events", []any{s.ID()}, nil, nil)
	if err != nil || len(res.Args) != 3 {
		t.Fatalf("all events (limit 3 per topic): %+v %v", res, err)
	}
	_, err = sub.Call(ctx, "wamp.subscription.get_events", []any{uint64(123456789)}, nil, nil)
	wampErr(t, err, "wamp.error.no_such_subscription")
	if w := pub.WelcomeDetails()["roles"].(map[string]any)["broker"].(map[string]any)["features"].(map[string]any); w["event_history"] != true {
		t.Fatalf("event_history not announced: %v", w)
	}
}

// TestRetainedTopicsBoundOverSockets: with room for two retained topics, a third evicts
// the oldest-stored one.
func TestRetainedTopicsBoundOverSockets(t *testing.T) {
	n := startNode(t, func(c *Config) {
		c.Store = map[string]engine.StoreConfig{"realm1": {RetainedTopics: 2}}
	})
	ctx := ctxT(t)
	pub := connect(t, endpoints(n)[0], codec.MsgPack)
	for _, topic := range []string{"r.a", "r.b", "r.c"} {
		if err := pub.Publish(ctx, topic, []any{topic}, nil, client.Acknowledge(), client.Option("retain", true)); err != nil {
			t.Fatal(err)
		}
	}
	sub := connect(t, endpoints(n)[1], codec.JSON)
	got := make(chan string, 3)
	if _, err := sub.Subscribe(ctx, "r.", func(e *client.Event) { got <- e.Args[0].(string) },
		map[string]any{"match": "prefix", "get_retained": true}); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for len(seen) < 2 {
		select {
		case s := <-got:
			seen[s] = true
		case <-ctx.Done():
			t.Fatalf("retained events: %v", seen)
		}
	}
	if seen["r.a"] {
		t.Fatalf("the oldest retained event survived: %v", seen)
	}
}

// TestHashInvocationOverSockets: invoke "hash" sends calls with the same rkey (or the
// same first argument) to the same callee, and spreads different keys.
func TestHashInvocationOverSockets(t *testing.T) {
	n := startNode(t, nil)
	ctx := ctxT(t)
	var callees []*client.Session
	for i := 0; i < 3; i++ {
		c := connect(t, endpoints(n)[i], sers[i])
		name := fmt.Sprint("callee", i)
		if _, err := c.Register(ctx, "com.shard", func(context.Context, *client.Invocation) (*client.Result, error) {
			return &client.Result{Args: []any{name}}, nil
		}, map[string]any{"invoke": "hash"}); err != nil {
			t.Fatal(err)
		}
		callees = append(callees, c)
	}
	caller := connect(t, endpoints(n)[3], codec.JSON)
	_, err := caller.Register(ctx, "com.shard", func(context.Context, *client.Invocation) (*client.Result, error) {
		return &client.Result{}, nil
	}, map[string]any{"invoke": "roundrobin"})
	wampErr(t, err, "wamp.error.procedure_exists_with_different_invocation_policy")
	who := func(key string, rkey bool) string {
		t.Helper()
		var res *client.Result
		var err error
		if rkey {
			res, err = caller.Call(ctx, "com.shard", nil, nil, map[string]any{"rkey": key})
		} else {
			res, err = caller.Call(ctx, "com.shard", []any{key, "payload"}, nil, nil)
		}
		if err != nil {
			t.Fatal(err)
		}
		return res.Args[0].(string)
	}
	for _, rkey := range []bool{true, false} {
		used := map[string]bool{}
		for k := 0; k < 30; k++ {
			key := fmt.Sprint("user-", k)
			first := who(key, rkey)
			for i := 0; i < 3; i++ {
				if again := who(key, rkey); again != first {
					t.Fatalf("rkey=%v key %s: %s then %s", rkey, key, first, again)
				}
			}
			used[first] = true
		}
		if len(used) < 2 {
			t.Fatalf("rkey=%v: 30 keys all went to %v", rkey, used)
		}
	}
}
