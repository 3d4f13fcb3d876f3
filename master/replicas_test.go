package master

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/client"
)

// freePorts returns n loopback addresses whose ports were free a moment ago (the
// replicas of a cluster must know each other's addresses before they start).
func freePorts(t *testing.T, n int) []string {
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

// trio is a cluster of three replicas on loopback.
type trio struct {
	cfgs []Config
	srv  []*Server
}

func startTrio(t *testing.T, raftTimeout time.Duration) *trio {
	t.Helper()
	addrs := freePorts(t, 6)
	tr := &trio{srv: make([]*Server, 3)}
	var peers []Peer
	for i := range 3 {
		peers = append(peers, Peer{Name: fmt.Sprintf("m%d", i+1), Raft: addrs[2*i+1],
			URL: "ws://" + addrs[2*i] + "/ws"})
	}
	for i := range 3 {
		tr.cfgs = append(tr.cfgs, Config{Name: peers[i].Name, Listen: addrs[2*i], Raft: addrs[2*i+1],
			URL: peers[i].URL, DataDir: t.TempDir(), Peers: peers, Secret: testSecret,
			Logger: testLogger(), RaftTimeout: raftTimeout, Lease: 2 * time.Second})
	}
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr.srv[i], errs[i] = Start(tr.cfgs[i])
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: %v", i+1, err)
		}
	}
	t.Cleanup(func() {
		for _, s := range tr.srv {
			if s != nil {
				s.Stop(context.Background())
			}
		}
	})
	tr.leader(t, 15*time.Second)
	return tr
}

// leader waits for exactly one running replica to lead and returns its index.
func (tr *trio) leader(t *testing.T, d time.Duration) int {
	t.Helper()
	li := -1
	waitFor(t, d, "one leader", func() bool {
		n := 0
		for i, s := range tr.srv {
			if s != nil && s.IsLeader() {
				li, n = i, n+1
			}
		}
		return n == 1
	})
	return li
}

