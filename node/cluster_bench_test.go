package node

import (
	"context"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/client"
	"github.com/switchyard-wamp/switchyard/codec"
	"github.com/switchyard-wamp/switchyard/link"
)

// linkStats sums the counters of every link end of the cluster (both ends of each link:
// a link's frames out are its peer's frames in).
func (tc *testCluster) linkStats() link.LinkStats {
	var t link.LinkStats
	for _, r := range tc.routers {
		t.Add(r.LinkStats())
	}
	for _, p := range tc.proxies {
		for _, m := range tc.members {
			t.Add(p.Links.Pool(m.Name).LinkStats())
		}
	}
	return t
}

// reportLinkIO reports the link frames per write and per read between two snapshots.
func reportLinkIO(b *testing.B, s0, s1 link.LinkStats) {
	if w := s1.Writes - s0.Writes; w > 0 {
		b.ReportMetric(float64(s1.FramesOut-s0.FramesOut)/float64(w), "link-frames/write")
	}
	if r := s1.Reads - s0.Reads; r > 0 {
		b.ReportMetric(float64(s1.FramesIn-s0.FramesIn)/float64(r), "link-frames/read")
	}
}

// cpuTime is the process's user+system CPU time so far (getrusage): every node of the
// in-process cluster and the clients.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkClusterFanOutLinks publishes through a 3-router, 2-proxy cluster to N
// subscribers spread over every router and both proxies, and reports the link frames and
// bytes per published event (the goal: flat in N, since a PUBLISH crosses to each
// interested router once and an EVENT crosses each router-to-proxy link once with its
// list of target sessions) next to ns/op.
//
//	go test -run '^$' -bench ClusterFanOutLinks -benchtime 2000x ./node/
func BenchmarkClusterFanOutLinks(b *testing.B) {
	for _, n := range []int{1, 10, 100, 1000} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) {
			tc := startCluster(b, clusterOpts{routers: 3, proxies: 2, spread: spread3})
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var delivered atomic.Int64
			for i := range n {
				s := tc.connect(i%2, codec.JSON, false)
				if _, err := s.Subscribe(ctx, "bench.fanout", func(*client.Event) { delivered.Add(1) }, nil); err != nil {
					b.Fatal(err)
				}
			}
			pub := tc.connect(0, codec.JSON, false)
			// Warm up: every router has the interest.
			for delivered.Load() < int64(n) {
				if err := pub.Publish(ctx, "bench.fanout", []any{"warm"}, nil, client.Acknowledge()); err != nil {
					b.Fatal(err)
				}
				time.Sleep(10 * time.Millisecond)
			}
			time.Sleep(50 * time.Millisecond)
			delivered.Store(0)
			s0 := tc.linkStats()
			f0, b0 := s0.FramesOut, s0.BytesOut
			b.ResetTimer()
			cpu0 := cpuTime()
			for range b.N {
				if err := pub.Publish(ctx, "bench.fanout", []any{"payload-of-some-sixty-four-bytes-................................"}, nil); err != nil {
					b.Fatal(err)
				}
			}
			want := int64(b.N) * int64(n)
			for delivered.Load() < want && ctx.Err() == nil {
				time.Sleep(time.Millisecond)
			}
			b.StopTimer()
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/event")
			s1 := tc.linkStats()
			reportLinkIO(b, s0, s1)
			f1, b1 := s1.FramesOut, s1.BytesOut
			b.ReportMetric(float64(f1-f0)/float64(b.N), "link-frames/event")
			b.ReportMetric(float64(b1-b0)/float64(b.N), "link-bytes/event")
			b.ReportMetric(float64(delivered.Load())/float64(b.N), "deliveries/event")
		})
	}
}

// BenchmarkClusterCall: calls through a proxy to a callee on the same router (spread 1)
// and, with routers=2 and spread 2, often on the other one; 64 callers, one call in
// flight each. For profiles of the proxy/link/router path:
//
//	go test -run '^$' -bench ClusterCall -benchtime 20000x -cpuprofile /tmp/cpu.out ./node/
func BenchmarkClusterCall(b *testing.B) {
	for _, routers := range []int{1, 2} {
		b.Run(fmt.Sprintf("routers=%d", routers), func(b *testing.B) {
			tc := startCluster(b, clusterOpts{routers: routers, proxies: 1,
				spread: func(string, string) int { return routers }})
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			callee := tc.connect(0, codec.JSON, false)
			if _, err := callee.Register(ctx, "bench.echo", func(_ context.Context, inv *client.Invocation) (*client.Result, error) {
				return &client.Result{Args: inv.Args}, nil
			}, nil, client.InlineInvocations()); err != nil {
				b.Fatal(err)
			}
			callers := make(chan *client.Session, 64)
			for range 64 {
				callers <- tc.connect(0, codec.JSON, false)
			}
			b.SetParallelism(32)
			s0 := tc.linkStats()
			b.ResetTimer()
			cpu0 := cpuTime()
			b.RunParallel(func(pb *testing.PB) {
				s := <-callers
				for pb.Next() {
					if _, err := s.Call(ctx, "bench.echo", []any{1}, nil, nil); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			// The clients' CPU is in it too (same process): compare A/B, not with the
			// cluster processes of bench run --cluster.
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/call")
			reportLinkIO(b, s0, tc.linkStats())
		})
	}
}
