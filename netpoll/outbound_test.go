package netpoll

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/panjf2000/gnet/v2"
)

func TestSlowConsumer(t *testing.T) {
	// hard: a flood from another goroutine; the backlog passes the hard limit long
	// before the write deadline, and the conn is closed at once.
	// deadline: a paced flood that stays under the hard limit; the backlog (kernel,
	// gnet's buffer) stays over the soft limit, and the conn is closed once it has been
	// over it for WriteDeadline.
	for _, paced := range []bool{false, true} {
		t.Run(map[bool]string{false: "hard", true: "deadline"}[paced], func(t *testing.T) {
			testSlowConsumer(t, paced)
		})
	}
}

func testSlowConsumer(t *testing.T, paced bool) {
	h := newEchoHandler()
	cfg := Config{OutboundLimit: 256 << 10, OutboundHardLimit: 2 << 20, WriteDeadline: time.Minute}
	if paced {
		cfg.OutboundHardLimit, cfg.WriteDeadline = 64<<20, 300*time.Millisecond
	}
	done := make(chan error, 1)
	var sent atomic.Int64
	var started atomic.Int64
	h.onMsg = func(c *Conn, msg []byte) bool {
		go func() { // flood from another goroutine until the policy fires
			started.Store(time.Now().UnixNano())
			payload := bytes.Repeat([]byte("z"), 1024)
			for i := 1; ; i++ {
				if err := c.Send(payload); err != nil {
					done <- err
					return
				}
				sent.Add(1)
				if paced && i%32 == 0 {
					time.Sleep(time.Millisecond)
				}
			}
		}()
		return true
	}
	s := startServer(t, cfg, h)
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	c := dialRS(t, s.RawSocketAddr())
	c.handshake(t, 15, 1)
	h.waitOpen(t)
	c.writeFrame(t, 0, []byte("flood")) // and never read
	var err error
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("slow consumer never detected")
	}
	took := time.Duration(time.Now().UnixNano() - started.Load())
	if !errors.Is(err, ErrSlowConsumer) {
		t.Fatalf("Send error %v", err)
	}
	if cerr := h.waitClose(t); !errors.Is(cerr, ErrSlowConsumer) {
		t.Fatalf("OnClose err %v", cerr)
	}
	if st := s.Stats(); st.SlowConsumerClosed != 1 || st.Open != 0 || st.OverOutboundLimit != 0 {
		t.Fatalf("stats %+v", st)
	}
	// Which limit fired is counted (the reason label of switchyard_slow_consumer_closed_total).
	if hard := s.Stats().SlowConsumerHard; hard != map[bool]uint64{false: 1, true: 0}[paced] {
		t.Fatalf("SlowConsumerHard %d for the %s case", hard, map[bool]string{false: "hard", true: "deadline"}[paced])
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if grown := int64(after.HeapInuse) - int64(before.HeapInuse); grown > 32<<20 {
		t.Fatalf("heap grew by %d bytes (sent %d KiB)", grown, sent.Load())
	}
	if paced && (took < cfg.WriteDeadline || sent.Load()<<10 >= int64(cfg.OutboundHardLimit)) {
		t.Fatalf("closed after %v and %d KiB: not by the write deadline", took, sent.Load())
	}
	if !paced && took >= time.Second {
		t.Fatalf("closed after %v: not at once by the hard limit", took)
	}
	t.Logf("sent %d KiB in %v before the policy fired", sent.Load(), took)
}

