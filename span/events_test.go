package span

import (
	"testing"

	"github.com/switchyard-wamp/switchyard/codec"
)

// A forwarded EVENT carries the subscription id of the subscription it is for, also
// when the publishing router reuses the EVENT its local fan-out encoded: here the
// publisher's router has subscribers of the publisher's serializer on the exact and the
// wildcard subscription, so its last encoded EVENT is the wildcard's while the other
// routers hold the exact one, the wildcard one, or both.
func TestForwardedEventsCarryTheirSubscription(t *testing.T) {
	c := newCluster(t, "a", "b", "c")
	pub := c.join("a", codec.JSON, "p", "r")
	localExact := c.join("a", codec.JSON, "l1", "r")
	localWild := c.join("a", codec.JSON, "l2", "r")
	exactB := c.join("b", codec.JSON, "b1", "r")
	wildC := c.join("c", codec.JSON, "c1", "r")
	bothC := c.join("c", codec.MsgPack, "c2", "r")
	exactID := localExact.subscribe("com.t.x", "")
	wildID := localWild.subscribe("com..x", "wildcard")
	exactB.subscribe("com.t.x", "")
	wildC.subscribe("com..x", "wildcard")
	bothC.subscribe("com.t.x", "")
	bothC.subscribe("com..x", "wildcard")
	c.lb.settle(t)
	c.lb.resetCounts()
	pub.send(codec.Message{Type: codec.PUBLISH, URI: []byte("com.t.x"), Args: raw(t, codec.JSON, []any{"v"})})
	c.lb.settle(t)
	want := map[*client][]uint64{localExact: {exactID}, localWild: {wildID}, exactB: {exactID},
		wildC: {wildID}, bothC: {exactID, wildID}}
	for cl, ids := range want {
		evs := cl.take()
		got := map[uint64]bool{}
		for _, ev := range evs {
			if ev.Type != codec.EVENT {
				t.Fatalf("%s/%s got %s", cl.router, cl.s.Auth().AuthID, ev.Type)
			}
			if pattern := ev.Subscription == wildID; pattern != (string(ev.Details.Topic) == "com.t.x") {
				t.Errorf("%s/%s: EVENT for %d has details.topic %q", cl.router, cl.s.Auth().AuthID, ev.Subscription, ev.Details.Topic)
			}
			if v := firstArg(t, cl.p.ser, ev); v != "v" {
				t.Errorf("%s/%s: payload %v", cl.router, cl.s.Auth().AuthID, v)
			}
			got[ev.Subscription] = true
		}
		if len(evs) != len(ids) || len(got) != len(ids) {
			t.Fatalf("%s/%s: %d events for subscriptions %v, want %v", cl.router, cl.s.Auth().AuthID, len(evs), got, ids)
		}
		for _, id := range ids {
			if !got[id] {
				t.Errorf("%s/%s: no EVENT for subscription %d (got %v)", cl.router, cl.s.Auth().AuthID, id, got)
			}
		}
	}
	if b, cc := c.lb.count("a", "b", KindEvents), c.lb.count("a", "c", KindEvents); b != 1 || cc != 1 {
		t.Fatalf("events messages a -> b %d, a -> c %d; want 1 each", b, cc)
	}
}
