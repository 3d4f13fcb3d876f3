package netpoll

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/switchyard-wamp/switchyard/internal/readbatch"
)

// TestAppendBufferOrdering: senders in read batches (as event loops and link readers
// send) and outside them race for one conn's append buffer, so Sends fall back to the
// node queue while the buffer holds older frames and direct writers find the buffer
// held; every message must arrive once, in each sender's order. Over TLS the loop's
// drain takes the buffer instead of direct writers.
func TestAppendBufferOrdering(t *testing.T) {
	t.Run("plain", func(t *testing.T) {
		h := newEchoHandler()
		s := startServer(t, Config{OutboundLimit: 64 << 20, OutboundHardLimit: 128 << 20}, h)
		c := dialWS(t, s, "wamp.2.json.batched")
		defer c.conn.Close()
		_ = c.conn.SetDeadline(time.Now().Add(60 * time.Second))
		held := heldTakes.Load()
		sendInOrder(t, h.waitOpen(t), func() []byte { return c.read(t).Payload })
		t.Logf("direct writers that found the append buffer held: %d", heldTakes.Load()-held)
	})
	t.Run("tls", func(t *testing.T) {
		p := newPKI(t)
		h := newEchoHandler()
		s := startServer(t, Config{OutboundLimit: 64 << 20, OutboundHardLimit: 128 << 20,
			Listeners: []Listener{{Address: "127.0.0.1:0", TLS: p.server.ServerConfig(p.ca.Pool())}}}, h)
		c, _, err := wsDial(t, "wss://"+s.Addr(0).String()+"/ws", p.ca.ClientConfig(p.client), nil, nil, "wamp.2.json.batched")
		if err != nil {
			t.Fatal(err)
		}
		defer c.conn.Close()
		_ = c.conn.SetDeadline(time.Now().Add(60 * time.Second))
		sendInOrder(t, h.waitOpen(t), func() []byte { return c.read(t).Payload })
	})
}

// sendInOrder has six goroutines send numbered messages to sc, two in three of them in
// read batches, and checks with read (one JSON-batched frame per call) that every
// message arrives once, in each sender's order.
func sendInOrder(t *testing.T, sc *Conn, read func() []byte) {
	const senders, per = 6, 20000
	var wg sync.WaitGroup
	for g := range senders {
		wg.Go(func() {
			for i := 0; i < per; {
				batch := g%3 != 0
				if batch {
					readbatch.Begin()
				}
				for k := 0; k < 1+(g+i)%7 && i < per; k++ {
					if err := sc.Send([]byte(fmt.Sprintf("%d:%d", g, i))); err != nil {
						t.Errorf("sender %d message %d: %v", g, i, err)
						return
					}
					i++
				}
				if batch {
					readbatch.End()
				}
			}
		})
	}
	next := make([]int, senders)
	for range senders * per {
		p := read()
		g, i, _ := strings.Cut(string(p[:len(p)-1]), ":") // strip 0x1E
		gi, _ := strconv.Atoi(g)
		ii, _ := strconv.Atoi(i)
		if gi < 0 || gi >= senders || next[gi] != ii {
			t.Fatalf("sender %s: got message %d, want %d", g, ii, next[min(max(gi, 0), senders-1)])
		}
		next[gi]++
	}
	wg.Wait()
}

// holdAppend takes c's append buffer as a sender appending to it does, and returns
// what lets it go again (releaseAppend, with its look at aretry).
func holdAppend(c *Conn) (release func()) {
	for !c.alock.CompareAndSwap(false, true) {
		runtime.Gosched()
	}
	return func() { c.releaseAppend(false) }
}

// TestDirectWriterLeavesHeldBuffer: sender A's first message waits in the append buffer
// and its second in the node queue (a sender holds the buffer); a direct writer that
// finds the buffer held must write neither, or A's second message would overtake its
// first. When the buffer is let go, both go out in A's order.
func TestDirectWriterLeavesHeldBuffer(t *testing.T) {
	h := newEchoHandler()
	s := startServer(t, Config{}, h)
	c := dialWS(t, s, "wamp.2.json.batched")
	defer c.conn.Close()
	_ = c.conn.SetDeadline(time.Now().Add(10 * time.Second))
	sc := h.waitOpen(t)
	send := func(m string) {
		if err := sc.Send([]byte(m)); err != nil {
			t.Error(err)
		}
	}
	// The loops flush the process's deferred conns at the end of their rounds too, and
	// one may write A's first message before the buffer is held: then try again.
	for try := range 20 {
		a0, a1 := fmt.Sprintf("A%d.0", try), fmt.Sprintf("A%d.1", try)
		held := heldTakes.Load()
		readbatch.Begin() // Defer only marks the conn: the test flushes
		send(a0)          // into the append buffer
		release := holdAppend(sc)
		setUp := sc.apend.Load() // a0 still waits in the held buffer
		send(a1)                 // the buffer is held: into the node queue
		flushed := make(chan struct{})
		go func() { defer close(flushed); readbatch.Flush() }() // a direct writer finds the buffer held
		for i := 0; setUp && heldTakes.Load() == held && i < 100; i++ {
			time.Sleep(10 * time.Millisecond) // a loop's flush may have taken the conn
		}
		found := heldTakes.Load() != held
		release()
		<-flushed
		readbatch.End()

		var got []string
		for len(got) < 2 {
			p := c.read(t).Payload
			got = append(got, string(p[:len(p)-1]))
		}
		if got[0] != a0 || got[1] != a1 {
			t.Fatalf("frames arrived as %q: A's messages out of order", got)
		}
		if setUp {
			if !found {
				t.Fatal("no direct writer found the append buffer held")
			}
			return
		}
	}
	t.Fatal("A's first message never stayed in the append buffer until it was held")
}

