package interop

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/engine"
	"github.com/switchyard-wamp/switchyard/node"
)

// TestBridgePython drives the HTTP bridge (docs/web.md) against an AutobahnPython peer
// (python/bridge.py: callee of com.ok.add and com.ok.fail, subscriber of com.ok.news):
// a POST to the publisher reaches the Python subscriber with its arguments and the
// bridge's authid; a POST to the caller returns the Python callee's result, and its
// ApplicationError comes back as HTTP 502 with the error URI, args and kwargs; a
// procedure nobody registered is 404 and one outside the bridge role's permissions 403.
func TestBridgePython(t *testing.T) {
	_, py := clients()
	require(t, py)
	all, err := engine.NewRolePermissions([]engine.Rule{{URI: "", Match: "prefix",
		Allow: engine.Permission{Call: true, Register: true, Publish: true, Subscribe: true}}})
	if err != nil {
		t.Fatal(err)
	}
	br, err := engine.NewRolePermissions([]engine.Rule{{URI: "com.ok.", Match: "prefix",
		Allow: engine.Permission{Call: true, Publish: true, DiscloseCaller: true, DisclosePublisher: true}}})
	if err != nil {
		t.Fatal(err)
	}
	rn := startNodeConfig(t, func(c *node.Config) {
		c.Listeners = []node.Listener{{Address: "127.0.0.1:0", Web: []node.WebPath{
			{Path: "/publish", Kind: node.WebPublisher, Realm: "realm1", Role: "bridge"},
			{Path: "/call", Kind: node.WebCaller, Realm: "realm1", Role: "bridge", Timeout: 5 * time.Second},
		}}}
		c.Roles = map[string]map[string]*engine.RolePermissions{"realm1": {"anonymous": all, "bridge": br}}
	})
	base := "http://" + rn.Server.Addr(0).String()

	ctx, cancel := context.WithTimeout(context.Background(), scriptTimeout+5*time.Second)
	defer cancel()
	cmd := py.command(ctx, rn.WebSocketURL(), fmt.Sprint(int(scriptTimeout/time.Second)))
	cmd.Args[1] = filepath.Join(filepath.Dir(cmd.Args[1]), "bridge.py")
	stdin, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("bridge.py stderr:\n%s", stderr.String())
		}
	}()
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	next := func(prefix string) string {
		t.Helper()
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("bridge.py ended before %q", prefix)
				}
				if rest, ok := strings.CutPrefix(l, prefix); ok {
					return rest
				}
				t.Logf("bridge.py: %s", l)
			case <-time.After(10 * time.Second):
				t.Fatalf("bridge.py: no %q line", prefix)
			}
		}
	}
	next("READY")

	post := func(path, body string) (int, map[string]any) {
		t.Helper()
		resp, err := http.Post(base+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("%s: %d %q", path, resp.StatusCode, raw)
		}
		return resp.StatusCode, m
	}

	code, m := post("/publish", `{"topic":"com.ok.news","args":["hello",42],"kwargs":{"from":"http"}}`)
	if code != 200 {
		t.Fatalf("publish: %d %v", code, m)
	}
	var ev struct {
		Args            []any          `json:"args"`
		Kwargs          map[string]any `json:"kwargs"`
		PublisherAuthID string         `json:"publisher_authid"`
	}
	if err := json.Unmarshal([]byte(next("EVENT ")), &ev); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(ev.Args) != "[hello 42]" || ev.Kwargs["from"] != "http" || ev.PublisherAuthID != "http-bridge" {
		t.Fatalf("python got %+v", ev)
	}

	code, m = post("/call", `{"procedure":"com.ok.add","args":[2,40]}`)
	if res, _ := m["args"].([]any); code != 200 || len(res) != 1 || fmt.Sprint(res[0]) != "map[caller:http-bridge sum:42]" {
		t.Fatalf("call: %d %v", code, m)
	}
	code, m = post("/call", `{"procedure":"com.ok.fail"}`)
	if kw, _ := m["kwargs"].(map[string]any); code != 502 || m["error"] != "com.app.oops" || fmt.Sprint(m["args"]) != "[broken]" || kw["why"] != "test" {
		t.Fatalf("callee error: %d %v", code, m)
	}
	if code, m = post("/call", `{"procedure":"com.ok.nobody"}`); code != 404 || m["error"] != "wamp.error.no_such_procedure" {
		t.Fatalf("no such procedure: %d %v", code, m)
	}
	if code, m = post("/call", `{"procedure":"com.other.add","args":[1,2]}`); code != 403 || m["error"] != "wamp.error.not_authorized" {
		t.Fatalf("not authorized: %d %v", code, m)
	}
}
