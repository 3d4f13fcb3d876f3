// Package interop tests switchyard against WAMP clients we did not write: AutobahnJS
// (npm autobahn 22.11.1 on Node), wampy.js (npm wampy 8.0.2 on Node, wampy_test.go) and
// AutobahnPython (Debian python3-autobahn, asyncio).
//
// Each test starts a real node in-process on loopback ports, then runs the scenario
// scripts in js/ and python/ against it: alone ("solo": callee/subscriber and
// caller/publisher in one process) and paired across clients, transports and
// serializers ("cross": one process serves, the other drives). A script prints one line
// per check and exits non-zero on any failure; the test fails with its output.
// TestFeatures, TestAuth, TestTLS, TestCookie and TestChannelBinding run further scripts
// the same way (features, auth, TLS, WAMP-Cookie, channel binding: see their files and
// README.md). cluster_test.go runs the scenarios against a 3-router, 2-proxy cluster
// in the test process (node.StartLocalCluster), the clients' sessions on different routers.
//
// Missing clients skip the tests, except when CI is set: there they fail, because CI
// installs them (.ci/run) and a skip would hide a broken install. Install locally with
//
//	cd interop/js && npm ci
//	sudo apt-get install python3-autobahn python3-msgpack python3-cbor2 python3-ubjson python3-twisted python3-nacl
package interop

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/node"
	"github.com/switchyard-wamp/switchyard/proxy"
)

const (
	autobahnJSVersion = "22.11.1"
	// scriptTimeout is the hard timeout each script enforces on itself; the Go side kills
	// a script a few seconds after it.
	scriptTimeout = 20 * time.Second
)

// ---------------------------------------------------------------------------- clients

// client is one WAMP client implementation we run as a subprocess.
type client struct {
	name    string // "js" or "py"
	command func(ctx context.Context, args ...string) *exec.Cmd
	// missing says why the client cannot run here and how to install it ("" = ok).
	missing string
}

var (
	clientsOnce sync.Once
	jsClient    client
	pyClient    client
)

func clients() (js, py client) {
	clientsOnce.Do(func() {
		jsClient = detectJS()
		pyClient = detectPython()
	})
	return jsClient, pyClient
}

func detectJS() client {
	c := client{name: "js"}
	dir, _ := filepath.Abs("js")
	nodeBin := os.Getenv("INTEROP_NODE")
	if nodeBin == "" {
		p, err := exec.LookPath("node")
		if err != nil {
			c.missing = "AutobahnJS: `node` (Node.js >= 20) is not on PATH; install Node.js, then `cd interop/js && npm ci`"
			return c
		}
		nodeBin = p
	}
	pkg, err := os.ReadFile(filepath.Join(dir, "node_modules", "autobahn", "package.json"))
	if err != nil {
		c.missing = "AutobahnJS: interop/js/node_modules/autobahn is missing; run `cd interop/js && npm ci`"
		return c
	}
	var meta struct{ Version string }
	if json.Unmarshal(pkg, &meta) != nil || meta.Version != autobahnJSVersion {
		c.missing = fmt.Sprintf("AutobahnJS: interop/js/node_modules/autobahn is version %q, want %s; run `cd interop/js && npm ci`", meta.Version, autobahnJSVersion)
		return c
	}
	c.command = scriptCommand(nodeBin, dir, "scenario.js")
	return c
}

func detectPython() client {
	c := client{name: "py"}
	dir, _ := filepath.Abs("python")
	py := os.Getenv("INTEROP_PYTHON")
	if py == "" {
		// The Debian packages live in the system interpreter, not in a pyenv on PATH.
		py = "/usr/bin/python3"
	}
	const install = "sudo apt-get install python3-autobahn python3-msgpack python3-cbor2 python3-ubjson python3-twisted python3-nacl"
	if _, err := os.Stat(py); err != nil {
		c.missing = fmt.Sprintf("AutobahnPython: %s not found; %s", py, install)
		return c
	}
	// nacl (PyNaCl) is what autobahn.wamp.cryptosign needs (auth.py).
	out, err := exec.Command(py, "-c", "import autobahn, msgpack, cbor2, ubjson, twisted.internet, nacl; print(autobahn.__version__)").CombinedOutput()
	if err != nil {
		c.missing = fmt.Sprintf("AutobahnPython: `%s -c 'import autobahn, msgpack, cbor2, ubjson, twisted.internet, nacl'` failed (%v: %s); %s",
			py, err, strings.TrimSpace(string(out)), install)
		return c
	}
	c.command = scriptCommand(py, dir, "scenario.py")
	return c
}

