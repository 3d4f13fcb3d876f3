package span

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/codec"
	"github.com/switchyard-wamp/switchyard/engine"
)

// loopback is an in-process Transport between the Spans of one test: one queue and one
// delivering goroutine per (from, to) pair, so that messages between two routers arrive
// in send order (stronger than the per-key order a Transport promises) and never inside
// Send. It counts messages per (from, to, kind).
type loopback struct {
	mu     sync.Mutex
	spans  map[string]*Span
	down   map[string]bool
	queues map[lbLane]*lbQueue
	// lanes, when above 1, gives each (from, to) pair that many queues, key k on lane
	// k mod lanes (like a router's links); slowLane, when set, delays only that lane of
	// slowPair.
	lanes    int
	slowLane int
	counts   map[lbCount]int
	// inflight counts queued and running deliveries, for settle.
	inflight atomic.Int64
	// mute is a router that accepts messages and never gets them (a hung router).
	mute string
	// slowTo delays every message to that router by slowBy (a slow link); slowPair
	// delays only the messages from slowPair[0] to slowPair[1].
	slowTo   string
	slowBy   time.Duration
	slowPair [2]string
	// refuseTo is a router that sends to are refused (as to a router whose links are
	// all down) while what was queued to it before is still delivered.
	refuseTo string
	// failed counts the sends refused because a router was down.
	failed atomic.Int64
}

// lbLane is one ordered queue between two routers.
type lbLane struct {
	from, to string
	lane     int
}

type lbCount struct {
	from, to string
	kind     Kind
}

type lbQueue struct {
	mu      sync.Mutex
	items   []lbMsg
	running bool
}

type lbMsg struct {
	kind    Kind
	payload []byte
}

func newLoopback() *loopback {
	return &loopback{spans: map[string]*Span{}, down: map[string]bool{}, queues: map[lbLane]*lbQueue{},
		counts: map[lbCount]int{}}
}

// from returns router name's Transport.
func (l *loopback) from(name string) Transport { return lbEnd{l, name} }

type lbEnd struct {
	l    *loopback
	from string
}

var errDown = errors.New("loopback: router down")

func (e lbEnd) Send(to string, key uint64, kind Kind, payload []byte) error {
	l := e.l
	l.mu.Lock()
	if l.down[to] || l.down[e.from] || l.spans[to] == nil || l.refuseTo == to {
		l.mu.Unlock()
		l.failed.Add(1)
		return errDown
	}
	l.counts[lbCount{e.from, to, kind}]++
	lane := lbLane{e.from, to, 0}
	if l.lanes > 1 {
		lane.lane = int(key % uint64(l.lanes))
	}
	q := l.queues[lane]
	if q == nil {
		q = &lbQueue{}
		l.queues[lane] = q
	}
	l.mu.Unlock()
	l.inflight.Add(1)
	q.mu.Lock()
	q.items = append(q.items, lbMsg{kind, append([]byte(nil), payload...)})
	start := !q.running
	q.running = true
	q.mu.Unlock()
	if start {
		go l.drain(lane, q)
	}
	return nil
}

// Lanes implements Laned.
func (e lbEnd) Lanes(string) int {
	e.l.mu.Lock()
	defer e.l.mu.Unlock()
	return max(1, e.l.lanes)
}

func (l *loopback) drain(lane lbLane, q *lbQueue) {
	from, to := lane.from, lane.to
	for {
		q.mu.Lock()
		if len(q.items) == 0 {
			q.running = false
			q.mu.Unlock()
			return
		}
		m := q.items[0]
		q.items = q.items[1:]
		q.mu.Unlock()
		l.mu.Lock()
		dst, gone := l.spans[to], l.down[to] || l.down[from] || l.mute == to
		slow := l.slowBy
		if l.slowTo != to && (l.slowPair != [2]string{from, to} || (l.lanes > 1 && lane.lane != l.slowLane)) {
			slow = 0
		}
		l.mu.Unlock()
		time.Sleep(slow)
		if !gone {
			dst.OnMessage(from, m.kind, m.payload)
		}
		l.inflight.Add(-1)
	}
}

