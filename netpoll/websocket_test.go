package netpoll

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/switchyard-wamp/switchyard/codec"
)

func TestWSEchoEachSubprotocol(t *testing.T) {
	h := newEchoHandler()
	s := startServer(t, Config{}, h)
	for _, p := range wsProtos {
		t.Run(p.name, func(t *testing.T) {
			// Offer an unknown protocol first: the first supported one in client order wins.
			c := dialWS(t, s, "foo.bar", p.name, "wamp.2.json")
			defer c.conn.Close()
			if c.hs.Protocol != p.name {
				t.Fatalf("negotiated %q, want %q", c.hs.Protocol, p.name)
			}
			sc := h.waitOpen(t)
			if sc.Transport() != "websocket" || sc.Serializer() != p.ser || sc.Batched() != p.batched {
				t.Fatalf("conn: %s %v %v", sc.Transport(), sc.Serializer(), sc.Batched())
			}
			wantOp := ws.OpBinary
			if p.ser == codec.JSON {
				wantOp = ws.OpText
			}
			msgs := [][]byte{[]byte(`[1,"realm1",{}]`), bytes.Repeat([]byte("x"), 300), bytes.Repeat([]byte("y"), 70000)}
			if !p.batched {
				for _, m := range msgs {
					c.write(t, wantOp, true, m)
					f := c.read(t)
					if f.Header.OpCode != wantOp || !f.Header.Fin || !bytes.Equal(f.Payload, m) {
						t.Fatalf("echo mismatch: op %v len %d", f.Header.OpCode, len(f.Payload))
					}
				}
				return
			}
			// One batch carrying all messages in, one frame (a batch of one) per message out.
			var batch []byte
			for _, m := range msgs {
				if p.ser == codec.JSON {
					batch = append(append(batch, m...), 0x1E)
				} else {
					batch = append(append(batch, be32(len(m))...), m...)
				}
			}
			c.write(t, wantOp, true, batch)
			for _, m := range msgs {
				f := c.read(t)
				var want []byte
				if p.ser == codec.JSON {
					want = append(append(want, m...), 0x1E)
				} else {
					want = append(be32(len(m)), m...)
				}
				if f.Header.OpCode != wantOp || !bytes.Equal(f.Payload, want) {
					t.Fatalf("batched echo mismatch: op %v len %d want %d", f.Header.OpCode, len(f.Payload), len(want))
				}
			}
		})
	}
}

func TestWSFragmentedWithInterleavedPing(t *testing.T) {
	h := newEchoHandler()
	s := startServer(t, Config{}, h)
	c := dialWS(t, s, "wamp.2.json")
	defer c.conn.Close()
	h.waitOpen(t)
	c.write(t, ws.OpText, false, []byte(`[16,1,{},`))
	c.write(t, ws.OpPing, true, []byte("mid"))
	c.write(t, ws.OpContinuation, false, []byte(`"com.example`))
	c.write(t, ws.OpContinuation, true, []byte(`.topic"]`))
	f := c.read(t)
	if f.Header.OpCode != ws.OpPong || string(f.Payload) != "mid" {
		t.Fatalf("want pong 'mid', got %v %q", f.Header.OpCode, f.Payload)
	}
	f = c.read(t)
	if f.Header.OpCode != ws.OpText || string(f.Payload) != `[16,1,{},"com.example.topic"]` {
		t.Fatalf("reassembly: %v %q", f.Header.OpCode, f.Payload)
	}
}

func TestWSPingPong(t *testing.T) {
	h := newEchoHandler()
	s := startServer(t, Config{}, h)
	c := dialWS(t, s, "wamp.2.msgpack")
	defer c.conn.Close()
	h.waitOpen(t)
	c.write(t, ws.OpPing, true, []byte("hello"))
	f := c.read(t)
	if f.Header.OpCode != ws.OpPong || string(f.Payload) != "hello" {
		t.Fatalf("got %v %q", f.Header.OpCode, f.Payload)
	}
}

func TestWSCloseHandshake(t *testing.T) {
	h := newEchoHandler()
	s := startServer(t, Config{}, h)
	c := dialWS(t, s, "wamp.2.json")
	defer c.conn.Close()
	h.waitOpen(t)
	c.write(t, ws.OpClose, true, ws.NewCloseFrameBody(ws.StatusGoingAway, "bye"))
	f := c.read(t)
	if f.Header.OpCode != ws.OpClose {
		t.Fatalf("want close, got %v", f.Header.OpCode)
	}
	if code, _ := ws.ParseCloseFrameData(f.Payload); code != ws.StatusGoingAway {
		t.Fatalf("echoed code %d", code)
	}
	expectEOF(t, c.r)
	if err := h.waitClose(t); err != nil {
		t.Fatalf("clean close reported %v", err)
	}
}

