package loadgen

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/codec"
	"github.com/switchyard-wamp/switchyard/node"
)

// startCluster runs a small cluster in this process: two routers (link listeners only)
// and two proxies with a client listener each, over real TCP links on loopback.
func startCluster(t *testing.T) []*node.ProxyNode {
	t.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	var members []node.ClusterMember
	for _, name := range []string{"router1", "router2"} {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		members = append(members, node.ClusterMember{Name: name, Addr: l.Addr().String()})
		l.Close()
	}
	common := node.ClusterCommon{Secret: []byte("loadgen test secret"), Routers: members, Slots: 64, LinksPerPeer: 2}
	stop := func(f func(context.Context) error) {
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			_ = f(ctx)
		})
	}
	var routers []*node.RouterNode
	for _, m := range members {
		c := common
		c.Name = m.Name
		r, err := node.StartRouter(node.RouterNodeConfig{ClusterCommon: c, LinkAddr: m.Addr,
			Node: node.Config{NoListeners: true, Logger: quiet}})
		if err != nil {
			t.Fatal(err)
		}
		stop(r.Stop)
		routers = append(routers, r)
	}
	for _, r := range routers { // each sees the other live (REGISTER needs it)
		for deadline := time.Now().Add(5 * time.Second); len(r.Live()) < len(members); {
			if time.Now().After(deadline) {
				t.Fatalf("%s sees %v live", r.Name(), r.Live())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	var proxies []*node.ProxyNode
	for _, name := range []string{"proxy1", "proxy2"} {
		c := common
		c.Name = name
		p, err := node.StartProxy(node.ProxyNodeConfig{ClusterCommon: c,
			Node: node.Config{Listeners: []node.Listener{{Address: "127.0.0.1:0"}}, Logger: quiet}})
		if err != nil {
			t.Fatal(err)
		}
		stop(p.Stop)
		if !p.Links.WaitReady(5 * time.Second) {
			t.Fatalf("%s: links to the routers did not come up", name)
		}
		proxies = append(proxies, p)
	}
	return proxies
}

// TestClusterURLs runs every scenario through both proxies of a cluster (one by
// WebSocket, one by RawSocket, given as one comma-separated entry) and checks that each
// proxy carried sessions during the run, that the result says how many went where, and
// that the router CPU is summed over several --router-pid.
func TestClusterURLs(t *testing.T) {
	proxies := startCluster(t)
	urls := []string{proxies[0].Node.WebSocketURL() + "," + proxies[1].Node.RawSocketURL()}
	for _, tc := range []struct {
		name     string
		o        Options
		sessions int64 // joined in all
	}{
		// One publisher and one subscriber: one run-wide round-robin puts them on
		// different proxies.
		{"pubsub", Options{Publishers: 1, Subscribers: 1}, 2},
		{"pubsub", Options{Publishers: 2, Subscribers: 5, Topics: 2}, 7},
		{"rpc", Options{Callers: 3, Callees: 1, Inflight: 2}, 4},
		{"connect", Options{Sessions: 20, Concurrency: 4, Duration: 100 * time.Millisecond}, 20},
		{"mixed", Options{Subscribers: 2, Callers: 2, Serializer: codec.MsgPack}, 1 + 2 + 2 + 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.o
			o.URLs = urls
			o.RouterPIDs = []int{os.Getpid(), os.Getpid()} // the cluster runs in this process
			if o.Duration == 0 {
				o.Duration, o.Warmup = 400*time.Millisecond, 100*time.Millisecond
			}
			// The previous run's sessions are gone (closed without GOODBYE: the proxies
			// notice soon after), so what is sampled below is this run's.
			for deadline := time.Now().Add(5 * time.Second); proxies[0].Links.Sessions()+proxies[1].Links.Sessions() > 0; {
				if time.Now().After(deadline) {
					t.Fatalf("sessions of the previous run still open: %d, %d", proxies[0].Links.Sessions(), proxies[1].Links.Sessions())
				}
				time.Sleep(5 * time.Millisecond)
			}
			// Sample each proxy's forwarded sessions while the load runs.
			var peak [2]atomic.Int64
			done := make(chan struct{})
			var wg sync.WaitGroup
			wg.Go(func() {
				for {
					for i, p := range proxies {
						if n := int64(p.Links.Sessions()); n > peak[i].Load() {
							peak[i].Store(n)
						}
					}
					select {
					case <-done:
						return
					case <-time.After(5 * time.Millisecond):
					}
				}
			})
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			r, err := Run(ctx, tc.name, o)
			close(done)
			wg.Wait()
			if err != nil {
				t.Fatal(err)
			}
			if r.Errors != 0 || r.Lost != 0 {
				t.Errorf("errors %d lost %d: %q", r.Errors, r.Lost, r.ErrorSamples)
			}
			if r.Delivered <= 0 {
				t.Errorf("delivered %d", r.Delivered)
			}
			for i := range proxies {
				if peak[i].Load() == 0 {
					t.Errorf("proxy %d carried no session during the run (peaks %d, %d)", i+1, peak[0].Load(), peak[1].Load())
				}
			}
			if len(r.URLs) != 2 || len(r.SessionsPerURL) != 2 {
				t.Fatalf("result URLs %q, sessions per URL %v", r.URLs, r.SessionsPerURL)
			}
			if a, b := r.SessionsPerURL[0], r.SessionsPerURL[1]; a+b != tc.sessions || a == 0 || b == 0 || a-b > 1 || b-a > 1 {
				t.Errorf("sessions per URL %v, want %d spread evenly", r.SessionsPerURL, tc.sessions)
			}
			rs := r.Router
			if rs == nil || len(rs.Processes) != 2 {
				t.Fatalf("router stats: %+v", rs)
			}
			if sum := rs.Processes[0].CPUSeconds + rs.Processes[1].CPUSeconds; sum != rs.CPUSeconds || rs.RSSBytes != rs.Processes[0].RSSBytes+rs.Processes[1].RSSBytes {
				t.Errorf("router CPU %v s / RSS %d is not the sum of %+v", rs.CPUSeconds, rs.RSSBytes, rs.Processes)
			}
			t.Logf("%s: sessions per URL %v, proxy peaks %d %d, %d delivered", tc.name, r.SessionsPerURL, peak[0].Load(), peak[1].Load(), r.Delivered)
		})
	}
}
