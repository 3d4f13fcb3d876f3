package netpoll

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/switchyard-wamp/switchyard/codec"
	"github.com/switchyard-wamp/switchyard/internal/testpki"
)

// pki is one CA with a server and a client certificate, shared by the tests.
type pki struct {
	ca     *testpki.CA
	server *testpki.Cert
	client *testpki.Cert
}

func newPKI(t testing.TB) *pki {
	t.Helper()
	ca := testpki.MustCA("netpoll test CA")
	return &pki{ca: ca, server: ca.MustServer(), client: ca.MustClient("alice")}
}

// wsDial opens a WebSocket to url (ws:// or wss://) with extra request headers and
// returns the client and the response headers.
func wsDial(t testing.TB, url string, tlsCfg *tls.Config, hdr http.Header, netDial func(context.Context, string, string) (net.Conn, error), protos ...string) (*wsClient, http.Header, error) {
	t.Helper()
	resp := http.Header{}
	d := ws.Dialer{Protocols: protos, Timeout: 5 * time.Second, TLSConfig: tlsCfg, NetDial: netDial,
		OnHeader: func(k, v []byte) error { resp.Add(string(k), string(v)); return nil }}
	if hdr != nil {
		d.Header = ws.HandshakeHeaderHTTP(hdr)
	}
	conn, br, hs, err := d.Dial(context.Background(), url)
	if err != nil {
		return nil, resp, err
	}
	t.Cleanup(func() { conn.Close() })
	var r io.Reader = conn
	if br != nil {
		r = io.MultiReader(br, conn)
	}
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	return &wsClient{conn: conn, r: r, hs: hs}, resp, nil
}

// rsOver wraps an established conn (TLS or unix) as a RawSocket test client.
func rsOver(t testing.TB, conn net.Conn) *rsClient {
	t.Helper()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { conn.Close() })
	return &rsClient{conn: conn, r: bufio.NewReaderSize(conn, 64<<10)}
}

