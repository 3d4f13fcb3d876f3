package netpoll

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/codec"
)

func rsListeners(s *Server) map[string]net.Addr {
	return map[string]net.Addr{"universal": s.UniversalAddr(), "rawsocket": s.RawSocketAddr()}
}

func TestRawSocketHandshakeAndEcho(t *testing.T) {
	h := newEchoHandler()
	s := startServer(t, Config{}, h) // MaxMessageSize 1 MiB -> nibble 11
	for name, addr := range rsListeners(s) {
		for _, ser := range codec.Serializers() {
			t.Run(name+"/"+ser.String(), func(t *testing.T) {
				c := dialRS(t, addr)
				rep := c.handshake(t, 15, byte(ser))
				if rep != [4]byte{0x7F, 11<<4 | byte(ser), 0, 0} {
					t.Fatalf("reply %x", rep)
				}
				sc := h.waitOpen(t)
				if sc.Transport() != "rawsocket" || sc.Serializer() != ser || sc.Batched() {
					t.Fatalf("conn %s %v", sc.Transport(), sc.Serializer())
				}
				for _, m := range [][]byte{[]byte("[1]"), bytes.Repeat([]byte{7}, 200000)} {
					c.writeFrame(t, 0, m)
					typ, p := c.readFrame(t)
					if typ != 0 || !bytes.Equal(p, m) {
						t.Fatalf("echo mismatch %d %d", typ, len(p))
					}
				}
				c.conn.Close()
				if err := h.waitClose(t); err != nil {
					t.Fatalf("EOF close reported %v", err)
				}
			})
		}
	}
}

func TestRawSocketBadMagic(t *testing.T) {
	h := newEchoHandler()
	s := startServer(t, Config{}, h)
	c := dialRS(t, s.RawSocketAddr())
	_, _ = c.conn.Write([]byte("GET / HTTP/1.1\r\n\r\n")) // HTTP is not spoken on the RawSocket port
	expectEOF(t, c.r)
	c = dialRS(t, s.UniversalAddr())
	_, _ = c.conn.Write([]byte{0x7F})
	time.Sleep(10 * time.Millisecond)
	_, _ = c.conn.Write([]byte{0x12, 0, 1})
	if rep := readN(t, c, 4); !bytes.Equal(rep, []byte{0x7F, 0x30, 0, 0}) { // reserved bytes used
		t.Fatalf("reply %x", rep)
	}
	expectEOF(t, c.r)
}

func readN(t *testing.T, c *rsClient, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := io.ReadFull(c.r, b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRawSocketUnknownSerializer(t *testing.T) {
	h := newEchoHandler()
	s := startServer(t, Config{}, h)
	for _, addr := range rsListeners(s) {
		for _, ser := range []byte{0, codec.NumSerializers, 15} {
			c := dialRS(t, addr)
			if rep := c.handshake(t, 3, ser); rep != [4]byte{0x7F, 1 << 4, 0, 0} {
				t.Fatalf("serializer %d: reply %x", ser, rep)
			}
			expectEOF(t, c.r)
		}
	}
	if st := s.Stats(); st.ProtocolErrors != 6 || st.Open != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestRawSocketPingPong(t *testing.T) {
	h := newEchoHandler()
	s := startServer(t, Config{}, h)
	c := dialRS(t, s.RawSocketAddr())
	c.handshake(t, 15, 1)
	h.waitOpen(t)
	c.writeFrame(t, 1, []byte("are you there"))
	c.writeFrame(t, 0, []byte("[1]"))
	if typ, p := c.readFrame(t); typ != 2 || string(p) != "are you there" {
		t.Fatalf("pong %d %q", typ, p)
	}
	if typ, p := c.readFrame(t); typ != 0 || string(p) != "[1]" {
		t.Fatalf("echo %d %q", typ, p)
	}
}

func TestRawSocketKeepalive(t *testing.T) {
	h := newEchoHandler()
	s := startServer(t, Config{Listeners: twoListeners(Listener{PingInterval: 50 * time.Millisecond, PingTimeout: 100 * time.Millisecond})}, h)
	c := dialRS(t, s.RawSocketAddr())
	c.handshake(t, 15, 1)
	h.waitOpen(t)
	if typ, _ := c.readFrame(t); typ != 1 {
		t.Fatalf("want PING, got type %d", typ)
	}
	expectEOF(t, c.r)
	if err := h.waitClose(t); !errors.Is(err, errPingTimeout) {
		t.Fatalf("err %v", err)
	}
}

func TestRawSocketClientMaxLengthHonoured(t *testing.T) {
	h := newEchoHandler()
	sendErr := make(chan error, 1)
	h.onMsg = func(c *Conn, msg []byte) bool {
		if string(msg) == "big" {
			_ = c.Send(bytes.Repeat([]byte("s"), 512)) // exactly the client's max: fine
			sendErr <- c.Send(bytes.Repeat([]byte("b"), 513))
			return true
		}
		return false
	}
	s := startServer(t, Config{}, h)
	c := dialRS(t, s.RawSocketAddr())
	c.handshake(t, 0, 2) // client accepts 2^9 = 512 bytes
	h.waitOpen(t)
	c.writeFrame(t, 0, []byte("big"))
	if err := <-sendErr; !errors.Is(err, ErrClosed) {
		t.Fatalf("Send over client max: %v", err)
	}
	if _, p := c.readFrame(t); len(p) != 512 {
		t.Fatalf("got %d bytes", len(p))
	}
	if _, _, err := c.tryReadFrame(); err == nil {
		t.Fatal("oversized message was sent")
	}
}

func TestRawSocketOversize(t *testing.T) {
	h := newEchoHandler()
	s := startServer(t, Config{Listeners: twoListeners(Listener{MaxMessageSize: 1500})}, h) // announces 2^10
	c := dialRS(t, s.UniversalAddr())
	if rep := c.handshake(t, 15, 1); rep[1] != 1<<4|1 {
		t.Fatalf("reply %x", rep)
	}
	h.waitOpen(t)
	c.writeFrame(t, 0, bytes.Repeat([]byte("a"), 1024))
	if _, p := c.readFrame(t); len(p) != 1024 {
		t.Fatal("echo at limit")
	}
	// Only the header: the conn is closed without waiting for the payload.
	_, _ = c.conn.Write([]byte{0, 0, 0x04, 0x01})
	expectEOF(t, c.r)
	if err := h.waitClose(t); err == nil {
		t.Fatal("oversize reported clean")
	}
}
