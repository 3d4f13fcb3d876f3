package interop

import (
	"bufio"
	"context"
	"github.com/switchyard-wamp/switchyard/internal/testpki"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestExamples runs every program in ../examples against a node, as a user would run
// them, so that the examples keep working: Go (our client), AutobahnPython,
// AutobahnJS (JSON, MsgPack, CBOR), wampy.js, and the ticket-auth example against a
// `switchyard start` of examples/ticket/switchyard.yaml. A language whose runtime or
// modules are missing is skipped (failed under CI), as in the other interop tests.
func TestExamples(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	// One build of the Go examples and of the switchyard binary for the ticket node.
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+string(os.PathSeparator), "./cmd/switchyard", "./examples/go", "./examples/ticket")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	rn := startNode(t)
	url := rn.urls["ws"]
	nodePath := "NODE_PATH=" + filepath.Join(root, "interop", "js", "node_modules")
	js, py := clients()
	nodeBin, _ := exec.LookPath("node")

	cases := []struct {
		name    string
		c       *client // nil: needs nothing beyond Go
		command []string
		env     []string
	}{
		{name: "go", command: []string{filepath.Join(bin, "go"), "--url", url}},
		{name: "go/env-url", command: []string{filepath.Join(bin, "go")}, env: []string{"SWITCHYARD_URL=" + url}},
		{name: "python", c: &py, command: []string{"/usr/bin/python3", "examples/python/hello.py", url}},
		{name: "python/rawsocket-twisted", c: &py, command: []string{"/usr/bin/python3", "examples/python/hello_rawsocket.py", rn.urls["rs"]}},
		{name: "autobahnjs/json", c: &js, command: []string{nodeBin, "examples/js/autobahn.js", url, "json"}, env: []string{nodePath}},
		{name: "autobahnjs/msgpack", c: &js, command: []string{nodeBin, "examples/js/autobahn.js", url, "msgpack"}, env: []string{nodePath}},
		{name: "autobahnjs/cbor", c: &js, command: []string{nodeBin, "examples/js/autobahn.js", url, "cbor"}, env: []string{nodePath}},
	}
	wampy := detectWampy()
	for _, ser := range []string{"json", "msgpack", "cbor"} {
		cases = append(cases, struct {
			name    string
			c       *client
			command []string
			env     []string
		}{name: "wampy/" + ser, c: &wampy, command: []string{nodeBin, "examples/js/wampy.js", url, ser}, env: []string{nodePath}})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.c != nil {
				require(t, *tc.c)
			}
			if out, err := runExample(root, tc.command, tc.env); err != nil {
				t.Errorf("%s: %v\n%s", strings.Join(tc.command, " "), err, out)
			} else {
				t.Logf("%s", out)
			}
		})
	}

	t.Run("tls", func(t *testing.T) {
		// examples/tls/switchyard.yaml beside a self-signed certificate, as its comment
		// tells a user to make one (here from a throwaway CA).
		dir := t.TempDir()
		yaml, err := os.ReadFile(filepath.Join(root, "examples", "tls", "switchyard.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "switchyard.yaml"), yaml, 0o600); err != nil {
			t.Fatal(err)
		}
		ca := testpki.MustCA("example CA")
		cert, key, err := ca.MustServer("127.0.0.1", "localhost").WriteFiles(dir, "server")
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Base(cert) != "server.crt" || filepath.Base(key) != "server.key" {
			t.Fatalf("certificate files %s %s, the example's config names server.crt and server.key", cert, key)
		}
		caFile, err := ca.WriteFile(dir, "ca")
		if err != nil {
			t.Fatal(err)
		}
		wssURL := startExampleNode(t, filepath.Join(bin, "switchyard"), filepath.Join(dir, "switchyard.yaml"))
		if !strings.HasPrefix(wssURL, "wss://") {
			t.Fatalf("the TLS example's listener serves %s", wssURL)
		}
		out, err := runExample(root, []string{filepath.Join(bin, "go"), "--url", wssURL, "--ca", caFile}, nil)
		if err != nil {
			t.Fatalf("go example over wss: %v\n%s", err, out)
		}
		// Without trusting the certificate the example must fail.
		if out, err := runExample(root, []string{filepath.Join(bin, "go"), "--url", wssURL}, nil); err == nil {
			t.Fatalf("go example over wss without --ca succeeded:\n%s", out)
		}
	})

	t.Run("ticket", func(t *testing.T) {
		const ticket = "example-ticket-3f9a"
		wsURL := startExampleNode(t, filepath.Join(bin, "switchyard"), filepath.Join(root, "examples", "ticket", "switchyard.yaml"),
			"EXAMPLE_TICKET="+ticket)
		example := []string{filepath.Join(bin, "ticket"), "--url", wsURL}
		out, err := runExample(root, example, []string{"EXAMPLE_TICKET=" + ticket})
		if err != nil {
			t.Fatalf("ticket example: %v\n%s", err, out)
		}
		t.Logf("%s", out)
		// And the example must notice a wrong ticket.
		out, err = runExample(root, example, []string{"EXAMPLE_TICKET=wrong"})
		if err == nil || !strings.Contains(out, "wamp.error.authentication_failed") {
			t.Fatalf("ticket example with a wrong ticket: want a non-zero exit naming wamp.error.authentication_failed, got %v\n%s", err, out)
		}
	})
}

// runExample runs command in dir (the repository root) with extra environment
// variables and a 30 s limit, returning its combined output.
func runExample(dir string, command, env []string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, command[0], command[1:]...)
	cmd.Dir = dir
	cmd.WaitDelay = 2 * time.Second
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// listenerURL finds the WebSocket URL in the start line of `switchyard start`.
var listenerURL = regexp.MustCompile(`listener0="universal (wss?://\S+)`)

// startExampleNode runs `switchyard start --config file` with its first listener moved
// to a free loopback port, and returns that listener's WebSocket URL; t's end stops it.
func startExampleNode(t *testing.T, switchyard, file string, env ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, switchyard, "start", "--config", file, "--log-format", "text")
	cmd.Env = append(os.Environ(), "SWITCHYARD_LISTENERS_0_ADDRESS=127.0.0.1:0")
	cmd.Env = append(cmd.Env, env...)
	cmd.WaitDelay = 2 * time.Second
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("switchyard start: %v", err)
	}
	var log syncBuffer
	found := make(chan string, 1)
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			log.WriteString(sc.Text() + "\n")
			if m := listenerURL.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-scanned
		_ = cmd.Wait()
		t.Logf("switchyard log:\n%s", log.String())
	})
	select {
	case u := <-found:
		return u
	case <-scanned:
		t.Fatalf("switchyard start exited before listening:\n%s", log.String())
	case <-time.After(15 * time.Second):
		t.Fatalf("switchyard start: no listener line within 15s:\n%s", log.String())
	}
	return ""
}