func dialTLS(t testing.TB, addr net.Addr, cfg *tls.Config) *tls.Conn {
	t.Helper()
	conn, err := tls.Dial("tcp", addr.String(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

func TestTLSUniversal(t *testing.T) {
	p := newPKI(t)
	h := newEchoHandler()
	s := startServer(t, Config{Listeners: []Listener{
		{Address: "127.0.0.1:0", Name: "public", TLS: p.server.ServerConfig(p.ca.Pool())},
		{Address: "127.0.0.1:0"},
	}}, h)
	addr := s.Addr(0)

	t.Run("wss", func(t *testing.T) {
		c, _, err := wsDial(t, "wss://"+addr.String()+"/ws", p.ca.ClientConfig(p.client), nil, nil, "wamp.2.json")
		if err != nil {
			t.Fatal(err)
		}
		sc := h.waitOpen(t)
		st := sc.TLS()
		if st == nil || len(st.PeerCertificates) == 0 || st.PeerCertificates[0].Subject.CommonName != "alice" {
			t.Fatalf("TLS state %+v", st)
		}
		if sc.Listener() != "public" || sc.Transport() != "websocket" {
			t.Fatalf("listener %q transport %q", sc.Listener(), sc.Transport())
		}
		if _, err := st.ExportKeyingMaterial("EXPORTER-Channel-Binding", nil, 32); err != nil {
			t.Fatalf("channel binding: %v", err)
		}
		for _, m := range [][]byte{[]byte(`[1,"realm1",{}]`), bytes.Repeat([]byte("x"), 300000)} {
			c.write(t, ws.OpText, true, m)
			if f := c.read(t); !bytes.Equal(f.Payload, m) {
				t.Fatalf("echo mismatch: %d bytes", len(f.Payload))
			}
		}
		c.write(t, ws.OpClose, true, []byte{3, 232})
		if f := c.read(t); f.Header.OpCode != ws.OpClose {
			t.Fatalf("want close, got %v", f.Header.OpCode)
		}
		if err := h.waitClose(t); err != nil {
			t.Fatalf("close reported %v", err)
		}
	})
	t.Run("rss", func(t *testing.T) {
		c := rsOver(t, dialTLS(t, addr, p.ca.ClientConfig()))
		if rep := c.handshake(t, 15, byte(codec.CBOR)); rep != [4]byte{0x7F, 11<<4 | 3, 0, 0} {
			t.Fatalf("reply %x", rep)
		}
		sc := h.waitOpen(t)
		if sc.TLS() == nil || len(sc.TLS().PeerCertificates) != 0 || sc.Transport() != "rawsocket" {
			t.Fatalf("conn %+v %s", sc.TLS(), sc.Transport())
		}
		for _, m := range [][]byte{{0x83, 1, 2, 3}, bytes.Repeat([]byte{9}, 500000)} {
			c.writeFrame(t, 0, m)
			if typ, got := c.readFrame(t); typ != 0 || !bytes.Equal(got, m) {
				t.Fatalf("echo mismatch: %d bytes", len(got))
			}
		}
		c.conn.Close()
		if err := h.waitClose(t); err != nil {
			t.Fatalf("close reported %v", err)
		}
	})
	t.Run("plain has no TLS", func(t *testing.T) {
		c := dialRS(t, s.Addr(1))
		c.handshake(t, 15, 1)
		if sc := h.waitOpen(t); sc.TLS() != nil {
			t.Fatal("TLS state on a plain conn")
		}
		c.conn.Close()
		h.waitClose(t)
	})
	t.Run("bad client cert refused", func(t *testing.T) {
		other := testpki.MustCA("other")
		mallory := other.MustClient("mallory")
		cfg := p.ca.ClientConfig()
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &mallory.TLS, nil }
		conn, err := tls.Dial("tcp", addr.String(), cfg)
		if err == nil {
			// TLS 1.3: the server's verdict arrives with the first read.
			_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
			_, err = conn.Read(make([]byte, 1))
			conn.Close()
		}
		if err == nil {
			t.Fatal("handshake with an unknown client CA succeeded")
		}
	})
	// The refused handshake is counted after the client has seen the alert.
	for end := time.Now().Add(5 * time.Second); s.Stats().ProtocolErrors == 0 && time.Now().Before(end); {
		time.Sleep(time.Millisecond)
	}
	if st := s.Stats(); st.MessagesIn != 4 || st.MessagesOut != 4 || st.ProtocolErrors != 1 || st.BytesIn < 800000 {
		t.Fatalf("stats %+v", st)
	}
}

func TestListenerKinds(t *testing.T) {
	h := newEchoHandler()
	s := startServer(t, Config{Listeners: []Listener{
		{Address: "127.0.0.1:0", Kind: KindWebSocket, Path: "/wamp"},
		{Address: "127.0.0.1:0", Kind: KindRawSocket},
	}}, h)
	if s.UniversalAddr() != nil {
		t.Fatal("universal address without a universal listener")
	}
	wsAddr := s.Addr(0).String()
	c, _, err := wsDial(t, "ws://"+wsAddr+"/wamp", nil, nil, nil, "wamp.2.json")
	if err != nil {
		t.Fatal(err)
	}
	h.waitOpen(t)
	c.write(t, ws.OpText, true, []byte("[1]"))
	if f := c.read(t); string(f.Payload) != "[1]" {
		t.Fatalf("echo %q", f.Payload)
	}
	for req, want := range map[string]string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n":     "HTTP/1.1 404",
		"GET /wamp HTTP/1.1\r\nHost: x\r\n\r\n": "HTTP/1.1 426",
		"\x7f\x12\x00\x00":                      "", // closed without a reply
	} {
		conn, err := net.Dial("tcp", wsAddr)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = conn.Write([]byte(req))
		got, _ := io.ReadAll(conn)
		conn.Close()
		if !strings.HasPrefix(string(got), want) {
			t.Fatalf("%q: got %q, want %s", req, got, want)
		}
	}
	rs := dialRS(t, s.Addr(1))
	_, _ = rs.conn.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
	expectEOF(t, rs.r)
}

func TestUnixListener(t *testing.T) {
	p := newPKI(t)
	h := newEchoHandler()
	dir := t.TempDir()
	plain, secure := filepath.Join(dir, "plain.sock"), filepath.Join(dir, "tls.sock")
	s := startServer(t, Config{Listeners: []Listener{
		{Network: "unix", Address: plain},
		{Network: "unix", Address: secure, TLS: p.server.ServerConfig(nil)},
	}}, h)
	if a := s.Addr(0); a.String() != plain {
		t.Fatalf("addr %v", a)
	}
	unixDial := func(path string) func(context.Context, string, string) (net.Conn, error) {
		return func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		}
	}
	// WebSocket and RawSocket on the plain unix socket.
	c, _, err := wsDial(t, "ws://localhost/ws", nil, nil, unixDial(plain), "wamp.2.msgpack")
	if err != nil {
		t.Fatal(err)
	}
	h.waitOpen(t)
	c.write(t, ws.OpBinary, true, []byte{0x91, 1})
	if f := c.read(t); !bytes.Equal(f.Payload, []byte{0x91, 1}) {
		t.Fatalf("echo %x", f.Payload)
	}
	conn, err := net.Dial("unix", plain)
	if err != nil {
		t.Fatal(err)
	}
	rs := rsOver(t, conn)
	rs.handshake(t, 15, 1)
	h.waitOpen(t)
	rs.writeFrame(t, 0, []byte("[2]"))
	if _, m := rs.readFrame(t); string(m) != "[2]" {
		t.Fatalf("echo %q", m)
	}
	// WebSocket over TLS over a unix socket.
	cfg := p.ca.ClientConfig()
	cfg.ServerName = "localhost"
	c2, _, err := wsDial(t, "wss://localhost/ws", cfg, nil, unixDial(secure), "wamp.2.json")
	if err != nil {
		t.Fatal(err)
	}
	if sc := h.waitOpen(t); sc.TLS() == nil {
		t.Fatal("no TLS state")
	}
	c2.write(t, ws.OpText, true, []byte("[3]"))
	if f := c2.read(t); string(f.Payload) != "[3]" {
		t.Fatalf("echo %q", f.Payload)
	}
}

