package member_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/client"
	"github.com/switchyard-wamp/switchyard/cluster/member"
	"github.com/switchyard-wamp/switchyard/cluster/placement"
	"github.com/switchyard-wamp/switchyard/master"
	"github.com/switchyard-wamp/switchyard/proxy"
)

// Routers join and leave through the master: a router registering after the others is
// in every node's next map (its own tag, links, new sessions placed by the new map at
// once, none moved); one leaving on purpose is out of every map at once and its
// sessions end with router_lost, nobody else's.
func TestRouterJoinAndLeaveThroughMaster(t *testing.T) {
	e := newEnv(t, 1)
	e.spread = 3
	r1, r2 := e.startRouter("r1"), e.startRouter("r2")
	p := e.startProxy("p1")
	e.settled(p, "r1", "r2")
	if r1.router == nil || r1.m.Status().MapVersion == 0 {
		t.Fatal("r1 has no map")
	}
	homes := map[*client.Session]string{}
	var before []*client.Session
	for range 8 {
		s := e.connect(p, "realm1")
		homes[s] = e.home("realm1", s.ID())
		before = append(before, s)
	}

	before2 := e.master().Map()
	r3 := e.startRouter("r3")
	e.settled(p, "r1", "r2", "r3")
	mp := e.master().Map()
	// Slot moves: only to the router that joined, about a third of them.
	oldOwners, newOwners := placement.New(before2.Slots, []string{"r1", "r2"}), placement.New(mp.Slots, []string{"r1", "r2", "r3"})
	moved := 0
	for slot := range mp.Slots {
		if o, n := oldOwners.Owner(slot), newOwners.Owner(slot); o != n {
			if n != "r3" {
				t.Fatalf("slot %d moved from %s to %s, not to the router that joined", slot, o, n)
			}
			moved++
		}
	}
	if moved == 0 || moved > mp.Slots/2 {
		t.Fatalf("%d of %d slots moved to r3", moved, mp.Slots)
	}
	t.Logf("r3 joined: map %d -> %d, %d of %d slots moved, all to r3", before2.Version, mp.Version, moved, mp.Slots)
	tags := map[int]bool{}
	for _, f := range []*follower{r1, r2, r3, p} {
		if st := f.m.Status(); st.MapVersion != mp.Version || !st.Registered {
			t.Fatalf("%s: %+v, master's map version %d", f.name, st, mp.Version)
		}
	}
	for _, r := range mp.Routers {
		if tags[r.Tag] || r.Tag < 1 {
			t.Fatalf("tags collide or are unset: %+v", mp.Routers)
		}
		tags[r.Tag] = true
	}
	if got := e.nodes["r3"].router.Node.Router; got == nil {
		t.Fatal("r3 has no engine")
	}
	pm := placement.New(mp.Slots, []string{"r1", "r2", "r3"})
	seen := map[string]bool{}
	var after []*client.Session
	for i := 0; i < 40 && (i < 9 || !seen["r3"]); i++ {
		s := e.connect(p, "realm1")
		want := pm.Place("realm1", s.AuthRole(), 3, s.ID())
		got := e.home("realm1", s.ID())
		if got != want {
			t.Fatalf("new session on %q, the new map places it on %q", got, want)
		}
		seen[got] = true
		homes[s] = got
		after = append(after, s)
	}
	if !seen["r3"] {
		t.Fatal("no new session reached the router that joined")
	}
	for _, s := range before {
		if got := e.home("realm1", s.ID()); got != homes[s] {
			t.Fatalf("session moved from %s to %q", homes[s], got)
		}
	}

	// r3 leaves on purpose: out of the map at once (no lease to wait for).
	start := time.Now()
	r3.stop(true)
	e.mu.Lock()
	delete(e.nodes, "r3")
	e.mu.Unlock()
	e.settled(p, "r1", "r2")
	t.Logf("router leaving on purpose: out of every node's map after %v", time.Since(start).Round(time.Millisecond))
	if d := time.Since(start); d > testLease {
		t.Fatalf("a router that left took %v to leave the map (lease %v): it waited for its lease", d, testLease)
	}
	for s, h := range homes {
		select {
		case <-s.Done():
			var we *client.Error
			if h != "r3" {
				t.Fatalf("session on %s ended: %v", h, s.Err())
			}
			if err := s.Err(); !errors.As(err, &we) || we.URI != proxy.CloseRouterLost {
				t.Fatalf("session on r3 ended with %v", err)
			}
		case <-time.After(func() time.Duration {
			if h == "r3" {
				return 5 * time.Second
			}
			return 0
		}()):
			if h == "r3" {
				t.Fatal("a session on r3 is still open")
			}
		}
	}
}