// TestAppendBufferNothingLost: senders in batches (like a proxy's link readers) send to
// several conns whose clients read in bursts, so sockets fill, direct writes end
// partial and the loop takes over; every message must arrive, in each sender's order.
func TestAppendBufferNothingLost(t *testing.T) { testAppendBufferNothingLost(t) }

func testAppendBufferNothingLost(t *testing.T) {
	h := newEchoHandler()
	// The clients only read, with pauses, and under -race slowly: neither the liveness
	// ping (which they do not answer; CI: a ping frame read as a message) nor the
	// slow-consumer policy (CI: connection reset after 10 s) may close them.
	s := startServer(t, Config{Listeners: twoListeners(Listener{PingInterval: time.Hour}),
		OutboundLimit: 64 << 20, WriteDeadline: time.Minute}, h)
	const nconns, senders, per = 4, 6, 30000
	clients := make([]*wsClient, nconns)
	conns := make([]*Conn, nconns)
	for i := range clients {
		clients[i] = dialWS(t, s, "wamp.2.json.batched")
		defer clients[i].conn.Close()
		_ = clients[i].conn.SetDeadline(time.Now().Add(60 * time.Second))
		conns[i] = h.waitOpen(t)
	}
	payload := strings.Repeat("x", 60)
	var wg sync.WaitGroup
	for g := range senders {
		wg.Go(func() {
			for i := 0; i < per; {
				readbatch.Begin()
				for k := 0; k < 1+(g+i)%40 && i < per; k++ {
					for _, c := range conns {
						if err := c.Send([]byte(fmt.Sprintf("%d:%d:%s", g, i, payload))); err != nil {
							t.Errorf("sender %d message %d: %v", g, i, err)
						}
					}
					i++
				}
				readbatch.End()
			}
		})
	}
	var rg sync.WaitGroup
	for ci, c := range clients {
		rg.Go(func() {
			next := make([]int, senders)
			for n := 0; n < senders*per; n++ {
				if n%5000 == 0 {
					time.Sleep(20 * time.Millisecond) // let the socket fill
				}
				f, err := ws.ReadFrame(c.r)
				if err != nil {
					t.Errorf("conn %d: after %d messages (per sender %v): %v", ci, n, next, err)
					return
				}
				g, rest, _ := strings.Cut(string(f.Payload[:len(f.Payload)-1]), ":")
				i, _, _ := strings.Cut(rest, ":")
				gi, _ := strconv.Atoi(g)
				ii, _ := strconv.Atoi(i)
				if gi < 0 || gi >= senders || next[gi] != ii {
					t.Errorf("conn %d: sender %s: message %d, want %d", ci, g, ii, next[min(max(gi, 0), senders-1)])
					return
				}
				next[gi]++
			}
		})
	}
	wg.Wait()
	rg.Wait()
}

// TestFlushBouncedOffLeftHeld: a direct writer finds the append buffer held (by a
// sender) and, before it releases the write token, the sender lets go and defers the
// conn, whose next flush finds the token held and leaves the conn to its holder. The
// holder must look again: nothing else would write the buffer's frame, as nothing more
// is sent.
func TestFlushBouncedOffLeftHeld(t *testing.T) {
	h := newEchoHandler()
	s := startServer(t, Config{}, h)
	c := dialWS(t, s, "wamp.2.json.batched")
	defer c.conn.Close()
	sc := h.waitOpen(t)
	left, releaseF := make(chan struct{}), make(chan struct{})
	leftHook := func(*Conn) {
		select {
		case <-left:
		default:
			close(left)
			<-releaseF
		}
	}
	testLeftHeld.Store(&leftHook)
	defer testLeftHeld.Store(nil)

	readbatch.Begin()
	if err := sc.Send([]byte("A0")); err != nil { // the append buffer; the conn waits on the batch's stack
		t.Fatal(err)
	}
	release := holdAppend(sc)
	go readbatch.Flush() // finds the buffer held and stops in leftHook, holding the token
	select {
	case <-left:
	case <-time.After(5 * time.Second):
		t.Fatal("no direct writer found the append buffer held")
	}
	release()         // the sender lets go: it sees aretry and defers the conn again
	readbatch.Flush() // that flush finds the token held: it is left to the holder
	close(releaseF)
	readbatch.End()

	_ = c.conn.SetDeadline(time.Now().Add(3 * time.Second))
	f, err := ws.ReadFrame(c.r)
	if err != nil {
		t.Fatalf("%v (the frame was left in the append buffer)", err)
	}
	if p := string(f.Payload[:len(f.Payload)-1]); p != "A0" {
		t.Fatalf("got %q, want A0", p)
	}
}
