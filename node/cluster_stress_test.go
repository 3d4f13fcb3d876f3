package node

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/client"
	"github.com/switchyard-wamp/switchyard/codec"
)

// TestEverythingUnderLaneCuts runs every kind of operation at once on three routers
// (calls to exact and pattern registrations, acknowledged publications, subscribe and
// register churn, realm-wide meta calls, sessions joining and leaving) while single
// links between routers are cut at random for 2 s. No operation may hang; no session
// may lose its router (only links between routers are cut); afterwards the routers
// agree again: the same session count everywhere, calls and events cross every pair,
// and each churned URI is free and unique realm-wide.
func TestEverythingUnderLaneCuts(t *testing.T) {
	if testing.Short() {
		t.Skip("stress test")
	}
	tc := startCluster(t, clusterOpts{routers: 3, proxies: 2, spread: spread3})
	on := tc.sessionsOnEveryRouter(t)
	rs := tc.routers
	setup, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	echo := func(_ context.Context, inv *client.Invocation) (*client.Result, error) {
		return &client.Result{Args: inv.Args}, nil
	}
	if _, err := on[rs[2]].Register(setup, "com.example.all.echo", echo, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := on[rs[0]].Register(setup, "com.example.all.pat.", echo, map[string]any{"match": "prefix"}); err != nil {
		t.Fatal(err)
	}
	var events atomic.Int64
	for _, r := range rs[1:] {
		if _, err := on[r].Subscribe(setup, "com.example.all.ev", func(*client.Event) { events.Add(1) }, nil); err != nil {
			t.Fatal(err)
		}
	}
	ld := newLoad(t)
	var ok, failed [8]atomic.Int64 // per operation kind, for the log line
	count := func(i int, err error) {
		if err == nil {
			ok[i].Add(1)
		} else {
			failed[i].Add(1)
			time.Sleep(2 * time.Millisecond)
		}
	}
	for i, r := range rs {
		caller := on[r]
		ld.loop(func() {
			count(0, ld.bounded("a call", func(c context.Context) error {
				_, err := caller.Call(c, "com.example.all.echo", []any{1}, nil, nil)
				return err
			}))
		})
		ld.loop(func() {
			count(1, ld.bounded("a pattern call", func(c context.Context) error {
				_, err := caller.Call(c, "com.example.all.pat.x", []any{1}, nil, nil)
				return err
			}))
		})
		ld.loop(func() {
			count(2, ld.bounded("an acknowledged PUBLISH", func(c context.Context) error {
				return caller.Publish(c, "com.example.all.ev", []any{i}, nil, client.Acknowledge())
			}))
		})
		meta := []string{"wamp.session.count", "wamp.registration.lookup", "wamp.subscription.list"}[i]
		ld.loop(func() {
			count(3, ld.bounded("a meta call "+meta, func(c context.Context) error {
				var args []any
				if meta == "wamp.registration.lookup" {
					args = []any{"com.example.all.echo"}
				}
				_, err := caller.Call(c, meta, args, nil, nil)
				return err
			}))
		})
	}
	ld.loop(func() {
		var sub *client.Subscription
		err := ld.bounded("a SUBSCRIBE", func(c context.Context) error {
			var err error
			sub, err = on[rs[1]].Subscribe(c, "com.example.all.churn.sub", func(*client.Event) {}, nil)
			return err
		})
		if count(4, err); err == nil {
			_ = ld.bounded("an UNSUBSCRIBE", sub.Unsubscribe)
		}
	})
	ld.loop(func() {
		var reg *client.Registration
		err := ld.bounded("a REGISTER", func(c context.Context) error {
			var err error
			reg, err = on[rs[2]].Register(c, "com.example.all.churn.reg", echo, nil)
			return err
		})
		if count(5, err); err == nil {
			_ = ld.bounded("an UNREGISTER", reg.Unregister)
		}
	})
	ld.loop(func() {
		err := ld.bounded("a join", func(c context.Context) error {
			s, err := client.Connect(c, client.Config{URL: tc.url(rand.IntN(2), false), Realm: "realm1", Serializer: codec.MsgPack})
			if err != nil {
				return err
			}
			_, err = s.Call(c, "wamp.session.get", []any{s.ID()}, nil, nil)
			s.Close()
			return err
		})
		count(6, err)
	})
	// Cut one link between two routers, picked at random, every 30 ms for 2 s.
	pairs := [][2]*RouterNode{{rs[0], rs[1]}, {rs[1], rs[0]}, {rs[0], rs[2]}, {rs[2], rs[0]}, {rs[1], rs[2]}, {rs[2], rs[1]}}
	for i := 0; i < 66; i++ {
		p := pairs[rand.IntN(len(pairs))]
		if l := (*p[0].pools.Load())[p[1].Name()].Pick(rand.Uint64()); l != nil {
			l.Close(fmt.Errorf("test: cut %d", i))
		}
		time.Sleep(30 * time.Millisecond)
	}
	ld.end()
	kinds := []string{"calls", "pattern calls", "publications", "meta calls", "subscribes", "registers", "joins"}
	var b strings.Builder
	for i, k := range kinds {
		fmt.Fprintf(&b, "%s %d ok/%d failed; ", k, ok[i].Load(), failed[i].Load())
	}
	resets := 0
	for _, r := range rs {
		resets += int(r.PairResets())
	}
	t.Logf("during the cuts: %spair resets %d", b.String(), resets)
	if resets == 0 {
		t.Fatal("no pair reset: the cuts did not happen")
	}
	for r, s := range on {
		select {
		case <-s.Done():
			t.Fatalf("the session on %s ended although no proxy link was cut: %v", r.Name(), s.Err())
		default:
		}
	}
	ctx, cancel2 := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel2()
	settled := func(what string, f func() error) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			err := f()
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("after the cuts, %s: %v", what, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// Every router counts the same sessions (the five of this test's sessions that
	// stay; joins have left).
	settled("the routers' session counts agree", func() error {
		var counts []any
		for _, r := range rs {
			res, err := on[r].Call(ctx, "wamp.session.count", nil, nil, nil)
			if err != nil {
				return err
			}
			counts = append(counts, res.Args[0])
		}
		for _, c := range counts[1:] {
			if fmt.Sprint(c) != fmt.Sprint(counts[0]) {
				return fmt.Errorf("counts %v", counts)
			}
		}
		return nil
	})
	for _, r := range rs {
		caller := on[r]
		settled("a call from "+r.Name(), func() error {
			for _, proc := range []string{"com.example.all.echo", "com.example.all.pat.y"} {
				if _, err := caller.Call(ctx, proc, []any{"after"}, nil, nil); err != nil {
					return err
				}
			}
			return nil
		})
		before := events.Load()
		settled("events from "+r.Name(), func() error {
			if err := caller.Publish(ctx, "com.example.all.ev", []any{"after"}, nil, client.Acknowledge()); err != nil {
				return err
			}
			time.Sleep(20 * time.Millisecond)
			if events.Load() < before+2 {
				return fmt.Errorf("%d events of the 2 expected", events.Load()-before)
			}
			return nil
		})
	}
	// The churned procedure is free and unique realm-wide: one callee gets it, a second
	// on another router is refused.
	var reg *client.Registration
	settled("the churned procedure is free", func() error {
		var err error
		reg, err = on[rs[0]].Register(ctx, "com.example.all.churn.reg", echo, nil)
		return err
	})
	defer reg.Unregister(ctx)
	var we *client.Error
	if _, err := on[rs[1]].Register(ctx, "com.example.all.churn.reg", echo, nil); !errors.As(err, &we) || we.URI != "wamp.error.procedure_already_exists" {
		t.Fatalf("a second callee of the churned procedure: %v", err)
	}
	// No subscriber is left on the churned topic anywhere.
	settled("no subscription left on the churned topic", func() error {
		for _, r := range rs {
			res, err := on[r].Call(ctx, "wamp.subscription.lookup", []any{"com.example.all.churn.sub"}, nil, nil)
			if err != nil {
				return err
			}
			if len(res.Args) > 0 && res.Args[0] != nil {
				return fmt.Errorf("router %s still has subscription %v", r.Name(), res.Args[0])
			}
		}
		return nil
	})
}