func TestSerializerRestriction(t *testing.T) {
	p := newPKI(t)
	h := newEchoHandler()
	only := []codec.Serializer{codec.MsgPack}
	s := startServer(t, Config{Listeners: []Listener{
		{Address: "127.0.0.1:0", Serializers: only},
		{Address: "127.0.0.1:0", Serializers: only, TLS: p.server.ServerConfig(nil)},
	}}, h)
	for i, scheme := range []string{"ws", "wss"} {
		var cfg *tls.Config
		if scheme == "wss" {
			cfg = p.ca.ClientConfig()
		}
		url := scheme + "://" + s.Addr(i).String() + "/ws"
		if _, _, err := wsDial(t, url, cfg, nil, nil, "wamp.2.json", "wamp.2.cbor.batched"); err == nil {
			t.Fatalf("%s: json/cbor upgrade accepted on a msgpack-only listener", scheme)
		}
		c, _, err := wsDial(t, url, cfg, nil, nil, "wamp.2.json", "wamp.2.msgpack.batched")
		if err != nil {
			t.Fatalf("%s: %v", scheme, err)
		}
		if c.hs.Protocol != "wamp.2.msgpack.batched" {
			t.Fatalf("%s: negotiated %q", scheme, c.hs.Protocol)
		}
		h.waitOpen(t)
		var conn net.Conn
		if cfg != nil {
			conn = dialTLS(t, s.Addr(i), cfg)
		} else if conn, err = net.Dial("tcp", s.Addr(i).String()); err != nil {
			t.Fatal(err)
		}
		rs := rsOver(t, conn)
		if rep := rs.handshake(t, 15, byte(codec.JSON)); rep != [4]byte{0x7F, 1 << 4, 0, 0} {
			t.Fatalf("%s: json handshake reply %x", scheme, rep)
		}
		expectEOF(t, rs.r)
	}
	if st := s.Stats(); st.ProtocolErrors < 4 {
		t.Fatalf("protocol errors %d", st.ProtocolErrors)
	}
}

func TestPerListenerMaxMessageSize(t *testing.T) {
	h := newEchoHandler()
	s := startServer(t, Config{Listeners: []Listener{
		{Address: "127.0.0.1:0", MaxMessageSize: 4096},
		{Address: "127.0.0.1:0", Kind: KindRawSocket, MaxMessageSize: 1 << 16},
	}}, h)
	small := dialRS(t, s.Addr(0))
	if rep := small.handshake(t, 15, 1); rep[1]>>4 != 3 { // 2^(9+3) = 4096
		t.Fatalf("reply %x", rep)
	}
	big := dialRS(t, s.Addr(1))
	if rep := big.handshake(t, 15, 1); rep[1]>>4 != 7 {
		t.Fatalf("reply %x", rep)
	}
	h.waitOpen(t)
	h.waitOpen(t)
	msg := bytes.Repeat([]byte("a"), 10000)
	big.writeFrame(t, 0, msg)
	if _, m := big.readFrame(t); len(m) != len(msg) {
		t.Fatalf("echo %d", len(m))
	}
	small.writeFrame(t, 0, msg)
	expectEOF(t, small.r)
	h.waitClose(t)
	c, _, err := wsDial(t, "ws://"+s.Addr(0).String()+"/ws", nil, nil, nil, "wamp.2.json")
	if err != nil {
		t.Fatal(err)
	}
	h.waitOpen(t)
	c.write(t, ws.OpText, true, msg)
	if f := c.read(t); f.Header.OpCode != ws.OpClose || len(f.Payload) < 2 || int(f.Payload[0])<<8|int(f.Payload[1]) != 1009 {
		t.Fatalf("want close 1009, got %v %x", f.Header.OpCode, f.Payload)
	}
}

