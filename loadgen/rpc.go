package loadgen

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-wamp/switchyard/client"
)

// rpcScenario: Callees sessions each register an echo procedure; Callers sessions each
// keep Inflight calls in flight, spread over the procedures. Delivered counts RESULTs;
// latency is the call round trip.
type rpcScenario struct{}

func (rpcScenario) Name() string { return "rpc" }

func echo(_ context.Context, inv *client.Invocation) (*client.Result, error) {
	return &client.Result{Args: inv.Args}, nil
}

func (rpcScenario) Run(ctx context.Context, o *Options) (*Result, error) {
	res := newResult("rpc", o)
	res.Callers, res.Callees, res.Inflight = o.Callers, o.Callees, o.Inflight
	var errs errorLog
	prefix := runPrefix()
	procs := make([]string, o.Callees)
	for i := range procs {
		procs[i] = fmt.Sprintf("%s.echo.%d", prefix, i)
	}
	calleeSessions, err := connectAll(ctx, o, o.Callees, o.Concurrency)
	if err != nil {
		return nil, err
	}
	defer closeAll(calleeSessions)
	for i, s := range calleeSessions {
		if _, err := s.Register(ctx, procs[i], echo, nil, client.InlineInvocations()); err != nil {
			return nil, fmt.Errorf("loadgen: register %s: %w", procs[i], err)
		}
	}
	callerSessions, err := connectAll(ctx, o, o.Callers, o.Concurrency)
	if err != nil {
		return nil, err
	}
	defer closeAll(callerSessions)
	p, err := newPayload(o.Serializer, o.Size)
	if err != nil {
		return nil, err
	}

	var (
		sent, done, lost atomic.Int64
		stop             atomic.Bool
		from, to         atomic.Int64
		countAt          atomic.Int64
		countHit         = make(chan struct{})
		hitOnce          sync.Once
		wg               sync.WaitGroup
	)
	from.Store(math.MaxInt64)
	to.Store(math.MaxInt64)
	countAt.Store(math.MaxInt64)
	callCtx, cancelCalls := context.WithCancel(context.Background())
	defer cancelCalls()
	workers := o.Callers * o.Inflight
	hists := make([]*histogram, workers)
	for k := range workers {
		s := callerSessions[k%o.Callers]
		proc := procs[k%o.Callees]
		h := newHistogram()
		hists[k] = h
		wg.Go(func() {
			pace := newPacer(o.Rate, workers)
			for !stop.Load() {
				if o.Rate > 0 {
					pace.wait(&stop)
					if stop.Load() {
						return
					}
				}
				t0 := time.Now()
				ns := t0.UnixNano()
				sent.Add(1)
				_, err := s.Call(callCtx, proc, []any{ns, p.pad}, nil, nil)
				if err != nil {
					if callCtx.Err() != nil {
						lost.Add(1)
						return
					}
					errs.add(fmt.Errorf("call: %w", err))
					select {
					case <-s.Done():
						return
					default:
					}
					continue
				}
				done.Add(1)
				if ns >= from.Load() && ns < to.Load() {
					h.Record(int64(time.Since(t0)))
				}
				if n := sent.Load(); n >= countAt.Load() {
					hitOnce.Do(func() { close(countHit) })
					return
				}
			}
		})
	}
	workersDone := make(chan struct{})
	go func() { wg.Wait(); close(workersDone) }()

	var w window
	sleepCtx(ctx, o.Warmup)
	w.begin(o.RouterPID)
	sent0, done0 := sent.Load(), done.Load()
	from.Store(w.start.UnixNano())
	if o.Count > 0 {
		countAt.Store(sent0 + o.Count)
	}
	var timeout <-chan time.Time
	if o.Duration > 0 {
		t := time.NewTimer(o.Duration)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-timeout:
	case <-ctx.Done():
	case <-countHit:
	case <-workersDone:
	}
	to.Store(time.Now().UnixNano())
	stop.Store(true)
	w.finish()
	res.Sent, res.Delivered = sent.Load()-sent0, done.Load()-done0

	// Calls still in flight get up to 5 s to complete; the rest are lost.
	select {
	case <-workersDone:
	case <-time.After(5 * time.Second):
		cancelCalls()
		<-workersDone
	}
	res.Lost = lost.Load()
	deadSessions(calleeSessions, &errs)
	deadSessions(callerSessions, &errs)
	h := newHistogram()
	for _, x := range hists {
		h.Merge(x)
	}
	res.Latency = h.Latency()
	w.fill(res, &errs)
	errs.fill(res)
	return res, nil
}
