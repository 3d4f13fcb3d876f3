package loadgen

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-wamp/switchyard/client"
)

// Scenario is one kind of load.
type Scenario interface {
	// Name is the subcommand name: "pubsub", "rpc", "connect", "mixed", "echo".
	Name() string
	// Run drives the load described by o (Defaults applied, Validate passed) until the
	// measured window ends, ctx ends, or Count sends were made, and reports it. When ctx
	// ends early the Result covers the window so far.
	Run(ctx context.Context, o *Options) (*Result, error)
}

var scenarios = map[string]Scenario{
	"pubsub":  pubsubScenario{},
	"rpc":     rpcScenario{},
	"connect": connectScenario{},
	"mixed":   mixedScenario{},
	"echo":    echoScenario{},
}

// Scenarios returns the scenario names, sorted.
func Scenarios() []string {
	names := make([]string, 0, len(scenarios))
	for n := range scenarios {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Lookup returns the scenario called name.
func Lookup(name string) (Scenario, bool) {
	s, ok := scenarios[name]
	return s, ok
}

// Run applies the defaults to o, validates it and runs the scenario called name.
func Run(ctx context.Context, name string, o Options) (*Result, error) {
	sc, ok := Lookup(name)
	if !ok {
		return nil, fmt.Errorf("loadgen: unknown scenario %q (one of %v)", name, Scenarios())
	}
	o.Defaults(name)
	if err := o.Validate(); err != nil {
		return nil, err
	}
	return sc.Run(ctx, &o)
}

// newResult fills the parameters of a Result from o.
func newResult(name string, o *Options) *Result {
	return &Result{Scenario: name, URL: strings.Join(o.URLs, ","), Realm: o.Realm,
		Serializer: o.Serializer.String(), Size: o.Size, Rate: o.Rate}
}

// fillURLs sets r.URLs and the sessions joined through each (several URLs only: with one,
// URL says it all).
func (r *Result) fillURLs(o *Options) {
	if len(o.URLs) < 2 {
		return
	}
	r.URLs = slices.Clone(o.URLs)
	r.SessionsPerURL = make([]int64, len(o.joined))
	for i := range o.joined {
		r.SessionsPerURL[i] = o.joined[i].Load()
	}
}

func (o *Options) clientConfig(url string) client.Config {
	a := o.auth()
	c := client.Config{URL: url, Realm: o.Realm, Serializer: o.Serializer, AuthID: o.AuthID,
		OnChallenge: a.onChallenge, TLSConfig: o.TLS}
	if o.Ticket != "" {
		c.AuthMethods = []string{"ticket"}
	}
	return c
}

// closeAll closes the sessions (no GOODBYE: a load generator does not wait).
func closeAll(ss []*client.Session) {
	for _, s := range ss {
		if s != nil {
			s.Close()
		}
	}
}

// deadSessions counts the sessions that ended before the run closed them, and notes why.
func deadSessions(ss []*client.Session, errs *errorLog) {
	for _, s := range ss {
		select {
		case <-s.Done():
			errs.add(fmt.Errorf("session %d ended: %w", s.ID(), s.Err()))
		default:
		}
	}
}

// errorLog counts errors and keeps the first few distinct messages.
type errorLog struct {
	n       atomic.Int64
	mu      sync.Mutex
	samples []string
}

const maxErrorSamples = 5

func (l *errorLog) add(err error) {
	l.n.Add(1)
	msg := err.Error()
	l.mu.Lock()
	l.samples = appendSample(l.samples, msg)
	l.mu.Unlock()
}

// appendSample adds msg to the samples unless they are full or hold it already.
func appendSample(samples []string, msg string) []string {
	if len(samples) < maxErrorSamples && !slices.Contains(samples, msg) {
		samples = append(samples, msg)
	}
	return samples
}

// addErrors adds l's count and samples to r's.
func (r *Result) addErrors(l *errorLog) {
	r.Errors += l.n.Load()
	l.mu.Lock()
	for _, m := range l.samples {
		r.ErrorSamples = appendSample(r.ErrorSamples, m)
	}
	l.mu.Unlock()
}

// window measures the CPU of the router processes and of this process over the
// measured window.
type window struct {
	pids         []int
	start, end   time.Time
	router0      []procSample
	router1      []procSample
	self0, self1 procSample
	host0, host1 hostCPU
}

func (w *window) begin(pids []int) {
	w.pids = pids
	w.router0 = sampleCPUs(pids)
	w.self0 = sampleCPU(0)
	w.host0 = sampleHost()
	w.start = time.Now()
}

func (w *window) finish() {
	w.end = time.Now()
	w.router1 = sampleCPUs(w.pids)
	w.self1 = sampleCPU(0)
	w.host1 = sampleHost()
}

func sampleCPUs(pids []int) []procSample {
	s := make([]procSample, len(pids))
	for i, pid := range pids {
		s[i] = sampleCPU(pid)
	}
	return s
}

func (w *window) elapsed() time.Duration { return w.end.Sub(w.start) }

// fill sets Elapsed, the rates, the CPU figures and the router RSS from the window and
// r.Delivered. With several router processes their CPU and RSS are summed, and each is
// listed in Router.Processes.
func (w *window) fill(r *Result, errs *errorLog) {
	r.Elapsed = w.elapsed()
	r.rates()
	if w.self0.err == nil && w.self1.err == nil {
		r.LoadgenCPUSeconds = w.self1.cpu - w.self0.cpu
		if n := r.Sent + r.Delivered; n > 0 && r.Scenario != "connect" {
			r.LoadgenCPUPerMsgUs = r.LoadgenCPUSeconds / float64(n) * 1e6
		}
	}
	if w.host0.err == nil && w.host1.err == nil && w.host1.total > w.host0.total {
		r.HostCPUBusyPercent = 100 * float64(w.host1.busy-w.host0.busy) / float64(w.host1.total-w.host0.total)
		r.HostCPUs = runtime.NumCPU()
	}
	if len(w.pids) == 0 {
		return
	}
	rs := &RouterStats{PID: w.pids[0]}
	cpuOK := true
	for i, pid := range w.pids {
		ps := ProcessStats{PID: pid}
		if err := cmpOr(w.router0[i].err, w.router1[i].err); err != nil {
			errs.add(fmt.Errorf("router CPU of pid %d: %w", pid, err))
			cpuOK = false
		} else {
			ps.CPUSeconds = w.router1[i].cpu - w.router0[i].cpu
			rs.CPUSeconds += ps.CPUSeconds
		}
		rss, err := procRSS(pid)
		if err != nil {
			errs.add(fmt.Errorf("router RSS of pid %d: %w", pid, err))
		}
		ps.RSSBytes = rss
		rs.RSSBytes += rss
		if len(w.pids) > 1 {
			rs.Processes = append(rs.Processes, ps)
		}
	}
	if cpuOK {
		if s := r.Elapsed.Seconds(); s > 0 {
			rs.CPUPercent = 100 * rs.CPUSeconds / s
		}
		if r.Delivered > 0 {
			rs.CPUPerMsgUs = rs.CPUSeconds / float64(r.Delivered) * 1e6
		}
	} else {
		rs.CPUSeconds = 0 // a partial sum would read as a cheaper router
	}
	r.Router = rs
}

// routerRSS sums the RSS of pids.
func routerRSS(pids []int) (int64, error) {
	var sum int64
	for _, pid := range pids {
		rss, err := procRSS(pid)
		if err != nil {
			return 0, fmt.Errorf("pid %d: %w", pid, err)
		}
		sum += rss
	}
	return sum, nil
}

func cmpOr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// sleepCtx sleeps d or until ctx ends; false when ctx ended.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