func TestThreeReplicasRedirectReplicateFailover(t *testing.T) {
	tr := startTrio(t, time.Second)

	// A write on a follower is redirected to the leader's URL (asked again should the
	// leadership move meanwhile, as it may on a loaded machine).
	var f *client.Session
	waitFor(t, 10*time.Second, "a follower's redirect to the leader", func() bool {
		li := tr.leader(t, 5*time.Second)
		if f != nil {
			f.Close()
		}
		f = dial(t, tr.srv[(li+1)%3].URL(), "r1", testSecret)
		err := call(t, f, ProcRegister, RegisterReq{Node: "r1", Role: NodeRouter, Link: "127.0.0.1:9201"}, nil)
		got, ok := LeaderOf(err)
		if !ok {
			t.Fatalf("register on a follower: %v", err)
		}
		return got == tr.srv[li].URL()
	})
	// A node connected to a follower hears of map versions from it.
	onMap := make(chan int64, 8)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := f.Subscribe(ctx, TopicMap, func(e *client.Event) { onMap <- int64(intOf(e.Kwargs["version"], -1)) }, nil); err != nil {
		t.Fatal(err)
	}
	// Register two routers at the leader; every replica serves the same map.
	tr.atLeader(t, "r1", ProcRegister, RegisterReq{Node: "r1", Role: NodeRouter, Link: "127.0.0.1:9201"})
	tr.atLeader(t, "r2", ProcRegister, RegisterReq{Node: "r2", Role: NodeRouter, Link: "127.0.0.1:9202"})
	li := tr.leader(t, 5*time.Second)
	want := tr.srv[li].Map()
	for i, s := range tr.srv {
		waitFor(t, 5*time.Second, fmt.Sprintf("replica %d's map", i+1), func() bool { return s.Map().Version == want.Version })
	}
	// Announcements may coalesce (the latest version wins) but never go back.
	for last := int64(0); last < 2; {
		select {
		case got := <-onMap:
			if got <= last || got > 2 {
				t.Fatalf("on_map from the follower: %d after %d", got, last)
			}
			last = got
		case <-time.After(5 * time.Second):
			t.Fatalf("no on_map 2 from the follower (last %d)", last)
		}
	}
	var mp Map
	mustCall(t, f, ProcGetMap, nil, &mp)
	if mp.Version != 2 || len(mp.Routers) != 2 || mp.Routers[1] != (MapRouter{Name: "r2", Link: "127.0.0.1:9202", Tag: 2}) {
		t.Fatalf("follower's map %+v", mp)
	}

	// Kill the leader: a new one is elected, serves writes, and expires nobody.
	li = tr.leader(t, 5*time.Second)
	killed := time.Now()
	tr.srv[li].Kill()
	tr.srv[li] = nil
	nl := tr.leader(t, 10*time.Second)
	elected := time.Since(killed)
	newURL := tr.srv[nl].URL()
	// A heartbeat and a registration accepted by the leader (asking the current leader
	// each time: on a loaded machine leadership may move once more).
	var serving time.Duration
	waitFor(t, 10*time.Second, "the new leader to serve a heartbeat and a write", func() bool {
		url := tr.srv[tr.leader(t, 5*time.Second)].URL()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		ok := true
		for _, node := range []string{"r1", "p1"} {
			s, err := Dial(ctx, url, node, testSecret, nil)
			if err != nil {
				return false
			}
			if node == "r1" {
				err = Call(ctx, s, ProcHeartbeat, HeartbeatReq{Node: "r1"}, nil)
			} else {
				err = Call(ctx, s, ProcRegister, RegisterReq{Node: "p1", Role: NodeProxy}, nil)
			}
			s.Close()
			ok = ok && err == nil
		}
		serving = time.Since(killed)
		return ok
	})
	t.Logf("leader killed: new leader %s after %v, serving writes after %v (raft timeout 1s)",
		tr.cfgs[nl].Name, elected, serving)
	if got := tr.srv[tr.leader(t, 5*time.Second)].Map(); got.Version != 2 || len(got.Routers) != 2 {
		t.Fatalf("map after failover: %+v", got)
	}
	// r2 never heartbeat: its grace lease (2 s from the new leadership) runs out, r1 is
	// kept alive (following the leader should it move again).
	stop := keepAlive(newURL, "r1", 300*time.Millisecond)
	defer stop()
	waitFor(t, 10*time.Second, "r2's grace lease to run out", func() bool {
		return fmt.Sprint(tr.srv[tr.leader(t, 5*time.Second)].Map().Routers) == "[{r1 127.0.0.1:9201 1}]"
	})

	// The killed replica restarts from its data directory and catches up.
	s, err := Start(tr.cfgs[li])
	if err != nil {
		t.Fatal(err)
	}
	tr.srv[li] = s
	waitFor(t, 10*time.Second, "the restarted replica to catch up", func() bool {
		return s.Map().Version == tr.srv[nl].Map().Version
	})

	// A planned stop of the leader hands the leadership over: no election timeout.
	cur := tr.leader(t, 5*time.Second)
	stopped := time.Now()
	tr.srv[cur].Stop(context.Background())
	tr.srv[cur] = nil
	next := tr.leader(t, 5*time.Second)
	tr.atLeader(t, "p2", ProcRegister, RegisterReq{Node: "p2", Role: NodeProxy})
	t.Logf("leader stopped (leadership transfer): %s serves writes after %v", tr.cfgs[next].Name, time.Since(stopped))
}

