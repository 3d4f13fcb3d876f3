package client

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/gobwas/ws"

	"github.com/switchyard-wamp/switchyard/codec"
)

func dial(t *testing.T, url string, ser codec.Serializer, opts ...DialOption) *Transport {
	t.Helper()
	tr, err := Dial(testCtx(t), url, ser, opts...)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

// rsListener accepts one connection, reads the client's 4 handshake bytes into got and
// writes reply, then runs then (if not nil).
func rsListener(t *testing.T, reply []byte, got chan<- []byte, then func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var mu sync.Mutex
	var conn net.Conn
	// Cleanup closes the listener and the connection, and waits for the goroutine.
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		if conn != nil {
			conn.Close()
		}
		mu.Unlock()
		<-done
	})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		mu.Lock()
		conn = c
		mu.Unlock()
		defer conn.Close()
		hs := make([]byte, 4)
		if _, err := io.ReadFull(conn, hs); err != nil {
			return
		}
		got <- hs
		conn.Write(reply)
		if then != nil {
			then(conn)
		}
	}()
	return "rs://" + ln.Addr().String()
}

func TestRawSocketRefused(t *testing.T) {
	got := make(chan []byte, 1)
	url := rsListener(t, []byte{0x7F, 0x10, 0, 0}, got, nil)
	_, err := Dial(testCtx(t), url, codec.CBOR)
	if err == nil || err.Error() != "rawsocket: router refused: serializer unsupported" {
		t.Fatalf("Dial = %v", err)
	}
	var rse *RawSocketError
	if !errors.As(err, &rse) || rse.Code != 1 {
		t.Fatalf("error %T %v", err, err)
	}
	if hs := <-got; !bytes.Equal(hs, []byte{0x7F, 0xF3, 0, 0}) {
		t.Fatalf("handshake % x, want 7f f3 00 00", hs)
	}
}

func TestRawSocketBadReplies(t *testing.T) {
	for _, reply := range [][]byte{
		{0x48, 0x54, 0x54, 0x50}, // "HTTP"
		{0x7F, 0xF2, 0, 0},       // other serializer
		{0x7F, 0xF1, 1, 0},       // reserved bits
		{0x7F, 0x40, 0, 0},       // connection count
	} {
		got := make(chan []byte, 1)
		url := rsListener(t, reply, got, nil)
		if _, err := Dial(testCtx(t), url, codec.JSON); err == nil {
			t.Errorf("Dial accepted reply % x", reply)
		} else {
			t.Logf("reply % x: %v", reply, err)
		}
	}
}

func TestRawSocketLengthLimits(t *testing.T) {
	got := make(chan []byte, 1)
	recv := make(chan []byte, 2)
	url := rsListener(t, []byte{0x7F, 0x01, 0, 0}, got, func(conn net.Conn) { // router accepts 512 bytes
		for i := 1; ; i++ {
			var h [4]byte
			if _, err := io.ReadFull(conn, h[:]); err != nil {
				return
			}
			b := make([]byte, int(h[1])<<16|int(h[2])<<8|int(h[3]))
			io.ReadFull(conn, b)
			recv <- b
			if i == 2 {
				// A frame bigger than the 1024 bytes the client announced.
				conn.Write([]byte{0, 0, 0x04, 0x01})
				conn.Write(make([]byte, 1025))
				io.Copy(io.Discard, conn) // until the client or the cleanup closes it
				return
			}
		}
	})
	tr := dial(t, url, codec.JSON, WithMaxMessageSize(1000))
	if hs := <-got; hs[1] != 0x11 {
		t.Fatalf("announced length byte %#x, want 0x11 (1024 bytes, JSON)", hs[1])
	}
	big := &codec.Message{Type: codec.PUBLISH, Request: 1, URI: []byte("t"), Args: codec.Raw(`["` + strings.Repeat("x", 600) + `"]`)}
	if err := tr.Send(big); !errors.Is(err, ErrMessageTooLarge) {
		t.Fatalf("Send of a message over the router's limit = %v", err)
	}
	small := &codec.Message{Type: codec.PUBLISH, Request: 2, URI: []byte("t")}
	if err := tr.Send(small); err != nil {
		t.Fatalf("Send after a refused one: %v", err)
	}
	if b := <-recv; string(b) != `[16,2,{},"t"]` {
		t.Fatalf("router got %s", b)
	}
	if err := tr.SendRaw(bytes.Repeat([]byte("y"), 600)); err != nil {
		t.Fatalf("SendRaw ignores the limit: %v", err)
	}
	if b := <-recv; len(b) != 600 {
		t.Fatalf("router got %d bytes", len(b))
	}
	var m codec.Message
	if _, err := tr.Recv(&m); err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Fatalf("Recv of an oversized frame = %v", err)
	}
}

