package bench

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestScenarioList(t *testing.T) {
	want := []string{"fanout-1", "fanout-10", "fanout-100", "fanout-1000", "fanout-1000-1k", "rpc-1", "rpc-16", "rpc-64", "rpc-64x8", "echo-1", "floor-64", "floor-1", "idle-10k", "mixed"}
	if got := Names(); !slices.Equal(got, want) {
		t.Fatalf("Names() = %v, want %v", got, want)
	}
	url := "ws://127.0.0.1:1/ws"
	for _, tc := range []struct {
		name                       string
		kind                       string
		x                          int
		pubs, subs, callers, sess  int
		duration, warmup           time.Duration
		overrideDur, overrideWarm  time.Duration
		wantDuration, wantWarmupOv time.Duration
	}{
		{name: "fanout-1", kind: "pubsub", x: 1, pubs: 1, subs: 1, duration: 10 * time.Second, warmup: 2 * time.Second},
		{name: "fanout-1000", kind: "pubsub", x: 1000, pubs: 1, subs: 1000, duration: 10 * time.Second, warmup: 2 * time.Second},
		{name: "rpc-16", kind: "rpc", x: 16, callers: 16, duration: 10 * time.Second, warmup: 2 * time.Second},
		{name: "rpc-64", kind: "rpc", x: 64, callers: 64, duration: 10 * time.Second, warmup: 2 * time.Second},
		{name: "idle-10k", kind: "connect", x: 10000, sess: 10000, duration: 3 * time.Second},
		{name: "mixed", kind: "mixed", duration: 10 * time.Second, warmup: 2 * time.Second},
	} {
		s, ok := Lookup(tc.name)
		if !ok {
			t.Fatalf("Lookup(%q) failed", tc.name)
		}
		if s.Kind != tc.kind || s.X != tc.x {
			t.Errorf("%s: kind %q x %d, want %q %d", tc.name, s.Kind, s.X, tc.kind, tc.x)
		}
		o := s.Options([]string{url}, []int{42}, 0, 0)
		if !slices.Equal(o.URLs, []string{url}) || !slices.Equal(o.RouterPIDs, []int{42}) || o.Size != 64 || o.Serializer != 0 {
			t.Errorf("%s: urls %q pids %v size %d serializer %v", tc.name, o.URLs, o.RouterPIDs, o.Size, o.Serializer)
		}
		if o.Publishers != tc.pubs || o.Subscribers != tc.subs || o.Callers != tc.callers || o.Sessions != tc.sess {
			t.Errorf("%s: publishers %d subscribers %d callers %d sessions %d", tc.name, o.Publishers, o.Subscribers, o.Callers, o.Sessions)
		}
		if o.Duration != tc.duration || o.Warmup != tc.warmup {
			t.Errorf("%s: duration %v warmup %v, want %v %v", tc.name, o.Duration, o.Warmup, tc.duration, tc.warmup)
		}
		// Overrides: --duration applies to all, --warmup only where there is one.
		o = s.Options([]string{url}, nil, 300*time.Millisecond, 100*time.Millisecond)
		wantWarm := time.Duration(0)
		if tc.warmup > 0 {
			wantWarm = 100 * time.Millisecond
		}
		if o.Duration != 300*time.Millisecond || o.Warmup != wantWarm {
			t.Errorf("%s: overridden duration %v warmup %v", tc.name, o.Duration, o.Warmup)
		}
		if o = s.Options([]string{url}, nil, 0, -1); o.Warmup != 0 {
			t.Errorf("%s: warmup -1 gives %v, want none", tc.name, o.Warmup)
		}
	}

	all, err := Select([]string{"all"})
	if err != nil || len(all) != len(want) {
		t.Errorf("Select(all) = %d scenarios, %v", len(all), err)
	}
	if none, _ := Select(nil); len(none) != len(want) {
		t.Errorf("Select(nil) = %d scenarios", len(none))
	}
	some, err := Select([]string{"rpc-1", "fanout-10", "rpc-1"})
	if err != nil || len(some) != 2 || some[0].Name != "rpc-1" || some[1].Name != "fanout-10" {
		t.Errorf("Select(rpc-1 fanout-10 rpc-1) = %v, %v", some, err)
	}
	if _, err := Select([]string{"fanout-7"}); err == nil {
		t.Error("Select(fanout-7) did not fail")
	}
}

