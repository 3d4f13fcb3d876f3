package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/switchyard-wamp/switchyard/codec"
)

// echoServer is what the tests see of either echo server.
type echoServer interface {
	Addr() string
	WebSocketURL() string
	RawSocketURL() string
	Messages() int64
	Bytes() int64
	Conns() int64
	Close() error
}

// echoServers are the two echo servers, which must behave the same.
var echoServers = []struct {
	name  string
	start func(addr string) (echoServer, error)
}{
	{"goroutines", func(addr string) (echoServer, error) { return StartEchoServer(addr) }},
	{"epoll", func(addr string) (echoServer, error) { return StartEpollEchoServer(addr, 1) }},
}

// forEachEcho runs f as a subtest against each echo server, on 127.0.0.1:0.
func forEachEcho(t *testing.T, f func(t *testing.T, s echoServer)) {
	for _, k := range echoServers {
		t.Run(k.name, func(t *testing.T) {
			s, err := k.start("127.0.0.1:0")
			if err != nil {
				if k.name == "epoll" && runtime.GOOS != "linux" {
					t.Skip(err)
				}
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			f(t, s)
		})
	}
}

// TestEchoServerWebSocket: over a real socket, every data frame comes back unchanged
// (text and binary, the three length encodings, a fragmented message, several frames in
// one write), unmasked as a server's frames are; a ping gets a pong with its payload;
// a close frame is echoed and the connection ends.
func TestEchoServerWebSocket(t *testing.T) { forEachEcho(t, testEchoServerWebSocket) }

func testEchoServerWebSocket(t *testing.T, s echoServer) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, br, hs, err := ws.Dialer{Protocols: []string{"wamp.2.json"}}.Dial(ctx, s.WebSocketURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if hs.Protocol != "wamp.2.json" {
		t.Fatalf("subprotocol %q", hs.Protocol)
	}
	var r io.Reader = conn
	if br != nil {
		r = br
	}
	rd := bufio.NewReader(r)
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))

	msgs := []struct {
		op ws.OpCode
		p  []byte
	}{
		{ws.OpText, []byte(`[48,1,{},"a.b",[1]]`)},
		{ws.OpBinary, bytes.Repeat([]byte{0xA5}, 300)},    // 16-bit length
		{ws.OpBinary, bytes.Repeat([]byte{0x5A}, 70_000)}, // 64-bit length
		{ws.OpText, []byte{}},
	}
	// All in one write: the server reads them in one batch and answers in order.
	var out bytes.Buffer
	var bytesSent int64
	for _, m := range msgs {
		if err := ws.WriteFrame(&out, ws.MaskFrame(ws.NewFrame(m.op, true, bytes.Clone(m.p)))); err != nil {
			t.Fatal(err)
		}
		bytesSent += int64(len(m.p))
	}
	if _, err := conn.Write(out.Bytes()); err != nil {
		t.Fatal(err)
	}
	for i, m := range msgs {
		f, err := ws.ReadFrame(rd)
		if err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
		if f.Header.Masked || !f.Header.Fin || f.Header.OpCode != m.op || !bytes.Equal(f.Payload, m.p) {
			t.Fatalf("reply %d: masked %v fin %v op %v, %d bytes, want op %v %d bytes as sent",
				i, f.Header.Masked, f.Header.Fin, f.Header.OpCode, len(f.Payload), m.op, len(m.p))
		}
	}
	// A fragmented message: both fragments echoed with their FIN bits.
	for _, f := range []ws.Frame{ws.NewFrame(ws.OpText, false, []byte("frag-")), ws.NewFrame(ws.OpContinuation, true, []byte("ment"))} {
		if err := ws.WriteFrame(conn, ws.MaskFrame(f)); err != nil {
			t.Fatal(err)
		}
	}
	var got []byte
	for range 2 {
		f, err := ws.ReadFrame(rd)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, f.Payload...)
	}
	if string(got) != "frag-ment" {
		t.Errorf("fragmented message echoed as %q", got)
	}
	bytesSent += int64(len("frag-ment"))
	// Ping: pong with the same payload.
	if err := ws.WriteFrame(conn, ws.MaskFrame(ws.NewPingFrame([]byte("hi")))); err != nil {
		t.Fatal(err)
	}
	if f, err := ws.ReadFrame(rd); err != nil || f.Header.OpCode != ws.OpPong || string(f.Payload) != "hi" {
		t.Fatalf("ping answered with %v %q, %v", f.Header.OpCode, f.Payload, err)
	}
	// Close: echoed, then the server hangs up.
	if err := ws.WriteFrame(conn, ws.MaskFrame(ws.NewCloseFrame(ws.NewCloseFrameBody(ws.StatusNormalClosure, "bye")))); err != nil {
		t.Fatal(err)
	}
	f, err := ws.ReadFrame(rd)
	if err != nil || f.Header.OpCode != ws.OpClose {
		t.Fatalf("close answered with %v, %v", f.Header.OpCode, err)
	}
	if _, err := rd.ReadByte(); err != io.EOF {
		t.Errorf("after the close: %v, want EOF", err)
	}
	waitFor(t, func() bool { return s.Messages() == int64(len(msgs))+1 && s.Bytes() == bytesSent },
		func() string {
			return fmt.Sprintf("echo server counted %d messages %d bytes, want %d %d", s.Messages(), s.Bytes(), len(msgs)+1, bytesSent)
		})
	if s.Conns() != 1 {
		t.Errorf("conns %d", s.Conns())
	}
}

