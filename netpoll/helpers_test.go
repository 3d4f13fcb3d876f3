package netpoll

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// echoHandler echoes every message back with c.Send and records events.
type echoHandler struct {
	mu      sync.Mutex
	opened  []*Conn
	closed  map[*Conn]error
	openCh  chan *Conn
	closeCh chan error
	onMsg   func(c *Conn, msg []byte) bool // returns true if handled (no echo)
}

func newEchoHandler() *echoHandler {
	return &echoHandler{closed: map[*Conn]error{}, openCh: make(chan *Conn, 100), closeCh: make(chan error, 100)}
}

func (h *echoHandler) OnOpen(c *Conn) {
	h.mu.Lock()
	h.opened = append(h.opened, c)
	h.mu.Unlock()
	h.openCh <- c
}

func (h *echoHandler) OnMessage(c *Conn, msg []byte) {
	if h.onMsg != nil && h.onMsg(c, msg) {
		return
	}
	_ = c.Send(msg)
}

func (h *echoHandler) OnClose(c *Conn, err error) {
	h.mu.Lock()
	if _, dup := h.closed[c]; dup {
		panic("OnClose twice")
	}
	h.closed[c] = err
	h.mu.Unlock()
	h.closeCh <- err
}

func (h *echoHandler) waitOpen(t testing.TB) *Conn {
	t.Helper()
	select {
	case c := <-h.openCh:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("timeout waiting for OnOpen")
		return nil
	}
}

func (h *echoHandler) waitClose(t testing.TB) error {
	t.Helper()
	select {
	case err := <-h.closeCh:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("timeout waiting for OnClose")
		return nil
	}
}

type tbWriter struct{ t testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(tbWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// twoListeners returns a universal and a RawSocket-only listener on loopback port 0,
// both with the settings of tmpl.
func twoListeners(tmpl Listener) []Listener {
	u, r := tmpl, tmpl
	u.Address, u.Kind = "127.0.0.1:0", KindUniversal
	r.Address, r.Kind = "127.0.0.1:0", KindRawSocket
	return []Listener{u, r}
}

func startServer(t testing.TB, cfg Config, h Handler) *Server {
	t.Helper()
	if len(cfg.Listeners) == 0 {
		cfg.Listeners = twoListeners(Listener{})
	}
	if cfg.Loops == 0 {
		cfg.Loops = 2
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	s, err := NewServer(cfg, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Stop(ctx)
	})
	return s
}

// --- WebSocket client helpers ---

type wsClient struct {
	conn net.Conn
	r    io.Reader
	hs   ws.Handshake
}

func dialWS(t testing.TB, s *Server, protos ...string) *wsClient {
	t.Helper()
	c, err := tryDialWS(s, protos...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func tryDialWS(s *Server, protos ...string) (*wsClient, error) {
	d := ws.Dialer{Protocols: protos, Timeout: 5 * time.Second}
	conn, br, hs, err := d.Dial(context.Background(), "ws://"+s.UniversalAddr().String()+"/ws")
	if err != nil {
		return nil, err
	}
	var r io.Reader = conn
	if br != nil {
		r = io.MultiReader(br, conn)
	}
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	return &wsClient{conn: conn, r: r, hs: hs}, nil
}

func (c *wsClient) write(t testing.TB, op ws.OpCode, fin bool, payload []byte) {
	t.Helper()
	f := ws.MaskFrame(ws.NewFrame(op, fin, append([]byte(nil), payload...)))
	if err := ws.WriteFrame(c.conn, f); err != nil {
		t.Fatal(err)
	}
}

func (c *wsClient) read(t testing.TB) ws.Frame {
	t.Helper()
	f, err := ws.ReadFrame(c.r)
	if err != nil {
		t.Fatalf("read frame: %v", err)
	}
	if f.Header.Masked {
		t.Fatal("server frame is masked")
	}
	return f
}

// expectEOF reads (discarding data) until the peer closes: EOF or a reset. A read
// deadline is not a close, so it fails the test: the server kept the connection open.
func expectEOF(t testing.TB, r io.Reader) {
	t.Helper()
	buf := make([]byte, 4096)
	for {
		_, err := r.Read(buf)
		if err == nil {
			continue
		}
		if isTimeout(err) {
			t.Fatalf("connection still open: read deadline passed without EOF (%v)", err)
		}
		if !isClosed(err) {
			t.Fatalf("expected EOF or reset, got %v", err)
		}
		return
	}
}

// isClosed reports whether err says the peer closed the connection: EOF, or a reset
// or abort by the peer (a close with unread data in its receive buffer).
func isClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNABORTED) ||
		errors.Is(err, syscall.EPIPE)
}

// isTimeout reports whether err is a passed deadline.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// --- RawSocket client helpers ---

type rsClient struct {
	conn net.Conn
	r    *bufio.Reader
}

func dialRS(t testing.TB, addr net.Addr) *rsClient {
	t.Helper()
	conn, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { conn.Close() })
	return &rsClient{conn: conn, r: bufio.NewReaderSize(conn, 64<<10)}
}

// handshake sends the client handshake and returns the 4-byte reply.
func (c *rsClient) handshake(t testing.TB, lenExp, ser byte) [4]byte {
	t.Helper()
	if _, err := c.conn.Write([]byte{0x7F, lenExp<<4 | ser, 0, 0}); err != nil {
		t.Fatal(err)
	}
	var rep [4]byte
	if _, err := io.ReadFull(c.r, rep[:]); err != nil {
		t.Fatalf("handshake reply: %v", err)
	}
	return rep
}

func (c *rsClient) writeFrame(t testing.TB, typ byte, payload []byte) {
	t.Helper()
	b := make([]byte, 4+len(payload))
	b[0] = typ
	b[1], b[2], b[3] = byte(len(payload)>>16), byte(len(payload)>>8), byte(len(payload))
	copy(b[4:], payload)
	if _, err := c.conn.Write(b); err != nil {
		t.Fatal(err)
	}
}

func (c *rsClient) readFrame(t testing.TB) (byte, []byte) {
	t.Helper()
	typ, p, err := c.tryReadFrame()
	if err != nil {
		t.Fatalf("read rawsocket frame: %v", err)
	}
	return typ, p
}

func (c *rsClient) tryReadFrame() (byte, []byte, error) {
	var h [4]byte
	if _, err := io.ReadFull(c.r, h[:]); err != nil {
		return 0, nil, err
	}
	n := int(h[1])<<16 | int(h[2])<<8 | int(h[3])
	p := make([]byte, n)
	_, err := io.ReadFull(c.r, p)
	return h[0], p, err
}

func be32(n int) []byte { return binary.BigEndian.AppendUint32(nil, uint32(n)) }
