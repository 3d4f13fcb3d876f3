package netpoll

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// lockedBuffer is a bytes.Buffer the server's loops may log into concurrently.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// dialWSOrigin upgrades at the server's universal listener sending origin (none if "").
func dialWSOrigin(s *Server, origin string) error {
	d := ws.Dialer{Protocols: []string{"wamp.2.json"}, Timeout: 5 * time.Second}
	if origin != "" {
		d.Header = ws.HandshakeHeaderHTTP(http.Header{"Origin": {origin}})
	}
	conn, _, _, err := d.Dial(context.Background(), "ws://"+s.UniversalAddr().String()+"/ws")
	if err != nil {
		return err
	}
	return conn.Close()
}

func TestWebSocketAllowedOrigins(t *testing.T) {
	var logs lockedBuffer
	tmpl := Listener{AllowedOrigins: []string{"https://*.example.com", "http://localhost:*", "https://app.test"}}
	s := startServer(t, Config{Listeners: twoListeners(tmpl),
		Logger: slog.New(slog.NewTextHandler(&logs, nil))}, newEchoHandler())
	for _, tc := range []struct {
		origin string
		ok     bool
	}{
		{"", true}, // no Origin: a non-browser client
		{"https://app.example.com", true},
		{"https://A.B.Example.COM", true},
		{"http://localhost:3000", true},
		{"https://app.test", true},
		{"https://evil.org", false},
		{"https://example.com", false},
		{"http://app.example.com", false},
		{"https://app.example.com.evil.org", false},
		{"https://app.example.com:8443", false},
		{"https://app.test:1", false},
		{"null", false},
	} {
		err := dialWSOrigin(s, tc.origin)
		if tc.ok && err != nil {
			t.Fatalf("origin %q: want upgrade, got %v", tc.origin, err)
		}
		var se ws.StatusError
		if !tc.ok && (!errors.As(err, &se) || int(se) != http.StatusForbidden) {
			t.Fatalf("origin %q: want 403, got %v", tc.origin, err)
		}
	}
	waitFor(t, "origin refusal logged", func() bool {
		return strings.Contains(logs.String(), "websocket origin refused") &&
			strings.Contains(logs.String(), "origin=https://evil.org")
	})
}

func TestWebSocketAnyOriginByDefault(t *testing.T) {
	for _, origins := range [][]string{nil, {"*"}, {"https://x.test", "*"}} {
		s := startServer(t, Config{Listeners: twoListeners(Listener{AllowedOrigins: origins})}, newEchoHandler())
		for _, o := range []string{"", "https://evil.org", "null"} {
			if err := dialWSOrigin(s, o); err != nil {
				t.Fatalf("allowed %v, origin %q: %v", origins, o, err)
			}
		}
	}
}

func TestBadOriginPattern(t *testing.T) {
	for _, p := range []string{"", "example.com", "https://", "https://a.com/path", "https://a b"} {
		_, err := NewServer(Config{Listeners: twoListeners(Listener{AllowedOrigins: []string{p}}),
			Logger: testLogger(t)}, newEchoHandler())
		if err == nil {
			t.Fatalf("pattern %q accepted", p)
		}
	}
}

func TestStatusPageModes(t *testing.T) {
	page := func() []byte { return []byte("<p>Realms: secret.realm</p>") }
	lns := []Listener{
		{Address: "127.0.0.1:0", Path: "/wamp"},                            // minimal (zero value)
		{Address: "127.0.0.1:0", Path: "/wamp", StatusPage: StatusFull},    // full
		{Address: "127.0.0.1:0", Path: "/wamp", StatusPage: StatusOff},     // off
		{Address: "127.0.0.1:0", Path: "/wamp", StatusPage: StatusMinimal}, // explicit minimal
	}
	s := startServer(t, Config{Listeners: lns, StatusPage: page}, newEchoHandler())
	get := func(i int) (int, string) {
		resp, err := http.Get("http://" + s.Addr(i).String() + "/")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	for _, i := range []int{0, 3} {
		code, body := get(i)
		if code != 200 || !strings.Contains(body, "WAMP router") || !strings.Contains(body, "/wamp") ||
			strings.Contains(body, "secret.realm") {
			t.Fatalf("minimal (listener %d): %d %q", i, code, body)
		}
	}
	if code, body := get(1); code != 200 || !strings.Contains(body, "secret.realm") {
		t.Fatalf("full: %d %q", code, body)
	}
	if code, body := get(2); code != 404 || strings.Contains(body, "WAMP") {
		t.Fatalf("off: %d %q", code, body)
	}
	// The WebSocket path still works on the listener whose page is off.
	d := ws.Dialer{Protocols: []string{"wamp.2.json"}, Timeout: 5 * time.Second}
	conn, _, _, err := d.Dial(context.Background(), "ws://"+s.Addr(2).String()+"/wamp")
	if err != nil {
		t.Fatalf("upgrade on status_page off: %v", err)
	}
	conn.Close()
}
