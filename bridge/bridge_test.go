package bridge_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/bridge"
	"github.com/switchyard-wamp/switchyard/client"
	"github.com/switchyard-wamp/switchyard/engine"
	"github.com/switchyard-wamp/switchyard/node"
)

// Roles of realm1 in these tests: "app" (the WAMP clients) may do everything; "bridge"
// may publish and call below com.ok. only.
func roles(t testing.TB) map[string]map[string]*engine.RolePermissions {
	t.Helper()
	all, err := engine.NewRolePermissions([]engine.Rule{{URI: "", Match: "prefix",
		Allow: engine.Permission{Call: true, Register: true, Publish: true, Subscribe: true}}})
	if err != nil {
		t.Fatal(err)
	}
	br, err := engine.NewRolePermissions([]engine.Rule{{URI: "com.ok.", Match: "prefix",
		Allow: engine.Permission{Call: true, Publish: true, DiscloseCaller: true}}})
	if err != nil {
		t.Fatal(err)
	}
	return map[string]map[string]*engine.RolePermissions{"realm1": {"app": all, "anonymous": all, "bridge": br}}
}

// StartBridgeNode runs a node on loopback port 0 whose universal listener mounts
// the three bridges (and guarded variants) and returns it with its base URL.
func startBridgeNode(t testing.TB) (*node.Node, string) {
	t.Helper()
	b := func(path, kind string, g bridge.GuardConfig) node.WebPath {
		return node.WebPath{Path: path, Kind: kind, Realm: "realm1", Role: "bridge", Topic: "com.ok.hook",
			Timeout: 500 * time.Millisecond, Guard: g}
	}
	cfg := node.Config{
		Listeners: []node.Listener{{Address: "127.0.0.1:0", Web: []node.WebPath{
			b("/publish", node.WebPublisher, bridge.GuardConfig{}),
			b("/call", node.WebCaller, bridge.GuardConfig{}),
			b("/hook", node.WebWebhook, bridge.GuardConfig{}),
			b("/signed/call", node.WebCaller, bridge.GuardConfig{HMACKey: "k1", HMACSecret: []byte("s3cret"), HMACWindow: time.Minute}),
			b("/ticket/publish", node.WebPublisher, bridge.GuardConfig{Ticket: "t0ken"}),
			b("/small/publish", node.WebPublisher, bridge.GuardConfig{MaxBody: 100}),
			b("/slow/publish", node.WebPublisher, bridge.GuardConfig{Rate: 0.5, Burst: 2}),
			{Path: "/", Kind: node.WebNodeInfo},
		}}},
		Roles:  roles(t),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	n, err := node.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_ = n.Stop(ctx)
	})
	return n, "http://" + n.Server.Addr(0).String()
}

