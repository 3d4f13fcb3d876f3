package link

import (
	"encoding/binary"
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestPoolSendKeepsOrderWhenAKeyReturns: while key 0's link reconnects, its frames go
// on the other link, whose writer is held back (a busy link); once key 0's link is back,
// the key's next frame goes on it. The peer must still get the key's frames in send
// order: the returning link takes its keys only after the peer has handled what the
// other link carried for them.
func TestPoolSendKeepsOrderWhenAKeyReturns(t *testing.T) {
	hold, release := holdWriter(t)
	tp := pair(t, 2, cfg("l", "router", nil), cfg("d", "router", nil))
	k := newKeyOrder(t, tp)
	send, mu, got := k.send, &k.mu, &k.got
	send(1)
	eventually(t, "frame 1 handled", func() bool { mu.Lock(); defer mu.Unlock(); return len(*got) == 1 })
	hold(tp.p.Pick(1))
	tp.p.Pick(0).Close(fmt.Errorf("test: cut"))
	eventually(t, "key 0's link down", func() bool { return tp.p.Pick(0) == nil })
	for seq := uint64(2); seq <= 6; seq++ {
		send(seq) // borrowed: slot 1, held
	}
	waitUp(t, tp.dr) // key 0's new link connected
	time.AfterFunc(100*time.Millisecond, release)
	eventually(t, "key 0's link back", func() bool { return tp.p.Pick(0) != nil })
	send(7)
	k.inOrder(7)
}

// TestPoolSendHoldsWhileAKeyReturns: while key 0's returning link waits for the fence
// of a busy link, Sends of key 0 return at once (they may run on an event loop that
// reads the very link whose fence is awaited) and their frames follow the borrowed
// ones, in order.
func TestPoolSendHoldsWhileAKeyReturns(t *testing.T) {
	hold, release := holdWriter(t)
	tp := pair(t, 2, cfg("l", "router", nil), cfg("d", "router", nil))
	k := newKeyOrder(t, tp)
	send := k.send
	hold(tp.p.Pick(1))
	tp.p.Pick(0).Close(fmt.Errorf("test: cut"))
	eventually(t, "key 0's link down", func() bool { return tp.p.Pick(0) == nil })
	for seq := uint64(1); seq <= 3; seq++ {
		send(seq) // borrowed: slot 1, held
	}
	waitUp(t, tp.dr)
	eventually(t, "the admission waits", func() bool {
		a := &tp.p.admitting[0]
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.on
	})
	start := time.Now()
	for seq := uint64(4); seq <= 6; seq++ {
		send(seq) // held for the returning link
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("Sends during the admission took %v: they waited for it", d)
	}
	release()
	eventually(t, "key 0's link back", func() bool { return tp.p.Pick(0) != nil })
	send(7)
	k.inOrder(7)
}

// keyOrder records the sequence numbers the listener of tp handles and sends key 0's.
type keyOrder struct {
	t   *testing.T
	tp  *testPair
	mu  sync.Mutex
	got []uint64
}

func newKeyOrder(t *testing.T, tp *testPair) *keyOrder {
	k := &keyOrder{t: t, tp: tp}
	tp.lr.setOnFrame(func(_ *Link, f *Frame) {
		k.mu.Lock()
		k.got = append(k.got, binary.BigEndian.Uint64(f.Payload))
		k.mu.Unlock()
	})
	return k
}

// send sends seq on key 0 through the pool.
func (k *keyOrder) send(seq uint64) {
	k.t.Helper()
	if err := k.tp.p.Send(0, FirstUserKind, 7, binary.BigEndian.AppendUint64(nil, seq)); err != nil {
		k.t.Fatalf("send %d: %v", seq, err)
	}
}

// inOrder waits for n frames and fails unless they are 1..n in order.
func (k *keyOrder) inOrder(n int) {
	k.t.Helper()
	eventually(k.t, "all frames handled", func() bool { k.mu.Lock(); defer k.mu.Unlock(); return len(k.got) == n })
	k.mu.Lock()
	defer k.mu.Unlock()
	for i, seq := range k.got {
		if seq != uint64(i+1) {
			k.t.Fatalf("key 0's frames handled in the order %v", k.got)
		}
	}
}