// count returns the messages of kind sent from -> to so far.
func (l *loopback) count(from, to string, kind Kind) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.counts[lbCount{from, to, kind}]
}

// crossings counts the publications from one router to another: as the PUBLISH or as
// the EVENTs.
func (l *loopback) crossings(from, to string) int {
	return l.count(from, to, KindPublish) + l.count(from, to, KindEvents)
}

func (l *loopback) resetCounts() {
	l.mu.Lock()
	l.counts = map[lbCount]int{}
	l.mu.Unlock()
}

// settle waits until no message is queued or being delivered, twice in a row a few
// milliseconds apart (goroutines the Spans start, e.g. decisions, get to run).
func (l *loopback) settle(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	quiet := 0
	for quiet < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("loopback did not settle: %d in flight", l.inflight.Load())
		}
		if l.inflight.Load() == 0 {
			quiet++
		} else {
			quiet = 0
		}
		time.Sleep(time.Millisecond)
	}
}

// cluster is several engine routers with one realm, joined by a loopback.
type cluster struct {
	t      testing.TB
	lb     *loopback
	names  []string
	spans  map[string]*Span
	realms map[string]*engine.Realm
}

func newCluster(t testing.TB, names ...string) *cluster {
	c := &cluster{t: t, lb: newLoopback(), names: names, spans: map[string]*Span{}, realms: map[string]*engine.Realm{}}
	for _, n := range names {
		c.start(n)
	}
	for _, n := range names {
		c.spans[n].SetRouters(names)
	}
	c.lb.settle(t)
	return c
}

// start makes router name (an engine with realm1 and its Span) and puts it on the
// loopback, reachable (again); its membership is the caller's to set.
func (c *cluster) start(name string) *Span {
	r := engine.NewRouter(nil)
	c.realms[name] = r.AddRealm("realm1")
	sp := New(name, r, c.lb.from(name), nil)
	c.spans[name] = sp
	c.lb.mu.Lock()
	c.lb.spans[name] = sp
	c.lb.down[name] = false
	c.lb.mu.Unlock()
	return sp
}

// kill makes router name unreachable and tells the others it is down.
func (c *cluster) kill(name string) {
	c.lb.mu.Lock()
	c.lb.down[name] = true
	c.lb.mu.Unlock()
	for _, n := range c.names {
		if n != name {
			c.spans[n].RouterDown(name)
		}
	}
}

// peer is an in-memory client connection keeping what the engine sends.
type peer struct {
	ser    codec.Serializer
	mu     sync.Mutex
	msgs   [][]byte
	closed bool
}

func (p *peer) Serializer() codec.Serializer { return p.ser }
func (p *peer) Send(b []byte) error {
	p.mu.Lock()
	p.msgs = append(p.msgs, append([]byte(nil), b...))
	p.mu.Unlock()
	return nil
}
func (p *peer) Close() { p.mu.Lock(); p.closed = true; p.mu.Unlock() }

// client is a session joined on one router of a cluster.
type client struct {
	c      *cluster
	router string
	s      *engine.Session
	p      *peer
	req    uint64
}

var allFeatures = engine.Features{CallCanceling: true, ProgressiveCallInvocations: true}

func (c *cluster) join(router string, ser codec.Serializer, authid, authrole string) *client {
	p := &peer{ser: ser}
	s := c.realms[router].JoinWith(p, engine.AuthInfo{AuthID: authid, AuthRole: authrole,
		AuthMethod: "anonymous", AuthProvider: "static"}, allFeatures)
	return &client{c: c, router: router, s: s, p: p}
}

