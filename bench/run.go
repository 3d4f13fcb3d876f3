package bench

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/switchyard-wamp/switchyard/codec"
	"github.com/switchyard-wamp/switchyard/loadgen"
)

// Results is results.json: one benchmark run.
type Results struct {
	Date      time.Time `json:"date"`
	Machine   Machine   `json:"machine"`
	GoVersion string    `json:"go_version"`
	Commit    string    `json:"commit"`
	// LoadAvg is /proc/loadavg's 1, 5 and 15 minute averages when the run started: the
	// machine may be shared, and other load skews the figures.
	LoadAvg    string        `json:"load_avg"`
	Duration   time.Duration `json:"duration_ns,omitempty"` // --duration override (0: per scenario)
	Serializer string        `json:"serializer"`
	Size       int           `json:"size"`
	Router     string        `json:"router"`           // how switchyard ran: subprocess BIN, in-process
	Target     string        `json:"target,omitempty"` // --target URL
	// Cluster describes the cluster every scenario also ran on (--cluster), "" when none.
	Cluster string `json:"cluster,omitempty"`
	Runs    []Run  `json:"runs"`
}

// Machine describes the host.
type Machine struct {
	CPU      string `json:"cpu"`
	CPUs     int    `json:"cpus"`
	MemBytes int64  `json:"mem_bytes"`
	OS       string `json:"os"`
}

// Run is one scenario against switchyard and, with --target, against the target.
type Run struct {
	Scenario string `json:"scenario"`
	Group    string `json:"group"`
	X        int    `json:"x,omitempty"`
	// Switchyard: the run against a fresh switchyard node; for an echo scenario, against
	// a fresh echo server (the baseline has no router).
	Switchyard *Outcome `json:"switchyard"`
	Target     *Outcome `json:"target,omitempty"`
	// Cluster: the same scenario through the proxies of a switchyard cluster, right
	// after the single node (--cluster); its router CPU is summed over every process.
	Cluster *Outcome `json:"cluster,omitempty"`
}

// Outcome is one scenario against one router: a loadgen Result, or why there is none.
type Outcome struct {
	URL     string          `json:"url,omitempty"`      // the URLs, comma-separated (a cluster: one per proxy)
	Nodes   []NodeProc      `json:"nodes,omitempty"`    // a cluster: which node each measured pid is
	LoadAvg string          `json:"load_avg,omitempty"` // when the scenario started
	Skipped string          `json:"skipped,omitempty"`  // the scenario does not exist (yet)
	Error   string          `json:"error,omitempty"`
	Result  *loadgen.Result `json:"result,omitempty"`
}

// OK reports whether o holds a result.
func (o *Outcome) OK() bool { return o != nil && o.Result != nil }

// Config is a benchmark run.
type Config struct {
	Scenarios []Scenario
	Duration  time.Duration // measured window of every scenario (0: each scenario's default)
	Warmup    time.Duration // warm-up of pubsub/rpc/mixed (0: DefaultWarmup; < 0: none)
	// Serializer of the load (0: JSON).
	Serializer codec.Serializer
	Router     Launcher // starts a fresh switchyard per scenario
	RouterName string   // how the router runs, for the results
	Target     string   // optional second router URL, run with the same scenarios
	TargetPID  int      // its process id, for CPU and RSS (0: not measured)
	// Cluster, when not nil, starts a fresh switchyard cluster per scenario, which runs
	// right after the single node; ClusterName describes it for the results.
	Cluster     Launcher
	ClusterName string
	// Echo starts loadgen's echo server for the echo scenarios (nil: in this process,
	// InProcessEcho). They run on it alone: not on the cluster, not against the target.
	Echo   Launcher
	OutDir string // results.json, results.md, chart.svg, router logs
	Log    io.Writer
}

// RunAll runs every scenario of cfg and writes results.json, results.md and chart.svg
// into cfg.OutDir. A scenario that fails or that loadgen does not know is recorded as
// such; RunAll fails only when nothing can be written or ctx ends.
func RunAll(ctx context.Context, cfg Config) (*Results, error) {
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	if err := os.MkdirAll(cfg.OutDir, 0o755); err != nil {
		return nil, err
	}
	if _, err := loadgen.RaiseFileLimit(); err != nil {
		fmt.Fprintln(cfg.Log, "bench: cannot raise the open file limit:", err)
	}
	ser := cfg.Serializer
	if ser == 0 {
		ser = codec.JSON
	}
	res := &Results{Date: time.Now().UTC().Truncate(time.Second), Machine: ReadMachine(),
		GoVersion: runtime.Version(), Commit: Commit(), LoadAvg: LoadAvg(),
		Duration: cfg.Duration, Serializer: ser.String(), Size: DefaultSize,
		Router: cfg.RouterName, Target: cfg.Target}
	if cfg.Cluster != nil {
		res.Cluster = cmp.Or(cfg.ClusterName, "cluster")
	}
	fmt.Fprintf(cfg.Log, "bench: %s, %d CPUs, %s, commit %s, load average %s -> %s\n",
		res.Machine.CPU, res.Machine.CPUs, res.GoVersion, res.Commit, res.LoadAvg, cfg.OutDir)
	for _, sc := range cfg.Scenarios {
		if err := ctx.Err(); err != nil {
			return res, errors.Join(err, WriteReport(cfg.OutDir, res))
		}
		run := Run{Scenario: sc.Name, Group: sc.Group, X: sc.X}
		if sc.Kind == "echo" { // the baseline: Switchyard holds the echo server's outcome
			var echo Launcher = &InProcessEcho{}
			if cfg.Echo != nil {
				echo = cfg.Echo
			}
			if sc.Floor {
				echo = floorLauncher(echo)
			}
			run.Switchyard = runOne(ctx, cfg, sc, ser, echo, "echo", "echo-"+sc.Name+".log")
		} else {
			run.Switchyard = runOne(ctx, cfg, sc, ser, cfg.Router, "switchyard", "router-"+sc.Name+".log")
			if cfg.Cluster != nil {
				run.Cluster = runOne(ctx, cfg, sc, ser, cfg.Cluster, "cluster", "cluster-"+sc.Name+".log")
			}
			if cfg.Target != "" {
				run.Target = runOne(ctx, cfg, sc, ser, targetLauncher{cfg.Target, cfg.TargetPID}, "target", "")
			}
		}
		res.Runs = append(res.Runs, run)
		// Write as we go: a long run interrupted still leaves its results.
		if err := WriteJSON(filepath.Join(cfg.OutDir, "results.json"), res); err != nil {
			return res, err
		}
	}
	return res, WriteReport(cfg.OutDir, res)
}

