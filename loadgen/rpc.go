package loadgen

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-wamp/switchyard/codec"
)

// rpcScenario: Callees sessions each register an echo procedure; Callers sessions each
// keep Inflight calls in flight, spread round-robin over the procedures. Delivered counts
// RESULTs; latency is the call round trip, from the send time in the echoed payload.
//
// Without Rate, a caller's next call is sent by its reader as soon as a RESULT arrives
// (no goroutine hop); with Rate, a sender goroutine per caller paces the calls and waits
// for a free in-flight slot.
type rpcScenario struct{}

func (rpcScenario) Name() string { return "rpc" }

func (rpcScenario) Run(ctx context.Context, o *Options) (*Result, error) {
	return runOnePart(ctx, o, newRPCPart(o, o.Rate))
}

// runOnePart drives p alone and fills its Result with the window's CPU figures.
func runOnePart(ctx context.Context, o *Options, p part) (*Result, error) {
	rs, w, err := drive(ctx, o, p)
	if err != nil {
		return nil, err
	}
	res := rs[0]
	var errs errorLog
	w.fill(res, &errs)
	res.addErrors(&errs)
	return res, nil
}

type rpcCaller struct {
	c    *wconn
	id   atomic.Uint64 // last request id
	proc atomic.Uint32 // next procedure (round-robin)
	free chan struct{} // in-flight slots (paced mode)
	pl   *payload      // the reader goroutine's payload and message buffer
	buf  []byte
}

type rpcPart struct {
	o    *Options
	rate float64
	// echo: the callers' CALLs go to an EchoServer, which sends each back unchanged (no
	// callees, no session): the same sending, batching and reading as rpc, one round
	// trip of one message each way instead of CALL, INVOCATION, YIELD, RESULT.
	echo        bool
	errs        errorLog
	procs       []string
	tmpls       []*template
	calleeConns []*wconn
	callers     []*rpcCaller
	hists       *histSet
	win         *timeWindow
	cnt         *countStop

	sent, done, failed atomic.Int64 // calls sent, RESULTs, ERRORs
	stop               atomic.Bool
	stopCh             chan struct{}
	stopOnce           sync.Once
	senders            sync.WaitGroup
	allLost            chan struct{}

	sent0, done0, sent1, done1 int64
	frames0, writes0           int64
	frames1, writes1           int64
}

func newRPCPart(o *Options, rate float64) *rpcPart {
	return &rpcPart{o: o, rate: rate, win: newTimeWindow(), cnt: newCountStop(),
		stopCh: make(chan struct{}), allLost: make(chan struct{})}
}

func (p *rpcPart) conns() []*wconn {
	cs := make([]*wconn, len(p.callers))
	for i, c := range p.callers {
		cs[i] = c.c
	}
	return cs
}

func (p *rpcPart) setup(ctx context.Context) error {
	o := p.o
	prefix := runPrefix()
	procs := o.Callees
	if p.echo {
		procs = 1 // the CALL the echo server sends back
	}
	p.procs = make([]string, procs)
	p.tmpls = make([]*template, procs)
	for i := range p.procs {
		p.procs[i] = fmt.Sprintf("%s.echo.%d", prefix, i)
		t, err := newTemplate(o.Serializer, codec.Message{Type: codec.CALL, URI: []byte(p.procs[i])})
		if err != nil {
			return err
		}
		p.tmpls[i] = t
	}
	if !p.echo {
		if err := p.setupCallees(ctx); err != nil {
			return err
		}
	}
	// A caller's reply: a RESULT, or its own CALL back from the echo server.
	reply := codec.RESULT
	if p.echo {
		reply = codec.CALL
	}
	conns, err := dialAll(ctx, o, o.Callers, o.Concurrency)
	if err != nil {
		return err
	}
	p.callers = make([]*rpcCaller, len(conns))
	p.hists = newHistSet(len(conns))
	for i, c := range conns {
		pl, err := newPayload(o.Serializer, o.Size)
		if err != nil {
			return err
		}
		k := &rpcCaller{c: c, pl: pl}
		k.proc.Store(uint32(i % len(p.procs)))
		p.callers[i] = k
		if p.rate > 0 {
			k.free = make(chan struct{}, o.Inflight)
			for range o.Inflight {
				k.free <- struct{}{}
			}
		}
		rec := p.hists.recorder(i)
		c.start(func(m *codec.Message) {
			switch m.Type {
			case reply:
				p.done.Add(1)
				if ts, ok := payloadTime(o.Serializer, m.Args); !ok {
					p.errs.add(fmt.Errorf("%v payload without a send time", m.Type))
				} else if p.win.in(ts) {
					rec.Record(time.Now().UnixNano() - ts)
				}
			case codec.ERROR:
				p.failed.Add(1)
				p.errs.add(fmt.Errorf("call: ERROR %s", m.URI))
			default:
				return
			}
			p.next(k)
		}, p.errs.add)
	}
	go func() {
		for _, c := range conns {
			<-c.Done()
		}
		close(p.allLost)
	}()
	return nil
}

