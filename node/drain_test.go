package node

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/client"
	"github.com/switchyard-wamp/switchyard/codec"
	"github.com/switchyard-wamp/switchyard/engine"
)

// TestDrain: a drain over 600ms closes the listener at once (a new connection fails),
// then tells each of 4 sessions GOODBYE wamp.close.system_shutdown, spread over the
// period: the first at once, the last after about 3/4 of it.
func TestDrain(t *testing.T) {
	n := startNode(t, nil)
	url := n.WebSocketURL()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var sessions []*client.Session
	for range 4 {
		s, err := client.Connect(ctx, client.Config{URL: url, Realm: "realm1"})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		sessions = append(sessions, s)
	}
	const period = 600 * time.Millisecond
	start := time.Now()
	done := make(chan int, 1)
	go func() { done <- n.Drain(ctx, period) }()
	ended := make([]time.Duration, len(sessions))
	at := make(chan struct{}, len(sessions))
	for i, s := range sessions {
		go func() {
			select {
			case <-s.Done():
				ended[i] = time.Since(start)
			case <-ctx.Done():
			}
			at <- struct{}{}
		}()
	}
	for range sessions {
		<-at
	}
	for i, s := range sessions {
		var werr *client.Error
		if err := s.Err(); !errors.As(err, &werr) || werr.URI != engine.CloseSystemShutdown {
			t.Fatalf("session %d ended with %v, want GOODBYE %s", i, err, engine.CloseSystemShutdown)
		}
	}
	if got := <-done; got != len(sessions) {
		t.Fatalf("Drain told %d sessions, want %d", got, len(sessions))
	}
	if _, err := client.Connect(ctx, client.Config{URL: url, Realm: "realm1"}); err == nil {
		t.Fatal("a new session joined during the drain")
	}
	// Sessions end in an order the node picks; the spread shows in the first and last.
	first, last := ended[0], ended[0]
	for _, d := range ended {
		first, last = min(first, d), max(last, d)
	}
	t.Logf("GOODBYEs from %v to %v over a period of %v", first, last, period)
	if first > period/4 || last < period/2 {
		t.Fatalf("GOODBYEs not spread over the period: first %v, last %v (period %v)", first, last, period)
	}
}

// TestDrainProxy: a cluster proxy's drain tells the sessions it holds on the routers
// GOODBYE wamp.close.system_shutdown (through its links), ends them on their routers,
// and refuses new connections; a drained router does the same for its own sessions.
func TestDrainProxy(t *testing.T) {
	tc := startCluster(t, clusterOpts{routers: 2, proxies: 2})
	a := tc.connect(0, codec.JSON, false)
	b := tc.connect(0, codec.MsgPack, true)
	other := tc.connect(1, codec.JSON, false)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if got := tc.proxies[0].Node.Drain(ctx, 100*time.Millisecond); got != 2 {
		t.Fatalf("proxy drain told %d sessions GOODBYE, want 2", got)
	}
	for _, s := range []*client.Session{a, b} {
		select {
		case <-s.Done():
		case <-ctx.Done():
			t.Fatal("no GOODBYE through the proxy")
		}
		var werr *client.Error
		if err := s.Err(); !errors.As(err, &werr) || werr.URI != engine.CloseSystemShutdown {
			t.Fatalf("session ended with %v, want GOODBYE %s", err, engine.CloseSystemShutdown)
		}
	}
	if _, err := client.Connect(ctx, client.Config{URL: tc.url(0, false), Realm: "realm1"}); err == nil {
		t.Fatal("the drained proxy took a new session")
	}
	// The sessions left their routers; the other proxy's session is untouched.
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := 0
		for _, r := range tc.routers {
			n += r.Node.Router.SessionCount()
		}
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions left on the routers, want the other proxy's 1", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if other.Err() != nil {
		t.Fatalf("the other proxy's session ended: %v", other.Err())
	}
	// A router's drain: the remaining session (on whichever router holds it) is told.
	r := tc.routerOf(other.ID())
	if r == nil {
		t.Fatal("no router holds the other session")
	}
	if got := r.Node.Drain(ctx, 0); got != 1 {
		t.Fatalf("router drain told %d sessions, want 1", got)
	}
	select {
	case <-other.Done():
	case <-ctx.Done():
		t.Fatal("no GOODBYE from the drained router")
	}
	var werr *client.Error
	if err := other.Err(); !errors.As(err, &werr) || werr.URI != engine.CloseSystemShutdown {
		t.Fatalf("router drain: session ended with %v", err)
	}
}
