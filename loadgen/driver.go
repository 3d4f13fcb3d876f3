package loadgen

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// part is one load (pubsub or rpc) that the driver runs alone or next to another one
// (mixed). The driver sequences: setup, start, warm-up, beginWindow, the window,
// endWindow, drain, fill, close.
type part interface {
	// setup joins the sessions and subscribes/registers; the load does not run yet.
	setup(ctx context.Context) error
	// start starts the senders.
	start()
	// beginWindow opens the measured window at now: counters are snapshot, sends made
	// from now on have their latency recorded, and Count (if any) starts counting.
	beginWindow(now time.Time)
	// countReached is closed when Count sends were made in the window.
	countReached() <-chan struct{}
	// senderDone is closed when every sender has stopped (all sessions lost, say).
	senderDone() <-chan struct{}
	// endWindow closes the window at now and stops the senders.
	endWindow(now time.Time)
	// drain waits (bounded) for the messages still in flight.
	drain()
	// fill writes the part's counters, latency and errors into r.
	fill(r *Result)
	// progress returns live totals since start for the progress line.
	progress() (sent, delivered, errors int64)
	close()
}

// timeWindow is the measured window in payload send times (Unix ns); latencies of sends
// outside it are not recorded.
type timeWindow struct{ from, to atomic.Int64 }

func newTimeWindow() *timeWindow {
	w := &timeWindow{}
	w.from.Store(math.MaxInt64)
	w.to.Store(math.MaxInt64)
	return w
}

func (w *timeWindow) in(ns int64) bool { return ns >= w.from.Load() && ns < w.to.Load() }

// countStop ends the window after Count sends.
type countStop struct {
	at   atomic.Int64 // total sends that end the window
	hit  chan struct{}
	once sync.Once
}

func newCountStop() *countStop {
	c := &countStop{hit: make(chan struct{})}
	c.at.Store(math.MaxInt64)
	return c
}

// sent reports the running total of sends; true when the count is reached.
func (c *countStop) sent(total int64) bool {
	if total >= c.at.Load() {
		c.once.Do(func() { close(c.hit) })
		return true
	}
	return false
}

// drive runs parts side by side on one router and returns one Result per part plus the
// CPU window common to them.
func drive(ctx context.Context, o *Options, parts ...part) ([]*Result, *window, error) {
	for _, p := range parts {
		defer p.close()
	}
	for _, p := range parts {
		if err := p.setup(ctx); err != nil {
			return nil, nil, err
		}
	}
	prog := newProgress(o, func() (s, d, e int64) {
		for _, p := range parts {
			a, b, c := p.progress()
			s, d, e = s+a, d+b, e+c
		}
		return
	})
	defer prog.stop()
	for _, p := range parts {
		p.start()
	}
	prog.setPhase("warmup")
	sleepCtx(ctx, o.Warmup)
	prog.setPhase("run")

	w := &window{}
	w.begin(o.RouterPIDs)
	for _, p := range parts {
		p.beginWindow(w.start)
	}
	var timeout <-chan time.Time
	if o.Duration > 0 {
		t := time.NewTimer(o.Duration)
		defer t.Stop()
		timeout = t.C
	}
	// The window ends at the duration, at ctx's end, when every part reached Count, or
	// when any part's senders all stopped.
	allCounted := make(chan struct{})
	go func() {
		for _, p := range parts {
			select {
			case <-p.countReached():
			case <-ctx.Done():
				return
			}
		}
		close(allCounted)
	}()
	anyDone := make(chan struct{}, len(parts))
	for _, p := range parts {
		go func() {
			<-p.senderDone()
			anyDone <- struct{}{}
		}()
	}
	select {
	case <-timeout:
	case <-ctx.Done():
	case <-allCounted:
	case <-anyDone:
	}
	now := time.Now()
	for _, p := range parts {
		p.endWindow(now)
	}
	w.finish()
	prog.setPhase("drain")
	var wg sync.WaitGroup
	for _, p := range parts {
		wg.Go(p.drain)
	}
	wg.Wait()
	prog.stop()
	rs := make([]*Result, len(parts))
	for i, p := range parts {
		rs[i] = newResult("", o)
		rs[i].fillURLs(o)
		p.fill(rs[i])
	}
	return rs, w, nil
}
