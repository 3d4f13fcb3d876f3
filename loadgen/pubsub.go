package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-wamp/switchyard/codec"
)

// pubsubScenario: Publishers sessions publish Size-byte payloads to Topics topics
// round-robin (acknowledge=false, or true with Ack); Subscribers sessions each subscribe
// to one topic (i%Topics). Delivered counts events received; latency is publish-to-event
// from the send time in the payload.
type pubsubScenario struct{}

func (pubsubScenario) Name() string { return "pubsub" }

func (pubsubScenario) Run(ctx context.Context, o *Options) (*Result, error) {
	p := newPubsubPart(o, o.Rate)
	rs, w, err := drive(ctx, o, p)
	if err != nil {
		return nil, err
	}
	res := rs[0]
	res.Scenario = "pubsub"
	var errs errorLog
	w.fill(res, &errs)
	res.addErrors(&errs)
	return res, nil
}

func runPrefix() string { return fmt.Sprintf("loadgen.%08x", rand.Uint32()) }

// subCounter is one subscriber's delivered events, padded against false sharing.
type subCounter struct {
	n atomic.Int64
	_ [56]byte
}

type pubsubPart struct {
	o         *Options
	rate      float64
	nsubs     int
	errs      errorLog
	topics    []string
	fanout    []int64 // subscribers per topic
	tmpls     []*template
	subConns  []*wconn
	pubConns  []*wconn
	delivered []subCounter
	hists     *histSet
	win       *timeWindow
	cnt       *countStop

	expected atomic.Int64 // events due: publications x subscribers of their topic
	sent     atomic.Int64
	acked    atomic.Int64
	stop     atomic.Bool
	wg       sync.WaitGroup
	done     chan struct{}

	sent0, del0, acked0 int64 // at the window's start
	sent1, del1         int64 // at its end
	frames0, writes0    int64
	frames1, writes1    int64
}

func newPubsubPart(o *Options, rate float64) *pubsubPart {
	p := &pubsubPart{o: o, rate: rate, nsubs: o.Subscribers, win: newTimeWindow(), cnt: newCountStop(),
		done: make(chan struct{})}
	if o.PublishOnly {
		p.nsubs = 0
	}
	return p
}

func (p *pubsubPart) totalDelivered() int64 {
	var n int64
	for i := range p.delivered {
		n += p.delivered[i].n.Load()
	}
	return n
}

func (p *pubsubPart) setup(ctx context.Context) error {
	o := p.o
	prefix := runPrefix()
	p.topics = make([]string, o.Topics)
	p.fanout = make([]int64, o.Topics)
	p.tmpls = make([]*template, o.Topics)
	for i := range p.topics {
		p.topics[i] = fmt.Sprintf("%s.topic.%d", prefix, i)
		m := codec.Message{Type: codec.PUBLISH, URI: []byte(p.topics[i])}
		if o.Ack {
			m.Details.Has, m.Details.Acknowledge = codec.KeyAcknowledge, true
		}
		t, err := newTemplate(o.Serializer, m)
		if err != nil {
			return err
		}
		p.tmpls[i] = t
	}
	var err error
	if p.subConns, err = dialAll(ctx, o, p.nsubs, o.Concurrency); err != nil {
		return err
	}
	p.delivered = make([]subCounter, p.nsubs)
	p.hists = newHistSet(p.nsubs)
	for i, c := range p.subConns {
		t := i % o.Topics
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := c.request(sctx, &codec.Message{Type: codec.SUBSCRIBE, Request: 1, URI: []byte(p.topics[t])}, codec.SUBSCRIBED)
		cancel()
		if err != nil {
			return fmt.Errorf("loadgen: subscribe %s: %w", p.topics[t], err)
		}
		p.fanout[t]++
		cnt, rec := &p.delivered[i].n, p.hists.recorder(i)
		c.start(func(m *codec.Message) {
			switch m.Type {
			case codec.EVENT:
				cnt.Add(1)
				ts, ok := payloadTime(o.Serializer, m.Args)
				if !ok {
					p.errs.add(errors.New("event payload without a send time"))
					return
				}
				if p.win.in(ts) {
					rec.Record(time.Now().UnixNano() - ts)
				}
			case codec.ERROR:
				p.errs.add(fmt.Errorf("subscriber: ERROR %s", m.URI))
			}
		}, p.errs.add)
	}
	if p.pubConns, err = dialAll(ctx, o, o.Publishers, o.Concurrency); err != nil {
		return err
	}
	for _, c := range p.pubConns {
		c.start(func(m *codec.Message) {
			switch m.Type {
			case codec.PUBLISHED:
				p.acked.Add(1)
			case codec.ERROR:
				p.errs.add(fmt.Errorf("publish: ERROR %s", m.URI))
			}
		}, p.errs.add)
	}
	return nil
}

