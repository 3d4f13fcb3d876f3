package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/client"
	"github.com/switchyard-wamp/switchyard/master"
)

const masterTestSecret = "0123456789abcdef0123456789abcdef"

// masterProc is a `switchyard master` process.
type masterProc struct {
	name, url, file, log string
	admin                string
	cmd                  *exec.Cmd
	done                 chan error
}

func (p *masterProc) start(t *testing.T, bin string) {
	t.Helper()
	logf, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(bin, "master", "--config", p.file)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logf.Close()
	p.done = make(chan error, 1)
	go func() { p.done <- p.cmd.Wait() }()
}

func (p *masterProc) kill() {
	if p.cmd != nil && p.cmd.ProcessState == nil {
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// writeMasters writes the files of n master replicas (n == 1: no peers) in dir, on
// free loopback ports.
func writeMasters(t *testing.T, dir string, n int) []*masterProc {
	t.Helper()
	var ps []*masterProc
	var listens, rafts []string
	var peers strings.Builder
	for i := range n {
		p := &masterProc{name: fmt.Sprintf("m%d", i+1)}
		listens = append(listens, fmt.Sprintf("127.0.0.1:%d", freePort(t)))
		rafts = append(rafts, fmt.Sprintf("127.0.0.1:%d", freePort(t)))
		p.admin = fmt.Sprintf("127.0.0.1:%d", freePort(t))
		p.url = "ws://" + listens[i] + "/ws"
		p.file = filepath.Join(dir, p.name+".yaml")
		p.log = filepath.Join(dir, p.name+".log")
		fmt.Fprintf(&peers, "    - {name: %s, raft: \"%s\", url: \"%s\"}\n", p.name, rafts[i], p.url)
		ps = append(ps, p)
	}
	for i, p := range ps {
		src := fmt.Sprintf("node:\n  admin: \"%s\"\nmaster:\n  node: %s\n  listen: \"%s\"\n  raft: \"%s\"\n  data_dir: data-%s\n  secret: %s\n",
			p.admin, p.name, listens[i], rafts[i], p.name, masterTestSecret)
		if rt := os.Getenv("SWITCHYARD_MASTER_RAFT_TIMEOUT"); rt != "" {
			src += "  raft_timeout: " + rt + "\n"
		}
		if n > 1 {
			src += "  peers:\n" + peers.String()
		}
		if err := os.WriteFile(p.file, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return ps
}

func dialMaster(url, authid string) (*client.Session, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return master.Dial(ctx, url, authid, masterTestSecret, nil)
}

func callMaster(s *client.Session, proc string, req, res any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return master.Call(ctx, s, proc, req, res)
}

// statusOf asks p for its status as the operator.
func statusOf(p *masterProc) (master.Status, error) {
	var st master.Status
	s, err := dialMaster(p.url, master.OperatorAuthID)
	if err != nil {
		return st, err
	}
	defer s.Close()
	err = callMaster(s, master.ProcStatus, nil, &st)
	return st, err
}

// procStat returns the CPU time (user+system) and resident set size of process pid.
func procStat(t *testing.T, pid int) (cpu time.Duration, rssKB int) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	ut, _ := strconv.Atoi(f[11]) // utime: field 14 of stat, 12th after the command
	st, _ := strconv.Atoi(f[12])
	cpu = time.Duration(ut+st) * time.Second / 100 // USER_HZ is 100 on Linux
	b, err = os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			rssKB, _ = strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
	return cpu, rssKB
}

// envDuration reads a duration from the environment, def when unset.
func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return d
}

// TestMasterProcessFiftyNodes runs `switchyard master` as a process with 50 simulated
// nodes (10 routers, 40 proxies; clients of our client package) that register and
// heartbeat every third of the 4 s lease, and reports the master's CPU and memory over
// a window (SWITCHYARD_MASTER_MEASURE, default 3s: set e.g. 60s for the closing note).
// `switchyard cluster status --json` and `cluster apply` run against it; SIGHUP leaves it
// running, SIGTERM stops it with status 0.
func TestMasterProcessFiftyNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	window := envDuration(t, "SWITCHYARD_MASTER_MEASURE", 3*time.Second)
	bin := buildBinary(t)
	dir := t.TempDir()
	m := writeMasters(t, dir, 1)[0]
	m.start(t, bin)
	defer m.kill()
	waitMaster(t, m, 20*time.Second)
	pid := m.cmd.Process.Pid
	cpu0, rss0 := procStat(t, pid)

	const nodes = 50
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, nodes)
	var hbs atomic.Int64
	for i := range nodes {
		name, role, link := fmt.Sprintf("p%02d", i), master.NodeProxy, ""
		if i < 10 {
			name, role, link = fmt.Sprintf("r%02d", i), master.NodeRouter, fmt.Sprintf("127.0.0.1:%d", 20000+i)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := dialMaster(m.url, name)
			if err != nil {
				errs <- err
				return
			}
			defer s.Close()
			var reg master.RegisterRes
			if err := callMaster(s, master.ProcRegister, master.RegisterReq{Node: name, Role: role, Link: link}, &reg); err != nil {
				errs <- err
				return
			}
			for {
				select {
				case <-stop:
					return
				case <-time.After(time.Duration(reg.LeaseMS) * time.Millisecond / 3):
				}
				if err := callMaster(s, master.ProcHeartbeat, master.HeartbeatReq{Node: name, Sessions: i,
					MapVersion: reg.Map.Version}, nil); err != nil {
					errs <- fmt.Errorf("%s heartbeat: %w", name, err)
					return
				}
				hbs.Add(1)
			}
		}()
	}
	// Every node registered: the map holds the 10 routers.
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := statusOf(m)
		if err == nil && len(st.Nodes) == nodes && st.MapVersion > 0 {
			live := 0
			for _, n := range st.Nodes {
				if n.State == master.StateLive {
					live++
				}
			}
			if live == nodes {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not all %d nodes registered: %v %+v", nodes, err, st.Nodes)
		}
		select {
		case err := <-errs:
			t.Fatal(err)
		default:
		}
		time.Sleep(100 * time.Millisecond)
	}
	cpu1, rss1 := procStat(t, pid)
	hb1 := hbs.Load()
	time.Sleep(window)
	cpu2, rss2 := procStat(t, pid)
	total := hbs.Load() - hb1
	close(stop)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	heap := adminHeap(t, m)
	t.Logf("master with %d nodes: registration took %v CPU; steady state over %v: %d heartbeats, CPU %v (%.2f%% of one core), RSS %d kB idle -> %d kB with nodes -> %d kB, heap in use %d kB",
		nodes, cpu1-cpu0, window, total, cpu2-cpu1, 100*float64(cpu2-cpu1)/float64(window), rss0, rss1, rss2, heap/1024)

	// The CLI against it.
	var out bytes.Buffer
	if err := runClusterStatus(&out, []string{"--master", m.url, "--key", masterTestSecret, "--json"}); err != nil {
		t.Fatal(err)
	}
	var st master.Status
	if err := json.Unmarshal(out.Bytes(), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out.String())
	}
	slots := 0
	for _, n := range st.Nodes {
		slots += n.Slots
	}
	if len(st.Nodes) != nodes || slots != st.Slots || st.Leader != "m1" {
		t.Fatalf("status: %d nodes, %d slots of %d, leader %q", len(st.Nodes), slots, st.Slots, st.Leader)
	}
	out.Reset()
	if err := runClusterStatus(&out, []string{"--config", m.file}); err != nil || !strings.Contains(out.String(), "r00") {
		t.Fatalf("status: %v\n%s", err, out.String())
	}
	realms := filepath.Join(dir, "realms.yaml")
	os.WriteFile(realms, []byte("realms:\n  - name: app\n    roles: [{name: anonymous, permissions: [{uri: \"\", match: prefix, allow: {call: true}}]}]\n    auth: {anonymous: {}}\n"), 0o600)
	out.Reset()
	if err := runClusterApply(&out, []string{realms, "--config", m.file}); err != nil || !strings.Contains(out.String(), "config version 1") {
		t.Fatalf("apply: %v\n%s", err, out.String())
	}
	os.WriteFile(realms, []byte("realms:\n  - name: app\n    auth: {ticket: [{authid: joe, role: user}]}\n"), 0o600)
	out.Reset()
	if err := runClusterApply(&out, []string{realms, "--config", m.file}); err == nil ||
		!strings.Contains(out.String(), "realms[0].auth.ticket[0].ticket: required") {
		t.Fatalf("apply of a bad file: %v\n%s", err, out.String())
	}
	// SIGHUP does not stop it; SIGTERM stops it with status 0.
	m.cmd.Process.Signal(syscall.SIGHUP)
	time.Sleep(200 * time.Millisecond)
	if _, err := statusOf(m); err != nil {
		t.Fatalf("after SIGHUP: %v", err)
	}
	m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-m.done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("master did not stop on SIGTERM")
	}
}

