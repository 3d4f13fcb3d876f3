package bench

import (
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/switchyard-wamp/switchyard/loadgen"
)

// Issue #15 ("performance at the syscall floor") reports one table: for each shape users
// run, router CPU per operation, operations per second and latency, head against the
// commit before the work, from alternating rounds. bench/ab-floor.sh runs the rounds
// (`bench run` per row and side, the router from the base or the head build) into
// DIR/base/<round>-<row>/ and DIR/head/<round>-<row>/, and `switchyard bench floor DIR`
// prints the table from their results.json files (WriteFloorTable).

// FloorRow is one row of issue #15's table: a shape, the bench scenario that measures
// it, and the goal for it.
type FloorRow struct {
	Label    string // the shape, as the issue names it
	Scenario string // the bench scenario (bench run NAME)
	Goal     string // the goal for the row ("" for the baseline)
	// Baseline is the scenario run right after this one whose p50 divides this one's
	// ("echo-1" for rpc-1: the p50 / echo p50 ratio of the same round; "floor-64", the
	// epoll echo, for rpc-64); "" for none.
	Baseline string
}

var floorRows = []FloorRow{
	{Label: "RPC, 64 callers, 1 call in flight each", Scenario: "rpc-64", Baseline: "floor-64", Goal: "≤ 6 µs router CPU per call"},
	{Label: "the floor of RPC 64: epoll echo, 64 connections (no router; its CPU per message is the echo server's)", Scenario: "floor-64"},
	{Label: fmt.Sprintf("RPC, 64 callers, %d calls in flight each", FloorInflight), Scenario: "rpc-64x8", Goal: "≤ 3 µs per call"},
	{Label: "RPC, 1 caller", Scenario: "rpc-1", Baseline: "echo-1", Goal: "p50 ≤ 3× echo p50; ≤ 25 µs per call"},
	{Label: "WebSocket echo, 1 connection (no router: the baseline; its CPU is the echo server's)", Scenario: "echo-1"},
	{Label: "the floor of RPC 1: epoll echo, 1 connection (no router; a call costs the router at least two of its messages)", Scenario: "floor-1"},
	{Label: fmt.Sprintf("pub/sub, 1000 subscribers, %d publications/s", FloorPubRate), Scenario: "fanout-1000-1k", Goal: "≤ 0.4 µs per delivered event"},
	{Label: "pub/sub, 10 subscribers, as fast as possible", Scenario: "fanout-10", Goal: "≤ 0.25 µs per delivered event"},
	{Label: "pub/sub, 100 subscribers, as fast as possible", Scenario: "fanout-100", Goal: "≤ 0.25 µs per delivered event"},
	{Label: "joins (WebSocket upgrade + HELLO/WELCOME), 10,000 sessions", Scenario: "idle-10k", Goal: "≤ 30 µs per join; ≥ 30k joins/s from loadgen"},
}

// FloorRows returns issue #15's rows in table order. Safe for concurrent use.
func FloorRows() []FloorRow { return slices.Clone(floorRows) }

// FloorRuns returns the `bench run` invocations of one round, in order: each row's
// scenario, with its baseline in the same invocation (rpc-1 echo-1: the ratio's two
// figures minutes apart at most); a baseline is not run again on its own. Safe for
// concurrent use.
func FloorRuns() [][]string {
	var runs [][]string
	baselines := map[string]bool{}
	for _, r := range floorRows {
		if r.Baseline != "" {
			baselines[r.Baseline] = true
		}
	}
	for _, r := range floorRows {
		switch {
		case r.Baseline != "":
			runs = append(runs, []string{r.Scenario, r.Baseline})
		case !baselines[r.Scenario]:
			runs = append(runs, []string{r.Scenario})
		}
	}
	return runs
}

// ReadFloorDir reads the results.json files under dir/base and dir/head (one directory
// per round and run, any depth), in path order.
func ReadFloorDir(dir string) (base, head []*Results, err error) {
	read := func(side string) ([]*Results, error) {
		var out []*Results
		root := filepath.Join(dir, side)
		err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() || d.Name() != "results.json" {
				return nil
			}
			res, err := ReadJSON(path)
			if err != nil {
				return err
			}
			out = append(out, res)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("bench floor: %w", err)
		}
		return out, nil
	}
	if base, err = read("base"); err != nil {
		return nil, nil, err
	}
	if head, err = read("head"); err != nil {
		return nil, nil, err
	}
	return base, head, nil
}

// floorFigures is one side's figures of one row, one value per round that has them.
type floorFigures struct {
	cpu, rate, p50, p99, vsBaseline []float64
}

