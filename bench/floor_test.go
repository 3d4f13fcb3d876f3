package bench

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/loadgen"
)

// TestFloorScenarioShapes: the scenarios issue #15's rows added are listed and have the
// shapes their names say; every row's scenario (and baseline) exists.
func TestFloorScenarioShapes(t *testing.T) {
	for _, tc := range []struct {
		name, kind                                     string
		pubs, subs, topics, callers, callees, inflight int
		rate                                           float64
	}{
		{name: "fanout-1000-1k", kind: "pubsub", pubs: 1, subs: 1000, topics: 1, rate: 1000},
		{name: "rpc-64x8", kind: "rpc", callers: 64, callees: 1, inflight: 8},
		{name: "echo-1", kind: "echo", callers: 1, inflight: 1},
		{name: "floor-64", kind: "echo", callers: 64, inflight: 1},
		{name: "floor-1", kind: "echo", callers: 1, inflight: 1},
		{name: "rpc-1", kind: "rpc", callers: 1, callees: 1, inflight: 1},
		{name: "rpc-64", kind: "rpc", callers: 64, callees: 1, inflight: 1},
		{name: "fanout-10", kind: "pubsub", pubs: 1, subs: 10, topics: 1},
		{name: "fanout-100", kind: "pubsub", pubs: 1, subs: 100, topics: 1},
	} {
		s, ok := Lookup(tc.name)
		if !ok || !slices.Contains(Names(), tc.name) {
			t.Errorf("%s is not listed", tc.name)
			continue
		}
		if s.Kind != tc.kind {
			t.Errorf("%s: kind %q, want %q", tc.name, s.Kind, tc.kind)
		}
		if _, ok := loadgen.Lookup(s.Kind); !ok {
			t.Errorf("%s: loadgen has no %q scenario", tc.name, s.Kind)
		}
		o := s.Options([]string{"ws://127.0.0.1:1/ws"}, nil, 0, 0)
		if o.Publishers != tc.pubs || o.Subscribers != tc.subs || o.Topics != tc.topics || o.Callers != tc.callers ||
			o.Callees != tc.callees || o.Inflight != tc.inflight || o.Rate != tc.rate {
			t.Errorf("%s: publishers %d subscribers %d topics %d callers %d callees %d inflight %d rate %g", tc.name,
				o.Publishers, o.Subscribers, o.Topics, o.Callers, o.Callees, o.Inflight, o.Rate)
		}
		if s.Duration != DefaultDuration || s.Warmup != DefaultWarmup {
			t.Errorf("%s: duration %v warmup %v", tc.name, s.Duration, s.Warmup)
		}
	}
	for _, r := range FloorRows() {
		for _, n := range []string{r.Scenario, r.Baseline} {
			if _, ok := Lookup(n); n != "" && !ok {
				t.Errorf("row %q: no scenario %q", r.Label, n)
			}
		}
	}
	var runs []string
	for _, names := range FloorRuns() {
		runs = append(runs, strings.Join(names, " "))
	}
	want := []string{"rpc-64 floor-64", "rpc-64x8", "rpc-1 echo-1", "floor-1", "fanout-1000-1k", "fanout-10", "fanout-100", "idle-10k"}
	if !slices.Equal(runs, want) {
		t.Errorf("FloorRuns = %q, want %q", runs, want)
	}
}

// result is a loadgen result with the figures the floor table reads.
func result(cpuUs, rate, p50Us, p99Us float64) *Outcome {
	return &Outcome{Result: &loadgen.Result{MsgsPerSec: rate, Latency: &loadgen.Latency{P50Us: p50Us, P99Us: p99Us},
		Router: &loadgen.RouterStats{CPUPerMsgUs: cpuUs}}}
}

func resultsOf(runs ...Run) *Results { return &Results{Runs: runs} }

