package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/client"
	"github.com/switchyard-wamp/switchyard/config"
	"github.com/switchyard-wamp/switchyard/master"
	"github.com/switchyard-wamp/switchyard/statuspage"
)

// nodeProc is a cluster process (master, router or proxy) logging to a file.
type nodeProc struct {
	name, role, file, log, admin string
	cmd                          *exec.Cmd
	done                         chan error
}

func (p *nodeProc) start(t *testing.T, bin string) {
	t.Helper()
	logf, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(bin, p.role, "--config", p.file)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logf.Close()
	p.done = make(chan error, 1)
	go func() { p.done <- p.cmd.Wait() }()
}

// member reads the node's /debug/member (its view of the masters).
func (p *nodeProc) member() (map[string]any, error) {
	c := http.Client{Timeout: time.Second}
	r, err := c.Get("http://" + p.admin + "/debug/member")
	if err != nil {
		return nil, err
	}
	defer r.Body.Close()
	var m map[string]any
	err = json.NewDecoder(r.Body).Decode(&m)
	return m, err
}

// TestClusterMasterProcesses runs the example cluster of `switchyard init --cluster`
// (one master, three routers, two proxies) as real processes: the nodes register and
// serve; `switchyard cluster apply` adds a realm that every node applies without
// dropping sessions (apply -> last node on the new version is logged), and keeps after a
// SIGHUP (the file is re-read with the cluster config over it); a router killed
// with SIGKILL has its slot served by the others at once and leaves every node's map
// when its lease runs out (both times logged; SWITCHYARD_TEST_LEASE sets the lease,
// default 2s, the shipped default is 4s); SIGTERM stops every process with status 0.
func TestClusterMasterProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	lease := envDuration(t, "SWITCHYARD_TEST_LEASE", 2*time.Second)
	bin := buildBinary(t)
	dir := t.TempDir()
	if out, err := exec.Command(bin, "init", "--cluster", dir).CombinedOutput(); err != nil {
		t.Fatalf("init --cluster: %v\n%s", err, out)
	}
	ports := map[string]string{}
	for _, p := range []string{"8080", "8090", "9201", "9202", "9203", "9300", "9301"} {
		ports[p] = strconv.Itoa(freePort(t))
	}
	names := []string{"master1", "router1", "router2", "router3", "proxy1", "proxy2"}
	procs := map[string]*nodeProc{}
	for _, n := range names {
		p := &nodeProc{name: n, role: strings.TrimRight(n, "0123456789"), file: filepath.Join(dir, n+".yaml"),
			log: filepath.Join(dir, n+".log"), admin: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
		b, err := os.ReadFile(p.file)
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		for from, to := range ports {
			s = strings.ReplaceAll(s, "127.0.0.1:"+from, "127.0.0.1:"+to)
		}
		s = strings.Replace(s, `admin: ""`, fmt.Sprintf("admin: %q", p.admin), 1)
		s = strings.Replace(s, "lease: 4s", "lease: "+lease.String(), 1)
		if err := os.WriteFile(p.file, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		procs[n] = p
	}
	t.Cleanup(func() {
		for _, p := range procs {
			if p.cmd != nil && p.cmd.ProcessState == nil {
				_ = p.cmd.Process.Kill()
			}
		}
		if t.Failed() {
			for _, n := range names {
				b, _ := os.ReadFile(procs[n].log)
				t.Logf("%s:\n%s", n, b)
			}
		}
	})
	// The nodes wait for the master: start them first, the master last.
	for _, n := range names[1:] {
		procs[n].start(t, bin)
	}
	time.Sleep(300 * time.Millisecond)
	procs["master1"].start(t, bin)
	nodes := slices.Clone(names[1:])

	// memberOf waits until every node's member answers, and returns their views.
	views := func() map[string]map[string]any {
		out := map[string]map[string]any{}
		for _, n := range nodes {
			if m, err := procs[n].member(); err == nil {
				out[n] = m
			}
		}
		return out
	}
	waitUntil := func(d time.Duration, what string, cond func() bool) {
		t.Helper()
		end := time.Now().Add(d)
		for !cond() {
			if time.Now().After(end) {
				t.Fatalf("timed out after %v waiting for %s (views %v)", d, what, views())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	cfg, err := config.Load(procs["master1"].file)
	if err != nil {
		t.Fatal(err)
	}
	murl := "ws://127.0.0.1:" + ports["9300"] + "/ws"
	mapOf := func() (master.Map, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		s, err := master.Dial(ctx, murl, master.OperatorAuthID, cfg.Master.Secret, nil)
		if err != nil {
			return master.Map{}, err
		}
		defer s.Close()
		var mp master.Map
		err = master.Call(ctx, s, master.ProcGetMap, nil, &mp)
		return mp, err
	}
	var mp master.Map
	waitUntil(20*time.Second, "three routers in the map and every node on it", func() bool {
		if mp, err = mapOf(); err != nil || len(mp.Routers) != 3 {
			return false
		}
		v := views()
		for _, n := range nodes {
			if v[n] == nil || v[n]["registered"] != true || v[n]["map_version"] != float64(mp.Version) {
				return false
			}
		}
		return true
	})
	// Registered and holding a map: every node answers /readyz 200 (issue #13).
	waitUntil(10*time.Second, "every node ready (/readyz 200)", func() bool {
		for _, n := range nodes {
			r, err := (&http.Client{Timeout: time.Second}).Get("http://" + procs[n].admin + "/readyz")
			if err != nil {
				return false
			}
			r.Body.Close()
			if r.StatusCode != http.StatusOK {
				return false
			}
		}
		return true
	})
	// The master's admin listener: the cluster page at /, its data at /cluster.json
	// (every node, with the leader), and /readyz.
	{
		hc := &http.Client{Timeout: 2 * time.Second}
		madm := "http://" + procs["master1"].admin
		var cv statuspage.Cluster
		waitUntil(10*time.Second, "the master's cluster.json listing every node", func() bool {
			r, err := hc.Get(madm + "/cluster.json")
			if err != nil {
				return false
			}
			defer r.Body.Close()
			cv = statuspage.Cluster{}
			if json.NewDecoder(r.Body).Decode(&cv) != nil || cv.Leader == "" || len(cv.Nodes) != len(nodes) {
				return false
			}
			for _, n := range cv.Nodes {
				if !n.Up || (n.Role == master.NodeRouter && n.Slots == 0) {
					return false
				}
			}
			return true
		})
		for _, path := range []string{"/", "/readyz", "/healthz"} {
			r, err := hc.Get(madm + path)
			if err != nil {
				t.Fatalf("master admin %s: %v", path, err)
			}
			b, _ := io.ReadAll(r.Body)
			r.Body.Close()
			if r.StatusCode != http.StatusOK || (path == "/" && !strings.Contains(string(b), "cluster.json")) {
				t.Fatalf("master admin %s: %d %.200s", path, r.StatusCode, b)
			}
		}
	}
	proxyURL := func(i int) string { return "ws://127.0.0.1:" + ports[[]string{"8080", "8090"}[i%2]] + "/ws" }
	connect := func(i int, realm string) (*client.Session, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		return client.Connect(ctx, client.Config{URL: proxyURL(i), Realm: realm})
	}
	waitUntil(10*time.Second, "both proxies serving", func() bool {
		for i := range 2 {
			s, err := connect(i, "realm1")
			if err != nil {
				return false
			}
			s.Close()
		}
		return true
	})
	var sessions []*client.Session
	for i := range 12 {
		s, err := connect(i, "realm1")
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		sessions = append(sessions, s)
	}
	if _, err := connect(0, "realm2"); err == nil {
		t.Fatal("realm2 served before the apply")
	}

	// cluster apply: realm2 joins realm1; every node applies it, sessions stay.
	realms := filepath.Join(dir, "realms.yaml")
	src := "version: 1\nrealms:\n"
	for _, r := range []string{"realm1", "realm2"} {
		src += "  - name: " + r + "\n    roles:\n      - name: anonymous\n        spread: 3\n        permissions:\n" +
			"          - {uri: \"\", match: prefix, allow: {call: true, register: true, publish: true, subscribe: true}}\n" +
			"    auth: {anonymous: {role: anonymous}}\n"
	}
	if err := os.WriteFile(realms, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	applied := time.Now()
	out, err := exec.Command(bin, "cluster", "apply", "--config", procs["master1"].file, realms).CombinedOutput()
	if err != nil {
		t.Fatalf("cluster apply: %v\n%s", err, out)
	}
	var version float64
	if _, err := fmt.Sscanf(string(out[strings.LastIndex(string(out), "config version ")+len("config version "):]), "%g", &version); err != nil || version < 1 {
		t.Fatalf("cluster apply said %q", out)
	}
	waitUntil(10*time.Second, "every node on the new config version", func() bool {
		v := views()
		for _, n := range nodes {
			if v[n] == nil || v[n]["config_version"] != version {
				return false
			}
		}
		return true
	})
	applyTook := time.Since(applied)
	for i := range 2 {
		s, err := connect(i, "realm2")
		if err != nil {
			t.Fatalf("realm2 through proxy%d after the apply: %v", i+1, err)
		}
		s.Close()
	}
	for _, s := range sessions {
		select {
		case <-s.Done():
			t.Fatalf("a realm1 session ended with the apply: %v", s.Err())
		default:
		}
	}
	// SIGHUP re-reads the file with the cluster config over it: realm2 stays served.
	if err := procs["proxy1"].cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitUntil(5*time.Second, "proxy1's SIGHUP reload", func() bool {
		b, _ := os.ReadFile(procs["proxy1"].log)
		return strings.Contains(string(b), "SIGHUP: config reloaded")
	})
	if s, err := connect(0, "realm2"); err != nil {
		t.Fatalf("realm2 through proxy1 after SIGHUP: %v", err)
	} else {
		s.Close()
	}

	// SIGKILL router2: its slot is served by the others at once; it leaves the map at
	// lease expiry, and every node follows.
	killed := time.Now()
	if err := procs["router2"].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-procs["router2"].done
	nodes = slices.DeleteFunc(nodes, func(n string) bool { return n == "router2" })
	var served time.Duration
	for i, ok := 0, 0; ok < 6; i++ { // six in a row, on both proxies
		s, err := connect(i, "realm1")
		if err != nil {
			ok, served = 0, 0
			if time.Since(killed) > 10*time.Second {
				t.Fatalf("no session served 10 s after a router died: %v", err)
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		s.Close()
		if served == 0 {
			served = time.Since(killed)
		}
		ok++
	}
	waitUntil(3*lease+10*time.Second, "router2 out of the map on every node", func() bool {
		m, err := mapOf()
		if err != nil || len(m.Routers) != 2 || slices.ContainsFunc(m.Routers, func(r master.MapRouter) bool { return r.Name == "router2" }) {
			return false
		}
		mp = m
		v := views()
		for _, n := range nodes {
			if v[n] == nil || v[n]["map_version"] != float64(m.Version) {
				return false
			}
		}
		return true
	})
	outOfMap := time.Since(killed)
	t.Logf("cluster apply -> last of %d nodes on config version %g: %v", len(nodes)+1, version, applyTook.Round(time.Millisecond))
	t.Logf("router SIGKILL -> its slot served elsewhere: %v; -> out of every node's map (version %d): %v (lease %v)",
		served.Round(time.Millisecond), mp.Version, outOfMap.Round(time.Millisecond), lease)

	// SIGTERM: every process exits 0 (the nodes leave the map first).
	for _, n := range names {
		if n != "router2" {
			_ = procs[n].cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	for _, n := range names {
		if n == "router2" {
			continue
		}
		select {
		case err := <-procs[n].done:
			if err != nil {
				t.Errorf("%s exited with %v", n, err)
			}
		case <-time.After(15 * time.Second):
			t.Errorf("%s did not stop on SIGTERM", n)
		}
	}
}
