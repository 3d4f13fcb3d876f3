package netpoll

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestConnectionCap: with MaxConnections held, new connections are closed at once and
// counted, a session opened before keeps exchanging messages, and once connections go
// away new ones are served again. Plain and TLS listeners share the cap.
func TestConnectionCap(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "tls"}[useTLS], func(t *testing.T) {
			testConnectionCap(t, useTLS)
		})
	}
}

func testConnectionCap(t *testing.T, useTLS bool) {
	const maxConns, extra = 16, 24
	h := newEchoHandler()
	l := Listener{Address: "127.0.0.1:0", Kind: KindRawSocket}
	var clientTLS *tls.Config
	if useTLS {
		p := newPKI(t)
		l.TLS, clientTLS = p.server.ServerConfig(nil), p.ca.ClientConfig()
	}
	var logBuf syncBuf
	s := startServer(t, Config{Listeners: []Listener{l}, MaxConnections: maxConns,
		Logger: testTextLogger(&logBuf)}, h)
	addr := s.Addr(0)
	session := func() (*rsClient, error) {
		var conn net.Conn
		var err error
		if useTLS {
			conn, err = tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", addr.String(), clientTLS)
		} else {
			conn, err = net.DialTimeout("tcp", addr.String(), 2*time.Second)
		}
		if err != nil {
			return nil, err
		}
		c := rsOver(t, conn)
		if _, err := c.conn.Write([]byte{0x7F, 15<<4 | 1, 0, 0}); err != nil {
			return nil, err
		}
		var rep [4]byte
		if _, err := io.ReadFull(c.r, rep[:]); err != nil {
			conn.Close()
			return nil, err
		}
		return c, nil
	}
	echo := func(c *rsClient, msg string) {
		t.Helper()
		c.writeFrame(t, 0, []byte(msg))
		if _, p := c.readFrame(t); string(p) != msg {
			t.Fatalf("echo %q, got %q", msg, p)
		}
	}

	joined, err := session()
	if err != nil {
		t.Fatal(err)
	}
	h.waitOpen(t)
	echo(joined, "before")

	// Fill the cap with connections that never say anything.
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for len(held) < maxConns-1 {
		c, err := net.Dial("tcp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	waitFor(t, "the cap to fill", func() bool { return s.Stats().Accepted == maxConns })

	// Over the cap: each new connection is closed at once (no handshake reply, no wait
	// for a timeout).
	for i := 0; i < extra; i++ {
		start := time.Now()
		c, err := net.Dial("tcp", addr.String())
		if errors.Is(err, syscall.ECONNRESET) {
			continue // the reset came before connect returned
		}
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(start.Add(3 * time.Second))
		_, _ = c.Write([]byte{0x7F, 15<<4 | 1, 0, 0})
		n, err := c.Read(make([]byte, 16))
		c.Close()
		var ne net.Error
		if n != 0 || err == nil || errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("connection %d over the cap: read %d bytes, %v", i, n, err)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("connection %d over the cap closed after %v", i, d)
		}
	}
	if st := s.Stats(); st.RefusedAtCap != extra || st.Accepted != maxConns || st.Open != 1 {
		t.Fatalf("stats at the cap: %+v", st)
	}
	echo(joined, "during")

	// The conns go away: service resumes.
	for _, c := range held {
		c.Close()
	}
	held = nil
	var again *rsClient
	waitFor(t, "a new session after the conns closed", func() bool {
		again, err = session()
		return err == nil
	})
	h.waitOpen(t)
	echo(again, "after")
	echo(joined, "still")
	if st := s.Stats(); st.RefusedAtCap < extra || st.Open != 2 {
		t.Fatalf("stats after: %+v", st)
	}
	// One log line for the burst (rate-limited), not one per refused conn.
	if n := strings.Count(logBuf.String(), "connection limit reached"); n != 1 {
		t.Fatalf("%d log lines about the limit:\n%s", n, logBuf.String())
	}
}

// TestDoneReportsEngineDeath: if the event loops stop while the server is not being
// stopped, Done reports it and the plain listeners are closed.
func TestDoneReportsEngineDeath(t *testing.T) {
	h := newEchoHandler()
	s, err := NewServer(Config{Listeners: twoListeners(Listener{}), Loops: 2, Logger: testLogger(t)}, h)
	if err != nil {
		t.Fatal(err)
	}
	s.deadAfter = 300 * time.Millisecond // gnet ticks every 15ms
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Stop(context.Background())
	select {
	case err := <-s.Done():
		t.Fatalf("Done while serving: %v", err)
	case <-time.After(time.Second): // many checks (every 30ms)
	}
	c := dialRS(t, s.RawSocketAddr())
	c.handshake(t, 15, 1)
	h.waitOpen(t)
	_ = s.cli.Stop() // the loops end behind the server's back
	select {
	case err := <-s.Done():
		if err == nil {
			t.Fatal("Done sent nil")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Done reported nothing")
	}
	if _, err := net.DialTimeout("tcp", s.RawSocketAddr().String(), time.Second); err == nil {
		t.Fatal("plain listener still accepts after the loops died")
	}
}

// TestDoneQuietOnStop: a normal Stop reports nothing on Done.
func TestDoneQuietOnStop(t *testing.T) {
	s, err := NewServer(Config{Listeners: twoListeners(Listener{}), Loops: 1, Logger: testLogger(t)}, newEchoHandler())
	if err != nil {
		t.Fatal(err)
	}
	s.deadAfter = 50 * time.Millisecond
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-s.Done():
		t.Fatalf("Done after Stop: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
}

func TestMaxConnsFor(t *testing.T) {
	for _, c := range []struct {
		limit uint64
		want  int
	}{{1024, 960}, {256, 192}, {20000, 18750}, {100, 50}, {1, 1}, {^uint64(0), 1<<30 - 1<<26}} {
		if got := maxConnsFor(c.limit); got != c.want {
			t.Errorf("maxConnsFor(%d) = %d, want %d", c.limit, got, c.want)
		}
	}
	if DefaultMaxConnections() <= 0 {
		t.Fatal("DefaultMaxConnections <= 0")
	}
}

// waitFor polls cond for up to 5s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timeout waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// syncBuf is a concurrency-safe log sink.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if testing.Verbose() {
		_, _ = os.Stderr.Write(p)
	}
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func testTextLogger(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }
