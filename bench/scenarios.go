// Package bench is switchyard's end-to-end benchmark harness: it starts a fresh router
// per scenario, drives it with the loadgen package over loopback, and writes the results
// as JSON, a Markdown table and an SVG chart. `switchyard bench` and `make bench-e2e` run it.
package bench

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/switchyard-wamp/switchyard/loadgen"
)

// Scenario groups: the chart has one panel per group with an X axis.
const (
	GroupFanout = "fanout" // X = subscribers
	GroupRPC    = "rpc"    // X = callers
	GroupIdle   = "idle"   // X = sessions
	GroupMixed  = "mixed"
	// GroupFloor: the shapes issue #15 adds (more calls in flight, a paced fan-out, the
	// echo baseline); X is still subscribers or callers, but they are not on the chart,
	// whose panels have one point per X.
	GroupFloor = "floor"
)

// Scenario is one fixed entry of the benchmark: a loadgen scenario (Kind) with its shape.
type Scenario struct {
	Name string // fanout-10, rpc-64, idle-10k, ...
	// Kind is the loadgen scenario: pubsub, rpc, connect, mixed, or echo (which runs
	// against loadgen's echo server, not a router: see Config.Echo).
	Kind  string
	Group string // GroupFanout, GroupRPC, GroupIdle, GroupMixed, GroupFloor
	X     int    // subscribers, callers or sessions: the chart's X value
	// Duration is the default measured window (connect: how long the sessions are held).
	Duration time.Duration
	// Warmup is the default load before the window (pubsub, rpc, mixed).
	Warmup time.Duration
	// Floor: an echo scenario against loadgen's epoll echo server (`loadgen sink --echo
	// --epoll`: one read and one write per message, the least a server spends) instead
	// of its goroutine-per-connection one.
	Floor bool
	about string
	shape func(o *loadgen.Options)
}

// About says in a few words what the scenario does.
func (s Scenario) About() string { return s.about }

// Default timings of the scenarios.
const (
	DefaultDuration = 10 * time.Second
	DefaultWarmup   = 2 * time.Second
	DefaultIdleHold = 3 * time.Second
	DefaultSize     = 64
)

func fanout(n int) Scenario {
	return Scenario{Name: fmt.Sprintf("fanout-%d", n), Kind: "pubsub", Group: GroupFanout, X: n,
		Duration: DefaultDuration, Warmup: DefaultWarmup,
		about: fmt.Sprintf("1 publisher, %d subscriber(s) on one topic, as fast as possible without loss", n),
		shape: func(o *loadgen.Options) { o.Publishers, o.Subscribers, o.Topics = 1, n, 1 }}
}

func rpc(n int) Scenario {
	return Scenario{Name: fmt.Sprintf("rpc-%d", n), Kind: "rpc", Group: GroupRPC, X: n,
		Duration: DefaultDuration, Warmup: DefaultWarmup,
		about: fmt.Sprintf("%d caller(s), 1 call in flight each, 1 echo callee", n),
		shape: func(o *loadgen.Options) { o.Callers, o.Callees, o.Inflight = n, 1, 1 }}
}

// Issue #15's rows that the fan-out and rpc series do not cover.
const (
	// FloorPubRate is fanout-1000-1k's publication rate: 1000 subscribers at ~1k
	// publications/s, each connection getting an event about every millisecond.
	FloorPubRate = 1000
	// FloorInflight is rpc-64x8's calls in flight per caller.
	FloorInflight = 8
)

