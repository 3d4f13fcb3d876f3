package member_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/cluster/member"
	"github.com/switchyard-wamp/switchyard/master"
)

// A member that reaches a follower first is redirected to the leader; a dead master
// URL ahead of it in the list is skipped.
func TestMemberRedirectAndMastersInTurn(t *testing.T) {
	e := newEnv(t, 3)
	li := e.leader(5 * time.Second)
	follower := e.urls[(li+1)%3]
	dead := "ws://" + freeAddrs(t, 1)[0] + "/ws"
	maps := make(chan master.Map, 8)
	m, err := member.Start(member.Config{Masters: []string{dead, follower}, Node: "r1", Key: testSecret,
		Role: master.NodeRouter, Link: "127.0.0.1:9999", Logger: quiet(), Retry: 50 * time.Millisecond,
		OnMap: func(mp master.Map) { maps <- mp }})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop(context.Background(), false)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	mp, err := m.WaitMap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if member.TagOf(mp, "r1") == 0 || len(member.Routers(mp)) != 1 || member.Routers(mp)[0].Addr != "127.0.0.1:9999" {
		t.Fatalf("first map %+v", mp)
	}
	if st := m.Status(); !st.Registered || st.Master != e.urls[li] {
		t.Fatalf("status %+v, want registered with the leader %s", st, e.urls[li])
	}
	if got := <-maps; got.Version != mp.Version {
		t.Fatalf("OnMap got version %d, WaitMap %d", got.Version, mp.Version)
	}
	// Leaving takes it out of the map at once.
	if err := m.Stop(ctx, true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "r1 out of the map", func() bool { return len(e.master().Map().Routers) == 0 })
	if _, ok := m.Map(); !ok {
		t.Fatal("a stopped member forgot its last map")
	}
}

// A member with a wrong key is refused: it never registers, never gets a map, and says
// why in its log. (The master locks an address out after a few failures, so the right
// key is not tried from here: the other tests register with it.)
func TestMemberWrongKeyRefused(t *testing.T) {
	e := newEnv(t, 1)
	var log syncBuf
	bad, err := member.Start(member.Config{Masters: e.urls, Node: "r1", Key: "wrong key wrong key wrong key!!", Role: master.NodeRouter,
		Link: "127.0.0.1:9999", Logger: log.logger(), Retry: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if _, err := bad.WaitMap(ctx); err == nil {
		t.Fatal("a member with a wrong key got a map")
	}
	bad.Stop(context.Background(), false)
	if st := bad.Status(); st.Registered || st.Registrations != 0 {
		t.Fatalf("wrong key: %+v", st)
	}
	if got := log.String(); !contains(got, "authentication_failed") {
		t.Fatalf("the refusal is not in the member's log:\n%s", got)
	}
	if n := len(e.master().Map().Routers); n != 0 {
		t.Fatalf("the map has %d routers", n)
	}
}

// Start refuses a config it cannot run.
func TestMemberConfigChecked(t *testing.T) {
	for _, c := range []member.Config{
		{Node: "r1", Role: master.NodeRouter},
		{Masters: []string{"ws://127.0.0.1:1/ws"}, Role: master.NodeRouter},
		{Masters: []string{"ws://127.0.0.1:1/ws"}, Node: "r1", Role: "master"},
	} {
		if m, err := member.Start(c); err == nil {
			m.Stop(context.Background(), false)
			t.Errorf("Start(%+v) accepted", c)
		}
	}
}

// A config version the node cannot apply is refused: the node keeps running (and
// reporting) the one it has, is not offered the same version again, and takes the next.
func TestMemberConfigVersionRefused(t *testing.T) {
	e := newEnv(t, 1)
	offered := make(chan int64, 8)
	m, err := member.Start(member.Config{Masters: e.urls, Node: "p1", Key: testSecret, Role: master.NodeProxy,
		Logger: quiet(), OnConfig: func(cv master.ConfigVersion) error {
			offered <- cv.Version
			if cv.Version == 1 {
				return errors.New("not for this node")
			}
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop(context.Background(), false)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := m.WaitMap(ctx); err != nil {
		t.Fatal(err)
	}
	op, err := master.Dial(ctx, e.urls[0], master.OperatorAuthID, testSecret, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer op.Close()
	apply := func(realm string) int64 {
		var res master.ApplyRes
		if err := master.Call(ctx, op, master.ProcApply, master.ApplyReq{Config: map[string]any{"realms": []any{
			map[string]any{"name": realm, "roles": []any{map[string]any{"name": "anonymous"}},
				"auth": map[string]any{"anonymous": map[string]any{"role": "anonymous"}}}}}}, &res); err != nil {
			t.Fatal(err)
		}
		return res.Version
	}
	if v := apply("r1"); v != 1 {
		t.Fatalf("first apply is version %d", v)
	}
	if got := <-offered; got != 1 {
		t.Fatalf("offered %d", got)
	}
	time.Sleep(testLease) // three heartbeats name version 1 again
	if st := m.Status(); st.ConfigVersion != 0 {
		t.Fatalf("runs config version %d after refusing it", st.ConfigVersion)
	}
	select {
	case v := <-offered:
		t.Fatalf("version %d offered again", v)
	default:
	}
	if v := apply("r2"); v != 2 {
		t.Fatalf("second apply is version %d", v)
	}
	waitFor(t, 5*time.Second, "version 2 applied", func() bool { return m.Status().ConfigVersion == 2 })
	// The master hears the version the node runs.
	waitFor(t, 3*testLease, "the master to see version 2", func() bool {
		for _, n := range e.master().Status().Nodes {
			if n.Node == "p1" && n.ConfigVersion == 2 {
				return true
			}
		}
		return false
	})
}
