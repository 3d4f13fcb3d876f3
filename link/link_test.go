package link

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

const kEvent = FirstUserKind + 1

func TestHandshakeAndFramesBothWays(t *testing.T) {
	tp := pair(t, 1, cfg("r1", "router", nil), cfg("p1", "proxy", nil))
	dl, ll := tp.p.Pick(7), tp.llinks[0]
	if dl == nil {
		t.Fatal("Pick returned nil with the link up")
	}
	if got := dl.Peer(); got != (PeerInfo{Node: "r1", Role: "router"}) {
		t.Fatalf("dialer sees peer %+v", got)
	}
	if got := ll.Peer(); got != (PeerInfo{Node: "p1", Role: "proxy"}) {
		t.Fatalf("listener sees peer %+v", got)
	}
	if err := dl.Send(kEvent, 42, []byte("to router")); err != nil {
		t.Fatal(err)
	}
	if err := ll.Send(kEvent+1, 43, []byte("to proxy")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "frames", func() bool { return len(tp.lr.got()) == 1 && len(tp.dr.got()) == 1 })
	if f := tp.lr.got()[0]; f.Kind != kEvent || f.Session != 42 || string(f.Payload) != "to router" || f.Targets != nil {
		t.Fatalf("router got %+v", f)
	}
	if f := tp.dr.got()[0]; f.Kind != kEvent+1 || f.Session != 43 || string(f.Payload) != "to proxy" {
		t.Fatalf("proxy got %+v", f)
	}
	if err := dl.Send(3, 1, nil); !errors.Is(err, ErrReservedKind) {
		t.Fatalf("Send of a reserved kind: %v", err)
	}
}

func TestSendTargets(t *testing.T) {
	tp := pair(t, 1, cfg("r1", "router", nil), cfg("p1", "proxy", nil))
	ll := tp.llinks[0]
	if err := ll.SendTargets(kEvent, []uint64{5, 9, 11}, []byte("event bytes")); err != nil {
		t.Fatal(err)
	}
	if err := ll.SendTargets(kEvent, nil, []byte("x")); err == nil {
		t.Fatal("SendTargets without targets succeeded")
	}
	eventually(t, "frame", func() bool { return len(tp.dr.got()) == 1 })
	f := tp.dr.got()[0]
	if f.Session != 0 || !slices.Equal(f.Targets, []uint64{5, 9, 11}) || string(f.Payload) != "event bytes" {
		t.Fatalf("got %+v", f)
	}
}

// seqPayload is session + sequence number, so the receiver can check per-session order.
func seqPayload(b []byte, session, seq uint64) []byte {
	b = binary.BigEndian.AppendUint64(b[:0], session)
	return binary.BigEndian.AppendUint64(b, seq)
}

