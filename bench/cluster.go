package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/switchyard-wamp/switchyard/client"
	"github.com/switchyard-wamp/switchyard/node"
)

// The addresses `switchyard init --cluster` writes (config.ClusterInitFiles): the
// cluster launcher moves each to a free port, in every file.
var (
	initProxyAddrs  = []string{"127.0.0.1:8080", "127.0.0.1:8090"}
	initRouterAddrs = []string{"127.0.0.1:9201", "127.0.0.1:9202", "127.0.0.1:9203"}
)

// ClusterSubprocess starts the local example cluster of `Bin init --cluster` (2 proxies,
// 3 routers) as separate processes, `Bin router --config F` and `Bin proxy --config F`,
// each on free loopback ports, so that loadgen can read the CPU and RSS of every cluster
// process from /proc and sum them. The config files and logs go to a temporary
// directory, removed at Stop (the logs are copied beside logPath when not empty).
type ClusterSubprocess struct {
	Bin   string
	Ports *Ports // where the proxies listen and the routers accept links (nil: the kernel picks)
	// Spread, when > 0, replaces every realm role's `spread` of the files (1: all
	// sessions of one realm and role on one router). 0 keeps what init wrote.
	Spread int
}

var spreadLine = regexp.MustCompile(`(?m)^(\s*spread:\s*)\d+`)

// Launch writes the cluster files, starts the routers and the proxies, and returns once
// a session can join through every proxy.
func (c *ClusterSubprocess) Launch(ctx context.Context, logPath string) (Router, error) {
	dir, err := os.MkdirTemp("", "switchyard-bench-cluster-")
	if err != nil {
		return nil, fmt.Errorf("bench: cluster dir: %w", err)
	}
	cl := &subCluster{dir: dir, logPath: logPath}
	fail := func(err error) (Router, error) {
		_ = cl.Stop()
		return nil, err
	}
	if out, err := exec.CommandContext(ctx, c.Bin, "init", "--cluster", "--masters", "0", dir).CombinedOutput(); err != nil {
		return fail(fmt.Errorf("bench: %s init --cluster: %w: %s", c.Bin, err, bytes.TrimSpace(out)))
	}
	// Every example address gets a free port, in every file that names it.
	moves := map[string]string{}
	taken := map[string]bool{}
	for _, a := range slices.Concat(initProxyAddrs, initRouterAddrs) {
		for {
			to, err := c.Ports.Next()
			if err != nil {
				return fail(err)
			}
			if !taken[to] {
				taken[to], moves[a] = true, to
				break
			}
		}
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) != len(initProxyAddrs)+len(initRouterAddrs) {
		return fail(fmt.Errorf("bench: init --cluster wrote %d files, want %d (%v)", len(files), len(initProxyAddrs)+len(initRouterAddrs), err))
	}
	seen := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return fail(err)
		}
		s := string(b)
		for from, to := range moves {
			if strings.Contains(s, from) {
				seen[from] = true
				s = strings.ReplaceAll(s, from, to)
			}
		}
		if c.Spread > 0 {
			s = spreadLine.ReplaceAllString(s, "${1}"+strconv.Itoa(c.Spread))
		}
		if err := os.WriteFile(f, []byte(s), 0o600); err != nil {
			return fail(err)
		}
	}
	for from := range moves {
		if !seen[from] {
			return fail(fmt.Errorf("bench: the files of init --cluster do not name %s any more: update bench/cluster.go", from))
		}
	}
	// Routers first, so that the proxies find their links up.
	start := func(role, name string) error {
		p, err := startProc(c.Bin, []string{role, "--config", filepath.Join(dir, name+".yaml"), "--log-level", "info", "--log-format", "text"},
			filepath.Join(dir, name+".log"))
		if err != nil {
			return err
		}
		cl.procs = append(cl.procs, p)
		cl.nodes = append(cl.nodes, NodeProc{Name: name, PID: p.PID()})
		return nil
	}
	for i := range initRouterAddrs {
		if err := start("router", fmt.Sprintf("router%d", i+1)); err != nil {
			return fail(err)
		}
	}
	for i, a := range initProxyAddrs {
		if err := start("proxy", fmt.Sprintf("proxy%d", i+1)); err != nil {
			return fail(err)
		}
		cl.urls = append(cl.urls, "ws://"+moves[a]+"/ws")
	}
	if err := cl.waitLinks(ctx, 15*time.Second); err != nil {
		return fail(err)
	}
	if err := cl.waitJoin(ctx, 5*time.Second); err != nil {
		return fail(err)
	}
	return cl, nil
}