func synthetic(t *testing.T) *Results {
	t.Helper()
	res, err := ReadJSON("testdata/synthetic.json")
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestRatio(t *testing.T) {
	res := synthetic(t)
	q := res.Runs[0].Ratio() // fanout-1: target has half the rate and twice the p99
	if math.Abs(q.Throughput-2) > 1e-9 || math.Abs(q.P99-0.5) > 1e-9 {
		t.Errorf("fanout-1 ratio = %+v, want throughput 2, p99 0.5", q)
	}
	for _, name := range []string{"idle-10k", "mixed"} { // target failed / skipped
		i := slices.IndexFunc(res.Runs, func(r Run) bool { return r.Scenario == name })
		if q := res.Runs[i].Ratio(); !math.IsNaN(q.Throughput) || !math.IsNaN(q.P99) {
			t.Errorf("%s ratio = %+v, want NaN", name, q)
		}
	}
	r := res.Runs[0]
	r.Target = nil
	if q := r.Ratio(); !math.IsNaN(q.Throughput) {
		t.Errorf("ratio without target = %+v", q)
	}
	if got := Times(2); got != "2.00×" {
		t.Errorf("Times(2) = %q", got)
	}
	if got := Times(math.NaN()); got != "–" {
		t.Errorf("Times(NaN) = %q", got)
	}
}

func TestMarkdown(t *testing.T) {
	res := synthetic(t)
	var b strings.Builder
	WriteMarkdown(&b, res, "chart.svg")
	md := b.String()
	for _, want := range []string{
		"## 2026-01-02 03:04 UTC, commit abc1234",
		"Synthetic CPU <test> & co, 2 CPUs, 23.4 GiB RAM",
		"go1.26.8", "load average at the start: 0.50 0.40 0.30",
		"![throughput and p99 against subscribers and callers](chart.svg)",
		"| scenario | msgs/s | delivered | p50 | p99 | router CPU/msg | RSS/session | errors/lost | target msgs/s | target p99 | ratio msgs/s | ratio p99 |",
		"| fanout-1 | 150,000 | 1,500,000 | 1.80 ms | 7.00 ms | 0.9 µs | – | 0/0 | 75,000 | 14.00 ms | 2.00× | 0.50× |",
		"| rpc-64 | 24,000 | 240,000 | 2.60 ms | 9.00 ms | 40.0 µs | – | 0/0 | 6,000 | 27.00 ms | 4.00× | 0.33× |",
		"| idle-10k | 4,600 joins | 46,000 | 12.00 ms | 38.00 ms | 124 µs | 2.1 KiB | 0/0 | error: loadgen: joining",
		`| mixed | skipped: loadgen has no "mixed" scenario |`,
	} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown lacks %q:\n%s", want, md)
		}
	}
	// Every table row has the same number of cells.
	var cols int
	for line := range strings.Lines(md) {
		if !strings.HasPrefix(line, "|") {
			continue
		}
		n := strings.Count(line, "|") - strings.Count(line, `\|`)
		if cols == 0 {
			cols = n
		} else if n != cols {
			t.Errorf("row has %d separators, header %d: %s", n, cols, line)
		}
	}
	if cols != 13 {
		t.Errorf("header has %d separators, want 13", cols)
	}

	// Without a target: no ratio columns.
	res.Target = ""
	b.Reset()
	WriteTable(&b, res)
	if strings.Contains(b.String(), "ratio") || !strings.HasPrefix(b.String(), "| scenario | msgs/s |") {
		t.Errorf("table without target:\n%s", b.String())
	}
}

func TestFormatting(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{Count(0), "0"}, {Count(999.6), "1,000"}, {Count(1234567), "1,234,567"}, {Count(-1234), "-1,234"},
		{Micros(0), "–"}, {Micros(12.34), "12.3 µs"}, {Micros(456.4), "456 µs"}, {Micros(1234), "1.23 ms"}, {Micros(2.5e6), "2.50 s"},
		{Bytes(812), "812 B"}, {Bytes(3500), "3.4 KiB"}, {Bytes(3 << 20), "3.0 MiB"},
		{siCount(1), "1"}, {siCount(1000), "1k"}, {siCount(2e6), "2M"}, {siCount(16), "16"},
		{latencyLabel(50), "50 µs"}, {latencyLabel(2000), "2 ms"}, {latencyLabel(1e6), "1 s"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

func TestLogTicks(t *testing.T) {
	for _, tc := range []struct {
		min, max, lo, hi float64
		ticks            []float64
	}{
		{95e3, 120e3, 50e3, 200e3, []float64{50e3, 100e3, 200e3}},
		{100e3, 100e3, 50e3, 200e3, []float64{50e3, 100e3, 200e3}},
		{150e3, 1.3e6, 100e3, 2e6, []float64{100e3, 200e3, 500e3, 1e6, 2e6}},
		{370, 210e3, 100, 1e6, []float64{100, 1e3, 1e4, 1e5, 1e6}},
	} {
		lo, hi, ticks := logTicks(tc.min, tc.max)
		near := func(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(a, b) }
		if !near(lo, tc.lo) || !near(hi, tc.hi) || len(ticks) != len(tc.ticks) {
			t.Errorf("logTicks(%g, %g) = %g, %g, %v; want %g, %g, %v", tc.min, tc.max, lo, hi, ticks, tc.lo, tc.hi, tc.ticks)
			continue
		}
		for i := range ticks {
			if !near(ticks[i], tc.ticks[i]) {
				t.Errorf("logTicks(%g, %g) ticks %v, want %v", tc.min, tc.max, ticks, tc.ticks)
				break
			}
		}
	}
}

// svgDoc walks an SVG document with encoding/xml and collects what the tests look at.
type svgDoc struct {
	polylines []string // data-series of each polyline
	xticks    []string
	yticks    []string
	texts     []string
}

func parseSVG(t *testing.T, b []byte) svgDoc {
	t.Helper()
	var d svgDoc
	dec := xml.NewDecoder(bytes.NewReader(b))
	var stack []xml.StartElement
	root := ""
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("SVG does not parse as XML: %v", err)
		}
		switch e := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = e.Name.Local
				if e.Name.Space != "http://www.w3.org/2000/svg" {
					t.Errorf("root namespace %q", e.Name.Space)
				}
			}
			stack = append(stack, e)
			if e.Name.Local == "polyline" {
				d.polylines = append(d.polylines, attr(e, "data-series"))
				if pts := strings.Fields(attr(e, "points")); len(pts) == 0 {
					t.Errorf("polyline %q without points", attr(e, "data-series"))
				}
			}
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 && stack[len(stack)-1].Name.Local == "text" {
				s := strings.TrimSpace(string(e))
				d.texts = append(d.texts, s)
				switch attr(stack[len(stack)-1], "class") {
				case "xtick":
					d.xticks = append(d.xticks, s)
				case "ytick":
					d.yticks = append(d.yticks, s)
				}
			}
		}
	}
	if root != "svg" {
		t.Errorf("root element %q, want svg", root)
	}
	return d
}

