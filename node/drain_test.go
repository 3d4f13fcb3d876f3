package node

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/client"
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