type targetLauncher external

func (t targetLauncher) Launch(context.Context, string) (Router, error) { return external(t), nil }

// runOne runs sc on a router l launches, its log (if any) in cfg.OutDir/logName.
func runOne(ctx context.Context, cfg Config, sc Scenario, ser codec.Serializer, l Launcher, who, logName string) *Outcome {
	out := &Outcome{LoadAvg: LoadAvg()}
	logf := func(format string, a ...any) {
		fmt.Fprintf(cfg.Log, "%-14s %-10s "+format+"\n", append([]any{sc.Name, who}, a...)...)
	}
	if _, ok := loadgen.Lookup(sc.Kind); !ok {
		out.Skipped = fmt.Sprintf("loadgen has no %q scenario", sc.Kind)
		logf("skipped: %s", out.Skipped)
		return out
	}
	logPath := ""
	if logName != "" {
		logPath = filepath.Join(cfg.OutDir, logName)
	}
	r, err := l.Launch(ctx, logPath)
	if err != nil {
		out.Error = err.Error()
		logf("error: %v", err)
		return out
	}
	out.URL = strings.Join(r.URLs(), ",")
	if nr, ok := r.(namedRouter); ok {
		out.Nodes = nr.Nodes()
	}
	o := sc.Options(r.URLs(), r.PIDs(), cfg.Duration, cfg.Warmup)
	o.Serializer = ser
	lr, err := loadgen.Run(ctx, sc.Kind, o)
	if stopErr := r.Stop(); stopErr != nil && err == nil {
		logf("stopping the router: %v", stopErr)
	}
	switch {
	case err != nil && strings.Contains(err.Error(), "unknown scenario"):
		out.Skipped = err.Error()
		logf("skipped: %v", err)
	case err != nil:
		out.Error = err.Error()
		logf("error: %v", err)
	default:
		out.Result = lr
		logf("%s", summary(lr))
	}
	return out
}

func summary(r *loadgen.Result) string {
	s := fmt.Sprintf("%.0f msgs/s  delivered=%d errors=%d lost=%d", r.MsgsPerSec, r.Delivered, r.Errors, r.Lost)
	if l := r.Latency; l != nil {
		s += fmt.Sprintf("  p50=%.0fus p99=%.0fus", l.P50Us, l.P99Us)
	}
	if rs := r.Router; rs != nil {
		s += fmt.Sprintf("  routerCPU=%.2fus/msg rss=%.1fMiB", rs.CPUPerMsgUs, float64(rs.RSSBytes)/(1<<20))
	}
	if len(r.ErrorSamples) > 0 {
		s += fmt.Sprintf("  first error: %s", r.ErrorSamples[0])
	}
	return s
}

// WriteJSON writes res as indented JSON to path.
func WriteJSON(path string, res *Results) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// ReadJSON reads a results.json.
func ReadJSON(path string) (*Results, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var res Results
	if err := json.Unmarshal(b, &res); err != nil {
		return nil, fmt.Errorf("bench: %s: %w", path, err)
	}
	return &res, nil
}

// WriteReport writes results.md and chart.svg into dir.
func WriteReport(dir string, res *Results) error {
	var md strings.Builder
	WriteMarkdown(&md, res, "chart.svg")
	if err := os.WriteFile(filepath.Join(dir, "results.md"), []byte(md.String()), 0o644); err != nil {
		return err
	}
	var svg strings.Builder
	WriteSVG(&svg, res)
	return os.WriteFile(filepath.Join(dir, "chart.svg"), []byte(svg.String()), 0o644)
}

// ReadMachine describes this host from /proc/cpuinfo and /proc/meminfo.
func ReadMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), OS: runtime.GOOS + "/" + runtime.GOARCH}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if m.CPU == "" {
		m.CPU = runtime.GOARCH
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
				if kb, err := strconv.ParseInt(f[1], 10, 64); err == nil {
					m.MemBytes = kb << 10
				}
				break
			}
		}
	}
	return m
}

// LoadAvg returns the 1, 5 and 15 minute load averages ("" when unknown).
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// Commit returns the short git commit of the working directory (with "-dirty" when
// tracked files are modified), else the binary's vcs.revision, else "unknown".
func Commit() string {
	if out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		c := strings.TrimSpace(string(out))
		if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(strings.TrimSpace(string(st))) > 0 {
			c += "-dirty"
		}
		return c
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		var rev, mod string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				mod = s.Value
			}
		}
		if len(rev) > 7 {
			rev = rev[:7]
		}
		if rev != "" {
			if mod == "true" {
				rev += "-dirty"
			}
			return rev
		}
	}
	return "unknown"
}