func TestCookie(t *testing.T) {
	p := newPKI(t)
	h := newEchoHandler()
	ck := &Cookie{Name: "cbtid", MaxAge: time.Hour}
	s := startServer(t, Config{Listeners: []Listener{
		{Address: "127.0.0.1:0", Cookie: ck},
		{Address: "127.0.0.1:0", Cookie: ck, TLS: p.server.ServerConfig(nil)},
		{Address: "127.0.0.1:0"},
	}}, h)
	for i, scheme := range []string{"ws", "wss"} {
		var cfg *tls.Config
		if scheme == "wss" {
			cfg = p.ca.ClientConfig()
		}
		url := scheme + "://" + s.Addr(i).String() + "/ws"
		_, resp, err := wsDial(t, url, cfg, http.Header{"Cookie": {"other=1; cbtid=short"}}, nil, "wamp.2.json")
		if err != nil {
			t.Fatal(err)
		}
		first := h.waitOpen(t)
		if !first.CookieIsNew() || len(first.CookieID()) != 22 {
			t.Fatalf("%s: first cookie %q new=%v", scheme, first.CookieID(), first.CookieIsNew())
		}
		want := "cbtid=" + first.CookieID() + "; Max-Age=3600; Path=/; HttpOnly; SameSite=Strict"
		if scheme == "wss" {
			want += "; Secure"
		}
		if got := resp.Get("Set-Cookie"); got != want {
			t.Fatalf("%s: Set-Cookie %q, want %q", scheme, got, want)
		}
		_, resp, err = wsDial(t, url, cfg, http.Header{"Cookie": {"a=b; cbtid=" + first.CookieID()}}, nil, "wamp.2.json")
		if err != nil {
			t.Fatal(err)
		}
		second := h.waitOpen(t)
		if second.CookieIsNew() || second.CookieID() != first.CookieID() || resp.Get("Set-Cookie") != "" {
			t.Fatalf("%s: second cookie %q new=%v set=%q", scheme, second.CookieID(), second.CookieIsNew(), resp.Get("Set-Cookie"))
		}
	}
	_, resp, err := wsDial(t, "ws://"+s.Addr(2).String()+"/ws", nil, nil, nil, "wamp.2.json")
	if err != nil {
		t.Fatal(err)
	}
	if c := h.waitOpen(t); c.CookieID() != "" || resp.Get("Set-Cookie") != "" {
		t.Fatalf("cookie on a listener without the option: %q", c.CookieID())
	}
	rs := dialRS(t, s.Addr(0))
	rs.handshake(t, 15, 1)
	if c := h.waitOpen(t); c.CookieID() != "" {
		t.Fatalf("cookie on rawsocket: %q", c.CookieID())
	}
}