// waitLinks waits until every router sees every other router live and every proxy has
// a link up to every router, as their info logs say (a session placed on a router whose
// links are not up yet would be refused, and an event published before the routers see
// each other would miss the subscribers of the others).
func (c *subCluster) waitLinks(ctx context.Context, timeout time.Duration) error {
	var routers []string
	for _, n := range c.nodes {
		if strings.HasPrefix(n.Name, "router") {
			routers = append(routers, n.Name)
		}
	}
	allLive := "routers=\"[" + strings.Join(routers, " ") + "]\""
	ready := func(name string) bool {
		b, _ := os.ReadFile(filepath.Join(c.dir, name+".log"))
		log := string(b)
		if strings.HasPrefix(name, "router") {
			i := strings.LastIndex(log, `msg="cluster: live routers"`)
			if i < 0 {
				return len(routers) == 1
			}
			line, _, _ := strings.Cut(log[i:], "\n")
			return strings.Contains(line, allLive)
		}
		up := map[string]bool{}
		for line := range strings.Lines(log) {
			if !strings.Contains(line, `msg="cluster link up"`) {
				continue
			}
			for f := range strings.FieldsSeq(line) {
				if r, ok := strings.CutPrefix(f, "router="); ok {
					up[r] = true
				}
			}
		}
		for _, r := range routers {
			if !up[r] {
				return false
			}
		}
		return true
	}
	deadline := time.Now().Add(timeout)
	for _, n := range c.nodes {
		for !ready(n.Name) {
			if err := c.exited(); err != nil {
				return err
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("bench: cluster node %s has not logged its links to %v up after %v (log: %s; if the log lines changed, update bench/cluster.go)",
					n.Name, routers, timeout, c.keptLog(n.Name))
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return nil
}

// exited reports a node that has exited.
func (c *subCluster) exited() error {
	for i, p := range c.procs {
		select {
		case <-p.done:
			return fmt.Errorf("bench: cluster node %s exited: %v (log: %s)", c.nodes[i].Name, p.waitErr, c.keptLog(c.nodes[i].Name))
		default:
		}
	}
	return nil
}

// subCluster is a running ClusterSubprocess: routers first, then proxies.
type subCluster struct {
	dir, logPath string
	procs        []*proc
	nodes        []NodeProc
	urls         []string
}

func (c *subCluster) URLs() []string { return c.urls }
func (c *subCluster) Nodes() []NodeProc {
	return c.nodes
}

func (c *subCluster) PIDs() []int {
	pids := make([]int, len(c.nodes))
	for i, n := range c.nodes {
		pids[i] = n.PID
	}
	return pids
}

// waitJoin joins a session through every proxy (retrying while the processes come up
// and the links connect), or fails when a process exits or timeout passes.
func (c *subCluster) waitJoin(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for _, u := range c.urls {
		for {
			if err := c.exited(); err != nil {
				return err
			}
			jctx, cancel := context.WithTimeout(ctx, time.Second)
			s, err := client.Connect(jctx, client.Config{URL: u, Realm: "realm1"})
			cancel()
			if err == nil {
				s.Close()
				break
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("bench: no session joins through %s after %v: %w", u, timeout, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nil
}

// keptLog is where node name's log ends up after Stop.
func (c *subCluster) keptLog(name string) string {
	if c.logPath == "" {
		return filepath.Join(c.dir, name+".log")
	}
	return strings.TrimSuffix(c.logPath, ".log") + "-" + name + ".log"
}

// Stop stops the proxies, then the routers (SIGTERM, each within 10 s), keeps the
// non-empty logs beside logPath and removes the cluster directory.
func (c *subCluster) Stop() error {
	var errs []error
	for i := len(c.procs) - 1; i >= 0; i-- {
		if err := c.procs[i].Stop(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c.nodes[i].Name, err))
		}
	}
	if c.logPath != "" {
		for _, n := range c.nodes {
			if b, err := os.ReadFile(filepath.Join(c.dir, n.Name+".log")); err == nil && len(b) > 0 {
				errs = append(errs, os.WriteFile(c.keptLog(n.Name), b, 0o644))
			}
		}
	}
	errs = append(errs, os.RemoveAll(c.dir))
	return errors.Join(errs...)
}

// InProcessCluster starts a cluster in this process with node.StartRouter and
// node.StartProxy: Routers routers (default 3) and 2 proxies over real TCP links on
// loopback (tests, and runs without a binary at hand). Its CPU and RSS would include the
// load generator's, so it has no PIDs. Sessions of realm1 stay on one router (spread 1).
type InProcessCluster struct {
	Routers int
	Logger  *slog.Logger // nil: discard
}

func (l *InProcessCluster) Launch(ctx context.Context, _ string) (Router, error) {
	log := l.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	n := l.Routers
	if n <= 0 {
		n = 3
	}
	var members []node.ClusterMember
	for i := range n {
		addr, err := (*Ports)(nil).Next()
		if err != nil {
			return nil, err
		}
		members = append(members, node.ClusterMember{Name: fmt.Sprintf("router%d", i+1), Addr: addr})
	}
	common := node.ClusterCommon{Secret: []byte("bench in-process cluster"), Routers: members, Slots: 1024, LinksPerPeer: 2}
	c := &inprocCluster{}
	var routers []*node.RouterNode
	for _, m := range members {
		cc := common
		cc.Name = m.Name
		r, err := node.StartRouter(node.RouterNodeConfig{ClusterCommon: cc, LinkAddr: m.Addr,
			Node: node.Config{NoListeners: true, Logger: log}})
		if err != nil {
			_ = c.Stop()
			return nil, fmt.Errorf("bench: %w", err)
		}
		c.stops = append(c.stops, r.Stop)
		routers = append(routers, r)
	}
	// Every router sees the others live (a REGISTER needs its decision point, an
	// event the subscribers of every router).
	deadline := time.Now().Add(10 * time.Second)
	for _, r := range routers {
		for len(r.Live()) < n {
			if time.Now().After(deadline) || ctx.Err() != nil {
				_ = c.Stop()
				return nil, fmt.Errorf("bench: %s sees routers %v live, want %d", r.Name(), r.Live(), n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	for i := range 2 {
		cc := common
		cc.Name = fmt.Sprintf("proxy%d", i+1)
		p, err := node.StartProxy(node.ProxyNodeConfig{ClusterCommon: cc,
			Node: node.Config{Listeners: []node.Listener{{Address: "127.0.0.1:0"}}, Logger: log}})
		if err != nil {
			_ = c.Stop()
			return nil, fmt.Errorf("bench: %w", err)
		}
		c.stops = append(c.stops, p.Stop)
		c.urls = append(c.urls, p.Node.WebSocketURL())
		if !p.Links.WaitReady(10 * time.Second) {
			_ = c.Stop()
			return nil, fmt.Errorf("bench: %s: links to the routers did not come up", cc.Name)
		}
	}
	return c, nil
}

type inprocCluster struct {
	stops []func(context.Context) error
	urls  []string
}

func (c *inprocCluster) URLs() []string { return c.urls }
func (c *inprocCluster) PIDs() []int    { return nil }

// Stop stops the proxies, then the routers.
func (c *inprocCluster) Stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var errs []error
	for i := len(c.stops) - 1; i >= 0; i-- {
		errs = append(errs, c.stops[i](ctx))
	}
	return errors.Join(errs...)
}
