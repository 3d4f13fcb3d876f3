package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/client"
	"github.com/switchyard-wamp/switchyard/config"
)

// buildBinary builds the switchyard command once per test binary run.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "switchyard")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// proc is a cluster node running as a process.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *bytes.Buffer
	done chan error
}

// TestClusterProcesses runs the example cluster of `switchyard init --cluster` as real
// processes (ports moved to free ones): clients on both proxies reach each other across
// routers; a router killed with SIGKILL has its clients closed and new sessions are
// served by the others (the time it takes is logged); SIGTERM stops every node with exit
// status 0.
func TestClusterProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	if out, err := exec.Command(bin, "init", "--cluster", "--masters", "0", dir).CombinedOutput(); err != nil {
		t.Fatalf("init --cluster: %v\n%s", err, out)
	}
	// The example's fixed ports, moved to free ones in every file.
	ports := map[string]string{}
	for _, p := range []string{"8080", "8090", "9201", "9202", "9203"} {
		ports[p] = strconv.Itoa(freePort(t))
	}
	names := []string{"router1", "router2", "router3", "proxy1", "proxy2"}
	for _, n := range names {
		f := filepath.Join(dir, n+".yaml")
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		for from, to := range ports {
			s = strings.ReplaceAll(s, "127.0.0.1:"+from, "127.0.0.1:"+to)
		}
		if err := os.WriteFile(f, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := config.Load(f); err != nil {
			t.Fatalf("%s: %v", n, err)
		}
	}
	procs := map[string]*proc{}
	start := func(n string) {
		role := "proxy"
		if strings.HasPrefix(n, "router") {
			role = "router"
		}
		p := &proc{name: n, out: &bytes.Buffer{}, done: make(chan error, 1)}
		p.cmd = exec.Command(bin, role, "--config", filepath.Join(dir, n+".yaml"))
		p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { p.done <- p.cmd.Wait() }()
		procs[n] = p
	}
	t.Cleanup(func() {
		for _, p := range procs {
			_ = p.cmd.Process.Kill()
		}
	})
	for _, n := range names {
		start(n)
	}
	url := func(p string) string { return "ws://127.0.0.1:" + ports[p] + "/ws" }
	connect := func(u string) (*client.Session, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		return client.Connect(ctx, client.Config{URL: u, Realm: "realm1"})
	}
	// Wait until both proxies serve sessions.
	deadline := time.Now().Add(20 * time.Second)
	for _, p := range []string{"8080", "8090"} {
		for {
			s, err := connect(url(p))
			if err == nil {
				s.Close()
				break
			}
			if time.Now().After(deadline) {
				for _, pr := range procs {
					t.Logf("%s:\n%s", pr.name, pr.out.String())
				}
				t.Fatalf("proxy on %s does not serve: %v", p, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// Let the routers see each other (their links come up in the background).
	time.Sleep(500 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var sessions []*client.Session
	for i := range 12 {
		s, err := connect(url([]string{"8080", "8090"}[i%2]))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		sessions = append(sessions, s)
	}
	got := make(chan int, 64)
	for i, s := range sessions[1:] {
		if _, err := s.Subscribe(ctx, "proc.topic", func(*client.Event) { got <- i }, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := sessions[0].Publish(ctx, "proc.topic", []any{1}, nil, client.Acknowledge()); err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for len(seen) < len(sessions)-1 {
		select {
		case i := <-got:
			if seen[i] {
				t.Fatalf("subscriber %d got the event twice", i)
			}
			seen[i] = true
		case <-time.After(5 * time.Second):
			t.Fatalf("%d of %d subscribers got the event", len(seen), len(sessions)-1)
		}
	}
	// SIGKILL router2: its clients are closed; new sessions are served at once by the others.
	killed := time.Now()
	if err := procs["router2"].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-procs["router2"].done
	delete(procs, "router2")
	var served time.Duration
	for i := 0; ; i++ {
		s, err := connect(url([]string{"8080", "8090"}[i%2]))
		if err == nil {
			s.Close()
			if i >= 6 { // several in a row, on both proxies, after the first success
				break
			}
			if served == 0 {
				served = time.Since(killed)
			}
			continue
		}
		i = 0
		served = 0
		if time.Since(killed) > 10*time.Second {
			t.Fatalf("no session served 10 s after a router died: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("router SIGKILL -> new sessions served: %v", served)
	lost := 0
	for _, s := range sessions {
		select {
		case <-s.Done():
			lost++
		case <-time.After(100 * time.Millisecond):
		}
	}
	if lost == 0 || lost == len(sessions) {
		t.Fatalf("%d of %d sessions closed after one of three routers died", lost, len(sessions))
	}
	// SIGTERM: every node exits 0.
	for _, p := range procs {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, p := range procs {
		select {
		case err := <-p.done:
			if err != nil {
				t.Errorf("%s exited with %v\n%s", p.name, err, p.out.String())
			}
		case <-time.After(10 * time.Second):
			t.Errorf("%s did not stop on SIGTERM", p.name)
		}
	}
}