// scenarios is the fixed list, in run order.
var scenarios = []Scenario{
	fanout(1), fanout(10), fanout(100), fanout(1000),
	{Name: "fanout-1000-1k", Kind: "pubsub", Group: GroupFloor, X: 1000, Duration: DefaultDuration, Warmup: DefaultWarmup,
		about: fmt.Sprintf("1 publisher at %d publications/s, 1000 subscribers on one topic: a low rate per connection", FloorPubRate),
		shape: func(o *loadgen.Options) { o.Publishers, o.Subscribers, o.Topics, o.Rate = 1, 1000, 1, FloorPubRate }},
	rpc(1), rpc(16), rpc(64),
	{Name: "rpc-64x8", Kind: "rpc", Group: GroupFloor, X: 64, Duration: DefaultDuration, Warmup: DefaultWarmup,
		about: fmt.Sprintf("64 callers, %d calls in flight each, 1 echo callee", FloorInflight),
		shape: func(o *loadgen.Options) { o.Callers, o.Callees, o.Inflight = 64, 1, FloorInflight }},
	{Name: "echo-1", Kind: "echo", Group: GroupFloor, X: 1, Duration: DefaultDuration, Warmup: DefaultWarmup,
		about: "rpc-1's baseline, no router: 1 connection to loadgen's echo server, 1 message (rpc-1's CALL) in flight",
		shape: func(o *loadgen.Options) { o.Callers, o.Inflight = 1, 1 }},
	{Name: "floor-64", Kind: "echo", Group: GroupFloor, X: 64, Floor: true, Duration: DefaultDuration, Warmup: DefaultWarmup,
		about: "rpc-64's syscall floor, no router: 64 connections to loadgen's epoll echo server, 1 message in flight each",
		shape: func(o *loadgen.Options) { o.Callers, o.Inflight = 64, 1 }},
	{Name: "floor-1", Kind: "echo", Group: GroupFloor, X: 1, Floor: true, Duration: DefaultDuration, Warmup: DefaultWarmup,
		about: "rpc-1's syscall floor, no router: 1 connection to loadgen's epoll echo server, 1 message in flight",
		shape: func(o *loadgen.Options) { o.Callers, o.Inflight = 1, 1 }},
	{Name: "idle-10k", Kind: "connect", Group: GroupIdle, X: 10000, Duration: DefaultIdleHold,
		about: "join 10,000 idle sessions (64 joining workers), hold them: joins/s, router RSS per session",
		shape: func(o *loadgen.Options) { o.Sessions, o.Concurrency = 10000, 64 }},
	{Name: "mixed", Kind: "mixed", Group: GroupMixed, Duration: DefaultDuration, Warmup: DefaultWarmup,
		about: "loadgen's mixed scenario: pub/sub and RPC at once",
		shape: func(o *loadgen.Options) {}},
}

// Scenarios returns the fixed scenario list in run order.
func Scenarios() []Scenario { return slices.Clone(scenarios) }

// Lookup returns the scenario called name.
func Lookup(name string) (Scenario, bool) {
	i := slices.IndexFunc(scenarios, func(s Scenario) bool { return s.Name == name })
	if i < 0 {
		return Scenario{}, false
	}
	return scenarios[i], true
}

// Select resolves scenario names ("all" or none: every scenario) in run order, without
// duplicates.
func Select(names []string) ([]Scenario, error) {
	if len(names) == 0 || slices.Contains(names, "all") {
		return Scenarios(), nil
	}
	var out []Scenario
	for _, n := range names {
		s, ok := Lookup(n)
		if !ok {
			return nil, fmt.Errorf("bench: unknown scenario %q (one of %s, or all)", n, strings.Join(Names(), ", "))
		}
		if !slices.ContainsFunc(out, func(x Scenario) bool { return x.Name == n }) {
			out = append(out, s)
		}
	}
	return out, nil
}

// Names returns the scenario names in run order.
func Names() []string {
	names := make([]string, len(scenarios))
	for i, s := range scenarios {
		names[i] = s.Name
	}
	return names
}

// Options returns the loadgen options of s against urls (the sessions spread over
// them) with the router CPU and RSS read from pids (summed): 64-byte payloads, JSON
// (the loadgen default serializer), the scenario's window and warm-up unless duration
// or warmup override them (0: the scenario's default; warmup < 0: none).
func (s Scenario) Options(urls []string, pids []int, duration, warmup time.Duration) loadgen.Options {
	o := loadgen.Options{URLs: slices.Clone(urls), Size: DefaultSize, RouterPIDs: slices.Clone(pids),
		Duration: s.Duration, Warmup: s.Warmup}
	if duration > 0 {
		o.Duration = duration
	}
	if warmup != 0 && s.Warmup > 0 {
		o.Warmup = max(warmup, 0)
	}
	if s.shape != nil {
		s.shape(&o)
	}
	return o
}
