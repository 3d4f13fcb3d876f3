package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/switchyard-wamp/switchyard/config"
	"github.com/switchyard-wamp/switchyard/node"
)

// TestListenerStatusPageAndOrigins runs a node from a config file with three universal
// listeners (status_page default, full, off; the last with allowed_origins) and checks
// what "/" and a browser's WebSocket upgrade get over real sockets.
func TestListenerStatusPageAndOrigins(t *testing.T) {
	cfg, err := config.Parse([]byte(`
listeners:
  - {address: "127.0.0.1:0", auth: [anonymous]}
  - {address: "127.0.0.2:0", auth: [anonymous], status_page: full}
  - {address: "127.0.0.3:0", auth: [anonymous], status_page: "off", allowed_origins: ["https://*.example.com"]}
realms:
  - name: secret.realm
    roles: [{name: anonymous, permissions: [{uri: "", match: prefix, allow: {call: true}}]}]
    auth: {anonymous: {}}
`), config.ParseOptions{Format: config.FormatYAML})
	if err != nil {
		t.Fatal(err)
	}
	if p := cfg.Validate(); len(p) > 0 {
		t.Fatal(p)
	}
	nc, err := nodeConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	nc.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	nc.StatusPage = func(n *node.Node) []byte { return statusPage(n, "/ws") }
	n, err := node.Start(nc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Stop(context.Background()) })
	get := func(i int) (int, string) {
		resp, err := http.Get("http://" + n.ListenerAddr(i).String() + "/")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(0); code != 200 || strings.Contains(body, "secret.realm") || !strings.Contains(body, "/ws") {
		t.Fatalf("default (minimal): %d %q", code, body)
	}
	if code, body := get(1); code != 200 || !strings.Contains(body, "secret.realm") || !strings.Contains(body, "Sessions") {
		t.Fatalf("full: %d %q", code, body)
	}
	if code, body := get(2); code != 404 || strings.Contains(body, "secret.realm") {
		t.Fatalf("off: %d %q", code, body)
	}
	dial := func(i int, origin string) error {
		d := ws.Dialer{Protocols: []string{"wamp.2.json"}, Timeout: 5 * time.Second,
			Header: ws.HandshakeHeaderHTTP(http.Header{"Origin": {origin}})}
		c, _, _, err := d.Dial(context.Background(), "ws://"+n.ListenerAddr(i).String()+"/ws")
		if err == nil {
			c.Close()
		}
		return err
	}
	var se ws.StatusError
	if err := dial(2, "https://evil.org"); !errors.As(err, &se) || int(se) != http.StatusForbidden {
		t.Fatalf("forbidden origin: want 403, got %v", err)
	}
	if err := dial(2, "https://app.example.com"); err != nil {
		t.Fatalf("allowed origin: %v", err)
	}
	if err := dial(0, "https://evil.org"); err != nil {
		t.Fatalf("listener without allowed_origins: %v", err)
	}
}
