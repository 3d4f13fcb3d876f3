package node

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/client"
	"github.com/switchyard-wamp/switchyard/codec"
)

// TestClusterLinksOnEventLoops: every link end of a cluster (the proxies' dialed links,
// the routers' accepted and dialed ones; the routers have no client listeners, so they
// start event loops for their links alone) is read on an event loop, and
// LinkGoroutines (cluster.link_reads: goroutines) keeps a reader goroutine per link;
// calls cross proxies and routers either way.
func TestClusterLinksOnEventLoops(t *testing.T) {
	for _, goroutines := range []bool{false, true} {
		t.Run(fmt.Sprint("goroutines=", goroutines), func(t *testing.T) {
			tc := startCluster(t, clusterOpts{routers: 2, proxies: 2, linkGoroutines: goroutines,
				spread: func(string, string) int { return 2 }})
			settle(t, "link ends on event loops", func() error {
				st := tc.linkStats()
				want := st.Links
				if goroutines {
					want = 0
				}
				if st.Links < 16 || st.OnLoops != want {
					return fmt.Errorf("%d of %d link ends on event loops, want %d", st.OnLoops, st.Links, want)
				}
				return nil
			})
			on := tc.sessionsOnEveryRouter(t)
			callee := on[tc.routers[0]]
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if _, err := callee.Register(ctx, "com.example.echo", func(_ context.Context, inv *client.Invocation) (*client.Result, error) {
				return &client.Result{Args: inv.Args}, nil
			}, nil); err != nil {
				t.Fatal(err)
			}
			for i := range 2 {
				caller := tc.connect(i, codec.MsgPack, i == 1)
				for k := range 20 {
					res, err := caller.Call(ctx, "com.example.echo", []any{k}, nil, nil)
					if err != nil {
						t.Fatalf("call %d through proxy %d: %v", k, i, err)
					}
					if len(res.Args) != 1 || fmt.Sprint(res.Args[0]) != fmt.Sprint(k) {
						t.Fatalf("call %d through proxy %d: got %v", k, i, res.Args)
					}
				}
			}
		})
	}
}
