package bench

import (
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/loadgen"
)

// TestRunClusterInProcess runs two tiny scenarios on a single node and on a cluster in
// this process (2 proxies, 3 routers, real TCP links), and checks that the cluster run
// went through both proxies and that the report has the cluster table.
func TestRunClusterInProcess(t *testing.T) {
	var scs []Scenario
	for _, n := range []string{"fanout-10", "rpc-16"} {
		s, _ := Lookup(n)
		scs = append(scs, s)
	}
	dir := filepath.Join(t.TempDir(), "out")
	var log bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := RunAll(ctx, Config{Scenarios: scs, Duration: 300 * time.Millisecond, Warmup: 100 * time.Millisecond,
		Router: &InProcess{}, RouterName: "in-process", Cluster: &InProcessCluster{}, ClusterName: "in-process cluster",
		OutDir: dir, Log: &log})
	if err != nil {
		t.Fatalf("RunAll: %v\n%s", err, log.String())
	}
	if res.Cluster != "in-process cluster" || len(res.Runs) != 2 {
		t.Fatalf("cluster %q, %d runs", res.Cluster, len(res.Runs))
	}
	for _, r := range res.Runs {
		o := r.Cluster
		if !o.OK() {
			t.Errorf("%s: no cluster result: %+v\n%s", r.Scenario, o, log.String())
			continue
		}
		lr := o.Result
		if lr.Delivered <= 0 || lr.Errors != 0 || lr.Lost != 0 {
			t.Errorf("%s: delivered %d errors %d lost %d: %q", r.Scenario, lr.Delivered, lr.Errors, lr.Lost, lr.ErrorSamples)
		}
		if len(lr.URLs) != 2 || strings.Count(o.URL, ",") != 1 || len(lr.SessionsPerURL) != 2 ||
			lr.SessionsPerURL[0] == 0 || lr.SessionsPerURL[1] == 0 {
			t.Errorf("%s: urls %q (%q), sessions per URL %v: want both proxies used", r.Scenario, lr.URLs, o.URL, lr.SessionsPerURL)
		}
		if !r.Switchyard.OK() || len(r.Switchyard.Result.URLs) != 0 {
			t.Errorf("%s: single-node outcome %+v", r.Scenario, r.Switchyard)
		}
	}
	md, _ := os.ReadFile(filepath.Join(dir, "results.md"))
	for _, want := range []string{"### The same scenarios on a cluster: in-process cluster", "| scenario | single msgs/s | cluster msgs/s |", "| fanout-10 |", "| rpc-16 |"} {
		if !bytes.Contains(md, []byte(want)) {
			t.Errorf("results.md lacks %q:\n%s", want, md)
		}
	}
	back, err := ReadJSON(filepath.Join(dir, "results.json"))
	if err != nil || back.Cluster != res.Cluster || !back.Runs[0].Cluster.OK() {
		t.Errorf("results.json lost the cluster runs: %v", err)
	}
}

