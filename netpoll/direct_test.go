package netpoll

import (
	"bytes"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/switchyard-wamp/switchyard/internal/readbatch"
)

// TestDirectWritesKeepStreamWhole: senders on other goroutines write a conn whose peer
// stopped reading, so direct writes end partial and the loop takes over with their
// remainders (and gnet's buffer) while the client also makes the loop write pongs; once
// the client reads again every frame must arrive whole, in each sender's order.
func TestDirectWritesKeepStreamWhole(t *testing.T) { testDirectWritesKeepStreamWhole(t) }

func testDirectWritesKeepStreamWhole(t *testing.T) {
	h := newEchoHandler()
	// Limits above what is sent: the socket fills (partial direct writes) long before
	// the slow-consumer bookkeeping would send the writes through the loop.
	s := startServer(t, Config{OutboundLimit: 64 << 20, OutboundHardLimit: 128 << 20}, h)
	c := dialWS(t, s, "wamp.2.json")
	defer c.conn.Close()
	_ = c.conn.SetDeadline(time.Now().Add(60 * time.Second))
	sc := h.waitOpen(t)
	partialBefore := partialWrites.Load()

	const senders, per = 4, 150
	payload := func(g, i int) []byte {
		hdr := fmt.Sprintf("%d:%d:", g, i)
		size := len(hdr) + (g*7919+i*104729)%60000 // up to 60 KB: small and big frames mixed
		p := make([]byte, size)
		copy(p, hdr)
		for k := len(hdr); k < size; k++ {
			p[k] = byte('a' + (g+i+k)%26)
		}
		return p
	}
	var wg sync.WaitGroup
	for g := range senders {
		wg.Go(func() {
			for i := range per {
				if err := sc.Send(payload(g, i)); err != nil {
					t.Errorf("sender %d message %d: %v", g, i, err)
					return
				}
			}
		})
	}
	wg.Wait() // about 18 MB queued or in the socket: the kernel took only part of it
	for range 3 {
		c.write(t, ws.OpPing, true, []byte("p"))
	}
	next := make([]int, senders)
	for got := 0; got < senders*per; {
		f := c.read(t)
		if f.Header.OpCode == ws.OpPong {
			continue
		}
		var g, i int
		if _, err := fmt.Sscanf(string(f.Payload[:min(len(f.Payload), 16)]), "%d:%d:", &g, &i); err != nil {
			t.Fatalf("frame %d: no header in %q...: %v", got, f.Payload[:min(len(f.Payload), 16)], err)
		}
		if g < 0 || g >= senders || i != next[g] {
			t.Fatalf("frame %d: sender %d message %d, want message %d", got, g, i, next[g])
		}
		if want := payload(g, i); !bytes.Equal(f.Payload, want) {
			t.Fatalf("sender %d message %d: %d bytes differ from the %d sent", g, i, len(f.Payload), len(want))
		}
		next[g]++
		got++
	}
	if partialWrites.Load() == partialBefore {
		t.Fatal("no direct write was partial: the test did not exercise the hand-over to the loop")
	}
}

// TestCloseWhileDirectWriting: senders keep writing a conn directly while its peer
// goes away; the close (which takes the write token for good before gnet closes the
// descriptor) must not wait forever for a token a direct writer holds, and OnClose comes.
func TestCloseWhileDirectWriting(t *testing.T) { testCloseWhileDirectWriting(t) }

func testCloseWhileDirectWriting(t *testing.T) {
	h := newEchoHandler()
	s := startServer(t, Config{}, h)
	for round := range 40 {
		c := dialRS(t, s.RawSocketAddr())
		c.handshake(t, 15, 1)
		sc := h.waitOpen(t)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				msg := []byte("[36,1,2,{},[\"payload\"]]")
				for {
					select {
					case <-stop:
						return
					default:
					}
					if sc.Send(msg) != nil {
						return
					}
				}
			})
		}
		time.Sleep(time.Millisecond)
		_ = c.conn.Close()
		select {
		case <-h.closeCh:
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: no OnClose 10 s after the peer closed while sends were being written", round)
		}
		close(stop)
		wg.Wait()
	}
}

// TestFlushWhileLoopHoldsToken: another goroutine's read batch ends while the loop holds
// the conn's write token; its flush leaves the frame to the loop, which must write it
// when it lets the token go (the frame's mark was already taken off the batch's list).
func TestFlushWhileLoopHoldsToken(t *testing.T) {
	h := newEchoHandler()
	// Only the OnTraffic that echoes: the loop may still hold the token for the
	// handshake reply when the hook is set.
	var echoing atomic.Bool
	h.onMsg = func(_ *Conn, msg []byte) bool {
		echoing.Store(string(msg) == "echo-me")
		return false
	}
	s := startServer(t, Config{}, h)
	c := dialRS(t, s.RawSocketAddr())
	c.handshake(t, 15, 1)
	_ = c.conn.SetDeadline(time.Now().Add(5 * time.Second))
	sc := h.waitOpen(t)
	var once sync.Once
	hook := func(held *Conn) {
		if held != sc || !echoing.Load() {
			return
		}
		once.Do(func() {
			done := make(chan struct{})
			go func() { // another loop's read batch, sending to sc
				defer close(done)
				readbatch.Begin()
				_ = sc.Send([]byte("from-another-batch"))
				readbatch.End()
			}()
			<-done
		})
	}
	testLoopHolds.Store(&hook)
	t.Cleanup(func() { testLoopHolds.Store(nil) })
	c.writeFrame(t, 0, []byte("echo-me")) // the loop echoes it: it takes the token to write
	for _, want := range []string{"echo-me", "from-another-batch"} {
		if _, p := c.readFrame(t); string(p) != want {
			t.Fatalf("got %q, want %q", p, want)
		}
	}
}

// TestRoundEndFlush: with a round gap no read ever outlasts, every read batch after a
// loop's first flush leaves its sends to the end of the loop's polling round (a Wake whose
// callback flushes). Messages from one client forwarded to another conn must each arrive
// while the sender waits for them, none left on the batch list.
func TestRoundEndFlush(t *testing.T) {
	old := roundGap
	roundGap = time.Hour
	t.Cleanup(func() { roundGap = old }) // runs after the server's own cleanup has stopped it
	h := newEchoHandler()
	var target atomic.Pointer[Conn]
	h.onMsg = func(c *Conn, msg []byte) bool {
		if to := target.Load(); to != nil && to != c {
			_ = to.Send(msg)
			return true
		}
		return false
	}
	s := startServer(t, Config{Loops: 1}, h)
	to := dialRS(t, s.RawSocketAddr())
	to.handshake(t, 15, 1)
	target.Store(h.waitOpen(t))
	from := dialRS(t, s.RawSocketAddr())
	from.handshake(t, 15, 1)
	h.waitOpen(t)
	_ = to.conn.SetDeadline(time.Now().Add(10 * time.Second))
	before := roundEndFlushes.Load()
	for i := range 20 {
		want := fmt.Sprintf("message %d", i)
		from.writeFrame(t, 0, []byte(want))
		if _, p := to.readFrame(t); string(p) != want {
			t.Fatalf("got %q, want %q", p, want)
		}
	}
	if roundEndFlushes.Load() == before {
		t.Fatal("no flush at a round's end: the test did not exercise that path")
	}
}