func TestOrderUnderLoadManySenders(t *testing.T) {
	const senders, perSender, sessionsPerSender = 8, 20000, 10
	tp := pair(t, 2, cfg("r1", "router", nil), cfg("p1", "proxy", nil))
	var mu sync.Mutex
	next := map[uint64]uint64{}
	var bad error
	total := 0
	tp.lr.setOnFrame(func(l *Link, f *Frame) {
		s, seq := binary.BigEndian.Uint64(f.Payload), binary.BigEndian.Uint64(f.Payload[8:])
		mu.Lock()
		defer mu.Unlock()
		if f.Session != s && bad == nil {
			bad = fmt.Errorf("frame for session %d carries session %d", f.Session, s)
		}
		if seq != next[s] && bad == nil {
			bad = fmt.Errorf("session %d: got seq %d, want %d", s, seq, next[s])
		}
		next[s] = seq + 1
		total++
	})
	var wg sync.WaitGroup
	for g := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var b []byte
			for i := range perSender {
				s := uint64(g*100 + i%sessionsPerSender + 1)
				b = seqPayload(b, s, uint64(i/sessionsPerSender))
				if err := tp.p.Pick(s).Send(kEvent, s, b); err != nil {
					t.Errorf("send: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	eventually(t, "all frames", func() bool { mu.Lock(); defer mu.Unlock(); return total == senders*perSender })
	mu.Lock()
	defer mu.Unlock()
	if bad != nil {
		t.Fatal(bad)
	}
	var frames, writes uint64
	for i := range 2 {
		s := tp.p.Pick(uint64(i)).Stats()
		frames += s.FramesOut
		writes += s.Writes
	}
	t.Logf("%d frames in %d writes (%.1f frames/write)", frames, writes, float64(frames)/float64(writes))
}

func TestTailCoalescing(t *testing.T) {
	tp := pair(t, 1, quiet("r1", "router"), quiet("p1", "proxy"))
	hold, release := holdWriter(t)
	ll := tp.p.Pick(0)
	hold(ll)
	ev := []byte(`[36,1,2,{},["hello"]]`)
	const n = 500
	for s := uint64(1); s <= n; s++ {
		if err := ll.Send(kEvent, s, ev); err != nil {
			t.Fatal(err)
		}
	}
	// Only the tail merges: a different payload, then the same again, are new frames.
	must(t, ll.Send(kEvent, 1000, []byte("other")))
	must(t, ll.Send(kEvent, 1001, ev))
	must(t, ll.Send(kEvent+1, 1002, ev)) // another kind: no merge
	release()
	eventually(t, "frames", func() bool { return len(tp.lr.got()) == 4 })
	got := tp.lr.got()
	want := make([]uint64, n)
	for i := range want {
		want[i] = uint64(i + 1)
	}
	if !slices.Equal(got[0].Targets, want) || string(got[0].Payload) != string(ev) || got[0].Session != 0 {
		t.Fatalf("first frame: session %d, %d targets", got[0].Session, len(got[0].Targets))
	}
	if got[1].Session != 1000 || got[2].Session != 1001 || got[2].Targets != nil || got[3].Kind != kEvent+1 {
		t.Fatalf("later frames: %+v", got[1:])
	}
	st := ll.Stats()
	if st.FramesOut != 4 || st.Coalesced != n-1 {
		t.Fatalf("stats: %d frames out, %d coalesced; want 4 and %d", st.FramesOut, st.Coalesced, n-1)
	}
	if in := tp.llinks[0].Stats().FramesIn; in != 4 {
		t.Fatalf("receiver counted %d frames, want 4", in)
	}
}

func TestNoCoalesce(t *testing.T) {
	c := quiet("p1", "proxy")
	c.NoCoalesce = true
	tp := pair(t, 1, quiet("r1", "router"), c)
	hold, release := holdWriter(t)
	ll := tp.p.Pick(0)
	hold(ll)
	for s := uint64(1); s <= 10; s++ {
		must(t, ll.Send(kEvent, s, []byte("same")))
	}
	release()
	eventually(t, "frames", func() bool { return len(tp.lr.got()) == 10 })
	for i, f := range tp.lr.got() {
		if f.Session != uint64(i+1) || f.Targets != nil {
			t.Fatalf("frame %d: %+v", i, f)
		}
	}
}

func TestBatchingManyFramesFewWrites(t *testing.T) {
	tp := pair(t, 1, quiet("r1", "router"), quiet("p1", "proxy"))
	hold, release := holdWriter(t)
	ll := tp.p.Pick(0)
	hold(ll)
	before := ll.Stats().Writes
	const n = 10000
	var b []byte
	for i := range n {
		b = seqPayload(b, 1, uint64(i))
		must(t, ll.Send(kEvent, 1, b))
	}
	if q := ll.Stats().Queued; q != n*(hdrLen+16+idLen) {
		t.Fatalf("queued %d bytes, want %d", q, n*(hdrLen+16+idLen))
	}
	release()
	eventually(t, "frames", func() bool { return len(tp.lr.got()) == n })
	for i, f := range tp.lr.got() {
		if binary.BigEndian.Uint64(f.Payload[8:]) != uint64(i) {
			t.Fatalf("frame %d out of order", i)
		}
	}
	// The peer may have every frame before the writer has counted its write (CI, on
	// event loops): wait for the writer to finish its turn, then count.
	eventually(t, "the writer's turn", func() bool { s := ll.Stats(); return s.Writes > before && s.Queued == 0 })
	st := ll.Stats()
	if w := st.Writes - before; w != 1 {
		t.Fatalf("%d frames took %d writes, want 1", n, w)
	}
	if st.Queued != 0 {
		t.Fatalf("%d bytes still counted as queued", st.Queued)
	}
	if r := tp.llinks[0].Stats().Reads; r > n/10 {
		t.Fatalf("receiver needed %d reads for %d frames", r, n)
	}
}

func TestCloseFlushesAndTellsThePeer(t *testing.T) {
	tp := pair(t, 1, cfg("r1", "router", nil), cfg("p1", "proxy", nil))
	ll := tp.p.Pick(0)
	for i := range 100 {
		must(t, ll.Send(kEvent, uint64(i+1), []byte{byte(i)}))
	}
	ll.Close(errors.New("going away"))
	ll.Close(errors.New("second reason is ignored"))
	if err := waitDown(t, tp.dr, 5*time.Second); err == nil || err.Error() != "going away" {
		t.Fatalf("closing side got %v", err)
	}
	err := waitDown(t, tp.lr, 5*time.Second)
	if !errors.Is(err, ErrPeerClosed) || !strings.Contains(err.Error(), "going away") {
		t.Fatalf("peer got %v", err)
	}
	if n := len(tp.lr.got()); n != 100 {
		t.Fatalf("peer got %d of the 100 frames queued before Close", n)
	}
	if err := ll.Send(kEvent, 1, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after Close: %v", err)
	}
}

// quiet is cfg with heartbeats too rare to interleave with a test's frames.
func quiet(node, role string) Config {
	c := cfg(node, role, nil)
	c.Heartbeat, c.DeadAfter = 10*time.Second, 30*time.Second
	return c
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestFanOutOrderWithCoalescing: goroutines fan events out to their sessions
// concurrently; whether or not Sends merge, every session sees every event once, in
// order.
func TestFanOutOrderWithCoalescing(t *testing.T) {
	const senders, events, fanout = 4, 2000, 50
	tp := pair(t, 1, cfg("r1", "router", nil), cfg("p1", "proxy", nil))
	var mu sync.Mutex
	next := map[uint64]uint64{}
	var bad error
	deliveries := 0
	deliver := func(s uint64, p []byte) {
		g, e := binary.BigEndian.Uint64(p), binary.BigEndian.Uint64(p[8:])
		if s/1000 != g && bad == nil {
			bad = fmt.Errorf("session %d got sender %d's event", s, g)
		}
		if e != next[s] && bad == nil {
			bad = fmt.Errorf("session %d: event %d, want %d", s, e, next[s])
		}
		next[s] = e + 1
		deliveries++
	}
	tp.lr.setOnFrame(func(l *Link, f *Frame) {
		mu.Lock()
		defer mu.Unlock()
		if f.Targets == nil {
			deliver(f.Session, f.Payload)
		}
		for _, s := range f.Targets {
			deliver(s, f.Payload)
		}
	})
	l := tp.p.Pick(0)
	var wg sync.WaitGroup
	for g := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var b []byte
			for e := range events {
				b = seqPayload(b, uint64(g+1), uint64(e))
				for k := range fanout {
					if err := l.Send(kEvent, uint64((g+1)*1000+k), b); err != nil {
						t.Error(err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	eventually(t, "all deliveries", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return deliveries == senders*events*fanout
	})
	mu.Lock()
	defer mu.Unlock()
	if bad != nil {
		t.Fatal(bad)
	}
	st := l.Stats()
	t.Logf("%d deliveries in %d frames (%d coalesced), %d writes", deliveries, st.FramesOut, st.Coalesced, st.Writes)
	if st.Coalesced == 0 {
		t.Fatal("nothing was coalesced")
	}
}

func TestLargeFramesBetweenSmallOnes(t *testing.T) {
	tp := pair(t, 1, cfg("r1", "router", nil), cfg("p1", "proxy", nil))
	l := tp.p.Pick(0)
	big := make([]byte, 3<<20)
	for i := range big {
		big[i] = byte(i * 7)
	}
	for i := range 5 {
		must(t, l.Send(kEvent, 1, []byte{byte(i)}))
		big[0] = byte(i)
		must(t, l.Send(kEvent, 2, big))
	}
	if err := l.Send(kEvent, 1, make([]byte, MaxPayload+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized payload: %v", err)
	}
	eventually(t, "frames", func() bool { return len(tp.lr.got()) == 10 })
	for i, f := range tp.lr.got() {
		switch {
		case i%2 == 0 && (f.Session != 1 || len(f.Payload) != 1 || f.Payload[0] != byte(i/2)):
			t.Fatalf("frame %d: small frame wrong", i)
		case i%2 == 1:
			big[0] = byte(i / 2)
			if f.Session != 2 || string(f.Payload) != string(big) {
				t.Fatalf("frame %d: large frame corrupted", i)
			}
		}
	}
}

// The frames of one read form a batch: what OnFrame sends during it goes out in one
// write by the reader itself at the batch's end, without waking the writer goroutine
// (plain TCP), or through the writer with NoWriteThrough (as TLS links do).
func TestReadBatchFlushesOnceAtItsEnd(t *testing.T) {
	for _, noWT := range []bool{false, true} {
		t.Run(fmt.Sprintf("NoWriteThrough=%v", noWT), func(t *testing.T) {
			lc := quiet("r1", "router")
			lc.NoWriteThrough = noWT
			lr, dr := newRecorder(), newRecorder()
			lr.setOnFrame(func(l *Link, f *Frame) { _ = l.Send(f.Kind, f.Session, f.Payload) }) // echo
			ln, err := Listen("127.0.0.1:0", lc, lr)
			must(t, err)
			p := Dial(ln.Addr().String(), 1, quiet("p1", "proxy"), dr)
			t.Cleanup(func() { p.Close(); ln.Close() })
			ll, dl := waitUp(t, lr), waitUp(t, dr)
			eventually(t, "pool link", func() bool { return p.Pick(0) == dl })

			hold, release := holdWriter(t)
			hold(dl) // the n frames leave in one write, so that the listener reads them at once
			const n = 200
			var b []byte
			for i := range n {
				b = seqPayload(b, 1, uint64(i))
				must(t, dl.Send(kEvent, uint64(i+1), b))
			}
			s0 := ll.Stats()
			release()
			eventually(t, "echoes", func() bool { return len(dr.got()) == n })
			for i, f := range dr.got() {
				if f.Session != uint64(i+1) || binary.BigEndian.Uint64(f.Payload[8:]) != uint64(i) {
					t.Fatalf("echo %d: session %d, payload %x", i, f.Session, f.Payload)
				}
			}
			s1 := ll.Stats()
			reads, writes, wakes := s1.Reads-s0.Reads, s1.Writes-s0.Writes, s1.Wakes-s0.Wakes
			t.Logf("%d frames echoed: %d reads, %d writes, %d writer wake-ups", n, reads, writes, wakes)
			if writes > reads {
				t.Errorf("%d writes for %d reads: want at most one write per read batch", writes, reads)
			}
			if !noWT && wakes != 0 {
				t.Errorf("%d writer wake-ups, want 0: the batch's end writes itself", wakes)
			}
			if noWT && wakes == 0 {
				t.Errorf("no writer wake-up with NoWriteThrough")
			}
		})
	}
}

// Batch-end writes that the socket does not take at once (large frames, a peer reading
// slower) leave the rest to the writer goroutine, ahead of anything queued since: every
// echo arrives whole and in order.
func TestReadBatchLargeEchoesKeepOrder(t *testing.T) {
	lr, dr := newRecorder(), newRecorder()
	lr.setOnFrame(func(l *Link, f *Frame) { _ = l.Send(f.Kind, f.Session, f.Payload) }) // echo
	var mu sync.Mutex
	var got []uint64
	bad := ""
	dr.setOnFrame(func(_ *Link, f *Frame) {
		time.Sleep(2 * time.Millisecond) // a slow reader: the listener's socket fills up
		seq := binary.BigEndian.Uint64(f.Payload)
		for _, c := range f.Payload[8:] {
			if c != byte(seq) {
				mu.Lock()
				bad = fmt.Sprintf("echo %d corrupted", seq)
				mu.Unlock()
				break
			}
		}
		mu.Lock()
		got = append(got, seq)
		mu.Unlock()
	})
	lc, dc := quiet("r1", "router"), quiet("p1", "proxy")
	lc.OutboundLimit, dc.OutboundLimit = 256<<20, 256<<20
	ln, err := Listen("127.0.0.1:0", lc, lr)
	must(t, err)
	p := Dial(ln.Addr().String(), 1, dc, dr)
	t.Cleanup(func() { p.Close(); ln.Close() })
	ll, dl := waitUp(t, lr), waitUp(t, dr)
	const n, size = 64, 300 << 10
	payload := make([]byte, size)
	for i := range n {
		binary.BigEndian.PutUint64(payload, uint64(i))
		for j := 8; j < size; j++ {
			payload[j] = byte(i)
		}
		must(t, dl.Send(kEvent, 1, payload))
	}
	eventually(t, "echoes", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == n })
	mu.Lock()
	defer mu.Unlock()
	if bad != "" {
		t.Fatal(bad)
	}
	for i, s := range got {
		if s != uint64(i) {
			t.Fatalf("echo %d has sequence %d", i, s)
		}
	}
	st := ll.Stats()
	t.Logf("listener: %d reads, %d writes, %d writer wake-ups for %d echoes of %d KiB", st.Reads, st.Writes, st.Wakes, n, size>>10)
	if st.Wakes == 0 {
		t.Log("every batch-end write went through whole: the remainder path was not exercised this time")
	}
}