// atLeader calls proc as node at the current leader until it succeeds (10 s at most).
func (tr *trio) atLeader(t *testing.T, node, proc string, req any) {
	t.Helper()
	var last error
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		url := tr.srv[tr.leader(t, 5*time.Second)].URL()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		s, err := Dial(ctx, url, node, testSecret, nil)
		if err == nil {
			err = Call(ctx, s, proc, req, nil)
			s.Close()
		}
		cancel()
		if last = err; err == nil {
			return
		}
		if _, redirected := LeaderOf(err); !redirected {
			t.Fatalf("%s as %s: %v", proc, node, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s as %s: %v", proc, node, last)
}

// keepAlive heartbeats as node every d, following not_leader redirects (a node does),
// until the returned stop is called.
func keepAlive(url, node string, d time.Duration) func() {
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		var s *client.Session
		defer func() {
			if s != nil {
				s.Close()
			}
		}()
		for {
			select {
			case <-stop:
				return
			case <-time.After(d):
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			if s == nil {
				s, _ = Dial(ctx, url, node, testSecret, nil)
			}
			if s != nil {
				err := Call(ctx, s, ProcHeartbeat, HeartbeatReq{Node: node}, nil)
				if l, ok := LeaderOf(err); ok && l != "" && l != url {
					s.Close()
					s, url = nil, l
				}
			}
			cancel()
		}
	}()
	return func() { close(stop); <-done }
}

func TestRestartFromDataDirWithSnapshot(t *testing.T) {
	dir := t.TempDir()
	m := startOne(t, dir, nil)
	op := dial(t, m.URL(), OperatorAuthID, testSecret)
	var ar ApplyRes
	mustCall(t, op, ProcApply, ApplyReq{Config: map[string]any{"realms": []any{anonRealm("app")}}}, &ar)
	for i, n := range []string{"ra", "rb", "rc"} {
		s := dial(t, m.URL(), n, testSecret)
		mustCall(t, s, ProcRegister, RegisterReq{Node: n, Role: NodeRouter, Link: fmt.Sprintf("127.0.0.1:%d", 9201+i)}, nil)
	}
	if err := m.Snapshot(); err != nil {
		t.Fatal(err)
	}
	// Entries after the snapshot are replayed from the log.
	rb := dial(t, m.URL(), "rb", testSecret)
	mustCall(t, rb, ProcLeave, LeaveReq{Node: "rb"}, nil)
	mustCall(t, op, ProcApply, ApplyReq{Config: map[string]any{"realms": []any{anonRealm("app2")}}}, &ar)
	before, beforeCfg := m.Map(), m.fsm.Config()
	m.Stop(context.Background())

	m2 := startOne(t, dir, nil)
	after, afterCfg := m2.Map(), m2.fsm.Config()
	if after.Version != before.Version || fmt.Sprint(after.Routers) != fmt.Sprint(before.Routers) ||
		afterCfg.Version != 2 || fmt.Sprint(afterCfg.Config) != fmt.Sprint(beforeCfg.Config) {
		t.Fatalf("after restart: map %+v config %+v; before: map %+v config %+v", after, afterCfg, before, beforeCfg)
	}
	// rb comes back with its tag.
	rb2 := dial(t, m2.URL(), "rb", testSecret)
	var reg RegisterRes
	mustCall(t, rb2, ProcRegister, RegisterReq{Node: "rb", Role: NodeRouter, Link: "127.0.0.1:9202"}, &reg)
	for _, r := range reg.Map.Routers {
		if r.Name == "rb" && r.Tag != 2 {
			t.Fatalf("rb's tag after restart: %+v", reg.Map)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writes (a log sink).
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestWrongKeyRefusedAndLogged(t *testing.T) {
	var logs syncBuffer
	const rKey = "r1-own-key-0123456789"
	m := startOne(t, t.TempDir(), func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
		c.NodeKeys = map[string]string{"r1": rKey}
		c.OperatorKey = "operator-key-0123456789"
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, tc := range []struct{ authid, secret, why string }{
		{"r1", testSecret, "a keyed node with the cluster secret"},
		{"r1", "wrong-key-0123456789", "a keyed node with a wrong key"},
		{"r2", "wrong-secret-0123456789", "a node with a wrong secret"},
		{OperatorAuthID, testSecret, "the operator with the secret when it has its own key"},
		{InternalAuthID, testSecret, "the internal authid"},
	} {
		if s, err := Dial(ctx, m.URL(), tc.authid, tc.secret, nil); err == nil {
			s.Close()
			t.Fatalf("%s: joined", tc.why)
		} else if !errors.Is(err, &client.Error{URI: "wamp.error.authentication_failed"}) &&
			!errors.Is(err, &client.Error{URI: "wamp.error.not_authorized"}) {
			t.Fatalf("%s: %v", tc.why, err)
		}
	}
	waitFor(t, 2*time.Second, "the refusals in the log", func() bool {
		l := logs.String()
		return strings.Contains(l, "authentication failed") && strings.Contains(l, "authid=r1") &&
			strings.Contains(l, "authid=r2")
	})
	// The right keys work.
	dial(t, m.URL(), "r1", rKey)
	dial(t, m.URL(), "r2", testSecret)
	dial(t, m.URL(), OperatorAuthID, "operator-key-0123456789")
}

func TestApplyValidation(t *testing.T) {
	m := startOne(t, t.TempDir(), nil)
	op := dial(t, m.URL(), OperatorAuthID, testSecret)
	got := make(chan int64, 4)
	node := dial(t, m.URL(), "p1", testSecret)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := node.Subscribe(ctx, TopicConfig, func(e *client.Event) {
		got <- int64(intOf(e.Kwargs["version"], -1))
	}, nil); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cfg  map[string]any
		want string
	}{
		{map[string]any{"realms": []any{map[string]any{"name": ""}}}, "realms[0].name: required"},
		{map[string]any{"realms": []any{map[string]any{"name": "a", "auth": map[string]any{
			"ticket": []any{map[string]any{"authid": "joe", "role": "user"}}}}}}, "realms[0].auth.ticket[0].ticket: required"},
		{map[string]any{"realms": []any{map[string]any{"name": "a", "rols": []any{}}}}, `unknown key "rols"`},
		{map[string]any{"listeners": []any{}, "realms": []any{}}, "listeners: not a shared key"},
		{map[string]any{}, "realms: required"},
	} {
		err := call(t, op, ProcApply, ApplyReq{Config: tc.cfg}, nil)
		var e *client.Error
		if !errors.As(err, &e) || e.URI != ErrInvalidConfig || len(e.Args) == 0 ||
			!strings.Contains(fmt.Sprint(e.Args[0]), tc.want) {
			t.Fatalf("apply %v: %v (want %s with %q)", tc.cfg, err, ErrInvalidConfig, tc.want)
		}
	}
	if _, v := m.fsm.Versions(); v != 0 {
		t.Fatalf("config version %d after refused applies", v)
	}
	good := map[string]any{"realms": []any{map[string]any{"name": "app",
		"roles": []any{map[string]any{"name": "user", "permissions": []any{map[string]any{
			"uri": "", "match": "prefix", "allow": map[string]any{"call": true}}}}},
		"auth": map[string]any{"ticket": []any{map[string]any{"authid": "joe", "ticket": "t0pS3cret", "role": "user"}}}}}}
	var ar ApplyRes
	mustCall(t, op, ProcApply, ApplyReq{Config: good}, &ar)
	if ar.Version != 1 {
		t.Fatalf("first apply: version %d", ar.Version)
	}
	select {
	case v := <-got:
		if v != 1 {
			t.Fatalf("on_config announced %d", v)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no on_config event")
	}
	var cv ConfigVersion
	mustCall(t, node, ProcGetConfig, nil, &cv)
	if cv.Version != 1 || fmt.Sprint(cv.Config) != fmt.Sprint(good) {
		t.Fatalf("get_config %+v", cv)
	}
}

// anonRealm is a realm anyone may join and use, in its config file form.
func anonRealm(name string) map[string]any {
	return map[string]any{"name": name,
		"roles": []any{map[string]any{"name": "anonymous", "permissions": []any{map[string]any{
			"uri": "", "match": "prefix", "allow": map[string]any{"call": true, "register": true}}}}},
		"auth": map[string]any{"anonymous": map[string]any{}}}
}

// TestRaftHostName: a Raft address with a host name (a pod's stable DNS name) is bound
// on every interface at its port and advertised as written.
func TestRaftHostName(t *testing.T) {
	port := strings.Split(freePorts(t, 1)[0], ":")[1]
	raftAddr := "localhost:" + port
	m := startOne(t, t.TempDir(), func(c *Config) {
		c.Raft = raftAddr
		c.Peers = []Peer{{Name: "m1", Raft: raftAddr, URL: "ws://localhost:1/ws"}}
	})
	if m.RaftAddr() != raftAddr {
		t.Fatalf("advertised %q, want %q", m.RaftAddr(), raftAddr)
	}
	r := dial(t, m.URL(), "r1", testSecret)
	mustCall(t, r, ProcRegister, RegisterReq{Node: "r1", Role: NodeRouter, Link: "127.0.0.1:1"}, nil)
	if st := m.Status(); len(st.Masters) != 1 || st.Masters[0].Raft != raftAddr || st.Masters[0].State != "leader" {
		t.Fatalf("masters %+v", st.Masters)
	}
}