func TestTLSStopClosesCleanly(t *testing.T) {
	p := newPKI(t)
	h := newEchoHandler()
	s, err := NewServer(Config{Loops: 2, Logger: testLogger(t), Listeners: []Listener{
		{Address: "127.0.0.1:0", TLS: p.server.ServerConfig(nil)},
	}}, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	c, _, err := wsDial(t, "wss://"+s.Addr(0).String()+"/ws", p.ca.ClientConfig(), nil, nil, "wamp.2.json")
	if err != nil {
		t.Fatal(err)
	}
	rs := rsOver(t, dialTLS(t, s.Addr(0), p.ca.ClientConfig()))
	rs.handshake(t, 15, 1)
	wc, rc := h.waitOpen(t), h.waitOpen(t)
	if wc.Transport() != "websocket" {
		wc, rc = rc, wc
	}
	_ = wc.Send([]byte("[36,1]"))
	_ = rc.Send([]byte("[36,2]"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if f := c.read(t); string(f.Payload) != "[36,1]" {
		t.Fatalf("queued frame lost: %q", f.Payload)
	}
	if f := c.read(t); f.Header.OpCode != ws.OpClose || !bytes.Equal(f.Payload, []byte{3, 232}) {
		t.Fatalf("want close 1000, got %v %x", f.Header.OpCode, f.Payload)
	}
	if _, m := rs.readFrame(t); string(m) != "[36,2]" {
		t.Fatalf("queued frame lost: %q", m)
	}
	if _, err := rs.r.ReadByte(); err != io.EOF {
		t.Fatalf("want EOF (close_notify), got %v", err)
	}
	for range 2 {
		if err := h.waitClose(t); err != nil {
			t.Fatalf("stop reported %v", err)
		}
	}
	if st := s.Stats(); st.Open != 0 {
		t.Fatalf("open %d", st.Open)
	}
	if _, err := tls.Dial("tcp", s.Addr(0).String(), p.ca.ClientConfig()); err == nil {
		t.Fatal("TLS listener still accepts after Stop")
	}
}

func TestTLSSlowConsumer(t *testing.T) {
	p := newPKI(t)
	h := newEchoHandler()
	s := startServer(t, Config{OutboundLimit: 256 << 10, WriteDeadline: 300 * time.Millisecond, Listeners: []Listener{
		{Address: "127.0.0.1:0", Kind: KindRawSocket, TLS: p.server.ServerConfig(nil)},
	}}, h)
	rs := rsOver(t, dialTLS(t, s.Addr(0), p.ca.ClientConfig()))
	rs.handshake(t, 15, 1)
	sc := h.waitOpen(t)
	msg := bytes.Repeat([]byte("s"), 16<<10)
	var err error
	deadline := time.Now().Add(10 * time.Second)
	for err == nil && time.Now().Before(deadline) {
		err = sc.Send(msg) // the client never reads
		if err == nil && s.Stats().BytesOut > 0 {
			time.Sleep(time.Millisecond)
		}
	}
	if !errors.Is(err, ErrSlowConsumer) {
		t.Fatalf("Send: %v", err)
	}
	if err := h.waitClose(t); !errors.Is(err, ErrSlowConsumer) {
		t.Fatalf("OnClose: %v", err)
	}
	if st := s.Stats(); st.SlowConsumerClosed != 1 || st.Open != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestTLSKeepalive(t *testing.T) {
	p := newPKI(t)
	h := newEchoHandler()
	s := startServer(t, Config{Listeners: []Listener{{Address: "127.0.0.1:0", Kind: KindRawSocket,
		TLS: p.server.ServerConfig(nil), PingInterval: 50 * time.Millisecond, PingTimeout: 150 * time.Millisecond}}}, h)
	rs := rsOver(t, dialTLS(t, s.Addr(0), p.ca.ClientConfig()))
	rs.handshake(t, 15, 1)
	h.waitOpen(t)
	typ, payload := rs.readFrame(t)
	if typ != 1 || len(payload) != 0 {
		t.Fatalf("want an empty PING, got type %d %q", typ, payload)
	}
	rs.writeFrame(t, 2, nil) // PONG keeps it alive for another interval
	if typ, _ := rs.readFrame(t); typ != 1 {
		t.Fatalf("want a second PING, got type %d", typ)
	}
	// No answer: closed after PingTimeout.
	if err := h.waitClose(t); err == nil || !strings.Contains(err.Error(), "ping timeout") {
		t.Fatalf("OnClose: %v", err)
	}
}

// BenchmarkEchoRawSocketTLS is BenchmarkEchoRawSocket over TLS (rss://): the same
// protocol code on the TLS reader and writer goroutines.
func BenchmarkEchoRawSocketTLS(b *testing.B) {
	p := newPKI(b)
	benchEcho(b, func(b *testing.B, h *echoHandler) *rsClient {
		s := startServer(b, Config{Listeners: []Listener{{Address: "127.0.0.1:0", Kind: KindRawSocket,
			TLS: p.server.ServerConfig(nil)}}}, h)
		return rsOver(b, dialTLS(b, s.Addr(0), p.ca.ClientConfig()))
	})
}

// TestUnixListenerKeepsFiles: a unix listener whose path is a regular file (a mistyped
// address) fails to start and leaves the file alone; a stale socket is replaced.
func TestUnixListenerKeepsFiles(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "important.txt")
	if err := os.WriteFile(file, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tlsCfg := range []*tls.Config{nil, newPKI(t).server.ServerConfig(nil)} {
		s, err := NewServer(Config{Listeners: []Listener{{Network: "unix", Address: file, TLS: tlsCfg}}}, newEchoHandler())
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Start(); err == nil || !strings.Contains(err.Error(), "not a socket") {
			s.Stop(context.Background())
			t.Fatalf("started on a regular file: %v", err)
		}
		if b, err := os.ReadFile(file); err != nil || string(b) != "keep me" {
			t.Fatalf("file changed: %q %v", b, err)
		}
	}
	stale := filepath.Join(dir, "stale.sock")
	ln, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	startServer(t, Config{Listeners: []Listener{{Network: "unix", Address: stale}}}, newEchoHandler())
}