// send gives m to the session (from the test goroutine, the session's reader).
func (cl *client) send(m codec.Message) {
	if m.Request == 0 && m.Type != codec.YIELD && !(m.Type == codec.ERROR) {
		cl.req++
		m.Request = cl.req
	}
	cl.s.Receive(&m)
}

// take returns (decoded) and forgets what the client got so far.
func (cl *client) take() []codec.Message {
	cl.c.t.Helper()
	cl.p.mu.Lock()
	defer cl.p.mu.Unlock()
	out := make([]codec.Message, len(cl.p.msgs))
	for i, b := range cl.p.msgs {
		if err := codec.For(cl.p.ser).Decode(b, &out[i]); err != nil {
			cl.c.t.Fatalf("decode %q: %v", b, err)
		}
	}
	cl.p.msgs = nil
	return out
}

// waitFor waits until the client has at least n messages and returns them all, once
// the transport has settled.
func (cl *client) waitFor(n int) []codec.Message {
	cl.c.t.Helper()
	cl.arrived(n)
	cl.c.lb.settle(cl.c.t)
	return cl.take()
}

// arrived waits until the client has n messages, without waiting for the transport to
// settle (waitFor does), and leaves them there.
func (cl *client) arrived(n int) {
	cl.c.t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		cl.p.mu.Lock()
		have := len(cl.p.msgs)
		cl.p.mu.Unlock()
		if have >= n {
			return
		}
		if time.Now().After(deadline) {
			cl.c.t.Fatalf("client on %s: %d messages, want %d: %+v", cl.router, have, n, cl.take())
		}
		time.Sleep(time.Millisecond)
	}
}

// one waits for exactly one message of type typ.
func (cl *client) one(typ codec.MessageType) codec.Message {
	cl.c.t.Helper()
	ms := cl.waitFor(1)
	if len(ms) != 1 || ms[0].Type != typ {
		cl.c.t.Fatalf("client on %s: want one %s, got %s", cl.router, typ, describe(ms))
	}
	return ms[0]
}

// none checks that the client got nothing (after the cluster settled).
func (cl *client) none() {
	cl.c.t.Helper()
	cl.c.lb.settle(cl.c.t)
	if ms := cl.take(); len(ms) != 0 {
		cl.c.t.Fatalf("client on %s: want nothing, got %s", cl.router, describe(ms))
	}
}

func describe(ms []codec.Message) string {
	s := fmt.Sprintf("%d messages:", len(ms))
	for _, m := range ms {
		s += fmt.Sprintf(" %s(req=%d uri=%s)", m.Type, m.Request, m.URI)
	}
	return s
}

func (cl *client) subscribe(topic, match string) uint64 {
	m := codec.Message{Type: codec.SUBSCRIBE, URI: []byte(topic)}
	if match != "" {
		m.Details.Has, m.Details.Match = codec.KeyMatch, []byte(match)
	}
	cl.send(m)
	return cl.one(codec.SUBSCRIBED).Subscription
}

func (cl *client) register(proc, match, invoke string) codec.Message {
	m := codec.Message{Type: codec.REGISTER, URI: []byte(proc)}
	if match != "" {
		m.Details.Has, m.Details.Match = codec.KeyMatch, []byte(match)
	}
	if invoke != "" {
		m.Details.Has, m.Details.Invoke = m.Details.Has|codec.KeyInvoke, []byte(invoke)
	}
	cl.send(m)
	return cl.waitFor(1)[0]
}

func raw(t testing.TB, ser codec.Serializer, v any) codec.Raw {
	b, err := codec.AppendValue(nil, ser, v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func value(t testing.TB, ser codec.Serializer, r codec.Raw) any {
	v, err := codec.DecodeValue(ser, r)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// firstArg returns m's first positional argument (decoded with ser).
func firstArg(t testing.TB, ser codec.Serializer, m codec.Message) any {
	args, _ := value(t, ser, m.Args).([]any)
	if len(args) == 0 {
		t.Fatalf("%s without arguments", m.Type)
	}
	return args[0]
}
