package node

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/client"
	"github.com/switchyard-wamp/switchyard/codec"
)

// spreadSessions connects clients through both proxies until every router holds at
// least one, and returns one session per router (in router order) and all of them.
func spreadSessions(t *testing.T, tc *testCluster) (per []*client.Session, all []*client.Session) {
	t.Helper()
	sers := []codec.Serializer{codec.JSON, codec.MsgPack, codec.CBOR}
	per = make([]*client.Session, len(tc.routers))
	have := 0
	for i := 0; have < len(tc.routers) && i < 60; i++ {
		s := tc.connect(i%2, sers[i%3], i%4 == 3)
		all = append(all, s)
		r := tc.routerOf(s.ID())
		for j, x := range tc.routers {
			if x == r && per[j] == nil {
				per[j] = s
				have++
			}
		}
	}
	if have < len(tc.routers) {
		t.Fatalf("sessions on %d routers, want %d", have, len(tc.routers))
	}
	return per, all
}

func idList(v any) []uint64 {
	l, _ := v.([]any)
	var out []uint64
	for _, x := range l {
		out = append(out, uint64(numOf(x)))
	}
	slices.Sort(out)
	return out
}

// TestClusterSessionMeta: through a real cluster (3 routers, 2 proxies), the session and
// subscription meta APIs answer for the whole realm on every router, and
// wamp.session.kill closes a session that lives on another router.
func TestClusterSessionMeta(t *testing.T) {
	tc := startCluster(t, clusterOpts{routers: 3, proxies: 2, spread: spread3})
	ctx := ctxT(t)
	per, all := spreadSessions(t, tc)
	var ids []uint64
	for _, s := range all {
		ids = append(ids, s.ID())
	}
	slices.Sort(ids)
	sub, err := per[1].Subscribe(ctx, "com.example.meta", func(*client.Event) {}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range per {
		res, err := s.Call(ctx, "wamp.session.count", nil, nil, nil)
		if err != nil || uint64(numOf(res.Args[0])) != uint64(len(all)) {
			t.Fatalf("count on router %d: %v %v, want %d", i, res, err, len(all))
		}
		res, err = s.Call(ctx, "wamp.session.list", nil, nil, nil)
		if err != nil || !slices.Equal(idList(res.Args[0]), ids) {
			t.Fatalf("list on router %d: %v %v, want %v", i, res, err, ids)
		}
		other := per[(i+1)%len(per)]
		res, err = s.Call(ctx, "wamp.session.get", []any{other.ID()}, nil, nil)
		if d, _ := res.Args[0].(map[string]any); err != nil || uint64(numOf(d["session"])) != other.ID() {
			t.Fatalf("get on router %d of a session elsewhere: %v %v", i, res, err)
		}
		// Router 0 and 2 have no subscriber of com.example.meta: they still find it.
		res, err = s.Call(ctx, "wamp.subscription.lookup", []any{"com.example.meta"}, nil, nil)
		if err != nil || uint64(numOf(res.Args[0])) != sub.ID() {
			t.Fatalf("subscription lookup on router %d: %v %v, want %d", i, res, err, sub.ID())
		}
		res, err = s.Call(ctx, "wamp.subscription.list_subscribers", []any{sub.ID()}, nil, nil)
		if err != nil || !slices.Equal(idList(res.Args[0]), []uint64{per[1].ID()}) {
			t.Fatalf("list_subscribers on router %d: %v %v", i, res, err)
		}
	}
	// kill from router 0 of the session on router 2.
	victim := per[2]
	if _, err := per[0].Call(ctx, "wamp.session.kill", []any{victim.ID()}, map[string]any{"reason": "com.example.kicked"}, nil); err != nil {
		t.Fatalf("kill: %v", err)
	}
	select {
	case <-victim.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the killed session on another router was not closed")
	}
	var we *client.Error
	if err := victim.Err(); !errors.As(err, &we) || we.URI != "com.example.kicked" {
		t.Fatalf("killed session closed with %v", err)
	}
	_, err = per[1].Call(ctx, "wamp.session.get", []any{victim.ID()}, nil, nil)
	if !errors.As(err, &we) || we.URI != "wamp.error.no_such_session" {
		t.Fatalf("get after kill: %v", err)
	}
}

// TestClusterRouterDeathMetaEvents: when a router dies, a subscriber on another router
// gets wamp.session.on_leave for the dead router's sessions and
// wamp.subscription.on_unsubscribe for their subscriptions.
func TestClusterRouterDeathMetaEvents(t *testing.T) {
	tc := startCluster(t, clusterOpts{routers: 3, proxies: 2, spread: spread3})
	ctx := ctxT(t)
	per, all := spreadSessions(t, tc)
	watcher, dead := per[0], tc.routers[2]
	var mu sync.Mutex
	left := map[uint64]bool{}
	unsub := map[uint64]bool{}
	if _, err := watcher.Subscribe(ctx, "wamp.session.on_leave", func(e *client.Event) {
		mu.Lock()
		left[uint64(numOf(e.Args[0]))] = true
		mu.Unlock()
	}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := watcher.Subscribe(ctx, "wamp.subscription.on_unsubscribe", func(e *client.Event) {
		mu.Lock()
		unsub[uint64(numOf(e.Args[0]))] = true
		mu.Unlock()
	}, nil); err != nil {
		t.Fatal(err)
	}
	var onDead []uint64
	for _, s := range all {
		if tc.routerOf(s.ID()) == dead {
			onDead = append(onDead, s.ID())
			if _, err := s.Subscribe(ctx, "com.example.dies", func(*client.Event) {}, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	time.Sleep(100 * time.Millisecond) // the announcements reach the other routers
	stopQuietly(dead.Stop)
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		done := true
		for _, id := range onDead {
			done = done && left[id] && unsub[id]
		}
		got := len(left)
		mu.Unlock()
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("on_leave for %d sessions (%v), want the dead router's %v", got, left, onDead)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
