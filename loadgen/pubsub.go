package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-wamp/switchyard/client"
)

// pubsubScenario: Publishers sessions publish (acknowledge=false) Size-byte payloads to
// Topics topics round-robin; Subscribers sessions each subscribe to one topic (i%Topics)
// and receive raw events. Delivered counts events received; latency is publish-to-event.
type pubsubScenario struct{}

func (pubsubScenario) Name() string { return "pubsub" }

// subscriber is one subscribing session's counters, padded against false sharing.
type subscriber struct {
	delivered atomic.Int64
	hist      *lockedHist
	_         [48]byte
}

type pubsubRun struct {
	o      *Options
	errs   errorLog
	topics []string
	fanout []int64 // subscribers per topic
	subs   []*subscriber

	expected atomic.Int64 // events due: publications x subscribers of their topic
	sent     atomic.Int64
	stop     atomic.Bool
	// The window in payload send times; latencies of events sent outside it are not recorded.
	from, to atomic.Int64
	countAt  atomic.Int64 // sent value that ends the window (Count)
	countHit chan struct{}
	hitOnce  sync.Once
}

func (r *pubsubRun) delivered() int64 {
	var n int64
	for _, s := range r.subs {
		n += s.delivered.Load()
	}
	return n
}

func runPrefix() string { return fmt.Sprintf("loadgen.%08x", rand.Uint32()) }

func (pubsubScenario) Run(ctx context.Context, o *Options) (*Result, error) {
	res := newResult("pubsub", o)
	res.Publishers, res.Subscribers, res.Topics = o.Publishers, o.Subscribers, o.Topics
	r := &pubsubRun{o: o, countHit: make(chan struct{})}
	r.from.Store(math.MaxInt64)
	r.to.Store(math.MaxInt64)
	r.countAt.Store(math.MaxInt64)
	prefix := runPrefix()
	r.topics = make([]string, o.Topics)
	r.fanout = make([]int64, o.Topics)
	for i := range r.topics {
		r.topics[i] = fmt.Sprintf("%s.topic.%d", prefix, i)
	}

	subSessions, err := connectAll(ctx, o, o.Subscribers, o.Concurrency)
	if err != nil {
		return nil, err
	}
	defer closeAll(subSessions)
	r.subs = make([]*subscriber, len(subSessions))
	ser := o.Serializer
	for i, s := range subSessions {
		st := &subscriber{hist: newLockedHist()}
		r.subs[i] = st
		h := func(ev *client.Event) {
			st.delivered.Add(1)
			ts, ok := payloadTime(ser, ev.RawArgs)
			if !ok {
				r.errs.add(errors.New("event payload without a send time"))
				return
			}
			if ts >= r.from.Load() && ts < r.to.Load() {
				st.hist.Record(time.Now().UnixNano() - ts)
			}
		}
		t := i % o.Topics
		if _, err := s.Subscribe(ctx, r.topics[t], h, nil, client.RawEvents()); err != nil {
			return nil, fmt.Errorf("loadgen: subscribe %s: %w", r.topics[t], err)
		}
		r.fanout[t]++
	}
	pubSessions, err := connectAll(ctx, o, o.Publishers, o.Concurrency)
	if err != nil {
		return nil, err
	}
	defer closeAll(pubSessions)

	// In-flight limit in events; at least 128 publications of the largest fan-out, so that
	// a large fan-out still has enough publications in flight to batch writes.
	limit := max(int64(o.Window), 128*slices.Max(r.fanout))
	var wg sync.WaitGroup
	pubsDone := make(chan struct{})
	for j, s := range pubSessions {
		wg.Go(func() { r.publish(j, s, limit) })
	}
	go func() { wg.Wait(); close(pubsDone) }()

	// Warmup, then the measured window.
	var w window
	stopEarly := func() bool {
		select {
		case <-pubsDone:
			return true
		default:
			return false
		}
	}
	sleepCtx(ctx, o.Warmup)
	w.begin(o.RouterPID)
	sent0, del0 := r.sent.Load(), r.delivered()
	r.from.Store(w.start.UnixNano())
	if o.Count > 0 {
		r.countAt.Store(sent0 + o.Count)
	}
	if !stopEarly() {
		var timeout <-chan time.Time
		if o.Duration > 0 {
			t := time.NewTimer(o.Duration)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-timeout:
		case <-ctx.Done():
		case <-r.countHit:
		case <-pubsDone:
		}
	}
	r.to.Store(time.Now().UnixNano())
	r.stop.Store(true)
	w.finish()
	res.Sent, res.Delivered = r.sent.Load()-sent0, r.delivered()-del0
	<-pubsDone

	// Drain: wait for the events still in flight, until no progress for a second.
	last, lastChange := r.delivered(), time.Now()
	for r.delivered() < r.expected.Load() && time.Since(lastChange) < time.Second {
		time.Sleep(5 * time.Millisecond)
		if d := r.delivered(); d != last {
			last, lastChange = d, time.Now()
		}
	}
	res.Lost = max(0, r.expected.Load()-r.delivered())
	deadSessions(subSessions, &r.errs)
	deadSessions(pubSessions, &r.errs)

	h := newHistogram()
	for _, s := range r.subs {
		s.hist.mergeInto(h)
	}
	res.Latency = h.Latency()
	w.fill(res, &r.errs)
	r.errs.fill(res)
	return res, nil
}

// publish is publisher j's loop.
func (r *pubsubRun) publish(j int, s *client.Session, limit int64) {
	o := r.o
	p, err := newPayload(o.Serializer, o.Size)
	if err != nil {
		r.errs.add(err)
		return
	}
	pace := newPacer(o.Rate, o.Publishers)
	t := j % len(r.topics)
	for i := 0; !r.stop.Load(); i++ {
		if o.Rate > 0 {
			pace.wait(&r.stop)
		} else if i%16 == 0 {
			for r.expected.Load()-r.delivered() > limit && !r.stop.Load() {
				time.Sleep(50 * time.Microsecond)
			}
		}
		if r.stop.Load() {
			return
		}
		r.expected.Add(r.fanout[t])
		if err := s.PublishRaw(r.topics[t], p.stamp(time.Now().UnixNano()), nil); err != nil {
			r.expected.Add(-r.fanout[t])
			r.errs.add(fmt.Errorf("publish: %w", err))
			select {
			case <-s.Done():
				return
			default:
			}
			continue
		}
		if r.sent.Add(1) >= r.countAt.Load() {
			r.hitOnce.Do(func() { close(r.countHit) })
			return
		}
		if t++; t == len(r.topics) {
			t = 0
		}
	}
}
