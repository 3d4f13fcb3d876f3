package member_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/client"
	"github.com/switchyard-wamp/switchyard/cluster/member"
	"github.com/switchyard-wamp/switchyard/config"
	"github.com/switchyard-wamp/switchyard/master"
	"github.com/switchyard-wamp/switchyard/node"
)

const testSecret = "0123456789abcdef0123456789abcdef"

// testLease is the masters' lease in these tests (heartbeats every third of it).
const testLease = 1500 * time.Millisecond

func quiet() *slog.Logger {
	if os.Getenv("SWITCHYARD_TEST_LOG") != "" {
		return slog.Default()
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// env is a cluster in this process driven by real masters: master replicas (one or
// three, each with its data directory, restartable on the same ports), and router and
// proxy nodes that follow them through package member, all over real sockets on
// loopback.
type env struct {
	t     *testing.T
	mcfgs []master.Config
	ms    []*master.Server
	urls  []string
	mu    sync.Mutex
	nodes map[string]*follower
	// place pins new sessions to routers (the proxies' Place hook); nil: the map.
	place func(realm, authrole string, session uint64) string
	// spread is every role's spread on the proxies (0: 1).
	spread int
}

// follower is one node and its member, wired as cmd/switchyard wires them: each new map
// goes to SetRouters, each cluster config version to the node's Reload.
type follower struct {
	name   string
	m      *member.Member
	router *node.RouterNode
	proxy  *node.ProxyNode
	mu     sync.Mutex
	realms []string
}

func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		out = append(out, l.Addr().String())
	}
	for _, l := range ls {
		l.Close()
	}
	return out
}

// newEnv starts n master replicas (1 or 3) and waits for a leader.
func newEnv(t *testing.T, n int) *env {
	t.Helper()
	e := &env{t: t, nodes: map[string]*follower{}}
	addrs := freeAddrs(t, 2*n)
	var peers []master.Peer
	for i := range n {
		e.urls = append(e.urls, "ws://"+addrs[2*i]+"/ws")
		peers = append(peers, master.Peer{Name: fmt.Sprintf("m%d", i+1), Raft: addrs[2*i+1], URL: e.urls[i]})
	}
	for i := range n {
		c := master.Config{Name: peers[i].Name, Listen: addrs[2*i], Raft: addrs[2*i+1], URL: e.urls[i],
			DataDir: t.TempDir(), Secret: testSecret, Logger: quiet(), RaftTimeout: 300 * time.Millisecond,
			Lease: testLease, Slots: 256}
		if n > 1 {
			c.Peers = peers
		}
		e.mcfgs = append(e.mcfgs, c)
	}
	e.ms = make([]*master.Server, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.startMaster(i)
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		// Nodes first (they leave), then the masters.
		e.mu.Lock()
		nodes := e.nodes
		e.mu.Unlock()
		for _, f := range nodes {
			f.stop(false)
		}
		for i := range e.ms {
			e.stopMaster(i)
		}
	})
	e.leader(15 * time.Second)
	return e
}

