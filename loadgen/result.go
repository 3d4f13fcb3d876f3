package loadgen

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Result is what a run measured. Counters other than Errors and Lost cover the measured
// window only (after Warmup); Errors and Lost cover the whole run.
type Result struct {
	Scenario string `json:"scenario"`
	// URL is the router URL, or the URLs comma-separated when there are several.
	URL string `json:"url"`
	// URLs and SessionsPerURL: with several URLs, each of them and how many sessions
	// joined through it (round-robin, so they differ by at most one per role unless a
	// join failed).
	URLs           []string `json:"urls,omitempty"`
	SessionsPerURL []int64  `json:"sessions_per_url,omitempty"`
	Realm          string   `json:"realm"`
	Serializer     string   `json:"serializer"`

	Publishers  int     `json:"publishers,omitempty"`
	Subscribers int     `json:"subscribers,omitempty"`
	Topics      int     `json:"topics,omitempty"`
	Callers     int     `json:"callers,omitempty"`
	Callees     int     `json:"callees,omitempty"`
	Inflight    int     `json:"inflight,omitempty"`
	Sessions    int     `json:"sessions,omitempty"`
	Concurrency int     `json:"concurrency,omitempty"`
	Size        int     `json:"size,omitempty"`
	Rate        float64 `json:"rate"`
	Ack         bool    `json:"ack,omitempty"`

	Elapsed time.Duration `json:"elapsed_ns"` // length of the measured window

	// Sent: publications, calls (echo: messages) or join attempts in the window.
	// Delivered: events received by subscribers, results received by callers, messages
	// echoed back, or sessions joined.
	Sent      int64 `json:"sent"`
	Delivered int64 `json:"delivered"`
	Errors    int64 `json:"errors"`
	// Lost: pubsub events expected (publications x matching subscribers) and never
	// delivered after the drain; rpc calls never answered.
	Lost int64 `json:"lost"`
	// Acked: pubsub with Ack, PUBLISHED replies in the window; Unacked: publications of
	// the whole run never acknowledged after the drain.
	Acked   int64 `json:"acked,omitempty"`
	Unacked int64 `json:"unacked,omitempty"`

	MsgsPerSec         float64 `json:"msgs_per_sec"`           // Delivered per second of the window
	MBPerSec           float64 `json:"mb_per_sec"`             // payload (args) megabytes (1e6) delivered per second
	SentPerSec         float64 `json:"sent_per_sec"`           // Sent per second of the window
	SentMBPerSec       float64 `json:"sent_mb_per_sec"`        // payload megabytes sent per second
	LoadgenCPUPerMsgUs float64 `json:"loadgen_cpu_per_msg_us"` // loadgen CPU us per message sent + delivered (connect: per join)

	// Frames and Writes: messages loadgen queued on its load connections in the window,
	// and the write syscalls that carried them (pubsub, rpc, mixed).
	Frames int64 `json:"frames,omitempty"`
	Writes int64 `json:"writes,omitempty"`

	// Latency: pubsub publish-to-event from the send time in the payload; rpc call
	// round trip; echo message round trip; connect dial-to-WELCOME. Only sends inside the window are counted.
	Latency *Latency `json:"latency,omitempty"`

	Router *RouterStats `json:"router,omitempty"`

	LoadgenCPUSeconds float64 `json:"loadgen_cpu_seconds"` // this process, over the window
	// HostCPUBusyPercent: all cores of the machine, busy over the window (/proc/stat);
	// well below 100 while router+loadgen do not account for it means other load.
	HostCPUBusyPercent float64 `json:"host_cpu_busy_percent"`
	HostCPUs           int     `json:"host_cpus"`

	ErrorSamples []string `json:"error_samples,omitempty"` // the first few distinct errors

	// Parts: mixed only, the pubsub and the rpc share, each with its own counters,
	// rates and latency (CPU figures are on the mixed Result).
	Parts []*Result `json:"parts,omitempty"`
}

// rates sets the per-second figures from the counters and Elapsed.
func (r *Result) rates() {
	s := r.Elapsed.Seconds()
	if s <= 0 {
		return
	}
	r.MsgsPerSec = float64(r.Delivered) / s
	r.SentPerSec = float64(r.Sent) / s
	if r.Scenario != "connect" {
		r.MBPerSec = r.MsgsPerSec * float64(r.Size) / 1e6
		r.SentMBPerSec = r.SentPerSec * float64(r.Size) / 1e6
	}
}

