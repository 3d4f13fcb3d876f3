package master

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/client"
)

const testSecret = "0123456789abcdef0123456789abcdef"

// testLogger discards logs unless SWITCHYARD_TEST_LOG is set.
func testLogger() *slog.Logger {
	lvl := slog.LevelError + 4
	if os.Getenv("SWITCHYARD_TEST_LOG") != "" {
		lvl = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
}

// startOne starts a single replica on loopback with data in dir and waits until it
// leads.
func startOne(t *testing.T, dir string, mod func(*Config)) *Server {
	t.Helper()
	cfg := Config{Name: "m1", Listen: "127.0.0.1:0", Raft: "127.0.0.1:0", DataDir: dir,
		Secret: testSecret, Logger: testLogger(), RaftTimeout: 300 * time.Millisecond}
	if mod != nil {
		mod(&cfg)
	}
	s, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop(context.Background()) })
	waitFor(t, 10*time.Second, "a leader", s.IsLeader)
	return s
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(d)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func dial(t *testing.T, url, authid, secret string) *client.Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := Dial(ctx, url, authid, secret, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func call(t *testing.T, s *client.Session, proc string, req, res any) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return Call(ctx, s, proc, req, res)
}

func mustCall(t *testing.T, s *client.Session, proc string, req, res any) {
	t.Helper()
	if err := call(t, s, proc, req, res); err != nil {
		t.Fatal(err)
	}
}

func TestSingleReplicaRegisterHeartbeatMap(t *testing.T) {
	m := startOne(t, t.TempDir(), nil)
	r1 := dial(t, m.URL(), "r1", testSecret)
	var reg RegisterRes
	mustCall(t, r1, ProcRegister, RegisterReq{Node: "r1", Role: NodeRouter, Link: "127.0.0.1:9201"}, &reg)
	if reg.LeaseMS != DefaultLease.Milliseconds() || reg.Map.Version != 1 || reg.Map.Slots != DefaultSlots ||
		len(reg.Map.Routers) != 1 || reg.Map.Routers[0] != (MapRouter{Name: "r1", Link: "127.0.0.1:9201", Tag: 1}) {
		t.Fatalf("register answer %+v", reg)
	}
	r2 := dial(t, m.RawSocketURL(), "r2", testSecret)
	mustCall(t, r2, ProcRegister, RegisterReq{Node: "r2", Role: NodeRouter, Link: "127.0.0.1:9202"}, &reg)
	p1 := dial(t, m.URL(), "p1", testSecret)
	mustCall(t, p1, ProcRegister, RegisterReq{Node: "p1", Role: NodeProxy}, &reg)
	if reg.Map.Version != 2 || len(reg.Map.Routers) != 2 || reg.Map.Routers[1].Tag != 2 {
		t.Fatalf("map after r2 and p1: %+v", reg.Map)
	}
	var hb HeartbeatRes
	mustCall(t, p1, ProcHeartbeat, HeartbeatReq{Node: "p1", Sessions: 7, MapVersion: 2}, &hb)
	if hb.MapVersion != 2 || hb.ConfigVersion != 0 {
		t.Fatalf("heartbeat answer %+v", hb)
	}
	// Status (as a node may ask): loads and lease ages from the leader, slots per router.
	var st Status
	mustCall(t, p1, ProcStatus, nil, &st)
	slots := 0
	for _, n := range st.Nodes {
		slots += n.Slots
		if n.Node == "p1" && (n.Sessions != 7 || n.MapVersion != 2 || n.LeaseAgeMS < 0 || n.LeaseAgeMS > 1000 || n.State != StateLive) {
			t.Fatalf("p1 in status: %+v", n)
		}
		if n.Role == NodeRouter && n.Slots == 0 {
			t.Fatalf("router without slots: %+v", n)
		}
	}
	if st.Replica != "m1" || st.Leader != "m1" || len(st.Nodes) != 3 || slots != DefaultSlots || st.MapVersion != 2 ||
		len(st.Masters) != 1 || st.Masters[0].State != "leader" {
		t.Fatalf("status %+v", st)
	}
	var mp Map
	mustCall(t, p1, ProcGetMap, nil, &mp)
	if mp.Version != 2 || len(mp.Routers) != 2 || mp.Routers[0].Name != "r1" || mp.Routers[1].Name != "r2" {
		t.Fatalf("get_map %+v", mp)
	}
	var cv ConfigVersion
	mustCall(t, p1, ProcGetConfig, nil, &cv)
	if cv.Version != 0 {
		t.Fatalf("get_config %+v", cv)
	}
	// A node cannot speak for another.
	err := call(t, p1, ProcRegister, RegisterReq{Node: "r9", Role: NodeRouter, Link: "x:1"}, nil)
	if !errors.Is(err, &client.Error{URI: "wamp.error.invalid_argument"}) {
		t.Fatalf("register as another node: %v", err)
	}
	for _, bad := range []RegisterReq{{Node: "p1", Role: NodeRouter, Link: "nohost"}, {Node: "p1", Role: NodeRouter},
		{Node: "p1", Role: NodeRouter, Link: ":9201"}, {Node: "p1", Role: NodeRouter, Link: "0.0.0.0:9201"},
		{Node: "p1", Role: "broker"}} {
		if err := call(t, p1, ProcRegister, bad, nil); !errors.Is(err, &client.Error{URI: "wamp.error.invalid_argument"}) {
			t.Fatalf("register %+v: %v", bad, err)
		}
	}
	// A node may not apply.
	err = call(t, p1, ProcApply, ApplyReq{Config: map[string]any{"realms": []any{}}}, nil)
	if !errors.Is(err, &client.Error{URI: "wamp.error.not_authorized"}) {
		t.Fatalf("apply by a node: %v", err)
	}
	// Leave: the router is out of the map at once, and keeps its tag when it returns.
	mustCall(t, r1, ProcLeave, LeaveReq{Node: "r1"}, nil)
	if mp := m.Map(); mp.Version != 3 || len(mp.Routers) != 1 || mp.Routers[0].Name != "r2" {
		t.Fatalf("map after leave: %+v", mp)
	}
	if err := call(t, r1, ProcHeartbeat, HeartbeatReq{Node: "r1"}, nil); !errors.Is(err, &client.Error{URI: ErrNotRegistered}) {
		t.Fatalf("heartbeat after leave: %v", err)
	}
	mustCall(t, r1, ProcRegister, RegisterReq{Node: "r1", Role: NodeRouter, Link: "127.0.0.1:9201"}, &reg)
	if reg.Map.Version != 4 || reg.Map.Routers[0] != (MapRouter{Name: "r1", Link: "127.0.0.1:9201", Tag: 1}) {
		t.Fatalf("map after return: %+v", reg.Map)
	}
}

