package node

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/client"
)

// partition cuts (or mends) every link between routers i and j: both directions run
// through relays (clusterOpts.relays).
func (tc *testCluster) partition(i, j int, cut bool) {
	tc.relays[i][j].setCut(cut)
	tc.relays[j][i].setCut(cut)
}

// awaitLive waits until router r sees exactly the routers named in want live.
func awaitLive(t *testing.T, r *RouterNode, want ...string) {
	t.Helper()
	slices.Sort(want)
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := slices.Clone(r.Live())
		slices.Sort(got)
		if slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s sees live %v, want %v", r.Name(), got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestPartitionHealsToOneCallee: two routers cut off from each other over real sockets
// (their links run through relays that drop them) each accept a callee of the same
// single procedure, since each side decides alone. When the partition heals, exactly
// one callee keeps the procedure realm-wide (after the grace, span.conflictGrace): calls
// from either router reach the same one, and the registration meta API of both routers
// lists it alone.
func TestPartitionHealsToOneCallee(t *testing.T) {
	tc := startCluster(t, clusterOpts{routers: 2, proxies: 1, spread: spread3, relays: true})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	on := tc.sessionsOnEveryRouter(t)
	r1, r2 := tc.routers[0], tc.routers[1]
	tc.partition(0, 1, true)
	awaitLive(t, r1, r1.Name())
	awaitLive(t, r2, r2.Name())
	procs := []string{"com.partition.0", "com.partition.1", "com.partition.2", "com.partition.3"}
	regs := map[string]map[string]*client.Registration{} // procedure -> router -> registration
	for _, r := range []*RouterNode{r1, r2} {
		name := r.Name()
		for _, p := range procs {
			reg, err := on[r].Register(ctx, p, func(context.Context, *client.Invocation) (*client.Result, error) {
				return &client.Result{Args: []any{name}}, nil
			}, nil)
			if err != nil {
				t.Fatalf("REGISTER %s on %s during the partition: %v", p, name, err)
			}
			if regs[p] == nil {
				regs[p] = map[string]*client.Registration{}
			}
			regs[p][name] = reg
		}
	}
	tc.partition(0, 1, false)
	awaitLive(t, r1, r1.Name(), r2.Name())
	awaitLive(t, r2, r1.Name(), r2.Name())
	kept := map[string]int{}
	for _, p := range procs {
		// The loser is revoked after the grace (5 s), then its removal crosses the routers.
		// On the loser's router the procedure has no callee for a moment: between the
		// revocation and the winner's ghost taking it there (a call then gets
		// no_such_procedure, a lookup null). Errors count as "not settled yet".
		var answers []string
		var callees [][]any
		var lastErr error
		deadline := time.Now().Add(20 * time.Second)
		for {
			answers, callees, lastErr = answers[:0], callees[:0], nil
			for _, r := range []*RouterNode{r1, r2} {
				res, err := on[r].Call(ctx, p, nil, nil, nil)
				if err != nil {
					lastErr = fmt.Errorf("CALL on %s: %w", r.Name(), err)
					break
				}
				answers = append(answers, fmt.Sprint(res.Args[0]))
				regs, err := on[r].Call(ctx, "wamp.registration.lookup", []any{p}, nil, nil)
				if err != nil {
					t.Fatal(err)
				}
				ls, err := on[r].Call(ctx, "wamp.registration.list_callees", regs.Args, nil, nil)
				if err != nil {
					lastErr = fmt.Errorf("list_callees%v on %s: %w", regs.Args, r.Name(), err)
					break
				}
				ids, _ := ls.Args[0].([]any)
				callees = append(callees, ids)
			}
			if lastErr == nil && answers[0] == answers[1] && len(callees[0]) == 1 && len(callees[1]) == 1 &&
				fmt.Sprint(callees[0][0]) == fmt.Sprint(callees[1][0]) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s after the heal: answered by %v, callees %v, last error %v; want one callee everywhere", p, answers, callees, lastErr)
			}
			time.Sleep(20 * time.Millisecond)
		}
		kept[answers[0]]++
		// The loser's client (ours announces registration_revocation) was told, and why.
		for name, reg := range regs[p] {
			if name == answers[0] {
				if why := reg.RevokedReason(); why != "" {
					t.Fatalf("%s: the kept callee on %s was told it was revoked (%s)", p, name, why)
				}
				continue
			}
			select {
			case <-reg.Revoked():
			case <-time.After(5 * time.Second):
				t.Fatalf("%s: the revoked callee on %s was not told", p, name)
			}
			if why := reg.RevokedReason(); why != "wamp.error.procedure_already_exists" {
				t.Fatalf("%s: the revoked callee on %s was told %q", p, name, why)
			}
		}
	}
	t.Logf("kept per router: %v", kept)
}