func TestWSServerClose(t *testing.T) {
	h := newEchoHandler()
	s := startServer(t, Config{}, h)
	c := dialWS(t, s, "wamp.2.json")
	defer c.conn.Close()
	sc := h.waitOpen(t)
	if err := sc.Send([]byte(`[6,{},"wamp.close.normal"]`)); err != nil {
		t.Fatal(err)
	}
	sc.Close()
	if err := sc.Send([]byte("late")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after Close: %v", err)
	}
	if f := c.read(t); string(f.Payload) != `[6,{},"wamp.close.normal"]` {
		t.Fatalf("queued message not flushed first: %q", f.Payload)
	}
	f := c.read(t)
	if code, _ := ws.ParseCloseFrameData(f.Payload); f.Header.OpCode != ws.OpClose || code != ws.StatusNormalClosure {
		t.Fatalf("want close 1000, got %v %d", f.Header.OpCode, code)
	}
	expectEOF(t, c.r)
	if err := h.waitClose(t); err != nil {
		t.Fatalf("OnClose err %v", err)
	}
}

func TestWSOversize(t *testing.T) {
	h := newEchoHandler()
	s := startServer(t, Config{Listeners: twoListeners(Listener{MaxMessageSize: 1000})}, h)
	c := dialWS(t, s, "wamp.2.json")
	defer c.conn.Close()
	h.waitOpen(t)
	c.write(t, ws.OpText, true, bytes.Repeat([]byte("a"), 1000)) // at the limit: fine
	if f := c.read(t); len(f.Payload) != 1000 {
		t.Fatal("echo at limit")
	}
	// Over the limit through fragments.
	c.write(t, ws.OpText, false, bytes.Repeat([]byte("a"), 600))
	c.write(t, ws.OpContinuation, true, bytes.Repeat([]byte("a"), 600))
	f := c.read(t)
	if code, _ := ws.ParseCloseFrameData(f.Payload); f.Header.OpCode != ws.OpClose || code != ws.StatusMessageTooBig {
		t.Fatalf("want close 1009, got %v %d", f.Header.OpCode, code)
	}
	expectEOF(t, c.r)
	if err := h.waitClose(t); err == nil {
		t.Fatal("oversize close reported as clean")
	}
	if s.Stats().ProtocolErrors != 1 {
		t.Fatalf("ProtocolErrors = %d", s.Stats().ProtocolErrors)
	}
}

func TestWSUnmaskedFrameRejected(t *testing.T) {
	h := newEchoHandler()
	s := startServer(t, Config{}, h)
	c := dialWS(t, s, "wamp.2.json")
	defer c.conn.Close()
	h.waitOpen(t)
	if err := ws.WriteFrame(c.conn, ws.NewTextFrame([]byte("[1]"))); err != nil {
		t.Fatal(err)
	}
	f := c.read(t)
	if code, _ := ws.ParseCloseFrameData(f.Payload); f.Header.OpCode != ws.OpClose || code != ws.StatusProtocolError {
		t.Fatalf("want close 1002, got %v %d", f.Header.OpCode, code)
	}
	expectEOF(t, c.r)
}

func TestWSNoSubprotocolRefused(t *testing.T) {
	h := newEchoHandler()
	s := startServer(t, Config{}, h)
	for _, protos := range [][]string{nil, {"mqtt", "wamp.2.xml"}} {
		_, err := tryDialWS(s, protos...)
		var se ws.StatusError
		if !errors.As(err, &se) || int(se) != http.StatusBadRequest {
			t.Fatalf("protos %v: want 400, got %v", protos, err)
		}
	}
	waitFor(t, "2 protocol errors counted", func() bool { return s.Stats().ProtocolErrors >= 2 })
	if st := s.Stats(); st.Open != 0 || st.ProtocolErrors != 2 {
		t.Fatalf("stats %+v", st)
	}
	select {
	case <-h.openCh:
		t.Fatal("OnOpen for a refused handshake")
	default:
	}
}