func attr(e xml.StartElement, name string) string {
	for _, a := range e.Attr {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

func TestSVG(t *testing.T) {
	res := synthetic(t)
	var b bytes.Buffer
	WriteSVG(&b, res)
	d := parseSVG(t, b.Bytes())
	// Two panels x (throughput, p99) x (switchyard, target).
	wantSeries := []string{
		"switchyard throughput", "switchyard p99", "target throughput", "target p99",
		"switchyard throughput", "switchyard p99", "target throughput", "target p99",
	}
	if !slices.Equal(d.polylines, wantSeries) {
		t.Errorf("polylines %q, want %q", d.polylines, wantSeries)
	}
	if want := []string{"1", "10", "100", "1k", "1", "16", "64"}; !slices.Equal(d.xticks, want) {
		t.Errorf("x tick labels %q, want %q", d.xticks, want)
	}
	for _, want := range []string{"1M", "10 ms", "5k"} {
		if !slices.Contains(d.yticks, want) {
			t.Errorf("y tick labels %q lack %q", d.yticks, want)
		}
	}
	joined := strings.Join(d.texts, "\n")
	for _, want := range []string{"switchyard end to end", "Pub/sub fan-out", "RPC: N callers", "subscribers (log)",
		"callers (log)", "p99 latency (log)", "target throughput", "Synthetic CPU <test> & co", "abc1234"} {
		if !strings.Contains(joined, want) {
			t.Errorf("SVG text lacks %q", want)
		}
	}

	// Without the target, and with an empty RPC panel: one polyline per remaining series.
	res.Target = ""
	var runs []Run
	for _, r := range res.Runs {
		r.Target = nil
		if r.Group != GroupRPC {
			runs = append(runs, r)
		}
	}
	res.Runs = runs
	b.Reset()
	WriteSVG(&b, res)
	d = parseSVG(t, b.Bytes())
	if want := []string{"switchyard throughput", "switchyard p99"}; !slices.Equal(d.polylines, want) {
		t.Errorf("polylines %q, want %q", d.polylines, want)
	}
	if !slices.Contains(d.texts, "no data") {
		t.Error("empty RPC panel does not say no data")
	}
}

func TestReportFromJSON(t *testing.T) {
	dir := t.TempDir()
	res := synthetic(t)
	if err := WriteJSON(filepath.Join(dir, "results.json"), res); err != nil {
		t.Fatal(err)
	}
	back, err := ReadJSON(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteReport(dir, back); err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile("testdata/synthetic.json")
	var md1, md2 strings.Builder
	WriteMarkdown(&md1, res, "")
	WriteMarkdown(&md2, back, "")
	if md1.String() != md2.String() || len(want) == 0 {
		t.Error("results.json round trip changes the report")
	}
	for _, f := range []string{"results.md", "chart.svg"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// TestRunInProcess runs two tiny scenarios (and one loadgen does not know) against a
// router started in this process, and checks the files a run writes.
func TestRunInProcess(t *testing.T) {
	var scs []Scenario
	for _, n := range []string{"fanout-10", "rpc-1"} {
		s, _ := Lookup(n)
		scs = append(scs, s)
	}
	scs = append(scs, Scenario{Name: "nosuch-1", Kind: "nosuch", Group: "nosuch", X: 1, Duration: time.Second})
	dir := filepath.Join(t.TempDir(), "out")
	var log bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := RunAll(ctx, Config{Scenarios: scs, Duration: 300 * time.Millisecond, Warmup: 100 * time.Millisecond,
		Router: &InProcess{}, RouterName: "in-process", OutDir: dir, Log: &log})
	if err != nil {
		t.Fatalf("RunAll: %v\n%s", err, log.String())
	}
	if len(res.Runs) != 3 {
		t.Fatalf("%d runs, want 3", len(res.Runs))
	}
	for _, r := range res.Runs[:2] {
		o := r.Switchyard
		if !o.OK() {
			t.Errorf("%s: no result (error %q, skipped %q)\n%s", r.Scenario, o.Error, o.Skipped, log.String())
			continue
		}
		if o.Result.Delivered <= 0 || o.Result.Errors != 0 || o.Result.Lost != 0 {
			t.Errorf("%s: delivered %d errors %d lost %d: %q", r.Scenario, o.Result.Delivered, o.Result.Errors, o.Result.Lost, o.Result.ErrorSamples)
		}
		if o.Result.Router != nil {
			t.Errorf("%s: in-process router stats %+v, want none", r.Scenario, o.Result.Router)
		}
		if r.Target != nil {
			t.Errorf("%s: target outcome without a target", r.Scenario)
		}
	}
	if o := res.Runs[2].Switchyard; o.OK() || o.Skipped == "" {
		t.Errorf("unknown loadgen scenario: %+v, want skipped", o)
	}
	for _, f := range []string{"results.json", "results.md", "chart.svg"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil || len(b) == 0 {
			t.Errorf("%s not written: %v", f, err)
		}
	}
	back, err := ReadJSON(filepath.Join(dir, "results.json"))
	if err != nil || len(back.Runs) != 3 || back.GoVersion == "" || back.Machine.CPUs <= 0 || back.Commit == "" {
		t.Errorf("results.json: %+v, %v", back, err)
	}
	svg, _ := os.ReadFile(filepath.Join(dir, "chart.svg"))
	if d := parseSVG(t, svg); len(d.polylines) != 4 { // fan-out and RPC, one point each
		t.Errorf("chart polylines %q, want 4", d.polylines)
	}
	md, _ := os.ReadFile(filepath.Join(dir, "results.md"))
	for _, want := range []string{"| fanout-10 |", "| rpc-1 |", "| nosuch-1 | skipped:"} {
		if !bytes.Contains(md, []byte(want)) {
			t.Errorf("results.md lacks %q:\n%s", want, md)
		}
	}
}