// Latency is a latency summary in microseconds.
type Latency struct {
	Count  uint64  `json:"count"`
	MinUs  float64 `json:"min_us"`
	MeanUs float64 `json:"mean_us"`
	P50Us  float64 `json:"p50_us"`
	P90Us  float64 `json:"p90_us"`
	P99Us  float64 `json:"p99_us"`
	P999Us float64 `json:"p999_us"`
	MaxUs  float64 `json:"max_us"`
}

// RouterStats is the router's cost, from /proc/<pid> (--router-pid). With several
// processes (a cluster's proxies and routers) the figures are their sums and Processes
// lists each.
type RouterStats struct {
	PID        int     `json:"pid"`         // the first process
	CPUSeconds float64 `json:"cpu_seconds"` // utime+stime over the window (10 ms ticks)
	CPUPercent float64 `json:"cpu_percent"` // of one core, over the window
	// CPUPerMsgUs: router CPU microseconds per delivered event, completed call, or join.
	CPUPerMsgUs    float64 `json:"cpu_per_msg_us"`
	RSSBeforeBytes int64   `json:"rss_before_bytes,omitempty"` // connect: before joining
	RSSBytes       int64   `json:"rss_bytes"`                  // at the end of the window (connect: after the hold)
	// RSSPerSessionBytes: connect only, (RSSBytes - RSSBeforeBytes) / sessions joined.
	RSSPerSessionBytes float64 `json:"rss_per_session_bytes,omitempty"`
	// Processes: with several --router-pid, each process's share.
	Processes []ProcessStats `json:"processes,omitempty"`
}

// ProcessStats is one router process's share of RouterStats.
type ProcessStats struct {
	PID        int     `json:"pid"`
	CPUSeconds float64 `json:"cpu_seconds"` // over the window
	RSSBytes   int64   `json:"rss_bytes"`   // at the end of the window
}

// WriteJSON writes r as indented JSON.
func (r *Result) WriteJSON(w io.Writer) error {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(r)
}

// Format writes r as a readable two-column table.
func (r *Result) Format(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, a ...any) { fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{k}, a...)...) }
	row("scenario", "%s", r.Scenario)
	if len(r.URLs) > 1 {
		var us []string
		for i, u := range r.URLs {
			if i < len(r.SessionsPerURL) {
				u += fmt.Sprintf(" (%d sessions)", r.SessionsPerURL[i])
			}
			us = append(us, u)
		}
		row("urls", "%s (realm %s, %s)", strings.Join(us, ", "), r.Realm, r.Serializer)
	} else {
		row("url", "%s (realm %s, %s)", r.URL, r.Realm, r.Serializer)
	}
	var shape []string
	add := func(name string, v int) {
		if v != 0 {
			shape = append(shape, fmt.Sprintf("%s=%d", name, v))
		}
	}
	add("publishers", r.Publishers)
	add("subscribers", r.Subscribers)
	add("topics", r.Topics)
	add("callers", r.Callers)
	add("callees", r.Callees)
	add("inflight", r.Inflight)
	add("sessions", r.Sessions)
	add("concurrency", r.Concurrency)
	add("size", r.Size)
	rate := "max"
	if r.Rate > 0 {
		rate = fmt.Sprintf("%g/s", r.Rate)
	}
	shape = append(shape, "rate="+rate)
	row("load", "%s", strings.Join(shape, " "))
	row("window", "%.3f s", r.Elapsed.Seconds())
	r.formatCounts(row, "")
	for _, p := range r.Parts {
		p.formatCounts(row, p.Scenario+" ")
	}
	if rs := r.Router; rs != nil {
		cpu := fmt.Sprintf("%.2f s (%.0f%% of a core)", rs.CPUSeconds, rs.CPUPercent)
		if r.Delivered > 0 {
			cpu += fmt.Sprintf(", %.2f us per %s", rs.CPUPerMsgUs, perWhat(r.Scenario))
		}
		if n := len(rs.Processes); n > 1 {
			cpu += fmt.Sprintf(", summed over %d processes", n)
		}
		row("router cpu", "%s", cpu)
		if rs.RSSBeforeBytes > 0 {
			row("router rss", "%.1f MiB -> %.1f MiB, %.0f bytes per session", mib(rs.RSSBeforeBytes), mib(rs.RSSBytes), rs.RSSPerSessionBytes)
		} else {
			row("router rss", "%.1f MiB", mib(rs.RSSBytes))
		}
		for _, p := range rs.Processes {
			row(fmt.Sprintf("  pid %d", p.PID), "cpu %.2f s (%.0f%% of a core), rss %.1f MiB", p.CPUSeconds, pct(p.CPUSeconds, r.Elapsed), mib(p.RSSBytes))
		}
	}
	lg := fmt.Sprintf("%.2f s (%.0f%% of a core)", r.LoadgenCPUSeconds, pct(r.LoadgenCPUSeconds, r.Elapsed))
	if r.LoadgenCPUPerMsgUs > 0 {
		per := "message sent or received"
		if r.Scenario == "connect" {
			per = "join"
		}
		lg += fmt.Sprintf(", %.2f us per %s", r.LoadgenCPUPerMsgUs, per)
	}
	row("loadgen cpu", "%s", lg)
	if r.Writes > 0 {
		row("loadgen writes", "%s messages in %s write syscalls (%.1f per write)", thousands(r.Frames), thousands(r.Writes), float64(r.Frames)/float64(r.Writes))
	}
	if r.HostCPUs > 0 {
		row("host cpu", "%.0f%% busy of %d cores", r.HostCPUBusyPercent, r.HostCPUs)
	}
	for _, e := range r.ErrorSamples {
		row("error", "%s", e)
	}
	return tw.Flush()
}