// TestEchoServerRawSocket: the RawSocket handshake is answered with the serializer asked
// for; message frames come back unchanged, a ping as a pong.
func TestEchoServerRawSocket(t *testing.T) { forEachEcho(t, testEchoServerRawSocket) }

func testEchoServerRawSocket(t *testing.T, s echoServer) {
	conn := dialRawEcho(t, s, codec.MsgPack, 5*time.Second)
	frame := func(typ byte, p []byte) []byte {
		n := len(p)
		return append([]byte{typ, byte(n >> 16), byte(n >> 8), byte(n)}, p...)
	}
	big := bytes.Repeat([]byte{7}, 100_000)
	in := slicesConcat(frame(rsMessage, []byte{0x93, 1, 2, 3}), frame(rsPing, []byte("p")), frame(rsMessage, big))
	if _, err := conn.Write(in); err != nil {
		t.Fatal(err)
	}
	want := slicesConcat(frame(rsMessage, []byte{0x93, 1, 2, 3}), frame(rsPong, []byte("p")), frame(rsMessage, big))
	got := make([]byte, len(want))
	if _, err := io.ReadFull(conn, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("echoed %d bytes, not the frames sent (ping as pong)", len(got))
	}
	waitFor(t, func() bool { return s.Messages() == 2 }, func() string { return fmt.Sprintf("%d messages counted", s.Messages()) })
}

func slicesConcat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

