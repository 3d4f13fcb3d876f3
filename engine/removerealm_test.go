package engine

import (
	"sync"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/codec"
)

// TestRemoveRealm: the realm's sessions get GOODBYE with the reason, the name no longer
// resolves, and a join racing with the removal either completes its WELCOME before the
// GOODBYE or is refused; none is left joined without a GOODBYE.
func TestRemoveRealm(t *testing.T) {
	defer func(g time.Duration) { RemovedRealmGrace = g }(RemovedRealmGrace)
	RemovedRealmGrace = 50 * time.Millisecond
	r := NewRouter(nil)
	rl := r.AddRealm("realm2")
	s, p := join(t, rl, codec.JSON)

	welcome := func(p *memPeer) func(*Session) {
		return func(*Session) { _ = p.Send([]byte(`[2,1,{}]`)) } // WELCOME, by hand
	}
	const racers = 50
	peers := make([]*memPeer, racers)
	joined := make([]*Session, racers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range peers {
		peers[i] = &memPeer{ser: codec.JSON}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			joined[i] = rl.JoinWelcome(peers[i], AuthInfo{AuthID: "b", AuthRole: "anonymous"}, Features{}, welcome(peers[i]))
		}()
	}
	close(start)
	n, ok := r.RemoveRealm("realm2", CloseRealm, "gone")
	wg.Wait()
	if !ok || n < 1 {
		t.Fatalf("RemoveRealm = %d, %v", n, ok)
	}
	if g := p.one(t, codec.GOODBYE); string(g.URI) != CloseRealm || string(g.Details.Message) != "gone" {
		t.Fatalf("GOODBYE %+v", g)
	}
	if s.Receive(&codec.Message{Type: codec.GOODBYE, URI: []byte(CloseGoodbyeAndOut)}) || !isClosed(p) {
		t.Fatal("client's GOODBYE reply did not close the session")
	}
	// The racers never answer GOODBYE: their transports close after the grace.
	time.Sleep(RemovedRealmGrace + 200*time.Millisecond)
	for i, rp := range peers {
		ms := rp.take(t)
		if joined[i] == nil {
			if len(ms) != 0 {
				t.Fatalf("refused join got %+v", ms)
			}
			continue
		}
		if len(ms) != 2 || ms[0].Type != codec.WELCOME || ms[1].Type != codec.GOODBYE {
			t.Fatalf("joined racer %d got %+v, want WELCOME then GOODBYE", i, ms)
		}
		if !isClosed(rp) {
			t.Fatalf("joined racer %d: transport still open after the grace", i)
		}
	}
	if rl.SessionCount() != 0 {
		t.Fatalf("%d sessions left in the removed realm", rl.SessionCount())
	}
	if _, ok := r.Realm("realm2"); ok {
		t.Fatal("removed realm still resolves")
	}
	if s := rl.JoinWelcome(&memPeer{ser: codec.JSON}, AuthInfo{}, Features{}, func(*Session) { t.Fatal("welcomed") }); s != nil {
		t.Fatal("join after removal accepted")
	}
	if _, ok := r.RemoveRealm("realm2", CloseRealm, ""); ok {
		t.Fatal("second removal reported a realm")
	}
	if again := r.AddRealm("realm2"); again == rl || again.SessionCount() != 0 {
		t.Fatal("re-adding the name did not make a new, empty realm")
	}
}

func isClosed(p *memPeer) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}