func TestRawSocketPing(t *testing.T) {
	url, done := serve(t, kindRS, codec.MsgPack, func(p *peer) {
		p.writeRS(1, []byte("ping!"))
		p.send(&codec.Message{Type: codec.GOODBYE, URI: []byte("x.y")})
		p.expect(codec.GOODBYE) // the PONG comes before it
		if len(p.rsPongs) != 1 {
			p.fail("%d PONGs", len(p.rsPongs))
		}
		if b := <-p.rsPongs; string(b) != "ping!" {
			p.fail("PONG %q", b)
		}
	})
	tr := dial(t, url, codec.MsgPack)
	var m codec.Message
	if _, err := tr.Recv(&m); err != nil || m.Type != codec.GOODBYE || string(m.URI) != "x.y" {
		t.Fatalf("Recv %v %v", m.Type, err)
	}
	if err := tr.Send(&codec.Message{Type: codec.GOODBYE, URI: []byte("x.y")}); err != nil {
		t.Fatal(err)
	}
	waitDone(t, done)
}

func TestWebSocketControlFrames(t *testing.T) {
	url, done := serve(t, kindWS, codec.CBOR, func(p *peer) {
		p.writeFrame(ws.OpPing, []byte("hi"))
		// A message in two fragments with a ping in between.
		msg := p.encode(&codec.Message{Type: codec.GOODBYE, URI: []byte("a.b")})
		p.wmu.Lock()
		ws.WriteFrame(p.conn, ws.NewFrame(ws.OpBinary, false, msg[:3]))
		ws.WriteFrame(p.conn, ws.NewFrame(ws.OpPing, true, []byte("2")))
		ws.WriteFrame(p.conn, ws.NewFrame(ws.OpContinuation, true, msg[3:]))
		p.wmu.Unlock()
		p.expect(codec.GOODBYE) // the pongs come before it
		if len(p.wsPongs) != 2 {
			p.fail("%d pongs, want 2", len(p.wsPongs))
		}
		for _, want := range []string{"hi", "2"} {
			if b := <-p.wsPongs; string(b) != want {
				p.fail("pong %q, want %q", b, want)
			}
		}
		p.writeFrame(ws.OpClose, append([]byte{0x03, 0xE9}, "going away"...))
		_, err := p.readPayload()
		if err == nil || err.Error() != "close frame 1001" {
			p.fail("client close reply: %v", err)
		}
	})
	tr := dial(t, url, codec.CBOR)
	var m codec.Message
	if _, err := tr.Recv(&m); err != nil || m.Type != codec.GOODBYE || string(m.URI) != "a.b" {
		t.Fatalf("Recv fragmented: %v %v %q", err, m.Type, m.URI)
	}
	if err := tr.Send(&codec.Message{Type: codec.GOODBYE, URI: []byte("a.b")}); err != nil {
		t.Fatal(err)
	}
	_, err := tr.Recv(&m)
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != 1001 || ce.Reason != "going away" {
		t.Fatalf("Recv after close frame = %v", err)
	}
	if _, err2 := tr.Recv(&m); err2 != err {
		t.Fatalf("Recv error not sticky: %v", err2)
	}
	waitDone(t, done)
}

func TestWebSocketBatchedRecv(t *testing.T) {
	for _, ser := range allSers {
		t.Run(ser.String(), func(t *testing.T) {
			url, done := serve(t, kindWSBatch, ser, func(p *peer) {
				p.send(
					&codec.Message{Type: codec.PUBLISHED, Request: 1, Publication: 11},
					&codec.Message{Type: codec.PUBLISHED, Request: 2, Publication: 12},
					&codec.Message{Type: codec.PUBLISHED, Request: 3, Publication: 13},
				)
				m := p.expect(codec.PUBLISH)
				if m.Request != 4 {
					p.fail("PUBLISH %d", m.Request)
				}
			})
			tr := dial(t, url, ser, WithBatched())
			var m codec.Message
			for i := uint64(1); i <= 3; i++ {
				if _, err := tr.Recv(&m); err != nil || m.Type != codec.PUBLISHED || m.Request != i || m.Publication != 10+i {
					t.Fatalf("message %d: %v %+v", i, err, m)
				}
			}
			if err := tr.Send(&codec.Message{Type: codec.PUBLISH, Request: 4, URI: []byte("t")}); err != nil {
				t.Fatal(err)
			}
			waitDone(t, done)
		})
	}
}

func TestWebSocketSubprotocolRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		ws.Upgrader{Protocol: func([]byte) bool { return false }}.Upgrade(conn)
		io.Copy(io.Discard, conn)
	}()
	_, err = Dial(testCtx(t), "ws://"+ln.Addr().String()+"/ws", codec.MsgPack)
	if err == nil || !strings.Contains(err.Error(), `"wamp.2.msgpack"`) {
		t.Fatalf("Dial = %v", err)
	}
}

func TestSendRawAndWriteRawBytes(t *testing.T) {
	for _, k := range allKinds {
		t.Run(string(k), func(t *testing.T) {
			url, done := serve(t, k, codec.JSON, func(p *peer) {
				b, err := p.readPayload()
				if err != nil || string(b) != "garbage" {
					p.fail("SendRaw payload %q %v", b, err)
				}
				var raw [5]byte
				if _, err := io.ReadFull(p.br, raw[:]); err != nil || string(raw[:]) != "\x00\x01zzz" {
					p.fail("raw bytes %q %v", raw, err)
				}
			})
			opts := []DialOption{}
			if k == kindWSBatch {
				opts = append(opts, WithBatched())
			}
			tr := dial(t, url, codec.JSON, opts...)
			if tr.Serializer() != codec.JSON {
				t.Fatal("Serializer()")
			}
			in := []byte("garbage")
			if err := tr.SendRaw(in); err != nil {
				t.Fatal(err)
			}
			if string(in) != "garbage" {
				t.Fatalf("SendRaw modified its input: %q", in)
			}
			if err := tr.WriteRawBytes([]byte("\x00\x01zzz")); err != nil {
				t.Fatal(err)
			}
			waitDone(t, done)
		})
	}
}

func TestDialErrors(t *testing.T) {
	for _, c := range []struct {
		url string
		ser codec.Serializer
		opt []DialOption
	}{
		{url: "http://127.0.0.1:1/", ser: codec.JSON},
		{url: "rs://127.0.0.1", ser: codec.JSON},
		{url: "rs://127.0.0.1:1", ser: codec.JSON, opt: []DialOption{WithBatched()}},
		{url: "ws://127.0.0.1:1/", ser: codec.Serializer(9)},
	} {
		if _, err := Dial(testCtx(t), c.url, c.ser, c.opt...); err == nil {
			t.Errorf("Dial(%q, %v) succeeded", c.url, c.ser)
		}
	}
	// Flatbuffers has no batched subprotocol: refused before dialing.
	if _, err := Dial(testCtx(t), "ws://127.0.0.1:1/", codec.Flatbuffers, WithBatched()); err == nil || !strings.Contains(err.Error(), "no batched") {
		t.Errorf("Dial flatbuffers batched: %v", err)
	}
}

func TestConcurrentSend(t *testing.T) {
	const n = 200
	url, done := serve(t, kindWS, codec.JSON, func(p *peer) {
		seen := make(map[uint64]bool)
		for range n {
			m := p.expect(codec.PUBLISH)
			seen[m.Request] = true
		}
		if len(seen) != n {
			p.fail("got %d distinct messages", len(seen))
		}
	})
	tr := dial(t, url, codec.JSON)
	errs := make(chan error, n)
	for i := range n {
		go func() {
			errs <- tr.Send(&codec.Message{Type: codec.PUBLISH, Request: uint64(i + 1), URI: []byte(fmt.Sprint("t.", i)),
				Args: codec.Raw(`["` + strings.Repeat("p", i*100) + `"]`)})
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	waitDone(t, done)
}

func TestWebSocketBatchedTruncated(t *testing.T) {
	url, done := serve(t, kindWSBatch, codec.MsgPack, func(p *peer) {
		p.writeFrame(ws.OpBinary, []byte{0, 0, 0, 5, 0x91, 0x06, 0xa0})
		p.readPayload() // until the client closes
	})
	tr := dial(t, url, codec.MsgPack, WithBatched())
	var m codec.Message
	if _, err := tr.Recv(&m); err == nil || !strings.Contains(err.Error(), "exceeds frame") {
		t.Fatalf("Recv of a truncated batched message = %v", err)
	}
	tr.Close()
	waitDone(t, done)
}
