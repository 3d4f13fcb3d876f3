package web_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/switchyard-wamp/switchyard/netpoll"
	"github.com/switchyard-wamp/switchyard/web"
)

// nopHandler is a netpoll.Handler for listeners whose WAMP side these tests do not use.
type nopHandler struct{}

func (nopHandler) OnOpen(*netpoll.Conn)            {}
func (nopHandler) OnMessage(*netpoll.Conn, []byte) {}
func (nopHandler) OnClose(*netpoll.Conn, error)    {}

// serve runs tree on a universal netpoll listener on loopback port 0 and returns its
// base URL: the requests take the real path (event loop, hand-off, net/http).
func serve(t testing.TB, tree http.Handler) string {
	t.Helper()
	s, err := netpoll.NewServer(netpoll.Config{Loops: 1, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Listeners: []netpoll.Listener{{Address: "127.0.0.1:0", Web: tree}}}, nopHandler{})
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
	return "http://" + s.Addr(0).String()
}

func do(t testing.TB, method, url string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	cl := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func mustTree(t testing.TB, routes ...web.Route) *web.Tree {
	t.Helper()
	tr, err := web.NewTree(routes)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func TestStatic(t *testing.T) {
	dir := t.TempDir()
	content := strings.Repeat("0123456789", 100)
	if err := os.WriteFile(filepath.Join(dir, "a.txt"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sub", "index.html"), []byte("<p>sub</p>"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(t.TempDir(), "secret"), []byte("no"), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := web.NewStatic(dir, "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	base := serve(t, mustTree(t, web.Route{Path: "/static", Subtree: true, Handler: st}))

	resp, body := do(t, "GET", base+"/static/a.txt", nil)
	if resp.StatusCode != 200 || body != content {
		t.Fatalf("GET: %s %q", resp.Status, body[:min(len(body), 40)])
	}
	etag, lm := resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
	if etag == "" || lm == "" || resp.Header.Get("Cache-Control") != "public, max-age=3600" ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("headers %v", resp.Header)
	}
	if resp, _ := do(t, "GET", base+"/static/a.txt", map[string]string{"If-None-Match": etag}); resp.StatusCode != 304 {
		t.Fatalf("If-None-Match: %s", resp.Status)
	}
	if resp, _ := do(t, "GET", base+"/static/a.txt", map[string]string{"If-None-Match": `"other"`}); resp.StatusCode != 200 {
		t.Fatalf("If-None-Match other: %s", resp.Status)
	}
	if resp, _ := do(t, "GET", base+"/static/a.txt", map[string]string{"If-Modified-Since": lm}); resp.StatusCode != 304 {
		t.Fatalf("If-Modified-Since: %s", resp.Status)
	}
	resp, body = do(t, "GET", base+"/static/a.txt", map[string]string{"Range": "bytes=10-19"})
	if resp.StatusCode != 206 || body != "0123456789" || resp.Header.Get("Content-Range") != "bytes 10-19/1000" {
		t.Fatalf("Range: %s %q %q", resp.Status, body, resp.Header.Get("Content-Range"))
	}
	if resp, _ := do(t, "GET", base+"/static/a.txt", map[string]string{"Range": "bytes=5000-"}); resp.StatusCode != 416 {
		t.Fatalf("bad Range: %s", resp.Status)
	}
	// Directory: redirect to the slash form, then its index.
	if resp, _ := do(t, "GET", base+"/static/sub", nil); resp.StatusCode != 301 || resp.Header.Get("Location") != "/static/sub/" {
		t.Fatalf("dir: %s %q", resp.Status, resp.Header.Get("Location"))
	}
	if resp, body := do(t, "GET", base+"/static/sub/", nil); resp.StatusCode != 200 || body != "<p>sub</p>" {
		t.Fatalf("index: %s %q", resp.Status, body)
	}
	// Escapes and misses.
	for _, p := range []string{"/static/../secret", "/static/%2e%2e/secret", "/static/nope", "/staticx", "/"} {
		if resp, _ := do(t, "GET", base+p, nil); resp.StatusCode != 404 {
			t.Fatalf("%s: %s", p, resp.Status)
		}
	}
	if resp, _ := do(t, "POST", base+"/static/a.txt", nil); resp.StatusCode != 405 {
		t.Fatalf("POST: %s", resp.Status)
	}
}

func TestRedirectJSONNodeInfo(t *testing.T) {
	rd, err := web.NewRedirect("https://example.com/x", 0)
	if err != nil {
		t.Fatal(err)
	}
	js, err := web.NewJSON(`{"a": [1, 2], "b": "c"}`)
	if err != nil {
		t.Fatal(err)
	}
	base := serve(t, mustTree(t,
		web.Route{Path: "/old", Handler: rd},
		web.Route{Path: "/config.json", Handler: js},
		web.Route{Path: "/", Handler: web.NodeInfo(func() []byte { return []byte("<h1>node</h1>") })},
	))
	if resp, _ := do(t, "GET", base+"/old", nil); resp.StatusCode != 302 || resp.Header.Get("Location") != "https://example.com/x" {
		t.Fatalf("redirect: %s %v", resp.Status, resp.Header)
	}
	resp, body := do(t, "GET", base+"/config.json", nil)
	if resp.StatusCode != 200 || body != `{"a":[1,2],"b":"c"}`+"\n" || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("json: %s %q %v", resp.Status, body, resp.Header)
	}
	if resp, body := do(t, "GET", base+"/", nil); resp.StatusCode != 200 || body != "<h1>node</h1>" {
		t.Fatalf("node info: %s %q", resp.Status, body)
	}
	// "/" is not a subtree here.
	if resp, _ := do(t, "GET", base+"/other", nil); resp.StatusCode != 404 {
		t.Fatalf("other: %s", resp.Status)
	}
	if _, err := web.NewJSON(`{"a":`); err == nil {
		t.Fatal("bad JSON accepted")
	}
	if _, err := web.NewRedirect("x", 301); err == nil {
		t.Fatal("relative redirect accepted")
	}
	for _, p := range []string{"", "a", "/a/", "/a//b", "/a/../b"} {
		if _, err := web.NewTree([]web.Route{{Path: p, Handler: js}}); err == nil {
			t.Fatalf("path %q accepted", p)
		}
	}
}

func TestReverseProxy(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") == "websocket" {
			conn, _, _, err := ws.UpgradeHTTP(r, w)
			if err != nil {
				return
			}
			defer conn.Close()
			for {
				msg, op, err := wsutil.ReadClientData(conn)
				if err != nil {
					return
				}
				_ = wsutil.WriteServerMessage(conn, op, append([]byte("echo:"), msg...))
			}
		}
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s xff=%s body=%s", r.Method, r.URL.Path, r.Header.Get("X-Forwarded-For"), body)
	}))
	defer up.Close()
	px, err := web.NewReverseProxy(up.URL+"/base", nil)
	if err != nil {
		t.Fatal(err)
	}
	dead, err := web.NewReverseProxy("http://127.0.0.1:1", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	base := serve(t, mustTree(t, web.Route{Path: "/api", Subtree: true, Handler: px},
		web.Route{Path: "/dead", Subtree: true, Handler: dead}))
	resp, err := http.Post(base+"/api/x/y", "text/plain", strings.NewReader("hello"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "POST /base/x/y xff=127.0.0.1 body=hello" {
		t.Fatalf("proxied: %s %q", resp.Status, b)
	}
	if resp, _ := do(t, "GET", base+"/dead/x", nil); resp.StatusCode != 502 {
		t.Fatalf("dead upstream: %s", resp.Status)
	}
	// A WebSocket through the proxy.
	conn, _, _, err := ws.Dial(context.Background(), "ws"+strings.TrimPrefix(base, "http")+"/api/sock")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	for _, m := range []string{"one", "two"} {
		if err := wsutil.WriteClientText(conn, []byte(m)); err != nil {
			t.Fatal(err)
		}
		got, err := wsutil.ReadServerText(conn)
		if err != nil || string(got) != "echo:"+m {
			t.Fatalf("ws through proxy: %q %v", got, err)
		}
	}
	if _, err := web.NewReverseProxy("ftp://x", nil); err == nil {
		t.Fatal("ftp upstream accepted")
	}
}