// A router that dies (no leave) leaves the map when its lease runs out; before that,
// the proxies already place the sessions of its slots on the next router in the slot's
// order as soon as its links are down. The test reports both times (router kill -> its
// slots served elsewhere; kill -> out of every map).
func TestRouterKillLeaseExpiry(t *testing.T) {
	e := newEnv(t, 1)
	e.spread = 1
	for _, n := range []string{"r1", "r2", "r3"} {
		e.startRouter(n)
	}
	p := e.startProxy("p1")
	e.settled(p, "r1", "r2", "r3")
	s := e.connect(p, "realm1")
	owner := e.home("realm1", s.ID())
	if owner == "" {
		t.Fatal("session on no router")
	}
	killed := time.Now()
	e.nodes[owner].stop(false) // dies: no leave
	var servedAfter time.Duration
	for {
		s2, err := e.tryConnect(p, "realm1")
		if err == nil {
			servedAfter = time.Since(killed)
			if h := e.home("realm1", s2.ID()); h == owner || h == "" {
				t.Fatalf("new session of the dead router's slot on %q", h)
			}
			s2.Close()
			break
		}
		if time.Since(killed) > 10*time.Second {
			t.Fatalf("the dead router's slot is not served elsewhere: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	e.mu.Lock()
	delete(e.nodes, owner)
	e.mu.Unlock()
	var rest []string
	for _, n := range []string{"r1", "r2", "r3"} {
		if n != owner {
			rest = append(rest, n)
		}
	}
	waitFor(t, 3*testLease+5*time.Second, "the dead router out of the proxy's map", func() bool {
		return !slices.Contains(p.proxy.Links.Routers(), owner)
	})
	outAfter := time.Since(killed)
	e.settled(p, rest...)
	t.Logf("router kill -> its slot served elsewhere after %v; -> out of every map after %v (lease %v)",
		servedAfter.Round(time.Millisecond), outAfter.Round(time.Millisecond), testLease)
	if outAfter < testLease/2 {
		t.Fatalf("the dead router left the map after %v, before its lease (%v) could run out", outAfter, testLease)
	}
	if got := e.master().Map(); slices.ContainsFunc(got.Routers, func(r master.MapRouter) bool { return r.Name == owner }) {
		t.Fatalf("master's map still has %s", owner)
	}
}

// A router cut off from the master alone (its member stops, the router runs on) is
// expired like a dead one: its sessions end with router_lost and the others drop it.
// When it reaches the master again it registers and rejoins: it is in every map again,
// gets new sessions, and realms span it again (an event crosses both ways).
func TestRouterExpiredWhileRunningRejoins(t *testing.T) {
	e := newEnv(t, 1)
	e.spread = 2
	r1, r2 := e.startRouter("r1"), e.startRouter("r2")
	p := e.startProxy("p1")
	e.settled(p, "r1", "r2")
	var on2 *client.Session
	for i := 0; i < 40 && on2 == nil; i++ {
		if s := e.connect(p, "realm1"); e.home("realm1", s.ID()) == "r2" {
			on2 = s
		}
	}
	if on2 == nil {
		t.Fatal("no session on r2")
	}
	_ = r2.m.Stop(context.Background(), false) // cut off from the master; the router runs on
	select {
	case <-on2.Done():
	case <-time.After(3*testLease + 5*time.Second):
		t.Fatal("the expired router's session is still open")
	}
	waitFor(t, 5*time.Second, "r1 alone", func() bool { return len(r1.router.Live()) == 1 })

	// Back in touch: a new member for the same running router.
	m, err := member.Start(e.memberConfig(r2, master.NodeRouter, r2.router.LinkAddr()))
	if err != nil {
		t.Fatal(err)
	}
	r2.mu.Lock()
	r2.m = m
	r2.mu.Unlock()
	e.settled(p, "r1", "r2")
	var a, b *client.Session
	for i := 0; i < 60 && (a == nil || b == nil); i++ {
		s := e.connect(p, "realm1")
		switch e.home("realm1", s.ID()) {
		case "r1":
			a = s
		case "r2":
			b = s
		}
	}
	if a == nil || b == nil {
		t.Fatal("new sessions do not reach both routers after r2 rejoined")
	}
	ctx := context.Background()
	for _, pair := range [][2]*client.Session{{a, b}, {b, a}} {
		got := make(chan struct{}, 1)
		sub, err := pair[1].Subscribe(ctx, "com.rejoin", func(*client.Event) { got <- struct{}{} }, nil)
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, 3*time.Second, "the subscription to span", func() bool {
			if err := pair[0].Publish(ctx, "com.rejoin", nil, nil, client.Acknowledge()); err != nil {
				t.Fatal(err)
			}
			select {
			case <-got:
				return true
			case <-time.After(50 * time.Millisecond):
				return false
			}
		})
		if err := sub.Unsubscribe(ctx); err != nil {
			t.Fatal(err)
		}
	}
}