// formatCounts writes the counters, rates and latency rows, their names prefixed.
func (r *Result) formatCounts(row func(k, format string, a ...any), prefix string) {
	if len(r.Parts) > 0 && prefix == "" {
		row("sent", "%s", thousands(r.Sent))
		row("delivered", "%s", thousands(r.Delivered))
		row("errors", "%d", r.Errors)
		row("lost", "%d", r.Lost)
		row("throughput", "%s msgs/s ~ %.2f MB/s payload (sum of the parts)", thousands(int64(r.MsgsPerSec+0.5)), r.MBPerSec)
		return
	}
	unit := rateUnit(r.Scenario)
	row(prefix+"sent", "%s (%s %s ~ %.2f MB/s)", thousands(r.Sent), thousands(int64(r.SentPerSec+0.5)), unit, r.SentMBPerSec)
	if (r.Scenario == "rpc" || r.Scenario == "echo") && r.Sent > r.Delivered {
		// A caller keeps --inflight calls outstanding: the calls sent near the end of
		// the window are answered after it (or never: those are counted in lost).
		row(prefix+"delivered", "%s (the other %s %s were in flight when the window ended)", thousands(r.Delivered), thousands(r.Sent-r.Delivered), inflightWhat(r.Scenario))
	} else {
		row(prefix+"delivered", "%s", thousands(r.Delivered))
	}
	if r.Ack {
		row(prefix+"acked", "%s (%d never acknowledged)", thousands(r.Acked), r.Unacked)
	}
	row(prefix+"errors", "%d", r.Errors)
	row(prefix+"lost", "%d", r.Lost)
	row(prefix+"throughput", "%s %s ~ %.2f MB/s payload delivered", thousands(int64(r.MsgsPerSec+0.5)), unit, r.MBPerSec)
	if l := r.Latency; l != nil {
		row(prefix+"latency", "p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  (mean %s, n=%d)",
			latencyText(l.P50Us), latencyText(l.P90Us), latencyText(l.P99Us), latencyText(l.P999Us), latencyText(l.MaxUs), latencyText(l.MeanUs), l.Count)
	}
}

// rateUnit is what the per-second figures of scenario count.
func rateUnit(scenario string) string {
	switch scenario {
	case "rpc":
		return "calls/s"
	case "connect":
		return "joins/s"
	}
	return "msgs/s"
}

// latencyText formats a latency given in microseconds: in us up to 10 ms, in ms past it
// (a p99.9 of 92864.5 us reads 92.9 ms).
func latencyText(us float64) string {
	if us >= 10000 {
		return fmt.Sprintf("%.1f ms", us/1000)
	}
	return fmt.Sprintf("%.1f us", us)
}

// inflightWhat names what rpc and echo keep in flight.
func inflightWhat(scenario string) string {
	if scenario == "echo" {
		return "messages"
	}
	return "calls"
}

func perWhat(scenario string) string {
	switch scenario {
	case "echo":
		return "echoed message"
	case "pubsub":
		return "delivered event"
	case "rpc":
		return "call"
	case "connect":
		return "join"
	case "mixed":
		return "delivered event or call"
	}
	return "message"
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func pct(cpu float64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return 100 * cpu / d.Seconds()
}
