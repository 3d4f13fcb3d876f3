package span

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/switchyard-wamp/switchyard/codec"
	"github.com/switchyard-wamp/switchyard/engine"
	"github.com/switchyard-wamp/switchyard/internal/hashmix"
)

// ownerAmong is the owner of registration key among names, computed the way Span.owner
// does over a membership.
func ownerAmong(key uint64, names []string) string {
	names = slices.Sorted(slices.Values(names))
	best, bestW := "", uint64(0)
	for i, n := range names {
		if w := hashmix.Mix64(key ^ xxhash.Sum64String(n)); i == 0 || w > bestW {
			best, bestW = n, w
		}
	}
	return best
}

// addRouter starts router name, joins it to the cluster's loopback and gives the
// routers in tell (every router when empty) the new membership.
func (c *cluster) addRouter(name string, tell ...string) {
	c.start(name)
	c.names = append(c.names, name)
	if len(tell) == 0 {
		tell = c.names
	}
	for _, n := range tell {
		c.spans[n].SetRouters(c.names)
	}
}

// TestJoiningOwnerWaitsForResync: a router that joins becomes the owner of a
// registration before it has heard of the callee that holds it. Here router c joins
// and owns proc, which x on router a holds; a sees c only 100 ms later (so sends it
// nothing of its own accord before, and answers c's resync request then), and c's
// resync request to a is slow (lane 0 of two) while c's other messages to a are not.
// A second callee's REGISTER on c itself (whose dealer has not heard of x either) must
// still be refused, as on one node: c holds the claim until every live router's resync
// has ended. Without that, c accepts at once, a acks c's broadcast on the fast lane,
// and proc has two callees on two routers.
func TestJoiningOwnerWaitsForResync(t *testing.T) {
	c := newCluster(t, "a", "b")
	c.lb.mu.Lock()
	c.lb.lanes = 2
	c.lb.mu.Unlock()
	proc := ""
	for i := 0; proc == ""; i++ {
		p := fmt.Sprintf("com.gate.p%d", i)
		key := regKey("realm1", polExact, p)
		if key%2 == 1 && ownerAmong(key, []string{"a", "b", "c"}) == "c" {
			proc = p
		}
	}
	x := c.join("a", codec.JSON, "x", "user")
	if m := x.register(proc, "", ""); m.Type != codec.REGISTERED {
		t.Fatalf("first callee: %s", describe([]codec.Message{m}))
	}
	c.lb.mu.Lock()
	c.lb.slowPair, c.lb.slowLane, c.lb.slowBy = [2]string{"c", "a"}, 0, 200*time.Millisecond
	c.lb.mu.Unlock()
	c.addRouter("c", "b", "c")
	y := c.join("c", codec.JSON, "y", "user")
	seen := time.AfterFunc(100*time.Millisecond, func() { c.spans["a"].SetRouters(c.names) })
	t.Cleanup(func() { seen.Stop() })
	m := y.register(proc, "", "")
	if m.Type != codec.ERROR || string(m.URI) != engine.ErrProcedureAlreadyExists {
		t.Fatalf("second callee, decided by the joining owner: %s, want ERROR %s",
			describe([]codec.Message{m}), engine.ErrProcedureAlreadyExists)
	}
}

// TestGateOpensWithoutAnEnd: a resync that never ends (here: a reset router that is
// never listed again) holds the claims only for syncTimeout; then they are decided on
// what the table holds.
func TestGateOpensWithoutAnEnd(t *testing.T) {
	old := syncTimeout
	syncTimeout = 200 * time.Millisecond
	t.Cleanup(func() { syncTimeout = old })
	c := newCluster(t, "a", "b")
	c.spans["a"].RouterReset("b")
	x := c.join("a", codec.JSON, "x", "user")
	proc := "com.gate.q" // b is not live: a owns it
	start := time.Now()
	x.send(codec.Message{Type: codec.REGISTER, URI: []byte(proc)})
	x.arrived(1)
	ms := x.take()
	if len(ms) != 1 || ms[0].Type != codec.REGISTERED {
		t.Fatalf("register with the gate closed for good: %s", describe(ms))
	}
	if d := time.Since(start); d < syncTimeout/2 {
		t.Fatalf("REGISTERED after %v: the gate did not hold the claim", d)
	}
}