func connect(t testing.TB, n *node.Node) *client.Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := client.Connect(ctx, client.Config{URL: n.WebSocketURL(), Realm: "realm1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Leave(context.Background(), "") })
	return s
}

type answer struct {
	code   int
	header http.Header
	body   map[string]any
}

func post(t testing.TB, url, body string, hdr map[string]string) answer {
	t.Helper()
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{code: resp.StatusCode, header: resp.Header}
	if err := json.Unmarshal(raw, &a.body); err != nil {
		t.Fatalf("%s: answer %d is not a JSON object: %q", url, resp.StatusCode, raw)
	}
	return a
}

func TestPublisherAndWebhook(t *testing.T) {
	n, base := startBridgeNode(t)
	sub := connect(t, n)
	events := make(chan *client.Event, 10)
	ctx := context.Background()
	for _, topic := range []string{"com.ok.news", "com.ok.hook"} {
		if _, err := sub.Subscribe(ctx, topic, func(e *client.Event) { events <- e }, nil); err != nil {
			t.Fatal(err)
		}
	}
	a := post(t, base+"/publish", `{"topic":"com.ok.news","args":[1,"two",9007199254740993],"kwargs":{"k":true}}`, nil)
	if a.code != 200 || a.body["id"] == nil {
		t.Fatalf("publish: %d %v", a.code, a.body)
	}
	e := wait(t, events)
	if len(e.Args) != 3 || e.Args[1] != "two" || e.Kwargs["k"] != true {
		t.Fatalf("event %+v", e)
	}
	// Permissions of the bridge's role apply.
	if a := post(t, base+"/publish", `{"topic":"com.secret.x"}`, nil); a.code != 403 || a.body["error"] != "wamp.error.not_authorized" {
		t.Fatalf("unauthorized publish: %d %v", a.code, a.body)
	}
	for _, bad := range []string{`{"args":[1]}`, `not json`, `{"topic":"a.b"} x`, `{"topic":5}`} {
		if a := post(t, base+"/publish", bad, nil); a.code != 400 {
			t.Fatalf("%s: %d %v", bad, a.code, a.body)
		}
	}
	// Webhook: any body, with its headers.
	a = post(t, base+"/hook", "payload=1&x=2", map[string]string{"X-Github-Event": "push"})
	if a.code != 202 {
		t.Fatalf("webhook: %d %v", a.code, a.body)
	}
	e = wait(t, events)
	ev, _ := e.Args[0].(map[string]any)
	hdr, _ := ev["headers"].(map[string]any)
	if ev["body"] != "payload=1&x=2" || fmt.Sprint(hdr["X-Github-Event"]) != "[push]" || ev["method"] != "POST" {
		t.Fatalf("webhook event %+v", ev)
	}
	// A body that is not UTF-8 travels in base64.
	if a := post(t, base+"/hook", "\xff\xfe", nil); a.code != 202 {
		t.Fatalf("binary webhook: %d %v", a.code, a.body)
	}
	if ev, _ := wait(t, events).Args[0].(map[string]any); ev["body_base64"] != "//4=" || ev["body"] != nil {
		t.Fatalf("binary webhook event %+v", ev)
	}
	// GET is not a bridge request.
	resp, err := http.Get(base + "/publish")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 {
		t.Fatalf("GET: %s", resp.Status)
	}
	// The node info page at / on the same listener.
	resp, err = http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(page, []byte("A WAMP router is running")) {
		t.Fatalf("node info: %q", page)
	}
}

func wait(t testing.TB, ch chan *client.Event) *client.Event {
	t.Helper()
	select {
	case e := <-ch:
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("no event")
		return nil
	}
}

func TestCaller(t *testing.T) {
	n, base := startBridgeNode(t)
	callee := connect(t, n)
	ctx := context.Background()
	reg := func(proc string, h client.InvocationHandler) {
		if _, err := callee.Register(ctx, proc, h, nil); err != nil {
			t.Fatal(err)
		}
	}
	reg("com.ok.add", func(_ context.Context, inv *client.Invocation) (*client.Result, error) {
		a, _ := strconv.Atoi(fmt.Sprint(inv.Args[0]))
		b, _ := strconv.Atoi(fmt.Sprint(inv.Args[1]))
		return &client.Result{Args: []any{a + b}, Kwargs: map[string]any{"caller_authid": inv.Details["caller_authid"]}}, nil
	})
	reg("com.ok.fail", func(context.Context, *client.Invocation) (*client.Result, error) {
		return nil, &client.Error{URI: "com.app.oops", Args: []any{"broken"}}
	})
	reg("com.ok.badarg", func(context.Context, *client.Invocation) (*client.Result, error) {
		return nil, &client.Error{URI: "wamp.error.invalid_argument", Args: []any{"need two numbers"}}
	})
	reg("com.ok.sleep", func(ctx context.Context, _ *client.Invocation) (*client.Result, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	reg("com.secret.x", func(context.Context, *client.Invocation) (*client.Result, error) {
		return &client.Result{}, nil
	})

	a := post(t, base+"/call", `{"procedure":"com.ok.add","args":[2,3]}`, nil)
	if a.code != 200 || fmt.Sprint(a.body["args"]) != "[5]" {
		t.Fatalf("call: %d %v", a.code, a.body)
	}
	if kw, _ := a.body["kwargs"].(map[string]any); kw["caller_authid"] != "http-bridge" {
		t.Fatalf("callee saw caller %v", a.body["kwargs"])
	}
	for _, c := range []struct {
		proc string
		code int
		uri  string
	}{
		{"com.ok.nobody", 404, "wamp.error.no_such_procedure"},
		{"com.secret.x", 403, "wamp.error.not_authorized"},
		{"com.ok.badarg", 400, "wamp.error.invalid_argument"},
		{"com.ok.fail", 502, "com.app.oops"},
		{"com.ok.sleep", 504, "wamp.error.timeout"},
	} {
		a := post(t, base+"/call", `{"procedure":"`+c.proc+`","args":[1]}`, nil)
		if a.code != c.code || a.body["error"] != c.uri {
			t.Fatalf("%s: %d %v, want %d %s", c.proc, a.code, a.body, c.code, c.uri)
		}
	}
	if a := post(t, base+"/call", `{"procedure":"com.ok.fail"}`, nil); fmt.Sprint(a.body["args"]) != "[broken]" {
		t.Fatalf("error args: %v", a.body)
	}
}

func TestGuards(t *testing.T) {
	n, base := startBridgeNode(t)
	callee := connect(t, n)
	if _, err := callee.Register(context.Background(), "com.ok.echo", func(_ context.Context, inv *client.Invocation) (*client.Result, error) {
		return &client.Result{Args: inv.Args}, nil
	}, nil); err != nil {
		t.Fatal(err)
	}
	const path = "/signed/call"
	body := `{"procedure":"com.ok.echo","args":["hi"]}`
	signed := func(key, secret string, ts time.Time, nonce, body string) map[string]string {
		tss := strconv.FormatInt(ts.Unix(), 10)
		return map[string]string{bridge.HeaderKey: key, bridge.HeaderTimestamp: tss, bridge.HeaderNonce: nonce,
			bridge.HeaderSignature: bridge.Sign([]byte(secret), key, tss, nonce, "POST", path, []byte(body))}
	}
	now := time.Now()
	t.Run("hmac", func(t *testing.T) {
		if a := post(t, base+path, body, signed("k1", "s3cret", now, "n1", body)); a.code != 200 || fmt.Sprint(a.body["args"]) != "[hi]" {
			t.Fatalf("good signature: %d %v", a.code, a.body)
		}
		for name, h := range map[string]map[string]string{
			"replayed":    signed("k1", "s3cret", now, "n1", body),
			"bad secret":  signed("k1", "wrong", now, "n2", body),
			"other key":   signed("k2", "s3cret", now, "n3", body),
			"stale":       signed("k1", "s3cret", now.Add(-2*time.Minute), "n4", body),
			"future":      signed("k1", "s3cret", now.Add(2*time.Minute), "n5", body),
			"other body":  signed("k1", "s3cret", now, "n6", `{"procedure":"com.ok.echo","args":["x"]}`),
			"unsigned":    nil,
			"half signed": {bridge.HeaderKey: "k1"},
		} {
			if a := post(t, base+path, body, h); a.code != 401 || a.body["error"] != "wamp.error.not_authorized" {
				t.Fatalf("%s: %d %v", name, a.code, a.body)
			}
		}
		// A fresh nonce with the same content is fine.
		if a := post(t, base+path, body, signed("k1", "s3cret", now, "n7", body)); a.code != 200 {
			t.Fatalf("fresh nonce: %d %v", a.code, a.body)
		}
	})
	t.Run("ticket", func(t *testing.T) {
		pub := `{"topic":"com.ok.t"}`
		if a := post(t, base+"/ticket/publish", pub, map[string]string{"Authorization": "Bearer t0ken"}); a.code != 200 {
			t.Fatalf("good ticket: %d %v", a.code, a.body)
		}
		for _, h := range []map[string]string{nil, {"Authorization": "Bearer nope"}, {"Authorization": "t0ken"}} {
			if a := post(t, base+"/ticket/publish", pub, h); a.code != 401 {
				t.Fatalf("%v: %d %v", h, a.code, a.body)
			}
		}
	})
	t.Run("body size", func(t *testing.T) {
		big := `{"topic":"com.ok.t","args":["` + strings.Repeat("x", 200) + `"]}`
		if a := post(t, base+"/small/publish", big, nil); a.code != 413 {
			t.Fatalf("big body: %d %v", a.code, a.body)
		}
		// Without a Content-Length (chunked) the bound holds too.
		req, _ := http.NewRequest("POST", base+"/small/publish", io.MultiReader(strings.NewReader(big)))
		req.ContentLength = -1
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 413 {
			t.Fatalf("chunked big body: %s", resp.Status)
		}
		if a := post(t, base+"/small/publish", `{"topic":"com.ok.t"}`, nil); a.code != 200 {
			t.Fatalf("small body: %d %v", a.code, a.body)
		}
	})
	t.Run("rate", func(t *testing.T) {
		pub := `{"topic":"com.ok.t"}`
		for i := range 2 { // the burst
			if a := post(t, base+"/slow/publish", pub, nil); a.code != 200 {
				t.Fatalf("request %d: %d %v", i, a.code, a.body)
			}
		}
		a := post(t, base+"/slow/publish", pub, nil)
		if a.code != 429 || a.header.Get("Retry-After") == "" {
			t.Fatalf("over the rate: %d %v %v", a.code, a.body, a.header)
		}
	})
}