// TestFloorTable: medians over the rounds per side, head/base of the medians, and the
// rpc-1 / echo-1 p50 ratio taken within each run (never across rounds).
func TestFloorTable(t *testing.T) {
	base := []*Results{
		resultsOf(Run{Scenario: "rpc-64", Switchyard: result(18, 40000, 1500, 3000)}),
		resultsOf(Run{Scenario: "rpc-64", Switchyard: result(20, 38000, 1600, 3100)}),
		resultsOf(Run{Scenario: "rpc-64", Switchyard: result(19, 45000, 1400, 9000)}),
		// rpc-1 with its echo in the same run: ratios 160/40 = 4 and 150/60 = 2.5.
		resultsOf(Run{Scenario: "rpc-1", Switchyard: result(100, 6000, 160, 400)}, Run{Scenario: "echo-1", Switchyard: result(30, 20000, 40, 90)}),
		resultsOf(Run{Scenario: "rpc-1", Switchyard: result(110, 6200, 150, 380)}, Run{Scenario: "echo-1", Switchyard: result(30, 15000, 60, 90)}),
		// A failed run counts for nothing.
		resultsOf(Run{Scenario: "rpc-1", Switchyard: &Outcome{Error: "boom"}}),
	}
	head := []*Results{
		resultsOf(Run{Scenario: "rpc-64", Switchyard: result(6, 80000, 700, 2000)}),
		resultsOf(Run{Scenario: "rpc-64", Switchyard: result(5, 90000, 650, 1800)}),
		resultsOf(Run{Scenario: "rpc-1", Switchyard: result(25, 12000, 80, 200)}, Run{Scenario: "echo-1", Switchyard: result(30, 20000, 40, 90)}),
		resultsOf(Run{Scenario: "rpc-1", Switchyard: result(20, 12000, 90, 200)}, Run{Scenario: "echo-1", Switchyard: result(30, 20000, 50, 90)}),
	}
	lines := FloorLines(base, head)
	line := func(sc string) FloorLine {
		i := slices.IndexFunc(lines, func(l FloorLine) bool { return l.Row.Scenario == sc })
		if i < 0 {
			t.Fatalf("no line for %s", sc)
		}
		return lines[i]
	}
	near := func(what string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-9 && !(math.IsNaN(got) && math.IsNaN(want)) {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	rpc64 := line("rpc-64")
	near("rpc-64 base cpu", rpc64.CPU.Base, 19) // median of 18, 20, 19
	near("rpc-64 head cpu", rpc64.CPU.Head, 5.5)
	near("rpc-64 cpu ratio", rpc64.CPU.Ratio, 5.5/19)
	near("rpc-64 rate ratio", rpc64.Rate.Ratio, 85000.0/40000)
	near("rpc-64 p99 base", rpc64.P99.Base, 3100)
	if rpc64.CPU.BaseN != 3 || rpc64.CPU.HeadN != 2 {
		t.Errorf("rpc-64 rounds %d/%d", rpc64.CPU.BaseN, rpc64.CPU.HeadN)
	}
	near("rpc-64 vs baseline", rpc64.VsBasis.Base, math.NaN())
	rpc1 := line("rpc-1")
	near("rpc-1 p50/echo base", rpc1.VsBasis.Base, (4+2.5)/2) // per run, then the median
	near("rpc-1 p50/echo head", rpc1.VsBasis.Head, (2+1.8)/2)
	near("rpc-1 base p50", rpc1.P50.Base, 155)
	if rpc1.P50.BaseN != 2 {
		t.Errorf("rpc-1: %d base rounds, want 2 (the failed run has no figures)", rpc1.P50.BaseN)
	}
	// rpc-1 has a value in both rounds of each side: head/base per round, 25/100 and
	// 20/110; rpc-64's rounds (3 base, 2 head) do not pair.
	near("rpc-1 cpu per round", rpc1.CPU.PerRound, (0.25+20.0/110)/2)
	near("rpc-1 cpu round min", rpc1.CPU.RoundMin, 20.0/110)
	near("rpc-1 cpu round max", rpc1.CPU.RoundMax, 0.25)
	near("rpc-64 cpu per round", rpc64.CPU.PerRound, math.NaN())
	near("echo-1 p50 head", line("echo-1").P50.Head, 45)
	near("fanout-10 cpu", line("fanout-10").CPU.Base, math.NaN())

	var b bytes.Buffer
	WriteFloorTable(&b, base, head)
	md := b.String()
	for _, want := range []string{
		"| RPC, 64 callers, 1 call in flight each | rpc-64 | 19.0 µs → 5.50 µs (0.29×) | 40,000 → 85,000 (2.12×) |",
		"| 3.25× → 1.90× | p50 ≤ 3× echo p50; ≤ 25 µs per call | 2 |",
		"(0.21×; per round 0.22×, 0.18–0.25×)",
		"| fanout-10 | – | – | – | – | – |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("table lacks %q:\n%s", want, md)
		}
	}
	if n := strings.Count(md, "\n"); n != 2+len(FloorRows()) {
		t.Errorf("%d lines, want header + %d rows:\n%s", n, len(FloorRows()), md)
	}

	// The same from files laid out as bench/ab-floor.sh writes them.
	dir := t.TempDir()
	for side, rs := range map[string][]*Results{"base": base, "head": head} {
		for i, res := range rs {
			p := filepath.Join(dir, side, string(rune('a'+i)), "results.json")
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := WriteJSON(p, res); err != nil {
				t.Fatal(err)
			}
		}
	}
	rb, rh, err := ReadFloorDir(dir)
	if err != nil || len(rb) != len(base) || len(rh) != len(head) {
		t.Fatalf("ReadFloorDir: %d base %d head, %v", len(rb), len(rh), err)
	}
	var b2 bytes.Buffer
	WriteFloorTable(&b2, rb, rh)
	if b2.String() != md {
		t.Errorf("table from the files differs:\n%s\nwant\n%s", b2.String(), md)
	}
}

// TestRunEchoInProcess: rpc-1 and echo-1 in one run; echo-1 runs on an echo server (in
// this process) and reports a round trip and a rate, and it does not run against the
// target: there is no router to compare.
func TestRunEchoInProcess(t *testing.T) {
	var scs []Scenario
	for _, n := range []string{"rpc-1", "echo-1"} {
		s, _ := Lookup(n)
		scs = append(scs, s)
	}
	var log bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := RunAll(ctx, Config{Scenarios: scs, Duration: 300 * time.Millisecond, Warmup: 100 * time.Millisecond,
		Router: &InProcess{}, Target: "ws://127.0.0.1:1/ws", OutDir: t.TempDir(), Log: &log})
	if err != nil {
		t.Fatalf("RunAll: %v\n%s", err, log.String())
	}
	if len(res.Runs) != 2 {
		t.Fatalf("%d runs", len(res.Runs))
	}
	rpc, echo := res.Runs[0], res.Runs[1]
	if !rpc.Switchyard.OK() || rpc.Target == nil {
		t.Errorf("rpc-1: %+v, target %+v", rpc.Switchyard, rpc.Target)
	}
	if echo.Target != nil || echo.Cluster != nil {
		t.Errorf("echo-1 ran against the target or a cluster: %+v %+v", echo.Target, echo.Cluster)
	}
	o := echo.Switchyard
	if !o.OK() {
		t.Fatalf("echo-1: error %q skipped %q\n%s", o.Error, o.Skipped, log.String())
	}
	r := o.Result
	if r.Scenario != "echo" || r.Delivered <= 0 || r.MsgsPerSec <= 0 || r.Errors != 0 || r.Latency == nil || r.Latency.P50Us <= 0 {
		t.Errorf("echo-1: %s delivered %d, %.0f msgs/s, errors %d %q, latency %+v", r.Scenario, r.Delivered, r.MsgsPerSec, r.Errors, r.ErrorSamples, r.Latency)
	}
	if !strings.Contains(log.String(), "echo-1         echo") {
		t.Errorf("log does not name the echo server:\n%s", log.String())
	}
}

var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// switchyardBin builds cmd/switchyard once for the package's tests.
func switchyardBin(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the switchyard binary")
	}
	binOnce.Do(func() {
		if binDir, binErr = os.MkdirTemp("", "bench-test-bin"); binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "switchyard")
		if out, err := exec.Command("go", "build", "-o", binPath, "../cmd/switchyard").CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// TestEchoSubprocess: `bench run` starts `switchyard loadgen sink --echo` (and, for the
// floor scenarios, `--echo --epoll`) as a process of its own, whose CPU loadgen reads per
// echoed message; Stop ends it.
func TestEchoSubprocess(t *testing.T) {
	bin := switchyardBin(t)
	for _, epoll := range []bool{false, true} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		logPath := filepath.Join(t.TempDir(), "echo.log")
		var l Launcher = &EchoSubprocess{Bin: bin}
		name := "echo-1"
		if epoll {
			l, name = floorLauncher(l), "floor-1"
		}
		r, err := l.Launch(ctx, logPath)
		if err != nil {
			t.Fatal(err)
		}
		pid := r.PIDs()[0]
		s, _ := Lookup(name)
		if s.Floor != epoll {
			t.Fatalf("%s: Floor = %v", name, s.Floor)
		}
		lr, err := loadgen.Run(ctx, s.Kind, s.Options(r.URLs(), r.PIDs(), 500*time.Millisecond, -1))
		stopErr := r.Stop()
		if err != nil {
			t.Fatal(err)
		}
		if stopErr != nil {
			t.Errorf("%s: stop: %v", name, stopErr)
		}
		if lr.Delivered <= 0 || lr.Errors != 0 || lr.Latency == nil {
			t.Errorf("%s: delivered %d errors %d %q latency %+v", name, lr.Delivered, lr.Errors, lr.ErrorSamples, lr.Latency)
		}
		if rs := lr.Router; rs == nil || rs.PID != pid || rs.CPUSeconds <= 0 || rs.CPUPerMsgUs <= 0 {
			t.Errorf("%s: echo server CPU: %+v", name, rs)
		}
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("%s: echo server pid %d still runs after Stop", name, pid)
		}
		out, _ := os.ReadFile(logPath)
		if got := strings.Contains(string(out), "epoll"); got != epoll {
			t.Errorf("%s: the echo server's log says epoll: %v, want %v:\n%s", name, got, epoll, out)
		}
	}
}