// TestClusterTable checks the ratios and the proxies + routers split on fixed figures.
func TestClusterTable(t *testing.T) {
	single := &Outcome{Result: &loadgen.Result{Scenario: "pubsub", MsgsPerSec: 1e6, Delivered: 1e7,
		Latency: &loadgen.Latency{P99Us: 2000}, Router: &loadgen.RouterStats{CPUPerMsgUs: 0.5}}}
	cluster := &Outcome{Nodes: []NodeProc{{"router1", 11}, {"router2", 12}, {"proxy1", 21}, {"proxy2", 22}},
		Result: &loadgen.Result{Scenario: "pubsub", MsgsPerSec: 5e5, Delivered: 1e7, Latency: &loadgen.Latency{P99Us: 3000},
			Router: &loadgen.RouterStats{CPUSeconds: 6, CPUPerMsgUs: 0.6, Processes: []loadgen.ProcessStats{
				{PID: 11, CPUSeconds: 3}, {PID: 12, CPUSeconds: 0}, {PID: 21, CPUSeconds: 1}, {PID: 22, CPUSeconds: 2}}}}}
	res := &Results{Cluster: "test cluster", Runs: []Run{
		{Scenario: "fanout-10", Switchyard: single, Cluster: cluster},
		{Scenario: "rpc-64", Switchyard: single, Cluster: &Outcome{Error: "boom"}},
		{Scenario: "idle-10k", Switchyard: single}, // not run on the cluster: no row
	}}
	q := res.Runs[0].ClusterRatio()
	if math.Abs(q.CPUPerMsg-1.2) > 1e-9 || math.Abs(q.Throughput-0.5) > 1e-9 {
		t.Errorf("ratio %+v, want CPU 1.2, throughput 0.5", q)
	}
	if q := res.Runs[1].ClusterRatio(); !math.IsNaN(q.CPUPerMsg) {
		t.Errorf("failed cluster run ratio %+v, want NaN", q)
	}
	var b strings.Builder
	WriteClusterTable(&b, res)
	for _, want := range []string{
		"| fanout-10 | 1,000,000 | 500,000 | 2.00 ms | 3.00 ms | 0.50 µs | 0.60 µs | 0.30 + 0.30 µs | 1.20× | 0.50× | 0/0 |",
		"| rpc-64 | 1,000,000 | error: boom |",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
	if strings.Contains(b.String(), "idle-10k") {
		t.Errorf("a scenario without a cluster run has a row:\n%s", b.String())
	}
	res.Cluster = ""
	b.Reset()
	WriteClusterTable(&b, res)
	if b.Len() != 0 {
		t.Errorf("no cluster, yet a table:\n%s", b.String())
	}
}

// TestClusterSubprocess builds switchyard and launches the example cluster of `init
// --cluster` as five processes on free ports, as `bench run --cluster` does, then runs a
// short pubsub through both proxies with the CPU of every process summed.
func TestClusterSubprocess(t *testing.T) {
	bin := switchyardBin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	logPath := filepath.Join(t.TempDir(), "cluster-test.log")
	r, err := (&ClusterSubprocess{Bin: bin}).Launch(ctx, logPath)
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = r.Stop()
		}
	}()
	nodes := r.(namedRouter).Nodes()
	if len(r.URLs()) != 2 || len(r.PIDs()) != 5 || len(nodes) != 5 {
		t.Fatalf("urls %q pids %v nodes %v", r.URLs(), r.PIDs(), nodes)
	}
	s, _ := Lookup("fanout-10")
	o := s.Options(r.URLs(), r.PIDs(), 500*time.Millisecond, 200*time.Millisecond)
	lr, err := loadgen.Run(ctx, s.Kind, o)
	if err != nil {
		t.Fatal(err)
	}
	if lr.Delivered <= 0 || lr.Errors != 0 || lr.Lost != 0 {
		t.Errorf("delivered %d errors %d lost %d: %q", lr.Delivered, lr.Errors, lr.Lost, lr.ErrorSamples)
	}
	if lr.SessionsPerURL[0] != 6 || lr.SessionsPerURL[1] != 5 {
		t.Errorf("sessions per proxy %v, want [6 5]", lr.SessionsPerURL)
	}
	if rs := lr.Router; rs == nil || len(rs.Processes) != 5 || rs.CPUSeconds <= 0 || rs.RSSBytes <= 0 {
		t.Errorf("router stats over the cluster: %+v", rs)
	}
	stopped = true
	if err := r.Stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
	for _, n := range nodes {
		if err := syscall.Kill(n.PID, 0); err == nil {
			t.Errorf("%s (pid %d) still runs after Stop", n.Name, n.PID)
		}
		if _, err := os.Stat(strings.TrimSuffix(logPath, ".log") + "-" + n.Name + ".log"); err != nil {
			t.Errorf("%s: log not kept: %v", n.Name, err)
		}
	}
}
