package loadgen

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-wamp/switchyard/client"
)

// connectScenario: Concurrency workers join Sessions sessions (at Rate joins/s, or as
// fast as possible), the sessions are held idle for Duration, then closed. Delivered
// counts joins; the measured window is the joining; latency is dial-to-WELCOME; the
// router RSS growth over the run divided by the sessions is the RSS per idle session.
type connectScenario struct{}

func (connectScenario) Name() string { return "connect" }

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
	base := o.takeURLs(o.Sessions)
	ss := make([]*client.Session, o.Sessions)
	defer func() { closeAll(ss) }()
	var (
		next, attempts, joined atomic.Int64
		stop                   atomic.Bool
		wg                     sync.WaitGroup
	)
	defer context.AfterFunc(ctx, func() { stop.Store(true) })()
	workers := min(o.Concurrency, o.Sessions)
	hists := make([]*histogram, workers)
	prog := newProgress(o, func() (int64, int64, int64) { return attempts.Load(), joined.Load(), errs.n.Load() })
	defer prog.stop()
	prog.setPhase("join")
	var w window
	w.begin(o.RouterPIDs)
	for k := range workers {
		h := newHistogram()
		hists[k] = h
		wg.Go(func() {
			pace := newPacer(o.Rate, workers, k, w.start)
			for !stop.Load() && ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= int64(o.Sessions) {
					return
				}
				if o.Rate > 0 {
					if pace.waitDue(1, &stop) == 0 {
						return
					}
					pace.took(1)
				}
				attempts.Add(1)
				t0 := time.Now()
				k := o.urlAt(base, int(i))
				cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				s, err := client.Connect(cctx, o.clientConfig(o.URLs[k]))
				cancel()
				if err != nil {
					if ctx.Err() == nil {
						errs.add(err)
					}
					continue
				}
				h.Record(int64(time.Since(t0)))
				o.joinedAt(k)
				ss[i] = s
				joined.Add(1)
			}
		})
	}
	wg.Wait()
	w.finish()
	res.Sent, res.Delivered = attempts.Load(), joined.Load()

	// Hold the sessions idle, then measure what they cost the router.
	prog.setPhase("hold")
	sleepCtx(ctx, o.Duration)
	prog.stop()
	var live []*client.Session
	for _, s := range ss {
		if s != nil {
			live = append(live, s)
		}
	}
	deadSessions(live, &errs)
	h := newHistogram()
	for _, x := range hists {
		h.Merge(x)
	}
	res.Latency = h.Latency()
	res.fillURLs(o)
	w.fill(res, &errs)
	if rs := res.Router; rs != nil {
		rs.RSSBeforeBytes = rssBefore
		if res.Delivered > 0 && rs.RSSBytes > 0 {
			rs.RSSPerSessionBytes = float64(rs.RSSBytes-rssBefore) / float64(res.Delivered)
		}
	}
	res.addErrors(&errs)
	return res, nil
}