func (p *pubsubPart) start() {
	// Undelivered events allowed in flight (rate 0): at least 128 publications of the
	// largest fan-out, so that a large fan-out still has enough publications in flight
	// to batch writes.
	limit := int64(p.o.Window)
	if len(p.fanout) > 0 {
		limit = max(limit, 128*slices.Max(p.fanout))
	}
	now := time.Now()
	for j, c := range p.pubConns {
		p.wg.Go(func() { p.publish(j, c, limit, now) })
	}
	go func() { p.wg.Wait(); close(p.done) }()
}

// publishBatch is the most publications a publisher builds between two flow checks.
const publishBatch = 64

// publish is publisher j's loop.
func (p *pubsubPart) publish(j int, c *wconn, limit int64, start time.Time) {
	o := p.o
	pl, err := newPayload(o.Serializer, o.Size)
	if err != nil {
		p.errs.add(err)
		return
	}
	pace := newPacer(p.rate, o.Publishers, j, start)
	t := j % len(p.topics)
	var buf []byte
	var id uint64
	for !p.stop.Load() {
		n := int64(publishBatch)
		if p.rate > 0 {
			n = pace.waitDue(publishBatch, &p.stop)
		} else {
			// Publish as fast as the router delivers, without loss: pause while too many
			// events are undelivered (or, with Ack, publications unacknowledged).
			for !p.stop.Load() && (p.expected.Load()-p.totalDelivered() > limit ||
				(o.Ack && p.sent.Load()-p.acked.Load() > int64(o.Window))) {
				time.Sleep(50 * time.Microsecond)
			}
		}
		if p.stop.Load() || n == 0 {
			return
		}
		var due int64
		for i, tt := int64(0), t; i < n; i++ {
			due += p.fanout[tt]
			if tt++; tt == len(p.topics) {
				tt = 0
			}
		}
		p.expected.Add(due)
		var made int64
		for ; made < n; made++ {
			id++
			buf = p.tmpls[t].build(buf[:0], id, pl.stamp(time.Now().UnixNano()))
			if err := c.send(buf); err != nil {
				break
			}
			due -= p.fanout[t]
			if t++; t == len(p.topics) {
				t = 0
			}
		}
		pace.took(n)
		if made < n { // the connection is gone (its reader reported why)
			p.expected.Add(-due)
			p.sent.Add(made)
			return
		}
		p.cnt.sent(p.sent.Add(n))
	}
}

func (p *pubsubPart) beginWindow(now time.Time) {
	p.sent0, p.del0, p.acked0 = p.sent.Load(), p.totalDelivered(), p.acked.Load()
	p.frames0, p.writes0 = ioStats(p.subConns, p.pubConns)
	p.win.from.Store(now.UnixNano())
	if p.o.Count > 0 {
		p.cnt.at.Store(p.sent0 + p.o.Count)
	}
}

func (p *pubsubPart) countReached() <-chan struct{} { return p.cnt.hit }
func (p *pubsubPart) senderDone() <-chan struct{}   { return p.done }

func (p *pubsubPart) endWindow(now time.Time) {
	p.win.to.Store(now.UnixNano())
	p.sent1, p.del1 = p.sent.Load(), p.totalDelivered()
	p.frames1, p.writes1 = ioStats(p.subConns, p.pubConns)
	p.stop.Store(true)
}

// drain waits for the events (and acknowledgements) still in flight, until no progress
// for a second.
func (p *pubsubPart) drain() {
	<-p.done
	pending := func() bool {
		return p.totalDelivered() < p.expected.Load() || (p.o.Ack && p.acked.Load() < p.sent.Load())
	}
	last, lastChange := p.totalDelivered()+p.acked.Load(), time.Now()
	for pending() && time.Since(lastChange) < time.Second {
		time.Sleep(5 * time.Millisecond)
		if d := p.totalDelivered() + p.acked.Load(); d != last {
			last, lastChange = d, time.Now()
		}
	}
}

func (p *pubsubPart) fill(r *Result) {
	o := p.o
	r.Scenario = "pubsub"
	r.Rate = p.rate
	r.Publishers, r.Subscribers, r.Topics = o.Publishers, p.nsubs, o.Topics
	r.Ack = o.Ack
	r.Sent, r.Delivered = p.sent1-p.sent0, p.del1-p.del0
	if o.Ack {
		// Acknowledgements of the window's publications arrive after it too (a short
		// --count window can end before the first PUBLISHED is read): count what came
		// by the end of the drain, at most one per publication of the window.
		r.Acked = min(p.acked.Load()-p.acked0, r.Sent)
		r.Unacked = max(0, p.sent.Load()-p.acked.Load())
	}
	r.Lost = max(0, p.expected.Load()-p.totalDelivered())
	r.Latency = p.hists.merged().Latency()
	r.Frames, r.Writes = p.frames1-p.frames0, p.writes1-p.writes0
	r.addErrors(&p.errs)
}

func (p *pubsubPart) progress() (sent, delivered, errors int64) {
	return p.sent.Load(), p.totalDelivered(), p.errs.n.Load()
}

func (p *pubsubPart) close() {
	p.stop.Store(true)
	closeConns(p.subConns)
	closeConns(p.pubConns)
}
