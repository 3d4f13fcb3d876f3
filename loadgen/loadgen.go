package loadgen

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-wamp/switchyard/client"
)

// Scenario is one kind of load.
type Scenario interface {
	// Name is the subcommand name: "pubsub", "rpc", "connect".
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
	return &Result{Scenario: name, URL: o.URL, Realm: o.Realm, Serializer: o.Serializer.String(),
		Size: o.Size, Rate: o.Rate}
}

func (o *Options) clientConfig() client.Config {
	return client.Config{URL: o.URL, Realm: o.Realm, Serializer: o.Serializer}
}

// connectAll joins n sessions with up to workers concurrent joins.
func connectAll(ctx context.Context, o *Options, n, workers int) ([]*client.Session, error) {
	ss := make([]*client.Session, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	var firstErr error
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range min(workers, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
				s, err := client.Connect(cctx, o.clientConfig())
				ccancel()
				if err != nil {
					once.Do(func() { firstErr = err; cancel() })
					return
				}
				ss[i] = s
			}
		})
	}
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	if firstErr != nil {
		closeAll(ss)
		return nil, fmt.Errorf("loadgen: joining %s realm %s: %w", o.URL, o.Realm, firstErr)
	}
	return ss, nil
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
	if len(l.samples) < maxErrorSamples && !slices.Contains(l.samples, msg) {
		l.samples = append(l.samples, msg)
	}
	l.mu.Unlock()
}

func (l *errorLog) fill(r *Result) {
	r.Errors = l.n.Load()
	l.mu.Lock()
	r.ErrorSamples = slices.Clone(l.samples)
	l.mu.Unlock()
}

// window measures the CPU of the router and of this process over the measured window.
type window struct {
	pid          int
	start, end   time.Time
	router0      procSample
	router1      procSample
	self0, self1 procSample
	host0, host1 hostCPU
}

func (w *window) begin(pid int) {
	w.pid = pid
	if pid > 0 {
		w.router0 = sampleCPU(pid)
	}
	w.self0 = sampleCPU(0)
	w.host0 = sampleHost()
	w.start = time.Now()
}

func (w *window) finish() {
	w.end = time.Now()
	if w.pid > 0 {
		w.router1 = sampleCPU(w.pid)
	}
	w.self1 = sampleCPU(0)
	w.host1 = sampleHost()
}

func (w *window) elapsed() time.Duration { return w.end.Sub(w.start) }

// fill sets Elapsed, the rates, the CPU figures and the router RSS from the window and
// r.Delivered.
func (w *window) fill(r *Result, errs *errorLog) {
	r.Elapsed = w.elapsed()
	if s := r.Elapsed.Seconds(); s > 0 {
		r.MsgsPerSec = float64(r.Delivered) / s
		if r.Scenario != "connect" {
			r.MBPerSec = r.MsgsPerSec * float64(r.Size) / 1e6
		}
	}
	if w.self0.err == nil && w.self1.err == nil {
		r.LoadgenCPUSeconds = w.self1.cpu - w.self0.cpu
	}
	if w.host0.err == nil && w.host1.err == nil && w.host1.total > w.host0.total {
		r.HostCPUBusyPercent = 100 * float64(w.host1.busy-w.host0.busy) / float64(w.host1.total-w.host0.total)
		r.HostCPUs = runtime.NumCPU()
	}
	if w.pid <= 0 {
		return
	}
	rs := &RouterStats{PID: w.pid}
	if w.router0.err != nil || w.router1.err != nil {
		errs.add(fmt.Errorf("router CPU of pid %d: %w", w.pid, cmpOr(w.router0.err, w.router1.err)))
	} else {
		rs.CPUSeconds = w.router1.cpu - w.router0.cpu
		if s := r.Elapsed.Seconds(); s > 0 {
			rs.CPUPercent = 100 * rs.CPUSeconds / s
		}
		if r.Delivered > 0 {
			rs.CPUPerMsgUs = rs.CPUSeconds / float64(r.Delivered) * 1e6
		}
	}
	rss, err := procRSS(w.pid)
	if err != nil {
		errs.add(fmt.Errorf("router RSS of pid %d: %w", w.pid, err))
	}
	rs.RSSBytes = rss
	r.Router = rs
}

func cmpOr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// pacer spaces sends of one sender at interval; zero interval never waits.
type pacer struct {
	interval time.Duration
	next     time.Time
}

func newPacer(rate float64, senders int) *pacer {
	p := &pacer{next: time.Now()}
	if rate > 0 {
		p.interval = time.Duration(float64(senders) / rate * float64(time.Second))
	}
	return p
}

// wait blocks until the next send is due (or stop is set). Sends that fall behind are
// made at once, up to one second of backlog; older ones are skipped.
func (p *pacer) wait(stop *atomic.Bool) {
	if p.interval <= 0 {
		return
	}
	now := time.Now()
	if lag := now.Sub(p.next); lag > time.Second {
		p.next = now
	}
	for d := p.next.Sub(now); d > 0 && !stop.Load(); d = p.next.Sub(time.Now()) {
		time.Sleep(min(d, 100*time.Millisecond))
	}
	p.next = p.next.Add(p.interval)
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