// scriptCommand runs interpreter with the script file (in dir, also the working
// directory) and the arguments.
func scriptCommand(interpreter, dir, file string) func(ctx context.Context, args ...string) *exec.Cmd {
	script := filepath.Join(dir, file)
	return func(ctx context.Context, args ...string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, interpreter, append([]string{script}, args...)...)
		cmd.Dir = dir
		return cmd
	}
}

// require skips (or, under CI, fails) the test when c cannot run here.
func require(t *testing.T, c client) {
	t.Helper()
	if c.missing == "" {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("CI is set but the interop client is not installed: %s", c.missing)
	}
	t.Skip(c.missing)
}

// ---------------------------------------------------------------------------- router

// routerNode is a node started in-process for one test, with its log captured.
type routerNode struct {
	*node.Node
	log *syncBuffer
	// urls by transport label: "ws" (first universal listener, WebSocket at /ws; wss://
	// with TLS), "rs" (the same listener, RawSocket sniffed by its 0x7F byte; rss:// with
	// TLS), "rsonly" (RawSocket-only listener, if there is one).
	urls map[string]string
}

func startNode(t *testing.T) *routerNode { return startNodeWith(t, nil) }

// startNodeWith starts a node on loopback port 0 with the given realm auth (nil: realm1
// anonymous) and stops it when t ends, logging the router's log.
func startNodeWith(t *testing.T, auth map[string]*proxy.RealmAuth) *routerNode {
	t.Helper()
	return startNodeConfig(t, func(c *node.Config) { c.Auth = auth })
}

// startNodeConfig is startNodeWith for any node config: configure sets the fields it
// needs (realms, auth, roles, authorizers, listeners) on a config that listens on
// loopback port 0 (a universal and a RawSocket-only listener) and logs into the
// routerNode.
func startNodeConfig(t *testing.T, configure func(*node.Config)) *routerNode {
	t.Helper()
	logs := &syncBuffer{}
	cfg := node.Config{
		Listeners: []node.Listener{{Address: "127.0.0.1:0"}, {Address: "127.0.0.1:0", Kind: node.KindRawSocket}},
		Logger:    slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
		Store:     interopStore,
	}
	if configure != nil {
		configure(&cfg)
	}
	n, err := node.Start(cfg)
	if err != nil {
		t.Fatalf("node.Start: %v", err)
	}
	rn := &routerNode{Node: n, log: logs, urls: map[string]string{
		"ws": n.WebSocketURL(),
		"rs": n.RawSocketURL(),
	}}
	if a := n.Server.RawSocketAddr(); a != nil { // configure may drop the RawSocket-only listener
		rn.urls["rsonly"] = "rs://" + a.String()
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := n.Stop(ctx); err != nil {
			t.Errorf("node.Stop: %v", err)
		}
		// Shown with -v or on failure.
		t.Logf("router log:\n%s", logs.String())
	})
	t.Logf("router: %v", rn.urls)
	return rn
}

// ---------------------------------------------------------------------------- scripts

// endpoint is one side of a scenario: a client, a transport label and a serializer.
type endpoint struct {
	c          client
	transport  string // "ws", "rs", "rsonly"
	serializer string // "json", "msgpack", "cbor", "ubjson"
	// framework is AutobahnPython's networking flavour: "asyncio", "twisted", or "" for
	// the script's default (asyncio on WebSocket, Twisted on RawSocket: the asyncio
	// RawSocket client of autobahn 22.7.1 is broken, crossbario/autobahn-python#1592).
	framework string
}

func (e endpoint) String() string {
	s := e.c.name + "-" + e.transport + "-" + e.serializer
	if e.framework != "" {
		s += "-" + e.framework
	}
	return s
}

var prefixSeq atomic.Int64

