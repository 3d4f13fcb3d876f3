package link

import (
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Reconnect backoff of a Pool's links: exponential from minBackoff to maxBackoff with
// ±25% jitter; it restarts from minBackoff once a link has stayed up for stableAfter.
const (
	minBackoff  = 50 * time.Millisecond
	maxBackoff  = 2 * time.Second
	stableAfter = time.Second
)

// Pool is the dialing side: n links to one remote address, each reconnecting with
// backoff for as long as the pool is open. Its methods are safe for concurrent use.
type Pool struct {
	addr  string
	cfg   Config
	h     Handler
	err   error
	slots []atomic.Pointer[Link]
	// admitting[i] is slot i's admission (admit): while its new link waits for fences,
	// Sends of i's keys are held there instead of borrowing another link.
	admitting []admission
	ctr       counters

	dialed, errors atomic.Uint64

	mu     sync.Mutex
	cur    []*Link // each slot's link from handshake to down, for Close
	closed bool
	stop   chan struct{}
	wg     sync.WaitGroup
}

// Dial starts n (at least 1) links to addr and returns at once; the links come up, and
// come back after a failure, in the background, each reported to h. A bad config is
// logged and kept in Err, and no link is attempted. Safe for concurrent use.
func Dial(addr string, n int, cfg Config, h Handler) *Pool {
	n = max(n, 1)
	p := &Pool{addr: addr, h: h, slots: make([]atomic.Pointer[Link], n), cur: make([]*Link, n),
		admitting: make([]admission, n), stop: make(chan struct{})}
	p.cfg, p.err = cfg.withDefaults(false)
	if p.err != nil {
		p.cfg.Logger.Error("link: pool not started", "addr", addr, "err", p.err)
		return p
	}
	for i := range n {
		p.wg.Add(1)
		go p.run(i)
	}
	return p
}

// Addr returns the address the pool dials. Safe for concurrent use.
func (p *Pool) Addr() string { return p.addr }

// Err returns the config error that kept the pool from starting, else nil. Safe for
// concurrent use.
func (p *Pool) Err() error { return p.err }

// Slots returns the number of links the pool keeps (key k goes on slot k % Slots()).
// Safe for concurrent use.
func (p *Pool) Slots() int { return len(p.slots) }

// Pick returns the link for key (slot key % n), nil while that link is down. The same
// key gets the same link for as long as it is up, which keeps one session's frames in
// order. Safe for concurrent use.
func (p *Pool) Pick(key uint64) *Link {
	return p.slots[key%uint64(len(p.slots))].Load()
}

// PickUp is Pick, or, while key's link reconnects, the next link of the pool that is up
// (in slot order from key's); nil when none is up. A caller that keeps the link it got
// for a session (as proxies do) keeps that session's frames in order; one that picks
// per frame should use Send, which keeps them in order when the key's link comes back.
// Safe for concurrent use.
func (p *Pool) PickUp(key uint64) *Link {
	n := uint64(len(p.slots))
	for k := range n {
		if l := p.slots[(key+k)%n].Load(); l != nil {
			return l
		}
	}
	return nil
}

// ErrNoLink is Pool.Send's error when none of the pool's links is up.
var ErrNoLink = errors.New("link: no link of the pool is up")

// Send sends a frame on key's link (Pick), or, while that link reconnects, on the next
// one that is up (PickUp). Unlike a caller of PickUp, it keeps the key's frames in
// order when the key moves back to its own link: a link that comes back takes its
// keys only once the peer has handled what the other links carried before (admit), and
// the Sends of its keys meanwhile are held and go first on it (never blocking: Send
// may run on an event loop that reads the very links whose fences admit waits for).
// Safe for concurrent use; no lock while the key's link is up.
func (p *Pool) Send(key uint64, kind Kind, id uint64, payload []byte) error {
	n := uint64(len(p.slots))
	i := key % n
	if l := p.slots[i].Load(); l != nil {
		return l.Send(kind, id, payload)
	}
	a := &p.admitting[i]
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.on {
		return a.hold(kind, id, payload, p.cfg.OutboundLimit)
	}
	for k := range n { // slot i first: an admission may have ended since the load above
		if l := p.slots[(i+k)%n].Load(); l != nil {
			return l.Send(kind, id, payload)
		}
	}
	return ErrNoLink
}

// admission is one slot's state while its returning link waits for fences (admit).
type admission struct {
	mu   sync.Mutex
	on   bool       // admit is waiting for fences
	held []heldSend // Sends of the slot's keys meanwhile, in order
	size int        // their payload bytes
}

// heldSend is a Send held during an admission.
type heldSend struct {
	kind    Kind
	id      uint64
	payload []byte
}

// hold keeps a copy of one Send for the end of the admission; a.mu is held. Beyond
// limit bytes held, the Send fails as overloaded.
func (a *admission) hold(kind Kind, id uint64, payload []byte, limit int) error {
	if kind < FirstUserKind {
		return ErrReservedKind
	}
	if len(payload) > MaxPayload {
		return ErrTooLarge
	}
	if a.size+len(payload) > limit {
		return fmt.Errorf("%w: %d bytes held for a returning link", ErrOverloaded, a.size)
	}
	a.held = append(a.held, heldSend{kind: kind, id: id, payload: append([]byte(nil), payload...)})
	a.size += len(payload)
	return nil
}

// admit makes lk slot i's link once every other link of the pool that is up has
// answered a fence, gone down, or fenceTimeout passed: the frames of i's keys that they
// carried while i was down have then been handled by the peer, and none sent on lk can
// overtake them. Sends of i's keys are held meanwhile (Send) and go first on lk. It runs
// on its own goroutine, so that lk's reader serves the peer in the meantime.
func (p *Pool) admit(i int, lk *Link) {
	a := &p.admitting[i]
	a.mu.Lock() // a borrowing Send in progress is queued before the fences
	a.on = true
	a.mu.Unlock()
	var fenced []*Link
	var waits []<-chan struct{}
	for j := range p.slots {
		if o := p.slots[j].Load(); j != i && o != nil {
			fenced, waits = append(fenced, o), append(waits, o.Fence())
		}
	}
	if len(waits) > 0 {
		t := time.NewTimer(fenceTimeout)
		defer t.Stop()
	wait:
		for k, w := range waits {
			select {
			case <-w:
			case <-fenced[k].Done(): // what it carried is lost anyway (the pair resyncs)
			case <-t.C:
				p.cfg.Logger.Warn("link: fences of a returning link unanswered, going on",
					"addr", p.addr, "slot", i, "after", fenceTimeout)
				break wait
			}
		}
	}
	// lk may have failed meanwhile: its onDown cleared the slot before this store, or
	// comes after it. Admits of one slot are serialized, and a slot's next link comes
	// up only after lk is down, so nothing newer is overwritten here. The held Sends go
	// first, on lk, or, if it failed, on the next link up (they come after the fences).
	a.mu.Lock()
	defer a.mu.Unlock()
	to := lk
	if lk.isClosed.Load() {
		to = p.PickUp(uint64(i))
	}
	for _, h := range a.held {
		if to != nil {
			_ = to.Send(h.kind, h.id, h.payload) // a failed link's frames are lost: the pair resyncs
		}
	}
	a.held, a.size = nil, 0
	if !lk.isClosed.Load() {
		p.slots[i].Store(lk)
		if lk.isClosed.Load() {
			p.slots[i].CompareAndSwap(lk, nil)
		}
	}
	a.on = false
}

// LinkStats sums the counters of the pool's links that are up now. Safe for concurrent
// use.
func (p *Pool) LinkStats() LinkStats {
	var t LinkStats
	for i := range p.slots {
		if l := p.slots[i].Load(); l != nil {
			t.Add(l.Stats())
		}
	}
	return t
}

// Up reports whether at least one link is up. Safe for concurrent use.
func (p *Pool) Up() bool {
	for i := range p.slots {
		if p.slots[i].Load() != nil {
			return true
		}
	}
	return false
}

// Stats returns the pool's totals. Safe for concurrent use.
func (p *Pool) Stats() EndpointStats {
	s := EndpointStats{Accepted: p.dialed.Load(), Errors: p.errors.Load(),
		AuthFailed: p.ctr.authFailed.Load(), Overloaded: p.ctr.overloaded.Load(), Dead: p.ctr.dead.Load()}
	for i := range p.slots {
		if p.slots[i].Load() != nil {
			s.Links++
		}
	}
	return s
}

// Close closes every link (OnLinkDown follows for each), stops reconnecting and waits
// for the pool's goroutines. Safe for concurrent use; idempotent.
func (p *Pool) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	close(p.stop)
	for _, lk := range p.cur {
		if lk != nil {
			lk.Close(fmt.Errorf("%w: pool closed", ErrClosed))
		}
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// run keeps slot i connected until the pool closes.
func (p *Pool) run(i int) {
	defer p.wg.Done()
	log := p.cfg.Logger.With("addr", p.addr, "slot", i)
	backoff := minBackoff
	failing := false
	for {
		select {
		case <-p.stop:
			return
		default:
		}
		lk, err := p.connect()
		if err != nil {
			p.errors.Add(1)
			if !failing {
				log.Warn("link: cannot connect, retrying with backoff", "err", err)
			} else {
				log.Debug("link: cannot connect", "err", err, "backoff", backoff)
			}
			failing = true
			if !p.sleep(backoff) {
				return
			}
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		p.dialed.Add(1)
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			_ = lk.conn.Close()
			return
		}
		p.cur[i] = lk
		p.mu.Unlock()
		failing = false
		lk.onUp = func(lk *Link) { go p.admit(i, lk) } // its reader starts meanwhile
		lk.onDown = func(lk *Link) {
			p.slots[i].CompareAndSwap(lk, nil)
			log.Warn("link: down", "peer", lk.peer.Node, "err", lk.Err())
		}
		log.Info("link: up", "peer", lk.peer.Node, "role", lk.peer.Role)
		start := time.Now()
		lk.run()
		p.mu.Lock()
		p.cur[i] = nil
		p.mu.Unlock()
		if time.Since(start) >= stableAfter {
			backoff = minBackoff
		}
		if !p.sleep(backoff) {
			return
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// sleep waits d with ±25% jitter; false if the pool closed meanwhile.
func (p *Pool) sleep(d time.Duration) bool {
	d += time.Duration((rand.Float64() - 0.5) * 0.5 * float64(d))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-p.stop:
		return false
	}
}

// connect dials, runs TLS if configured and the link handshake, under HandshakeTimeout.
func (p *Pool) connect() (*Link, error) {
	d := net.Dialer{Timeout: HandshakeTimeout}
	c, err := d.Dial("tcp", p.addr)
	if err != nil {
		return nil, fmt.Errorf("link: dial %s: %w", p.addr, err)
	}
	conn := c
	_ = c.SetDeadline(time.Now().Add(HandshakeTimeout))
	if p.cfg.TLS != nil {
		tcfg := p.cfg.TLS
		if tcfg.ServerName == "" {
			tcfg = tcfg.Clone()
			tcfg.ServerName, _, _ = net.SplitHostPort(p.addr)
		}
		tc := tls.Client(c, tcfg)
		if err := tc.Handshake(); err != nil {
			_ = c.Close()
			p.ctr.authFailed.Add(1)
			return nil, fmt.Errorf("%w: tls with %s: %v", ErrAuth, p.addr, err)
		}
		conn = tc
	}
	peer, err := dialerHandshake(conn, &p.cfg)
	if err != nil {
		_ = conn.Close()
		p.ctr.authFailed.Add(1)
		return nil, fmt.Errorf("link: handshake with %s: %w", p.addr, err)
	}
	_ = c.SetDeadline(time.Time{})
	return newLink(conn, &p.cfg, p.h, peer, &p.ctr), nil
}