// TestStaleResyncDoesNotRevive: a router's resync carries a callee that unregisters
// while the resync is on its way (slow); the owner's removal reaches the third router
// first. The late resync must not bring the callee back there: a new callee of the
// free procedure on that router must get REGISTERED.
func TestStaleResyncDoesNotRevive(t *testing.T) {
	c := newCluster(t, "a", "b", "c")
	proc := ""
	for i := 0; proc == ""; i++ {
		p := fmt.Sprintf("com.stale.p%d", i)
		if ownerAmong(regKey("realm1", polExact, p), []string{"a", "b", "c"}) == "a" {
			proc = p
		}
	}
	x := c.join("b", codec.JSON, "x", "user")
	reg := x.register(proc, "", "")
	if reg.Type != codec.REGISTERED {
		t.Fatalf("first callee: %s", describe([]codec.Message{reg}))
	}
	// c forgets b (a reset) and asks for its state; b's answer is slow to c.
	c.lb.mu.Lock()
	c.lb.slowPair, c.lb.slowBy = [2]string{"b", "c"}, 150*time.Millisecond
	c.lb.mu.Unlock()
	c.spans["c"].RouterReset("b")
	c.spans["c"].SetRouters([]string{"a", "b", "c"})
	time.Sleep(20 * time.Millisecond) // b has sent its state (x in it)
	x.send(codec.Message{Type: codec.UNREGISTER, Registration: reg.Registration})
	if m := x.one(codec.UNREGISTERED); m.Type != codec.UNREGISTERED {
		t.Fatal(m)
	}
	c.lb.mu.Lock()
	c.lb.slowBy = 0
	c.lb.mu.Unlock()
	y := c.join("c", codec.JSON, "y", "user")
	if m := y.register(proc, "", ""); m.Type != codec.REGISTERED {
		t.Fatalf("callee of the free procedure on c after a stale resync: %s (uri %s)",
			describe([]codec.Message{m}), m.URI)
	}
}

// TestResyncWaitsUntilLive: router a asks b for its state before b counts a live (a's
// link came up, b's membership has not caught up). b's broadcasts leave a out until
// then, so a callee of b's that unregisters in between would stay on a for good if b
// answered at once. b must answer when a joins its membership instead: a new callee of
// the free procedure on a then gets REGISTERED.
func TestResyncWaitsUntilLive(t *testing.T) {
	c := newCluster(t, "a", "b")
	proc := ""
	for i := 0; proc == ""; i++ {
		p := fmt.Sprintf("com.live.p%d", i)
		if ownerAmong(regKey("realm1", polExact, p), []string{"a", "b"}) == "b" {
			proc = p
		}
	}
	x := c.join("b", codec.JSON, "x", "user")
	reg := x.register(proc, "", "")
	if reg.Type != codec.REGISTERED {
		t.Fatalf("first callee: %s", describe([]codec.Message{reg}))
	}
	c.lb.settle(t)
	c.spans["b"].RouterDown("a") // b lost a
	c.spans["a"].RouterReset("b")
	c.spans["a"].SetRouters([]string{"a", "b"}) // a is back first and asks b
	c.lb.settle(t)
	x.send(codec.Message{Type: codec.UNREGISTER, Registration: reg.Registration})
	if m := x.one(codec.UNREGISTERED); m.Type != codec.UNREGISTERED {
		t.Fatal(m)
	}
	c.spans["b"].SetRouters([]string{"a", "b"})
	c.lb.settle(t)
	y := c.join("a", codec.JSON, "y", "user")
	if m := y.register(proc, "", ""); m.Type != codec.REGISTERED {
		t.Fatalf("callee of the free procedure on a: %s (uri %s)", describe([]codec.Message{m}), m.URI)
	}
}