// setupCallees joins the callees and registers procedure i at callee i; each echoes its
// INVOCATIONs' arguments in a YIELD.
func (p *rpcPart) setupCallees(ctx context.Context) error {
	o := p.o
	yield, err := newTemplate(o.Serializer, codec.Message{Type: codec.YIELD})
	if err != nil {
		return err
	}
	if p.calleeConns, err = dialAll(ctx, o, o.Callees, o.Concurrency); err != nil {
		return err
	}
	for i, c := range p.calleeConns {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := c.request(rctx, &codec.Message{Type: codec.REGISTER, Request: 1, URI: []byte(p.procs[i])}, codec.REGISTERED)
		cancel()
		if err != nil {
			return fmt.Errorf("loadgen: register %s: %w", p.procs[i], err)
		}
		var buf []byte
		c.start(func(m *codec.Message) {
			switch m.Type {
			case codec.INVOCATION: // echo the arguments
				buf = yield.build(buf[:0], m.Request, m.Args)
				_ = c.send(buf) // a failed connection is reported by its reader
			case codec.ERROR:
				p.errs.add(fmt.Errorf("callee: ERROR %s", m.URI))
			}
		}, p.errs.add)
	}
	return nil
}

// call sends one CALL from caller k with the send time in its payload; buf is the
// sending goroutine's buffer.
func (p *rpcPart) call(k *rpcCaller, pl *payload, buf []byte) ([]byte, error) {
	proc := int(k.proc.Add(1)-1) % len(p.procs)
	buf = p.tmpls[proc].build(buf[:0], k.id.Add(1), pl.stamp(time.Now().UnixNano()))
	if err := k.c.send(buf); err != nil {
		return buf, err
	}
	p.cnt.sent(p.sent.Add(1))
	return buf, nil
}

// next follows a reply to caller k: the freed slot goes back to the sender (paced), or
// the reader sends the next call itself.
func (p *rpcPart) next(k *rpcCaller) {
	if k.free != nil {
		k.free <- struct{}{}
		return
	}
	if p.stop.Load() {
		return
	}
	k.buf, _ = p.call(k, k.pl, k.buf)
}

func (p *rpcPart) start() {
	now := time.Now()
	senders := len(p.callers)
	for i, k := range p.callers {
		p.senders.Go(func() {
			pl, err := newPayload(p.o.Serializer, p.o.Size)
			if err != nil {
				p.errs.add(err)
				return
			}
			var buf []byte
			if k.free == nil { // as fast as possible: the reader keeps Inflight calls going
				for range p.o.Inflight {
					if buf, err = p.call(k, pl, buf); err != nil {
						return
					}
				}
				return
			}
			pace := newPacer(p.rate, senders, i, now)
			for {
				n := pace.waitDue(1, &p.stop)
				if n == 0 {
					return
				}
				select {
				case <-k.free:
				case <-p.stopCh:
					return
				}
				if buf, err = p.call(k, pl, buf); err != nil {
					return
				}
				pace.took(1)
			}
		})
	}
}

func (p *rpcPart) beginWindow(now time.Time) {
	p.sent0, p.done0 = p.sent.Load(), p.done.Load()
	p.frames0, p.writes0 = ioStats(p.calleeConns, p.conns())
	p.win.from.Store(now.UnixNano())
	if p.o.Count > 0 {
		p.cnt.at.Store(p.sent0 + p.o.Count)
	}
}

func (p *rpcPart) countReached() <-chan struct{} { return p.cnt.hit }
func (p *rpcPart) senderDone() <-chan struct{}   { return p.allLost }

func (p *rpcPart) endWindow(now time.Time) {
	p.win.to.Store(now.UnixNano())
	p.sent1, p.done1 = p.sent.Load(), p.done.Load()
	p.frames1, p.writes1 = ioStats(p.calleeConns, p.conns())
	p.stop.Store(true)
	p.stopOnce.Do(func() { close(p.stopCh) })
}

func (p *rpcPart) outstanding() int64 { return p.sent.Load() - p.done.Load() - p.failed.Load() }

// drain gives the calls in flight up to 5 s (and 1 s without progress) to complete.
func (p *rpcPart) drain() {
	p.senders.Wait()
	deadline := time.Now().Add(5 * time.Second)
	last, lastChange := p.outstanding(), time.Now()
	for p.outstanding() > 0 && time.Now().Before(deadline) && time.Since(lastChange) < time.Second {
		time.Sleep(5 * time.Millisecond)
		if n := p.outstanding(); n != last {
			last, lastChange = n, time.Now()
		}
	}
}

func (p *rpcPart) fill(r *Result) {
	o := p.o
	r.Scenario = "rpc"
	r.Rate = p.rate
	r.Callers, r.Callees, r.Inflight = o.Callers, o.Callees, o.Inflight
	if p.echo {
		r.Scenario, r.Callees = "echo", 0
	}
	r.Sent, r.Delivered = p.sent1-p.sent0, p.done1-p.done0
	r.Lost = max(0, p.outstanding())
	r.Latency = p.hists.merged().Latency()
	r.Frames, r.Writes = p.frames1-p.frames0, p.writes1-p.writes0
	r.addErrors(&p.errs)
}

func (p *rpcPart) progress() (sent, delivered, errors int64) {
	return p.sent.Load(), p.done.Load(), p.errs.n.Load()
}

func (p *rpcPart) close() {
	p.stop.Store(true)
	p.stopOnce.Do(func() { close(p.stopCh) })
	closeConns(p.calleeConns)
	closeConns(p.conns())
}