func TestConcurrentSendOrdering(t *testing.T) {
	h := newEchoHandler()
	s := startServer(t, Config{}, h)
	for _, transport := range []string{"rawsocket", "websocket"} {
		t.Run(transport, func(t *testing.T) {
			var read func() []byte
			if transport == "rawsocket" {
				c := dialRS(t, s.RawSocketAddr())
				c.handshake(t, 15, 1)
				read = func() []byte { _, p := c.readFrame(t); return p }
			} else {
				c := dialWS(t, s, "wamp.2.json.batched")
				defer c.conn.Close()
				read = func() []byte {
					p := c.read(t).Payload
					return p[:len(p)-1] // strip 0x1E
				}
			}
			sc := h.waitOpen(t)
			const senders, per = 8, 2000
			var wg sync.WaitGroup
			for g := range senders {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range per {
						if err := sc.Send([]byte(fmt.Sprintf("%d:%d", g, i))); err != nil {
							t.Error(err)
							return
						}
					}
				}()
			}
			next := make([]int, senders)
			for range senders * per {
				g, i, _ := strings.Cut(string(read()), ":")
				gi, _ := strconv.Atoi(g)
				ii, _ := strconv.Atoi(i)
				if next[gi] != ii {
					t.Fatalf("sender %d: got %d, want %d", gi, ii, next[gi])
				}
				next[gi]++
			}
			wg.Wait()
		})
	}
}

func TestStopFlushesQueuedFrames(t *testing.T) {
	h := newEchoHandler()
	s, err := NewServer(Config{Listeners: twoListeners(Listener{}), Loops: 2, Logger: testLogger(t)}, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	rc := dialRS(t, s.RawSocketAddr())
	rc.handshake(t, 15, 1)
	rsc := h.waitOpen(t)
	wc := dialWS(t, s, "wamp.2.json")
	defer wc.conn.Close()
	wsc := h.waitOpen(t)
	const n = 5000
	payload := bytes.Repeat([]byte("p"), 500)
	for i := range n {
		for _, c := range []*Conn{rsc, wsc} {
			if err := c.Send(append([]byte(strconv.Itoa(i)+":"), payload...)); err != nil {
				t.Fatal(err)
			}
		}
	}
	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		stopped <- s.Stop(ctx)
	}()
	for i := range n {
		_, p := rc.readFrame(t)
		if !bytes.HasPrefix(p, []byte(strconv.Itoa(i)+":")) {
			t.Fatalf("rawsocket frame %d: %q", i, p[:10])
		}
		f := wc.read(t)
		if !bytes.HasPrefix(f.Payload, []byte(strconv.Itoa(i)+":")) {
			t.Fatalf("websocket frame %d: %q", i, f.Payload[:10])
		}
	}
	if f := wc.read(t); f.Header.OpCode != 0x8 {
		t.Fatalf("want close frame, got %v", f.Header.OpCode)
	}
	expectEOF(t, rc.r)
	expectEOF(t, wc.r)
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Open != 0 || st.MessagesOut != 2*n {
		t.Fatalf("stats %+v", st)
	}
	if err := rsc.Send([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after Stop: %v", err)
	}
	if _, err := net.Dial("tcp", s.RawSocketAddr().String()); err == nil {
		t.Fatal("still accepting after Stop")
	}
}

func TestSameAddressBothListeners(t *testing.T) {
	h := newEchoHandler()
	s := startServer(t, Config{Listeners: twoListeners(Listener{})}, h)
	if s.UniversalAddr().String() == s.RawSocketAddr().String() {
		t.Fatalf("same bound address %v", s.UniversalAddr())
	}
	c := dialRS(t, s.RawSocketAddr())
	_, _ = c.conn.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	expectEOF(t, c.r) // RawSocket-only port refuses HTTP
}

// --- benchmarks ---

// stubConn stands in for the gnet connection in BenchmarkConnSend: it isolates the
// cost of Send (framing + copy + lock-free push) and of the loop-side drain.
type stubConn struct {
	gnet.Conn
	written int
}

func (s *stubConn) Write(p []byte) (int, error)                { s.written += len(p); return len(p), nil }
func (s *stubConn) Wake(gnet.AsyncCallback) error              { return nil }
func (s *stubConn) OutboundBuffered() int                      { return 0 }
func (s *stubConn) Close() error                               { return nil }
func (s *stubConn) CloseWithCallback(gnet.AsyncCallback) error { return nil }

func benchConn(b *testing.B, transport string, batched bool) *Conn {
	s, err := NewServer(Config{Listeners: []Listener{{Address: "127.0.0.1:0", Kind: KindRawSocket}}, Logger: testLogger(b)}, newEchoHandler())
	if err != nil {
		b.Fatal(err)
	}
	c := &Conn{srv: s, gc: &stubConn{}, ln: s.lns[0], loop: &loopState{}, remote: &net.TCPAddr{}, fd: -1}
	c.bm.Init(func() {}) // the benchmarks drain the queue themselves
	c.transport, c.ser, c.batched, c.wsOpcode, c.peerMax = transport, 2, batched, opBinary, 1<<24-1
	return c
}

// BenchmarkConnSend: Send of a 100-byte message to a conn, plus the loop's drain every
// 64 messages (one write per batch). Must be 0 allocs/op.
func BenchmarkConnSend(b *testing.B) {
	for _, tc := range []struct {
		name      string
		transport string
		batched   bool
	}{{"rawsocket", transportRawSocket, false}, {"websocket", transportWebSocket, false}, {"websocket-batched", transportWebSocket, true}} {
		b.Run(tc.name, func(b *testing.B) {
			c := benchConn(b, tc.transport, tc.batched)
			msg := bytes.Repeat([]byte("m"), 100)
			warmUp(b, c, msg)
			b.ReportAllocs()
			b.SetBytes(int64(len(msg)))
			for i := 0; b.Loop(); i++ {
				if err := c.Send(msg); err != nil {
					b.Fatal(err)
				}
				if i%64 == 63 {
					c.drain()
				}
			}
			c.drain()
		})
	}
}

// BenchmarkConnSendParallel: GOMAXPROCS goroutines Send to one conn while a stand-in
// loop drains it (contention on the lock-free queue head).
func BenchmarkConnSendParallel(b *testing.B) {
	{
		c := benchConn(b, transportRawSocket, false)
		c.srv.cfg.OutboundLimit = 1 << 40 // measure Send, not the slow-consumer policy
		c.srv.cfg.OutboundHardLimit = 1 << 40
		msg := bytes.Repeat([]byte("m"), 100)
		warmUp(b, c, msg)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { // the loop
			defer wg.Done()
			for {
				select {
				case <-stop:
					c.drain()
					return
				default:
					c.drain()
					runtime.Gosched()
				}
			}
		}()
		b.ReportAllocs()
		b.SetBytes(int64(len(msg)))
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := c.Send(msg); err != nil {
					b.Error(err)
					return
				}
			}
		})
		close(stop)
		wg.Wait()
	}
}

