package span

import (
	"fmt"
	"testing"

	"github.com/switchyard-wamp/switchyard/codec"
	"github.com/switchyard-wamp/switchyard/engine"
)

// joinLater builds routers that come up one at a time, as under a master: each starts
// alone (SetRouters with only itself) and later learns the others. tags, when given,
// are the tags from outside (SetTag before the first SetRouters), as the master's map
// hands them out.
func joinLater(t *testing.T, names []string, tags map[string]uint64) *cluster {
	c := &cluster{t: t, lb: newLoopback(), names: names, spans: map[string]*Span{}, realms: map[string]*engine.Realm{}}
	for i, n := range names {
		r := engine.NewRouter(nil)
		c.realms[n] = r.AddRealm("realm1")
		sp := New(n, r, c.lb.from(n), nil)
		if tag, ok := tags[n]; ok && !sp.SetTag(tag) {
			t.Fatalf("SetTag(%d) on %s did not take", tag, n)
		}
		c.spans[n] = sp
		c.lb.mu.Lock()
		c.lb.spans[n] = sp
		c.lb.mu.Unlock()
		sp.SetRouters([]string{n}) // alone at first: nobody else is up yet
		// Everyone up so far learns about everyone up so far.
		for _, m := range names[:i+1] {
			c.spans[m].SetRouters(names[:i+1])
		}
		c.lb.settle(t)
	}
	return c
}

// Routers that start alone and join later keep the tags given from outside: two callers'
// routers calling one callee at once each get their own RESULT. Without the tags every
// router would take tag 1 (it is first among the routers it saw at its first
// SetRouters), and the callee's router would send one caller's answer to the other.
func TestTagsFromOutsideForRoutersJoiningLater(t *testing.T) {
	c := joinLater(t, []string{"b", "c", "a"}, map[string]uint64{"a": 3, "b": 1, "c": 2})
	for n, want := range map[string]uint64{"a": 3, "b": 1, "c": 2} {
		if got := c.spans[n].Tag(); got != want {
			t.Fatalf("tag of %s: %d, want %d", n, got, want)
		}
	}
	if c.spans["a"].SetTag(7) {
		t.Fatal("SetTag took after the tag was fixed")
	}
	callee := c.join("a", codec.JSON, "callee", "svc")
	if reg := callee.register("com.echo", "", ""); reg.Type != codec.REGISTERED {
		t.Fatalf("REGISTER: %+v", reg)
	}
	c.lb.settle(t)
	fromB := c.join("b", codec.JSON, "cb", "app")
	fromC := c.join("c", codec.JSON, "cc", "app")
	reqB := fromB.call("com.echo", []any{"b"}, nil)
	invB := callee.one(codec.INVOCATION)
	reqC := fromC.call("com.echo", []any{"c"}, nil)
	invC := callee.one(codec.INVOCATION)
	// Answer b's caller first, after c's INVOCATION taught a the tag of c.
	callee.yield(invB.Request, []any{"b"}, false)
	callee.yield(invC.Request, []any{"c"}, false)
	for _, x := range []struct {
		cl  *client
		req uint64
		arg string
	}{{fromB, reqB, "b"}, {fromC, reqC, "c"}} {
		res := x.cl.one(codec.RESULT)
		if res.Request != x.req || firstArg(t, codec.JSON, res) != x.arg {
			t.Fatalf("RESULT on %s: %+v", x.cl.router, res)
		}
	}
}

// A long-lived router sees more router names than it has interest bits when routers
// come and go under new names (a master's map): the bits of routers gone are reused,
// so a router joining after 70 others came and went still gets the events its
// subscribers want, and none of a gone router's interest lingers on its reused bit.
func TestInterestBitsReusedAfterManyRouters(t *testing.T) {
	c := newCluster(t, "a")
	pub := c.join("a", codec.JSON, "p", "app")
	join := func(name string) *client {
		sp := c.start(name)
		sp.SetRouters([]string{"a", name})
		c.spans["a"].SetRouters([]string{"a", name})
		c.lb.settle(t)
		return c.join(name, codec.JSON, "s", "app")
	}
	for i := range 70 {
		name := fmt.Sprintf("gone%02d", i)
		sub := join(name)
		sub.subscribe(fmt.Sprintf("com.topic.%d", i), "")
		c.lb.settle(t)
		c.lb.mu.Lock()
		c.lb.down[name] = true
		c.lb.mu.Unlock()
		c.spans["a"].RouterDown(name)
		c.spans["a"].SetRouters([]string{"a"})
	}
	late := join("late")
	late.subscribe("com.topic.late", "")
	c.lb.settle(t)
	pub.send(codec.Message{Type: codec.PUBLISH, URI: []byte("com.topic.late")})
	if ev := late.one(codec.EVENT); ev.Type != codec.EVENT {
		t.Fatalf("late router's subscriber: %+v", ev)
	}
	// The gone routers' topics have no interest left: a's publications go nowhere.
	c.lb.resetCounts()
	for i := range 70 {
		pub.send(codec.Message{Type: codec.PUBLISH, URI: []byte(fmt.Sprintf("com.topic.%d", i))})
	}
	c.lb.settle(t)
	if n := c.lb.crossings("a", "late"); n != 0 {
		t.Fatalf("%d publications to gone routers' topics reached the late router", n)
	}
}