func TestLeaseExpiry(t *testing.T) {
	const lease = 600 * time.Millisecond
	m := startOne(t, t.TempDir(), func(c *Config) { c.Lease, c.ForgetAfter = lease, time.Second })
	ra := dial(t, m.URL(), "ra", testSecret)
	rb := dial(t, m.URL(), "rb", testSecret)
	mustCall(t, rb, ProcRegister, RegisterReq{Node: "rb", Role: NodeRouter, Link: "127.0.0.1:2"}, nil)
	mustCall(t, ra, ProcRegister, RegisterReq{Node: "ra", Role: NodeRouter, Link: "127.0.0.1:1"}, nil)
	silent := time.Now() // ra's lease started before this
	// rb heartbeats, ra goes silent.
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(lease / 4):
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			Call(ctx, rb, ProcHeartbeat, HeartbeatReq{Node: "rb"}, nil)
			cancel()
		}
	}()
	defer func() { close(stop); <-done }()
	waitFor(t, 5*time.Second, "ra to expire", func() bool { return len(m.Map().Routers) == 1 })
	took := time.Since(silent)
	if mp := m.Map(); mp.Routers[0].Name != "rb" {
		t.Fatalf("map after expiry: %+v", mp)
	}
	if took < lease-100*time.Millisecond || took > lease+500*time.Millisecond {
		t.Fatalf("ra expired after %v with a %v lease", took, lease)
	}
	t.Logf("expired %v after the last heartbeat (lease %v)", took, lease)
	if err := call(t, ra, ProcHeartbeat, HeartbeatReq{Node: "ra"}, nil); !errors.Is(err, &client.Error{URI: ErrNotRegistered}) {
		t.Fatalf("heartbeat after expiry: %v", err)
	}
	st := m.Status()
	for _, n := range st.Nodes {
		if n.Node == "ra" && n.State != StateExpired || n.Node == "rb" && n.State != StateLive {
			t.Fatalf("status %+v", st.Nodes)
		}
	}
	// Gone longer than ForgetAfter: out of the registry, its tag free again.
	waitFor(t, 5*time.Second, "ra to be forgotten", func() bool { _, ok := m.fsm.node("ra"); return !ok })
	rc := dial(t, m.URL(), "rc", testSecret)
	var reg RegisterRes
	mustCall(t, rc, ProcRegister, RegisterReq{Node: "rc", Role: NodeRouter, Link: "127.0.0.1:3"}, &reg)
	for _, r := range reg.Map.Routers {
		if r.Name == "rc" && r.Tag != 2 {
			t.Fatalf("rc got tag %d, want ra's freed 2", r.Tag)
		}
	}
}