// uniquePrefix keeps the URIs of concurrent subtests apart (registrations are unique
// realm-wide).
func uniquePrefix(name string) string {
	r := strings.NewReplacer("/", "_", "-", "_", " ", "_")
	return fmt.Sprintf("interop.t%d.%s.", prefixSeq.Add(1), strings.ToLower(r.Replace(name)))
}

func (rn *routerNode) scriptCmd(ctx context.Context, e endpoint, role, prefix string) *exec.Cmd {
	args := []string{
		"--role", role,
		"--url", rn.urls[e.transport],
		"--realm", "realm1",
		"--serializer", e.serializer,
		"--prefix", prefix,
		"--timeout", fmt.Sprint(int(scriptTimeout / time.Second)),
	}
	if e.framework != "" {
		args = append(args, "--framework", e.framework)
	}
	cmd := e.c.command(ctx, args...)
	// ctx kills a script that overruns its own hard timeout; never wait on its pipes forever.
	cmd.WaitDelay = 2 * time.Second
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AUTOBAHN_USE_UJSON=") && !strings.HasPrefix(kv, "INTEROP_") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "PYTHONUNBUFFERED=1", "PYTHONDONTWRITEBYTECODE=1")
	return cmd
}

// runSolo runs one client's solo scenario and fails t with its output on error.
func runSolo(t *testing.T, rn *routerNode, e endpoint) {
	ctx, cancel := context.WithTimeout(context.Background(), scriptTimeout+5*time.Second)
	defer cancel()
	var out syncBuffer
	cmd := rn.scriptCmd(ctx, e, "solo", uniquePrefix(t.Name()))
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	report(t, err, time.Since(start), script{e.String() + " solo", &out})
}

// runPair starts server (callee/subscriber), waits for its READY line, then runs driver
// (caller/publisher) against it.
func runPair(t *testing.T, rn *routerNode, server, driver endpoint) {
	runPairOn(t, rn, rn, server, driver)
}

// runPairOn is runPair with the server connecting to srn and the driver to drn (in a
// cluster: two proxies).
func runPairOn(t *testing.T, srn, drn *routerNode, server, driver endpoint) {
	ctx, cancel := context.WithTimeout(context.Background(), scriptTimeout+5*time.Second)
	defer cancel()
	prefix := uniquePrefix(t.Name())
	start := time.Now()

	var sout syncBuffer
	scmd := srn.scriptCmd(ctx, server, "serve", prefix)
	pipe, err := scmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	scmd.Stderr = &sout
	if err := scmd.Start(); err != nil {
		t.Fatalf("start %s serve: %v", server, err)
	}
	ready := make(chan struct{})
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(pipe)
		once := sync.Once{}
		for sc.Scan() {
			line := sc.Text()
			sout.WriteString(line + "\n")
			if line == "READY" {
				once.Do(func() { close(ready) })
			}
		}
		_, _ = io.Copy(io.Discard, pipe)
	}()
	serverOut := script{server.String() + " serve", &sout}

	select {
	case <-ready:
	case <-scanned:
		err := scmd.Wait()
		report(t, fmt.Errorf("server exited before READY: %v", err), time.Since(start), serverOut)
		return
	case <-time.After(10 * time.Second):
		cancel()
		<-scanned
		_ = scmd.Wait()
		report(t, errors.New("server not READY within 10s"), time.Since(start), serverOut)
		return
	}

	var dout syncBuffer
	dcmd := drn.scriptCmd(ctx, driver, "drive", prefix)
	dcmd.Stdout, dcmd.Stderr = &dout, &dout
	derr := dcmd.Run()
	driverOut := script{driver.String() + " drive", &dout}
	if derr != nil {
		// The server waits for the driver's report call; do not wait out its timeout.
		cancel()
	}
	<-scanned
	serr := scmd.Wait()
	switch {
	case derr != nil:
		report(t, fmt.Errorf("driver: %w", derr), time.Since(start), driverOut, serverOut)
	case serr != nil:
		report(t, fmt.Errorf("server: %w", serr), time.Since(start), serverOut, driverOut)
	default:
		report(t, nil, time.Since(start), driverOut, serverOut)
	}
}

type script struct {
	name string
	out  *syncBuffer
}

