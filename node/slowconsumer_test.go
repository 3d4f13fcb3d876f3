package node

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/client"
	"github.com/switchyard-wamp/switchyard/codec"
)

// TestSlowConsumerPolicy runs issue 9 item 4 end to end: with a 64 KiB soft limit, a
// subscriber that reads at full speed gets a 2 MB burst of events and stays connected,
// while subscribers that stopped reading after they subscribed (one over WebSocket,
// one over RawSocket) are disconnected as slow consumers within about the write
// deadline, long before their ping timeout.
func TestSlowConsumerPolicy(t *testing.T) {
	const (
		deadline = time.Second
		events   = 2000
		topic    = "com.burst"
	)
	n := startNode(t, func(c *Config) {
		c.OutboundLimit = 64 << 10
		c.WriteDeadline = deadline
		for i := range c.Listeners {
			c.Listeners[i].PingInterval = time.Minute // keepalive must not be what closes them
			c.Listeners[i].PingTimeout = time.Minute
		}
	})
	ctx := ctxT(t)

	healthy := connect(t, endpoints(n)[0], codec.JSON)
	var got atomic.Int64
	all := make(chan struct{})
	if _, err := healthy.Subscribe(ctx, topic, func(*client.Event) {
		if got.Add(1) == events {
			close(all)
		}
	}, nil); err != nil {
		t.Fatal(err)
	}
	// The stalled subscribers: raw transports that subscribe, read SUBSCRIBED, then
	// never read again.
	for _, url := range []string{n.WebSocketURL(), n.RawSocketURL()} {
		tr := rawSession(t, url, codec.JSON)
		sub := codec.Message{Type: codec.SUBSCRIBE, Request: 1, URI: []byte(topic), DictAny: map[string]any{}}
		if err := tr.Send(&sub); err != nil {
			t.Fatal(err)
		}
		var m codec.Message
		if _, err := tr.Recv(&m); err != nil || m.Type != codec.SUBSCRIBED {
			t.Fatalf("%s: want SUBSCRIBED, got %v %v", url, m.Type, err)
		}
	}

	pub := connect(t, endpoints(n)[2], codec.JSON)
	payload := []any{strings.Repeat("e", 1000)}
	for range events {
		if err := pub.Publish(ctx, topic, payload, nil); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-all:
	case <-healthy.Done():
		t.Fatalf("healthy subscriber disconnected after %d of %d events: %v (stats %+v)", got.Load(), events, healthy.Err(), n.Server.Stats())
	case <-time.After(10 * time.Second):
		t.Fatalf("healthy subscriber got %d of %d events", got.Load(), events)
	}
	burstEnd := time.Now()

	for n.Server.Stats().SlowConsumerClosed < 2 {
		if time.Since(burstEnd) > deadline+time.Second {
			t.Fatalf("stalled subscribers still connected %v after the burst (stats %+v)", time.Since(burstEnd), n.Server.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("stalled subscribers closed %v after the burst", time.Since(burstEnd))

	// The healthy subscriber is still there and still gets events.
	if err := pub.Publish(ctx, topic, payload, nil, client.Acknowledge()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return got.Load() == events+1 })
	select {
	case <-healthy.Done():
		t.Fatalf("healthy subscriber disconnected: %v", healthy.Err())
	default:
	}
	if st := n.Server.Stats(); st.SlowConsumerClosed != 2 || st.Open != 2 {
		t.Fatalf("stats %+v", st)
	}
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("condition not met within 5s")
		}
	}
}