func waitFor(t *testing.T, ok func() bool, msg func() string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal(msg())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestEchoScenario: the echo scenario against each echo server, over WebSocket and
// RawSocket, unpaced and paced: messages go round, a latency and a rate are reported
// with the server's CPU (the server runs in this process), and each message is the size
// of the CALL rpc sends with the same --size.
func TestEchoScenario(t *testing.T) { forEachEcho(t, testEchoScenario) }

func testEchoScenario(t *testing.T, s echoServer) {
	for _, tc := range []struct {
		url  string
		ser  codec.Serializer
		rate float64
	}{
		{s.WebSocketURL(), codec.JSON, 0},
		{s.RawSocketURL(), codec.MsgPack, 0},
		{s.WebSocketURL(), codec.CBOR, 2000},
	} {
		t.Run(fmt.Sprintf("%s-%v-rate%g", tc.url[:2], tc.ser, tc.rate), func(t *testing.T) {
			msgs0, bytes0 := s.Messages(), s.Bytes()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			r, err := Run(ctx, "echo", Options{URLs: []string{tc.url}, Serializer: tc.ser, Callers: 3, Inflight: 4,
				Size: 100, Rate: tc.rate, Duration: 300 * time.Millisecond, RouterPIDs: []int{os.Getpid()}})
			if err != nil {
				t.Fatal(err)
			}
			if r.Scenario != "echo" || r.Callers != 3 || r.Inflight != 4 || r.Callees != 0 {
				t.Errorf("result shape: %s callers %d inflight %d callees %d", r.Scenario, r.Callers, r.Inflight, r.Callees)
			}
			if r.Errors != 0 || r.Lost != 0 {
				t.Errorf("errors %d %q, lost %d", r.Errors, r.ErrorSamples, r.Lost)
			}
			if r.Delivered <= 0 || r.MsgsPerSec <= 0 || r.Latency == nil || r.Latency.P50Us <= 0 || r.Latency.P99Us < r.Latency.P50Us {
				t.Fatalf("delivered %d, %.0f msgs/s, latency %+v", r.Delivered, r.MsgsPerSec, r.Latency)
			}
			if r.Router == nil || r.Router.CPUSeconds <= 0 || r.Router.CPUPerMsgUs <= 0 {
				t.Errorf("server CPU not measured: %+v", r.Router)
			}
			if tc.rate > 0 && r.SentPerSec > 1.5*tc.rate {
				t.Errorf("paced at %g/s, sent %.0f/s", tc.rate, r.SentPerSec)
			}
			// Every message echoed is the CALL rpc would send: same template, same payload.
			msgs, n := s.Messages()-msgs0, s.Bytes()-bytes0
			if msgs < r.Delivered {
				t.Fatalf("the server echoed %d messages, loadgen received %d", msgs, r.Delivered)
			}
			tm, err := newTemplate(tc.ser, codec.Message{Type: codec.CALL, URI: fmt.Appendf(nil, "%s.echo.0", runPrefix())})
			if err != nil {
				t.Fatal(err)
			}
			pl, err := newPayload(tc.ser, 100)
			if err != nil {
				t.Fatal(err)
			}
			want := len(tm.build(nil, 1, pl.stamp(time.Now().UnixNano())))
			// Request ids grow from 1: their encoding adds a few bytes at most.
			if per := float64(n) / float64(msgs); per < float64(want) || per > float64(want+8) {
				t.Errorf("%.1f bytes per echoed message, want the CALL's %d (+ the request id's growth)", per, want)
			}
		})
	}
}

// TestEchoScenarioAgainstRouter: against a WAMP router the echo scenario's first
// message (a CALL before any HELLO) ends the connection: the run reports errors and
// no round trip.
func TestEchoScenarioAgainstRouter(t *testing.T) {
	n := startNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := Run(ctx, "echo", Options{URLs: []string{n.WebSocketURL()}, Duration: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if r.Errors == 0 || r.Delivered != 0 {
		t.Errorf("echo against a router: delivered %d, errors %d", r.Delivered, r.Errors)
	}
}

// echoInMemory runs the goroutine server's connection loop over in-memory frames until
// EOF, replies discarded.
func echoInMemory(e *echoConn, in []byte) error {
	e.r, e.in = bytes.NewReader(in), e.in[:0]
	return e.run()
}

func maskedFrames(n int) []byte {
	var in bytes.Buffer
	for range n {
		_ = ws.WriteFrame(&in, ws.MaskFrame(ws.NewTextFrame(bytes.Repeat([]byte("x"), 80))))
	}
	return in.Bytes()
}

// TestEchoServerAllocs: echoing frames allocates nothing once the buffers have grown.
func TestEchoServerAllocs(t *testing.T) {
	in := maskedFrames(1000)
	e := &echoConn{c: new(echoCounters), w: io.Discard, ws: true, in: make([]byte, 0, echoReadSize)}
	if err := echoInMemory(e, slices.Clone(in)); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(5, func() {
		if err := echoInMemory(e, in); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 1 { // the bytes.Reader
		t.Errorf("%.0f allocations for 1000 frames", allocs)
	}
	if e.c.Messages() != 7*1000 { // primed once, AllocsPerRun's warm-up and 5 runs
		t.Errorf("%d messages counted, want %d", e.c.Messages(), 7*1000)
	}
}

// BenchmarkEchoServerFrames: the echo servers' per-frame work (the shared parser)
// without the syscalls; 1000 masked 80-byte text frames per op.
func BenchmarkEchoServerFrames(b *testing.B) {
	in := maskedFrames(1000)
	var out []byte
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		used, o, msgs, _, _, err := echoFrames(in, out[:0], true)
		if err != nil || used != len(in) || msgs != 1000 {
			b.Fatal(used, msgs, err)
		}
		out = o
	}
}

// dialRawEcho connects to s over RawSocket asking for ser, with the deadline timeout,
// and checks that the handshake reply grants it. The conn is closed when t ends.
func dialRawEcho(t *testing.T, s echoServer, ser codec.Serializer, timeout time.Duration) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(timeout))
	hello := [4]byte{0x7F, 0xF0 | byte(ser), 0, 0}
	if _, err := conn.Write(hello[:]); err != nil {
		t.Fatal(err)
	}
	var hs [4]byte
	if _, err := io.ReadFull(conn, hs[:]); err != nil || hs != hello {
		t.Fatalf("handshake reply % x, %v", hs, err)
	}
	return conn
}