// waitMaster waits until p answers status with itself as leader.
func waitMaster(t *testing.T, p *masterProc, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		st, err := statusOf(p)
		if err == nil && st.Leader != "" {
			return
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(p.log)
			t.Fatalf("master %s does not answer: %v\n%s", p.name, err, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// adminHeap reads the heap in use from the master's admin /debug/stats.
func adminHeap(t *testing.T, p *masterProc) uint64 {
	t.Helper()
	resp, err := http.Get("http://" + p.admin + "/debug/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct {
		Runtime struct {
			HeapInuse uint64 `json:"heap_inuse"`
		} `json:"runtime"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v.Runtime.HeapInuse
}

// TestMasterProcessFailover runs three `switchyard master` processes, kills the leader with SIGKILL while a router heartbeats, and reports
// the time until a write (a registration) succeeds at a surviving replica, following
// not_leader redirects; the heartbeating router stays in the map. Rounds:
// SWITCHYARD_MASTER_FAILOVERS (default 1); each killed replica restarts from its data
// directory before the next round. SWITCHYARD_MASTER_RAFT_TIMEOUT sets master.raft_timeout.
func TestMasterProcessFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	rounds := 1
	if v := os.Getenv("SWITCHYARD_MASTER_FAILOVERS"); v != "" {
		rounds, _ = strconv.Atoi(v)
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	ms := writeMasters(t, dir, 3)
	for _, m := range ms {
		m.start(t, bin)
		defer m.kill()
	}
	for _, m := range ms {
		waitMaster(t, m, 30*time.Second)
	}
	leaderOf := func() *masterProc {
		for _, m := range ms {
			if st, err := statusOf(m); err == nil && st.Leader == m.name {
				return m
			}
		}
		return nil
	}
	var times []time.Duration
	for round := range rounds {
		var leader *masterProc
		deadline := time.Now().Add(20 * time.Second)
		for leader = leaderOf(); leader == nil; leader = leaderOf() {
			if time.Now().After(deadline) {
				t.Fatal("no leader")
			}
			time.Sleep(100 * time.Millisecond)
		}
		// A router registered at the leader heartbeats through the failover.
		r, err := dialMaster(leader.url, "r1")
		if err != nil {
			t.Fatal(err)
		}
		if err := callMaster(r, master.ProcRegister, master.RegisterReq{Node: "r1", Role: master.NodeRouter, Link: "127.0.0.1:9"}, nil); err != nil {
			t.Fatal(err)
		}
		r.Close()
		hbStop, hbDone := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(hbDone)
			url := leader.url
			for {
				select {
				case <-hbStop:
					return
				case <-time.After(500 * time.Millisecond):
				}
				if s, err := dialMaster(url, "r1"); err == nil {
					err = callMaster(s, master.ProcHeartbeat, master.HeartbeatReq{Node: "r1"}, nil)
					s.Close()
					if l, ok := master.LeaderOf(err); ok && l != "" {
						url = l
					}
				} else {
					for _, m := range ms { // the leader is gone: try the others
						if m != leader {
							url = m.url
						}
					}
				}
			}
		}()
		time.Sleep(time.Second)
		killed := time.Now()
		leader.kill()
		var took time.Duration
		var last error
		for try := 0; ; try++ {
			if time.Since(killed) > 30*time.Second {
				t.Fatalf("no write accepted 30 s after the leader's death: %v", last)
			}
			for _, m := range ms {
				if m == leader {
					continue
				}
				s, err := dialMaster(m.url, fmt.Sprintf("p%d", round))
				if err != nil {
					last = err
					continue
				}
				last = callMaster(s, master.ProcRegister, master.RegisterReq{Node: fmt.Sprintf("p%d", round), Role: master.NodeProxy}, nil)
				s.Close()
				if last == nil {
					took = time.Since(killed)
					break
				}
			}
			if took > 0 {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		times = append(times, took)
		time.Sleep(500 * time.Millisecond)
		close(hbStop)
		<-hbDone
		// r1 was not expired by the failover.
		nl := leaderOf()
		for end := time.Now().Add(10 * time.Second); nl == nil; nl = leaderOf() {
			if time.Now().After(end) {
				t.Fatal("no leader after the failover")
			}
			time.Sleep(100 * time.Millisecond)
		}
		st, err := statusOf(nl)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range st.Nodes {
			if n.Node == "r1" && n.State != master.StateLive {
				t.Fatalf("r1 is %s after the failover", n.State)
			}
		}
		// cluster status with the dead replica's file answers through the others (asked
		// again while an election is under way: a low raft_timeout on a loaded machine
		// may move the leadership once more).
		var out bytes.Buffer
		var cst master.Status
		for end := time.Now().Add(10 * time.Second); ; {
			out.Reset()
			if err := runClusterStatus(&out, []string{"--config", leader.file, "--json"}); err != nil {
				t.Fatalf("status with the dead leader's file: %v", err)
			}
			if err := json.Unmarshal(out.Bytes(), &cst); err != nil {
				t.Fatalf("status with the dead leader's file: %v %s", err, out.String())
			}
			if cst.Leader != "" && cst.Leader != leader.name {
				break
			}
			if time.Now().After(end) {
				t.Fatalf("status with the dead leader's file names no live leader: %s", out.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
		for _, mi := range cst.Masters {
			if mi.Name == leader.name && mi.State != "unreachable" {
				t.Fatalf("dead replica shown as %s", mi.State)
			}
		}
		t.Logf("round %d: leader %s killed (SIGKILL); a write was accepted by %s after %v", round+1, leader.name, nl.name, took)
		// The killed replica comes back from its data directory.
		leader.start(t, bin)
		waitMaster(t, leader, 30*time.Second)
	}
	slices.Sort(times)
	t.Logf("failover with 3 replicas (raft_timeout %s), %d rounds: median %v, max %v", cmp.Or(os.Getenv("SWITCHYARD_MASTER_RAFT_TIMEOUT"), "1s"), len(times), times[len(times)/2], times[len(times)-1])
}
