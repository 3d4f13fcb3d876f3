package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/client"
	"github.com/switchyard-wamp/switchyard/config"
	"github.com/switchyard-wamp/switchyard/node"
)

// TestWebFromConfigFile runs a node from a config file whose listener has a web tree
// (static directory, JSON value, redirect, node info page with status_page full, a
// caller bridge with a ticket from the environment) and checks each over real sockets,
// with a WAMP session on the same port. Then it checks that Validate names the path of
// each bad web entry.
func TestWebFromConfigFile(t *testing.T) {
	dir := t.TempDir()
	site := filepath.Join(dir, "site")
	if err := os.MkdirAll(site, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(site, "index.html"), []byte("<p>app</p>"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("BRIDGE_TICKET", "sesame")
	file := filepath.Join(dir, "switchyard.yaml")
	if err := os.WriteFile(file, []byte(`
listeners:
  - address: "127.0.0.1:0"
    auth: [anonymous]
    status_page: full
    web:
      - {path: /, kind: nodeinfo}
      - {path: /app, kind: static, directory: site, max_age: 1h}
      - {path: /info.json, kind: json, value: '{"name": "demo"}'}
      - {path: /old, kind: redirect, url: /app/, code: 301}
      - {path: /rpc, kind: caller, realm: realm1, role: rest, ticket: "${env:BRIDGE_TICKET}"}
realms:
  - name: realm1
    roles:
      - {name: anonymous, permissions: [{uri: "", match: prefix, allow: {call: true, register: true}}]}
      - {name: rest, permissions: [{uri: "com.", match: prefix, allow: {call: true}}]}
    auth: {anonymous: {}}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(file)
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
	base := "http://" + n.ListenerAddr(0).String()
	cl := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req := func(method, path, body string, hdr ...string) (*http.Response, string) {
		t.Helper()
		r, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		for i := 0; i+1 < len(hdr); i += 2 {
			r.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := cl.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	if resp, body := req("GET", "/", ""); resp.StatusCode != 200 || !strings.Contains(body, "realm1") {
		t.Fatalf("node info: %s %q", resp.Status, body)
	}
	if resp, body := req("GET", "/app/", ""); resp.StatusCode != 200 || body != "<p>app</p>" || resp.Header.Get("Cache-Control") != "public, max-age=3600" {
		t.Fatalf("static: %s %q %v", resp.Status, body, resp.Header)
	}
	if resp, body := req("GET", "/info.json", ""); resp.StatusCode != 200 || body != `{"name":"demo"}`+"\n" {
		t.Fatalf("json: %s %q", resp.Status, body)
	}
	if resp, _ := req("GET", "/old", ""); resp.StatusCode != 301 || resp.Header.Get("Location") != "/app/" {
		t.Fatalf("redirect: %s %v", resp.Status, resp.Header)
	}
	if resp, _ := req("GET", "/nothing", ""); resp.StatusCode != 404 {
		t.Fatalf("unknown path: %s", resp.Status)
	}

	// A WAMP callee on the same port, called through the bridge.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := client.Connect(ctx, client.Config{URL: n.WebSocketURL(), Realm: "realm1"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Leave(context.Background(), "")
	if _, err := s.Register(ctx, "com.hello", func(_ context.Context, inv *client.Invocation) (*client.Result, error) {
		return &client.Result{Args: []any{"hello " + inv.Args[0].(string)}}, nil
	}, nil); err != nil {
		t.Fatal(err)
	}
	call := `{"procedure":"com.hello","args":["web"]}`
	if resp, _ := req("POST", "/rpc", call); resp.StatusCode != 401 {
		t.Fatalf("no ticket: %s", resp.Status)
	}
	resp, body := req("POST", "/rpc", call, "Authorization", "Bearer sesame")
	var out struct{ Args []string }
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &out) != nil || len(out.Args) != 1 || out.Args[0] != "hello web" {
		t.Fatalf("call: %s %q", resp.Status, body)
	}

	// Validation names each bad entry.
	bad, err := config.Parse([]byte(`
listeners:
  - address: ":8080"
    web:
      - {path: /ws, kind: json, value: "1"}
      - {path: "/a/", kind: static, directory: /nonexistent-dir}
      - {path: /j, kind: json, value: "{"}
      - {path: /p, kind: reverseproxy, url: "ftp://x"}
      - {path: /b, kind: publisher, realm: nope}
      - {path: /c, kind: caller, realm: realm1, role: nobody}
      - {path: /h, kind: webhook, realm: realm1, role: r, topic: "a..b", ticket: t, hmac: {key: k, secret: s}}
  - address: ":8081"
    kind: rawsocket
    web: [{path: /x, kind: nodeinfo}]
realms:
  - name: realm1
    roles: [{name: r, permissions: []}]
    auth: {anonymous: {role: r}}
`), config.ParseOptions{Format: config.FormatYAML})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range bad.Validate() {
		got = append(got, p.Path)
	}
	all := strings.Join(got, " ")
	for _, want := range []string{"listeners[0].web[0].path", "listeners[0].web[1].path", "listeners[0].web[1].directory",
		"listeners[0].web[2].value", "listeners[0].web[3].url", "listeners[0].web[4].realm", "listeners[0].web[4].role",
		"listeners[0].web[5].role", "listeners[0].web[6].topic", "listeners[0].web[6].ticket", "listeners[1].web"} {
		if !strings.Contains(" "+all+" ", " "+want+" ") {
			t.Errorf("no problem reported at %s (got %s)", want, all)
		}
	}
}
