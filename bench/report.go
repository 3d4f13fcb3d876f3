package bench

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/switchyard-wamp/switchyard/loadgen"
)

// Ratio is switchyard against the target in one scenario.
type Ratio struct {
	// Throughput: switchyard msgs/s / target msgs/s (above 1: switchyard is faster).
	Throughput float64
	// P99: switchyard p99 / target p99 (below 1: switchyard answers sooner).
	P99 float64
}

// Ratio returns switchyard/target for throughput and p99; a figure is NaN when either
// side lacks it (no target, a skipped or failed run, a zero denominator).
func (r Run) Ratio() Ratio {
	q := Ratio{Throughput: math.NaN(), P99: math.NaN()}
	if !r.Switchyard.OK() || !r.Target.OK() {
		return q
	}
	s, t := r.Switchyard.Result, r.Target.Result
	q.Throughput = ratio(s.MsgsPerSec, t.MsgsPerSec)
	q.P99 = ratio(p99(s), p99(t))
	return q
}

func ratio(a, b float64) float64 {
	if a <= 0 || b <= 0 {
		return math.NaN()
	}
	return a / b
}

// p99 of a result in microseconds (0: none).
func p99(r *loadgen.Result) float64 {
	if r == nil || r.Latency == nil {
		return 0
	}
	return r.Latency.P99Us
}

func p50(r *loadgen.Result) float64 {
	if r == nil || r.Latency == nil {
		return 0
	}
	return r.Latency.P50Us
}

// WriteMarkdown writes a dated header and the results table; chart, when not empty, is
// the chart's path relative to the Markdown file.
func WriteMarkdown(w io.Writer, res *Results, chart string) {
	fmt.Fprintf(w, "## %s, commit %s\n\n", res.Date.Format("2006-01-02 15:04 MST"), res.Commit)
	fmt.Fprintf(w, "- machine: %s, %d CPUs, %.1f GiB RAM, %s\n", res.Machine.CPU, res.Machine.CPUs,
		float64(res.Machine.MemBytes)/(1<<30), res.Machine.OS)
	fmt.Fprintf(w, "- Go: %s; router: %s\n", res.GoVersion, res.Router)
	fmt.Fprintf(w, "- load average at the start: %s (the machine may be shared)\n", orDash(res.LoadAvg))
	win := "10 s measured after a 2 s warm-up (idle-10k: sessions held 3 s)"
	if res.Duration > 0 {
		win = fmt.Sprintf("%v measured per scenario", res.Duration)
	}
	fmt.Fprintf(w, "- load: loopback WebSocket, %s, %d-byte payloads, fresh router per scenario; %s\n", res.Serializer, res.Size, win)
	if res.Target != "" {
		fmt.Fprintf(w, "- target: %s; ratio = switchyard / target (msgs/s: above 1 is better; p99: below 1 is better)\n", res.Target)
	}
	if chart != "" {
		fmt.Fprintf(w, "\n![throughput and p99 against subscribers and callers](%s)\n", chart)
	}
	fmt.Fprintln(w)
	WriteTable(w, res)
	if res.Cluster != "" {
		fmt.Fprintf(w, "\n### The same scenarios on a cluster: %s\n\n", res.Cluster)
		fmt.Fprintln(w, "Each scenario ran on a fresh cluster right after the single node above, with the loadgen")
		fmt.Fprintln(w, "sessions spread round-robin over the proxies. Cluster CPU/msg is the CPU of every proxy and")
		fmt.Fprintln(w, "router process summed, per delivered message; ratio = cluster / single node (CPU/msg: below")
		fmt.Fprintln(w, "1.3 is the goal; msgs/s: above 1 is better).")
		fmt.Fprintln(w)
		WriteClusterTable(w, res)
	}
}

// WriteTable writes the Markdown results table.
func WriteTable(w io.Writer, res *Results) {
	hdr := []string{"scenario", "msgs/s", "delivered", "p50", "p99", "router CPU/msg", "RSS/session", "errors/lost"}
	align := []string{"---", "--:", "--:", "--:", "--:", "--:", "--:", "--:"}
	if res.Target != "" {
		hdr = append(hdr, "target msgs/s", "target p99", "ratio msgs/s", "ratio p99")
		align = append(align, "--:", "--:", "--:", "--:")
	}
	row := func(cells []string) { fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | ")) }
	row(hdr)
	row(align)
	for _, r := range res.Runs {
		cells := outcomeCells(r.Scenario, r.Switchyard)
		if res.Target != "" {
			var t []string
			if r.Target.OK() {
				t = []string{Count(r.Target.Result.MsgsPerSec), Micros(p99(r.Target.Result))}
			} else {
				t = []string{why(r.Target), ""}
			}
			q := r.Ratio()
			cells = append(cells, t[0], t[1], Times(q.Throughput), Times(q.P99))
		}
		row(cells)
	}
}

func outcomeCells(name string, o *Outcome) []string {
	if !o.OK() {
		return []string{name, why(o), "", "", "", "", "", ""}
	}
	r := o.Result
	cpu, rss := "–", "–"
	if rs := r.Router; rs != nil {
		if rs.CPUPerMsgUs > 0 {
			cpu = Micros(rs.CPUPerMsgUs)
		}
		if rs.RSSPerSessionBytes > 0 {
			rss = Bytes(rs.RSSPerSessionBytes)
		}
	}
	rate := Count(r.MsgsPerSec)
	if r.Scenario == "connect" {
		rate += " joins"
	}
	return []string{name, rate, Count(float64(r.Delivered)), Micros(p50(r)), Micros(p99(r)),
		cpu, rss, fmt.Sprintf("%d/%d", r.Errors, r.Lost)}
}

func why(o *Outcome) string {
	switch {
	case o == nil:
		return "not run"
	case o.Skipped != "":
		return "skipped: " + mdEscape(o.Skipped)
	case o.Error != "":
		return "error: " + mdEscape(o.Error)
	}
	return "no result"
}

func mdEscape(s string) string { return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s) }

func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

// Count formats a rate with thousands separators ("1,234,567").
func Count(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "–"
	}
	s := strconv.FormatInt(int64(math.Round(v)), 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// Micros formats microseconds: "12.3 µs", "456 µs", "1.23 ms"; "–" for 0.
func Micros(us float64) string {
	switch {
	case us <= 0 || math.IsNaN(us):
		return "–"
	case us < 100:
		return fmt.Sprintf("%.1f µs", us)
	case us < 1000:
		return fmt.Sprintf("%.0f µs", us)
	case us < 1e6:
		return fmt.Sprintf("%.2f ms", us/1e3)
	}
	return fmt.Sprintf("%.2f s", us/1e6)
}

// Bytes formats a byte count: "812 B", "3.4 KiB", "1.2 MiB".
func Bytes(b float64) string {
	switch {
	case b < 1024:
		return fmt.Sprintf("%.0f B", b)
	case b < 1<<20:
		return fmt.Sprintf("%.1f KiB", b/1024)
	}
	return fmt.Sprintf("%.1f MiB", b/(1<<20))
}

// Times formats a ratio: "1.85×"; "–" for NaN.
func Times(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "–"
	}
	return fmt.Sprintf("%.2f×", v)
}
