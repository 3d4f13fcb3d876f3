package loadgen

import (
	"context"
	"fmt"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-wamp/switchyard/client"
)

// connectScenario: Sessions sessions are joined (at Rate joins/s, or as fast as
// possible, with at most Concurrency joins in flight), held idle for Duration, then
// closed. Delivered counts joins; the measured window is the joining; latency is
// dial-to-WELCOME; the router RSS growth over the run divided by the sessions is the
// RSS per idle session.
//
// The joins run on a few event loops (connloop_linux.go: no goroutine per session) when
// every URL is plain ws://, rs://, tcp:// or rs+unix:// on Linux; with a TLS URL (wss://,
// rss://, tcps://) or on another platform each join is a client.Connect on one of
// Concurrency worker goroutines (goJoiner), which costs loadgen about ten times the CPU.
type connectScenario struct{}

func (connectScenario) Name() string { return "connect" }

// joiner joins a connect run's sessions and holds them.
type joiner interface {
	// join joins the sessions, the run's window starting at start, and returns when
	// every join ended (or stopped was called), with the join latencies.
	join(start time.Time) *histogram
	// stopped stops the joins (the run's context ended); no error is counted after it.
	// Safe to call concurrently with join.
	stopped()
	// close ends the hold: it counts the sessions that ended during it (if not counted
	// as they ended) and closes the rest.
	close()
}

func (connectScenario) Run(ctx context.Context, o *Options) (*Result, error) {
	res := newResult("connect", o)
	res.Size = 0
	res.Sessions, res.Concurrency = o.Sessions, o.Concurrency
	if limit, err := RaiseFileLimit(); err == nil && limit > 0 && uint64(o.Sessions)+64 > limit {
		return nil, fmt.Errorf("loadgen: %d sessions need more open files than RLIMIT_NOFILE %d", o.Sessions, limit)
	}
	var errs errorLog
	rssBefore, err := routerRSS(o.RouterPIDs)
	if err != nil {
		return nil, fmt.Errorf("loadgen: router RSS: %w", err)
	}
	var attempts, joined atomic.Int64
	base := o.takeURLs(o.Sessions)
	var j joiner
	if loopsSupported && !anyTLS(o.URLs) {
		if j, err = newLoopJoiner(o, base, &attempts, &joined, &errs); err != nil {
			return nil, err
		}
	} else {
		j = newGoJoiner(ctx, o, base, &attempts, &joined, &errs)
	}
	prog := newProgress(o, func() (int64, int64, int64) { return attempts.Load(), joined.Load(), errs.n.Load() })
	defer prog.stop()
	prog.setPhase("join")
	stopAfter := context.AfterFunc(ctx, j.stopped)
	var w window
	w.begin(o.RouterPIDs)
	h := j.join(w.start)
	w.finish()
	res.Sent, res.Delivered = attempts.Load(), joined.Load()

	// Hold the sessions idle, then measure what they cost the router.
	prog.setPhase("hold")
	sleepCtx(ctx, o.Duration)
	prog.stop()
	stopAfter()
	j.close()
	res.Latency = h.Latency()
	res.fillURLs(o)
	w.fill(res, &errs)
	if res.Delivered > 0 && res.LoadgenCPUSeconds > 0 {
		res.LoadgenCPUPerMsgUs = res.LoadgenCPUSeconds / float64(res.Delivered) * 1e6
	}
	if rs := res.Router; rs != nil {
		rs.RSSBeforeBytes = rssBefore
		if res.Delivered > 0 && rs.RSSBytes > 0 {
			rs.RSSPerSessionBytes = float64(rs.RSSBytes-rssBefore) / float64(res.Delivered)
		}
	}
	res.addErrors(&errs)
	return res, nil
}

// anyTLS reports whether a URL needs TLS (the event loops do not speak it).
func anyTLS(urls []string) bool {
	for _, raw := range urls {
		if u, err := url.Parse(raw); err == nil {
			switch u.Scheme {
			case "wss", "rss", "tcps":
				return true
			}
		}
	}
	return false
}

// goJoiner joins with client.Connect on Concurrency worker goroutines: one
// client.Session (a reader goroutine, timers) per session. The path for TLS URLs and
// platforms without the event loops.
type goJoiner struct {
	ctx              context.Context
	o                *Options
	base             int
	attempts, joined *atomic.Int64
	errs             *errorLog
	stop             atomic.Bool
	ss               []*client.Session
}

func newGoJoiner(ctx context.Context, o *Options, base int, attempts, joined *atomic.Int64, errs *errorLog) *goJoiner {
	return &goJoiner{ctx: ctx, o: o, base: base, attempts: attempts, joined: joined, errs: errs,
		ss: make([]*client.Session, o.Sessions)}
}

func (g *goJoiner) stopped() { g.stop.Store(true) }

func (g *goJoiner) join(start time.Time) *histogram {
	o, ctx := g.o, g.ctx
	var next atomic.Int64
	var wg sync.WaitGroup
	workers := min(o.Concurrency, o.Sessions)
	hists := make([]*histogram, workers)
	for k := range workers {
		h := newHistogram()
		hists[k] = h
		wg.Go(func() {
			pace := newPacer(o.Rate, workers, k, start)
			for !g.stop.Load() && ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= int64(o.Sessions) {
					return
				}
				if o.Rate > 0 {
					if pace.waitDue(1, &g.stop) == 0 {
						return
					}
					pace.took(1)
				}
				g.attempts.Add(1)
				t0 := time.Now()
				k := o.urlAt(g.base, int(i))
				cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				s, err := client.Connect(cctx, o.clientConfig(o.URLs[k]))
				cancel()
				if err != nil {
					if ctx.Err() == nil {
						g.errs.add(err)
					}
					continue
				}
				h.Record(int64(time.Since(t0)))
				o.joinedAt(k)
				g.ss[i] = s
				g.joined.Add(1)
			}
		})
	}
	wg.Wait()
	h := newHistogram()
	for _, x := range hists {
		h.Merge(x)
	}
	return h
}

func (g *goJoiner) close() {
	var live []*client.Session
	for _, s := range g.ss {
		if s != nil {
			live = append(live, s)
		}
	}
	deadSessions(live, g.errs)
	closeAll(g.ss)
}