// startMaster starts replica i (again: from its data directory, on its ports).
func (e *env) startMaster(i int) {
	var err error
	for try := 0; try < 50; try++ { // the port of a replica just stopped may linger
		var s *master.Server
		if s, err = master.Start(e.mcfgs[i]); err == nil {
			e.mu.Lock()
			e.ms[i] = s
			e.mu.Unlock()
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.t.Errorf("master %d: %v", i+1, err)
}

// killMaster stops replica i as a crash would (no leadership hand-over).
func (e *env) killMaster(i int) {
	e.mu.Lock()
	s := e.ms[i]
	e.ms[i] = nil
	e.mu.Unlock()
	if s != nil {
		s.Kill()
	}
}

func (e *env) stopMaster(i int) {
	e.mu.Lock()
	s := e.ms[i]
	e.ms[i] = nil
	e.mu.Unlock()
	if s != nil {
		s.Stop(context.Background())
	}
}

// leader waits until exactly one running replica leads; its index.
func (e *env) leader(d time.Duration) int {
	e.t.Helper()
	li := -1
	waitFor(e.t, d, "one master leader", func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		n := 0
		for i, s := range e.ms {
			if s != nil && s.IsLeader() {
				li, n = i, n+1
			}
		}
		return n == 1
	})
	return li
}

// master returns the running replica that leads (nil: none).
func (e *env) master() *master.Server {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range e.ms {
		if s != nil && s.IsLeader() {
			return s
		}
	}
	return nil
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(d)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// memberConfig is the member side of node name.
func (e *env) memberConfig(f *follower, role, link string) member.Config {
	return member.Config{Masters: e.urls, Node: f.name, Key: testSecret, Role: role, Link: link,
		Logger: quiet(), Retry: 100 * time.Millisecond, CallTimeout: time.Second,
		OnMap: f.onMap, OnConfig: f.onConfig, Load: f.load}
}

func (f *follower) onMap(mp master.Map) {
	f.mu.Lock()
	r, p := f.router, f.proxy
	f.mu.Unlock()
	switch {
	case r != nil:
		r.SetRouters(member.Routers(mp))
	case p != nil:
		p.Links.SetRouters(member.Routers(mp))
	}
}

// onConfig applies a config version's realms (the harness' nodes admit anonymous
// clients everywhere, so the realm names are what changes).
func (f *follower) onConfig(cv master.ConfigVersion) error {
	c, err := config.ParseOverlay([]byte("version: 1\nlisteners: []\n"), config.ParseOptions{}, cv.Config)
	if err != nil {
		return err
	}
	var realms []string
	for _, r := range c.Realms {
		realms = append(realms, r.Name)
	}
	f.mu.Lock()
	f.realms = realms
	r, p := f.router, f.proxy
	f.mu.Unlock()
	switch {
	case r != nil:
		return r.Node.Reload(node.Config{NoListeners: true, Realms: realms, Logger: quiet()})
	case p != nil:
		return p.Node.Reload(node.Config{Listeners: []node.Listener{{Address: "127.0.0.1:0"}}, Realms: realms, Logger: quiet()})
	}
	return nil
}

func (f *follower) load() member.Load {
	f.mu.Lock()
	r, p := f.router, f.proxy
	f.mu.Unlock()
	switch {
	case r != nil:
		return member.Load{Sessions: r.Node.Router.SessionCount(), LinksUp: r.LinksUp()}
	case p != nil:
		return member.Load{Sessions: p.Links.Sessions(), LinksUp: p.Links.LinksUp()}
	}
	return member.Load{}
}

func (f *follower) realmsNow() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.realms == nil {
		return []string{"realm1"}
	}
	return f.realms
}

// stop stops the node; with leave it tells the master first (a clean shutdown), without
// it the node just dies (its lease runs out).
func (f *follower) stop(leave bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_ = f.m.Stop(ctx, leave)
	if f.router != nil {
		_ = f.router.Stop(ctx)
	}
	if f.proxy != nil {
		_ = f.proxy.Stop(ctx)
	}
}

// startRouter starts router name: it registers, waits for the map with its tag, starts
// with the map's routers, then follows.
func (e *env) startRouter(name string) *follower {
	e.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	f := &follower{name: name}
	m, err := member.Start(e.memberConfig(f, master.NodeRouter, ln.Addr().String()))
	if err != nil {
		e.t.Fatal(err)
	}
	f.m = m
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	mp, err := m.WaitMap(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	tag := member.TagOf(mp, name)
	if tag == 0 {
		e.t.Fatalf("router %s not in its first map %+v", name, mp)
	}
	r, err := node.StartRouter(node.RouterNodeConfig{ClusterCommon: node.ClusterCommon{Name: name, Secret: []byte(testSecret),
		Routers: member.Routers(mp), Slots: mp.Slots, LinksPerPeer: 2}, LinkAddr: ln.Addr().String(), LinkListener: ln,
		Tag: tag, Node: node.Config{NoListeners: true, Realms: f.realmsNow(), Logger: quiet()}})
	if err != nil {
		e.t.Fatal(err)
	}
	f.mu.Lock()
	f.router = r
	f.mu.Unlock()
	if mp, ok := m.Map(); ok {
		f.onMap(mp)
	}
	e.mu.Lock()
	e.nodes[name] = f
	e.mu.Unlock()
	return f
}

// startProxy starts proxy name with one client listener; it places by the map it
// follows.
func (e *env) startProxy(name string) *follower {
	e.t.Helper()
	f := &follower{name: name}
	m, err := member.Start(e.memberConfig(f, master.NodeProxy, ""))
	if err != nil {
		e.t.Fatal(err)
	}
	f.m = m
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	mp, err := m.WaitMap(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	spread := max(e.spread, 1)
	p, err := node.StartProxy(node.ProxyNodeConfig{ClusterCommon: node.ClusterCommon{Name: name, Secret: []byte(testSecret),
		Routers: member.Routers(mp), Slots: mp.Slots, LinksPerPeer: 2}, Place: e.place,
		SpreadOf: func(string, string) int { return spread },
		Node:     node.Config{Listeners: []node.Listener{{Address: "127.0.0.1:0"}}, Realms: f.realmsNow(), Logger: quiet()}})
	if err != nil {
		e.t.Fatal(err)
	}
	f.mu.Lock()
	f.proxy = p
	f.mu.Unlock()
	if mp, ok := m.Map(); ok {
		f.onMap(mp)
	}
	e.mu.Lock()
	e.nodes[name] = f
	e.mu.Unlock()
	return f
}

// settled waits until every router in names sees exactly names live, and proxy p's
// links to each are up.
func (e *env) settled(p *follower, names ...string) {
	e.t.Helper()
	sort.Strings(names)
	waitFor(e.t, 10*time.Second, fmt.Sprintf("routers %v live everywhere", names), func() bool {
		for _, n := range names {
			e.mu.Lock()
			f := e.nodes[n]
			e.mu.Unlock()
			if f == nil || fmt.Sprint(f.router.Live()) != fmt.Sprint(names) {
				return false
			}
		}
		return p == nil || fmt.Sprint(p.proxy.Links.Routers()) == fmt.Sprint(names) && p.proxy.Links.WaitReady(0)
	})
}

// connect joins realm through proxy p.
func (e *env) connect(p *follower, realm string) *client.Session {
	e.t.Helper()
	s, err := e.tryConnect(p, realm)
	if err != nil {
		e.t.Fatalf("connect to %s through %s: %v", realm, p.name, err)
	}
	e.t.Cleanup(func() { s.Close() })
	return s
}

func (e *env) tryConnect(p *follower, realm string) (*client.Session, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return client.Connect(ctx, client.Config{URL: p.proxy.Node.WebSocketURL(), Realm: realm})
}

// home returns the router holding session id in realm ("" for none).
func (e *env) home(realm string, id uint64) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	for name, f := range e.nodes {
		if f.router == nil {
			continue
		}
		if rl, ok := f.router.Node.Router.Realm(realm); ok && rl.HasSession(id) {
			return name
		}
	}
	return ""
}

// syncBuf collects log output from several goroutines.
type syncBuf struct {
	mu sync.Mutex
	b  []byte
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b = append(s.b, p...)
	return len(p), nil
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.b)
}

func (s *syncBuf) logger() *slog.Logger { return slog.New(slog.NewTextHandler(s, nil)) }

func contains(s, sub string) bool { return strings.Contains(s, sub) }