func report(t *testing.T, err error, took time.Duration, scripts ...script) {
	t.Helper()
	var b strings.Builder
	for _, s := range scripts {
		fmt.Fprintf(&b, "--- %s:\n%s", s.name, s.out.String())
	}
	if err != nil {
		t.Errorf("%v (after %v)\n%s", err, took.Round(time.Millisecond), b.String())
		return
	}
	t.Logf("passed in %v\n%s", took.Round(time.Millisecond), b.String())
}

// ---------------------------------------------------------------------------- tests

// TestAutobahnJS: AutobahnJS alone, every transport and serializer it supports.
// AutobahnJS 22.11.1 speaks RawSocket (Node only) with JSON only: its rawsocket.js
// supports no other serializer.
func TestAutobahnJS(t *testing.T) {
	js, _ := clients()
	require(t, js)
	rn := startNode(t)
	for _, e := range []endpoint{
		{c: js, transport: "ws", serializer: "json"},
		{c: js, transport: "ws", serializer: "msgpack"},
		{c: js, transport: "ws", serializer: "cbor"},
		{c: js, transport: "rs", serializer: "json"},
		{c: js, transport: "rsonly", serializer: "json"},
	} {
		t.Run(e.transport+"/"+e.serializer, func(t *testing.T) { runSolo(t, rn, e) })
	}
}

// TestAutobahnPython: AutobahnPython alone, every transport and serializer; WebSocket on
// asyncio (and once on Twisted), RawSocket on Twisted.
func TestAutobahnPython(t *testing.T) {
	_, py := clients()
	require(t, py)
	rn := startNode(t)
	var eps []endpoint
	for _, tr := range []string{"ws", "rs", "rsonly"} {
		for _, ser := range []string{"json", "msgpack", "cbor", "ubjson"} {
			eps = append(eps, endpoint{c: py, transport: tr, serializer: ser})
		}
	}
	eps = append(eps, endpoint{c: py, transport: "ws", serializer: "msgpack", framework: "twisted"})
	for _, e := range eps {
		name := e.transport + "/" + e.serializer
		if e.framework != "" {
			name += "/" + e.framework
		}
		t.Run(name, func(t *testing.T) { runSolo(t, rn, e) })
	}
}

// TestCrossClient pairs a callee/subscriber of one client with a caller/publisher of the
// other (and of the same client) on different serializers and transports, so every
// value crosses a transcoding: JSON <-> msgpack <-> CBOR, both ways.
func TestCrossClient(t *testing.T) {
	js, py := clients()
	require(t, js)
	require(t, py)
	rn := startNode(t)
	ep := func(c client, transport, serializer string) endpoint {
		return endpoint{c: c, transport: transport, serializer: serializer}
	}
	// server (callee, subscriber) first, driver (caller, publisher) second.
	pairs := []struct{ server, driver endpoint }{
		{ep(js, "ws", "msgpack"), ep(py, "rs", "cbor")},
		{ep(js, "ws", "cbor"), ep(py, "ws", "json")},
		{ep(js, "ws", "json"), ep(py, "ws", "msgpack")},
		{ep(js, "rs", "json"), ep(py, "rsonly", "cbor")},
		{ep(py, "ws", "cbor"), ep(js, "ws", "msgpack")},
		{ep(py, "rs", "msgpack"), ep(js, "ws", "json")},
		{ep(py, "ws", "json"), ep(js, "ws", "cbor")},
		{ep(py, "rsonly", "json"), ep(js, "rs", "json")},
		{ep(js, "ws", "json"), ep(js, "ws", "cbor")},
		{ep(py, "ws", "msgpack"), ep(py, "rs", "json")},
		// UBJSON (AutobahnPython only: AutobahnJS has no UBJSON serializer).
		{ep(py, "ws", "ubjson"), ep(js, "ws", "cbor")},
		{ep(js, "ws", "json"), ep(py, "rs", "ubjson")},
		{ep(py, "rs", "ubjson"), ep(py, "ws", "msgpack")},
	}
	for _, p := range pairs {
		t.Run(p.server.String()+"_serves_"+p.driver.String(), func(t *testing.T) {
			runPair(t, rn, p.server, p.driver)
		})
	}
}

// ---------------------------------------------------------------------------- util

// syncBuffer is a bytes.Buffer safe for concurrent writers (a script's stdout and
// stderr, the router's loops).
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) WriteString(str string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.WriteString(str)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