// warmUp fills the node pool the way a running conn would have.
func warmUp(b *testing.B, c *Conn, msg []byte) {
	for range 4 {
		for range 256 {
			if err := c.Send(msg); err != nil {
				b.Fatal(err)
			}
		}
		c.drain()
	}
}

// BenchmarkEchoRawSocket: end-to-end echo over loopback RawSocket: one client, a window
// of in-flight messages, 100-byte messages.
func BenchmarkEchoRawSocket(b *testing.B) {
	benchEcho(b, func(b *testing.B, h *echoHandler) *rsClient {
		return dialRS(b, startServer(b, Config{}, h).RawSocketAddr())
	})
}

// benchEcho runs the echo benchmark over the RawSocket client dial returns, for windows
// of 1 and 64 messages in flight.
func benchEcho(b *testing.B, dial func(*testing.B, *echoHandler) *rsClient) {
	for _, window := range []int{1, 64} {
		b.Run(fmt.Sprintf("window=%d", window), func(b *testing.B) {
			h := newEchoHandler()
			c := dial(b, h)
			c.handshake(b, 15, 2)
			h.waitOpen(b)
			_ = c.conn.SetDeadline(time.Time{})
			frame := append([]byte{0, 0, 0, 100}, bytes.Repeat([]byte("e"), 100)...)
			out := bytes.Repeat(frame, window)
			in := make([]byte, len(out))
			b.ReportAllocs()
			b.SetBytes(int64(len(frame)))
			b.ResetTimer()
			for i := 0; i < b.N; i += window {
				if _, err := c.conn.Write(out); err != nil {
					b.Fatal(err)
				}
				if _, err := readFull(c, in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func readFull(c *rsClient, p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m, err := c.r.Read(p[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