// collect gathers row's figures from the runs of one side. The baseline ratio is taken
// within each results.json (one `bench run` invocation), never across rounds.
func collect(row FloorRow, side []*Results) floorFigures {
	var f floorFigures
	find := func(res *Results, name string) *loadgen.Result {
		for _, r := range res.Runs {
			if r.Scenario == name && r.Switchyard.OK() {
				return r.Switchyard.Result
			}
		}
		return nil
	}
	add := func(dst *[]float64, v float64) {
		if v > 0 && !math.IsNaN(v) && !math.IsInf(v, 0) {
			*dst = append(*dst, v)
		}
	}
	for _, res := range side {
		r := find(res, row.Scenario)
		if r == nil {
			continue
		}
		add(&f.cpu, cpuPerMsg(r))
		add(&f.rate, r.MsgsPerSec)
		add(&f.p50, p50(r))
		add(&f.p99, p99(r))
		if row.Baseline != "" {
			if b := find(res, row.Baseline); b != nil {
				add(&f.vsBaseline, ratio(p50(r), p50(b)))
			}
		}
	}
	return f
}

// median of xs; NaN when empty.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// FloorFigure is one figure of a row: the medians over the rounds of each side and
// head/base of the medians (NaN where a side has no value). When both sides have a
// value in every round, also head/base within each round (base and head run one after
// the other in a round): their median and range. That figure holds up when the machine
// drifts during the rounds, which moves both sides' medians alike only if it hits
// every round alike.
type FloorFigure struct {
	Base, Head, Ratio float64
	BaseN, HeadN      int // rounds with a value
	// PerRound, RoundMin, RoundMax: the median, least and greatest of the rounds'
	// head/base; NaN when the rounds cannot be paired.
	PerRound, RoundMin, RoundMax float64
}

func floorFigure(base, head []float64) FloorFigure {
	f := FloorFigure{Base: median(base), Head: median(head), BaseN: len(base), HeadN: len(head),
		PerRound: math.NaN(), RoundMin: math.NaN(), RoundMax: math.NaN()}
	f.Ratio = ratio(f.Head, f.Base)
	if len(base) > 1 && len(base) == len(head) {
		rs := make([]float64, len(base))
		for i := range base {
			rs[i] = ratio(head[i], base[i])
		}
		f.PerRound, f.RoundMin, f.RoundMax = median(rs), slices.Min(rs), slices.Max(rs)
	}
	return f
}

// FloorLine is one row's figures: router CPU per operation (µs), operations per second,
// p50 and p99 (µs), and for a row with a baseline its p50 / the baseline's p50.
type FloorLine struct {
	Row                          FloorRow
	CPU, Rate, P50, P99, VsBasis FloorFigure
}

// FloorLines computes every row's figures from the rounds of each side. Safe for
// concurrent use.
func FloorLines(base, head []*Results) []FloorLine {
	lines := make([]FloorLine, len(floorRows))
	for i, row := range floorRows {
		b, h := collect(row, base), collect(row, head)
		lines[i] = FloorLine{Row: row, CPU: floorFigure(b.cpu, h.cpu), Rate: floorFigure(b.rate, h.rate),
			P50: floorFigure(b.p50, h.p50), P99: floorFigure(b.p99, h.p99), VsBasis: floorFigure(b.vsBaseline, h.vsBaseline)}
	}
	return lines
}

// WriteFloorTable writes issue #15's table as Markdown: per row, base → head
// (head/base) of the medians over the rounds, and the median and range of head/base
// within each round where the rounds pair up, for router CPU per operation (lower is
// better), operations per second, p50 and p99, and rpc-1's p50 / echo-1's p50 of the
// same round (the goal: at most 3). Safe for concurrent use.
func WriteFloorTable(w io.Writer, base, head []*Results) {
	rounds := func(f FloorFigure) int { return max(f.BaseN, f.HeadN) }
	fmt.Fprintln(w, "| shape | scenario | router CPU per op, base → head (head/base) | ops/s | p50 | p99 | p50 / echo p50 | goal | rounds |")
	fmt.Fprintln(w, "| --- | --- | --: | --: | --: | --: | --: | --- | --: |")
	for _, l := range FloorLines(base, head) {
		vs := "–"
		if l.Row.Baseline != "" {
			vs = fmt.Sprintf("%s → %s", Times(l.VsBasis.Base), Times(l.VsBasis.Head))
		}
		cells := []string{mdEscape(l.Row.Label), l.Row.Scenario,
			figureText(l.CPU, cpuMicros), figureText(l.Rate, Count), figureText(l.P50, Micros), figureText(l.P99, Micros),
			vs, orDash(l.Row.Goal), fmt.Sprint(rounds(l.Rate))}
		fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
	}
}

// figureText is "base → head (ratio×)", with "; per round median×, min–max×" when the
// rounds pair up.
func figureText(f FloorFigure, format func(float64) string) string {
	if math.IsNaN(f.Base) && math.IsNaN(f.Head) {
		return "–"
	}
	rounds := ""
	if !math.IsNaN(f.PerRound) {
		rounds = fmt.Sprintf("; per round %s, %.2f–%s", Times(f.PerRound), f.RoundMin, Times(f.RoundMax))
	}
	return fmt.Sprintf("%s → %s (%s%s)", nanDash(f.Base, format), nanDash(f.Head, format), Times(f.Ratio), rounds)
}

func nanDash(v float64, format func(float64) string) string {
	if math.IsNaN(v) {
		return "–"
	}
	return format(v)
}