func TestHTTPPages(t *testing.T) {
	h := newEchoHandler()
	s := startServer(t, Config{Listeners: twoListeners(Listener{StatusPage: StatusFull}), StatusPage: func() []byte { return []byte("<h1>status ok</h1>") }}, h)
	base := "http://" + s.UniversalAddr().String()
	cases := []struct {
		path string
		code int
		body string
	}{{"/", 200, "<h1>status ok</h1>"}, {"/?x=1", 200, "<h1>status ok</h1>"}, {"/nope", 404, "404"}, {"/ws", 426, "upgrade"}}
	for _, tc := range cases {
		resp, err := http.Get(base + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code || !strings.Contains(string(body), tc.body) {
			t.Fatalf("%s: %d %q", tc.path, resp.StatusCode, body)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
			t.Fatalf("content-type %q", ct)
		}
	}
}

func TestHTTPHeaderTooLarge(t *testing.T) {
	h := newEchoHandler()
	s := startServer(t, Config{}, h)
	c := dialRS(t, s.UniversalAddr())
	req := "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 9000) + "\r\n\r\n"
	_, _ = c.conn.Write([]byte(req))
	line, _ := c.r.ReadString('\n')
	if !strings.Contains(line, "431") {
		t.Fatalf("got %q", line)
	}
}

func TestWSKeepalive(t *testing.T) {
	h := newEchoHandler()
	s := startServer(t, Config{Listeners: twoListeners(Listener{PingInterval: 60 * time.Millisecond, PingTimeout: 150 * time.Millisecond})}, h)

	// A client that answers pings stays open.
	good := dialWS(t, s, "wamp.2.json")
	defer good.conn.Close()
	h.waitOpen(t)
	var pings atomic.Int32
	texts := make(chan []byte, 1)
	go func() {
		for {
			f, err := ws.ReadFrame(good.r)
			if err != nil {
				close(texts)
				return
			}
			switch f.Header.OpCode {
			case ws.OpPing:
				pings.Add(1)
				_ = ws.WriteFrame(good.conn, ws.MaskFrame(ws.NewPongFrame(f.Payload)))
			case ws.OpText:
				texts <- f.Payload
			}
		}
	}()

	// A client that never answers is closed after PingTimeout.
	bad := dialWS(t, s, "wamp.2.json")
	defer bad.conn.Close()
	h.waitOpen(t)
	if f := bad.read(t); f.Header.OpCode != ws.OpPing {
		t.Fatalf("want ping, got %v", f.Header.OpCode)
	}
	start := time.Now()
	expectEOF(t, bad.r)
	if el := time.Since(start); el < 100*time.Millisecond {
		t.Fatalf("closed too early (%v)", el)
	}
	if err := h.waitClose(t); !errors.Is(err, errPingTimeout) {
		t.Fatalf("OnClose err %v", err)
	}
	// The good client answers 3 more pings, living past another PingTimeout.
	more := pings.Load() + 3
	waitFor(t, "3 more pings answered", func() bool { return pings.Load() >= more })
	good.write(t, ws.OpText, true, []byte("[1]"))
	if p := <-texts; string(p) != "[1]" {
		t.Fatalf("good client lost: %q", p)
	}
}

func TestWSPipelinedAfterHandshake(t *testing.T) {
	// Handshake and the first frames in one write: leftover bytes must survive the upgrade.
	h := newEchoHandler()
	s := startServer(t, Config{}, h)
	c := dialRS(t, s.UniversalAddr())
	var buf bytes.Buffer
	buf.WriteString("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: wamp.2.cbor\r\n\r\n")
	_ = ws.WriteFrame(&buf, ws.MaskFrame(ws.NewBinaryFrame([]byte{0x83, 1, 2, 3})))
	_ = ws.WriteFrame(&buf, ws.MaskFrame(ws.NewBinaryFrame([]byte{0x81, 9})))
	_, _ = c.conn.Write(buf.Bytes())
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil || resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Protocol") != "wamp.2.cbor" {
		t.Fatalf("resp %v %v", resp, err)
	}
	for _, want := range [][]byte{{0x83, 1, 2, 3}, {0x81, 9}} {
		f, err := ws.ReadFrame(c.r)
		if err != nil || f.Header.OpCode != ws.OpBinary || !bytes.Equal(f.Payload, want) {
			t.Fatalf("frame %v %x %v", f.Header.OpCode, f.Payload, err)
		}
	}
	_ = binary.BigEndian
}

// TestMinimalPageListsSerializers: the page at / of a universal listener names the
// WebSocket subprotocols and RawSocket ids of exactly the serializers it allows.
func TestMinimalPageListsSerializers(t *testing.T) {
	s := startServer(t, Config{Listeners: twoListeners(Listener{Serializers: []codec.Serializer{codec.JSON, codec.UBJSON}})}, newEchoHandler())
	resp, err := http.Get("http://" + s.UniversalAddr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	page := string(body)
	for _, want := range []string{"wamp.2.json", "wamp.2.ubjson.batched", "1 (json)", "4 (ubjson)"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q: %s", want, page)
		}
	}
	for _, not := range []string{"wamp.2.msgpack", "wamp.2.cbor", "wamp.2.flatbuffers", "3 (cbor)"} {
		if strings.Contains(page, not) {
			t.Errorf("page lists %q, which the listener does not allow: %s", not, page)
		}
	}
}
