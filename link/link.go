package link

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/switchyard-wamp/switchyard/internal/readbatch"
)

// PeerInfo is the authenticated remote node: its name and role as sent in its hello
// (proven by the cluster secret or the TLS client certificate).
type PeerInfo struct{ Node, Role string }

// Handler receives a link's life cycle and frames. One Handler may serve many links;
// its methods are called from each link's reader goroutine, so calls for different
// links are concurrent.
type Handler interface {
	// OnLinkUp is called once the link is authenticated, before any of its frames is
	// delivered. Send may be called from it.
	OnLinkUp(l *Link)
	// OnFrame is called on l's reader goroutine for each frame, frames of one link in
	// order. f and its Payload and Targets are valid only during the call. It must not
	// block long: it holds up every session of the link.
	OnFrame(l *Link, f *Frame)
	// OnLinkDown is called once, after the last OnFrame of l, with the reason.
	OnLinkDown(l *Link, err error)
}

// LinkStats are a link's counters, see Link.Stats.
type LinkStats struct {
	FramesIn, BytesIn   uint64 // frames (pings and pongs included) and bytes received after the handshake
	FramesOut, BytesOut uint64 // frames queued (a coalesced Send adds none; pings and pongs count) and bytes written
	Reads, Writes       uint64 // read and write calls on the connection
	Wakes               uint64 // wake-ups of the writer goroutine (a read batch's end mostly writes itself)
	Coalesced           uint64 // session ids added to the tail frame instead of a new frame
	Queued              int    // bytes queued, not yet written
	RTT                 time.Duration
	Links               int // links summed here (1 for one link's)
	OnLoops             int // of them, read on an event loop (Config.Loops), not a reader goroutine
}

// Add adds o's counters to t (totals over several links; RTT is left alone). Not safe
// for concurrent use on the same t.
func (t *LinkStats) Add(o LinkStats) {
	t.FramesIn += o.FramesIn
	t.BytesIn += o.BytesIn
	t.FramesOut += o.FramesOut
	t.BytesOut += o.BytesOut
	t.Reads += o.Reads
	t.Writes += o.Writes
	t.Wakes += o.Wakes
	t.Coalesced += o.Coalesced
	t.Links += o.Links
	t.OnLoops += o.OnLoops
	t.Queued += o.Queued
}

// counters are the totals an endpoint (Listener or Pool) keeps over all its links.
// Safe for concurrent use.
type counters struct {
	overloaded, dead, authFailed atomic.Uint64
}

// readBufSize is the reader's initial buffer; it grows for a larger frame and shrinks
// back when drained. maxKeepOut bounds the outbound buffer kept between bursts.
const (
	readBufSize = 64 << 10
	minReadRoom = 4 << 10
	maxKeepOut  = 4 << 20
	maxReason   = 200
)

// testBeforeSwap, when set by a test, runs in the writer before it takes the queued
// bytes (to hold the writer and make batching deterministic); testHeld, when set,
// reports the links a test holds that way, which Send never writes through. Nil in
// production.
var (
	testBeforeSwap func(*Link)
	testHeld       func(*Link) bool
)

// Link is one authenticated connection to a peer node. Send, SendTargets, Close, Peer
// and Stats are safe for concurrent use.
type Link struct {
	conn   net.Conn
	cfg    *Config
	h      Handler
	peer   PeerInfo
	ctr    *counters
	onUp   func(*Link) // endpoint hooks, run on the reader goroutine
	onDown func(*Link)

	// raw writes a plain TCP link's bytes without blocking (write-through, batch.go);
	// nil for TLS links, whose bytes only the writer goroutine writes. writeFn is the
	// callback handed to raw.Write, allocated once; wtBuf, wtN and wtErr are its
	// argument and results, used only by the goroutine holding the writing role.
	raw     syscall.RawConn
	writeFn func(fd uintptr) bool
	wtBuf   []byte
	wtN     int
	wtErr   error
	// bm: l's place on the list of targets a read batch's end flushes (batch.go).
	bm readbatch.Mark

	mu        sync.Mutex
	out       []byte // queued frames, not yet taken by a writer
	rest      []byte // unwritten end of a write-through, for the writer goroutine (before out)
	spare     []byte // an empty buffer to swap with out
	writing   bool   // a goroutine (the writer, or a Send writing through) is writing bytes it took
	tail      int    // offset in out of the last frame if it may take more targets, else -1
	queued    int    // bytes in out and rest plus bytes being written
	closed    bool
	graceful  bool
	err       error
	framesOut uint64
	coalesced uint64

	isClosed atomic.Bool
	wrote    atomic.Bool   // a write-through wrote since the writer's last heartbeat check
	wake     chan struct{} // capacity 1: there is something for the writer goroutine
	closing  chan struct{} // closed when the link starts closing
	wdone    chan struct{} // closed when the writer has exited
	done     chan struct{} // closed after OnLinkDown

	framesIn, bytesIn, reads, bytesOut, writes, wakes atomic.Uint64
	rtt                                               atomic.Int64
	fences                                            fences

	// Reads on an event loop (loop.go, Config.Loops): ad is set before the writer starts
	// when the loops took the link; ready once OnLinkUp ran; readDone gets the reading's
	// end; lf and ltbuf are the loop's frame scratch; rdErr (under mu) why reading
	// stopped; gone: the loop is closing the descriptor; lastData: unix nanos of the last
	// bytes; closeBy: unix nanos after which a closing link's blocked write gives up.
	ad       atomic.Pointer[adoption]
	ready    atomic.Bool
	readDone chan error
	lf       Frame
	ltbuf    []uint64
	rdErr    error
	gone     atomic.Bool
	lastData atomic.Int64
	closeBy  atomic.Int64
}

// newLink wraps an authenticated connection.
func newLink(c net.Conn, cfg *Config, h Handler, peer PeerInfo, ctr *counters) *Link {
	l := &Link{
		conn: c, cfg: cfg, h: h, peer: peer, ctr: ctr, tail: -1,
		wake:    make(chan struct{}, 1),
		closing: make(chan struct{}),
		wdone:   make(chan struct{}),
		done:    make(chan struct{}),
	}
	l.bm.Init(l.flush)
	// A *tls.Conn is no syscall.Conn: its bytes must go through its record layer.
	if sc, ok := c.(syscall.Conn); ok && writeThrough && !cfg.NoWriteThrough {
		if raw, err := sc.SyscallConn(); err == nil {
			l.raw = raw
			l.writeFn = l.writeNonBlocking
		}
	}
	return l
}

// Peer returns the authenticated remote node. Safe for concurrent use.
func (l *Link) Peer() PeerInfo { return l.peer }

// RemoteAddr returns the peer's network address. Safe for concurrent use.
func (l *Link) RemoteAddr() net.Addr { return l.conn.RemoteAddr() }

// Done is closed after OnLinkDown of l has returned. Safe for concurrent use.
func (l *Link) Done() <-chan struct{} { return l.done }

// Err returns why the link closed, nil while it is open. Safe for concurrent use.
func (l *Link) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// Stats returns the link's counters. Safe for concurrent use.
func (l *Link) Stats() LinkStats {
	l.mu.Lock()
	s := LinkStats{FramesOut: l.framesOut, Coalesced: l.coalesced, Queued: l.queued}
	l.mu.Unlock()
	s.FramesIn, s.BytesIn, s.Reads = l.framesIn.Load(), l.bytesIn.Load(), l.reads.Load()
	s.BytesOut, s.Writes, s.Wakes = l.bytesOut.Load(), l.writes.Load(), l.wakes.Load()
	s.RTT = time.Duration(l.rtt.Load())
	s.Links = 1
	if l.ad.Load() != nil {
		s.OnLoops = 1
	}
	return s
}

// Send queues one frame of kind about session. It copies payload, never blocks and is
// safe for concurrent use; frames are sent in the order their Send calls took the
// link's lock, so one goroutine's frames keep their order.
//
// Tail coalescing (unless Config.NoCoalesce): when the last queued frame, not yet taken
// by the writer, has the same kind and a byte-identical payload, session is added to
// that frame's targets instead (it becomes a multi-target frame). Only the tail frame is
// merged, so the order of every session's frames is kept; the receiver must treat a
// frame with Targets like one frame per target. Session 0 (the node itself) is never
// merged.
//
// Send wakes the link's writer goroutine when its queue goes from empty to non-empty,
// except while a link reader of this process is handling the frames of one read (any
// link's, in OnFrame): then the queue is flushed when that read's frames are done,
// typically by the reader itself writing without blocking (see batch.go). Send itself
// never waits for the socket, so it may run on an event loop.
//
// Errors: ErrReservedKind, ErrTooLarge, ErrClosed (wrapped with the reason), or
// ErrOverloaded, in which case the link is closing.
func (l *Link) Send(kind Kind, session uint64, payload []byte) error {
	if kind < FirstUserKind {
		return ErrReservedKind
	}
	if len(payload) > MaxPayload {
		return ErrTooLarge
	}
	l.mu.Lock()
	if l.closed {
		return l.closedErr()
	}
	if session != 0 && l.tail >= 0 && l.canCoalesce(kind, payload, 1) {
		l.out = binary.BigEndian.AppendUint64(l.out, session)
		l.mu.Unlock()
		return nil
	}
	size := hdrLen + len(payload) + idLen
	if l.queued+size > l.cfg.OutboundLimit {
		return l.overload(size)
	}
	wasEmpty := len(l.out) == 0
	l.tail = -1
	if session != 0 && !l.cfg.NoCoalesce {
		l.tail = len(l.out)
	}
	l.out = appendFrame(l.out, kind, session, payload)
	l.queued += size
	l.framesOut++
	l.kick(wasEmpty)
	return nil
}

// SendTargets queues one frame carrying payload once and the target sessions (at least
// one, at most MaxTargets); the receiver gets Frame.Targets. Tail coalescing applies as
// in Send. It copies payload and targets, never blocks and is safe for concurrent use.
func (l *Link) SendTargets(kind Kind, targets []uint64, payload []byte) error {
	if kind < FirstUserKind {
		return ErrReservedKind
	}
	if len(payload) > MaxPayload {
		return ErrTooLarge
	}
	if len(targets) == 0 || len(targets) > MaxTargets {
		return fmt.Errorf("link: %d targets (want 1 to %d)", len(targets), MaxTargets)
	}
	l.mu.Lock()
	if l.closed {
		return l.closedErr()
	}
	if l.tail >= 0 && l.canCoalesce(kind, payload, len(targets)) {
		for _, t := range targets {
			l.out = binary.BigEndian.AppendUint64(l.out, t)
		}
		l.mu.Unlock()
		return nil
	}
	size := hdrLen + len(payload) + idLen*len(targets)
	if l.queued+size > l.cfg.OutboundLimit {
		return l.overload(size)
	}
	wasEmpty := len(l.out) == 0
	l.tail = -1
	if !l.cfg.NoCoalesce {
		l.tail = len(l.out)
	}
	l.out = appendMulti(l.out, kind, targets, payload)
	l.queued += size
	l.framesOut++
	l.kick(wasEmpty)
	return nil
}

// canCoalesce reports whether n more ids may join the tail frame (same kind, same
// payload, room under MaxTargets and OutboundLimit) and, if so, turns it into a
// multi-target frame with n more ids' worth of length; the caller appends the ids.
// l.mu is held.
func (l *Link) canCoalesce(kind Kind, payload []byte, n int) bool {
	t := l.out[l.tail:]
	if Kind(t[kindOff]) != kind {
		return false
	}
	plen := int(binary.BigEndian.Uint32(t[plenOff:]))
	if plen != len(payload) || (len(t)-hdrLen-plen)/idLen+n > MaxTargets {
		return false
	}
	if l.queued+idLen*n > l.cfg.OutboundLimit || !bytes.Equal(t[payloadOff:payloadOff+plen], payload) {
		return false
	}
	t[flagsOff] = flagMulti
	binary.BigEndian.PutUint32(t[lenOff:], uint32(len(t)-4+idLen*n))
	l.queued += idLen * n
	l.coalesced += uint64(n)
	return true
}

// closedErr unlocks l.mu and returns the error for a Send on a closed link.
func (l *Link) closedErr() error {
	err := l.err
	l.mu.Unlock()
	if errors.Is(err, ErrClosed) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrClosed, err)
}

// overload unlocks l.mu, closes the link as overloaded, logs and counts it.
func (l *Link) overload(size int) error {
	q := l.queued
	l.mu.Unlock()
	err := fmt.Errorf("%w: %d bytes queued + %d > %d", ErrOverloaded, q, size, l.cfg.OutboundLimit)
	if l.shut(err, false) {
		l.ctr.overloaded.Add(1)
		l.cfg.Logger.Warn("link: outbound queue over limit, closing the link",
			"peer", l.peer.Node, "role", l.peer.Role, "queued", q, "limit", l.cfg.OutboundLimit)
	}
	return err
}

// kick gets the frame just queued written; l.mu is held and kick unlocks it. wasEmpty:
// out was empty before it. If someone is writing, they look at out again when done; if
// out held frames already, someone was told about them. Otherwise, while a link reader
// is inside a read batch, the link is left for that batch's end to flush (see batch.go);
// else the writer goroutine is woken.
func (l *Link) kick(wasEmpty bool) {
	if !wasEmpty || l.writing {
		l.mu.Unlock()
		return
	}
	l.mu.Unlock()
	if readbatch.Open() {
		readbatch.Defer(&l.bm)
		return
	}
	l.signal()
}

// writeFailed closes the link after a failed write, logging it once.
func (l *Link) writeFailed(err error) {
	if l.shut(err, false) {
		l.cfg.Logger.Warn("link: write failed, closing the link", "peer", l.peer.Node, "err", err)
	}
}

// signal wakes the writer.
func (l *Link) signal() {
	select {
	case l.wake <- struct{}{}:
		l.wakes.Add(1)
	default:
	}
}

// sendCtl queues a link-protocol frame (session 0), exempt from OutboundLimit (such
// frames are tiny and answer the peer's own) and from coalescing.
func (l *Link) sendCtl(kind Kind, payload []byte) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	wasEmpty := len(l.out) == 0
	l.tail = -1
	l.out = appendFrame(l.out, kind, 0, payload)
	l.queued += hdrLen + len(payload) + idLen
	l.framesOut++
	l.kick(wasEmpty)
}

// Close closes the link with err as the reason (nil: ErrClosed): frames already queued
// are still written (for at most a second), then a close frame carrying the reason, then
// the connection is closed and OnLinkDown(l, err) follows. Idempotent: the first reason
// wins. Safe for concurrent use.
func (l *Link) Close(err error) {
	if err == nil {
		err = ErrClosed
	}
	l.shut(err, true)
}

// shut starts closing the link with err unless it is already closing, and reports
// whether it did. graceful lets the writer flush the queue plus a close frame;
// otherwise the connection is closed at once.
func (l *Link) shut(err error, graceful bool) bool {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return false
	}
	l.closed, l.graceful, l.err = true, graceful, err
	l.isClosed.Store(true)
	if graceful {
		reason := err.Error()
		if len(reason) > maxReason {
			reason = reason[:maxReason]
		}
		l.out = appendFrame(l.out, kindClose, 0, []byte(reason))
	}
	l.mu.Unlock()
	close(l.closing)
	if graceful {
		// Bounds a write in progress as well as the final flush.
		l.closeBy.Store(time.Now().Add(time.Second).UnixNano())
		_ = l.conn.SetWriteDeadline(time.Now().Add(time.Second))
	} else {
		l.closeBy.Store(time.Now().UnixNano())
		_ = l.conn.Close()
		if ad := l.ad.Load(); ad != nil {
			_ = ad.lc.Close()
		}
	}
	return true
}

// run drives an authenticated link to its end on the calling goroutine (which becomes
// the reader) and reports it to the handler.
func (l *Link) run() {
	var aerr error
	if l.cfg.Loops != nil && l.raw != nil {
		aerr = l.adopt()
	}
	go l.writeLoop()
	l.h.OnLinkUp(l)
	if l.onUp != nil {
		l.onUp(l)
	}
	var err error
	switch ad := l.ad.Load(); {
	case aerr != nil:
		err = aerr
	case ad != nil:
		l.ready.Store(true)
		_ = ad.lc.Wake() // frames that arrived before OnLinkUp
		err = <-l.readDone
	default:
		err = l.readLoop()
	}
	if errors.Is(err, ErrDead) && l.shut(err, false) {
		l.ctr.dead.Add(1)
		l.cfg.Logger.Warn("link: peer silent, closing the link", "peer", l.peer.Node,
			"role", l.peer.Role, "dead_after", l.cfg.DeadAfter)
	}
	l.shut(err, false)
	<-l.wdone
	_ = l.conn.Close()
	if l.onDown != nil {
		l.onDown(l)
	}
	l.h.OnLinkDown(l, l.Err())
	close(l.done)
}

// writeLoop writes, when woken, whatever is queued (what a write-through left first),
// one write call per turn until the queue is empty, and pings when the link has sent
// nothing for Heartbeat.
func (l *Link) writeLoop() {
	defer close(l.wdone)
	hb := l.cfg.Heartbeat
	timer := time.NewTimer(hb)
	defer timer.Stop()
	last := time.Now()
	for {
		select {
		case <-l.wake:
		case <-timer.C:
			if l.checkDead() {
				continue // closing: the next turn takes the closing case
			}
			if l.wrote.Swap(false) {
				last = time.Now()
			}
			if idle := time.Since(last); idle < hb {
				timer.Reset(hb - idle)
				continue
			}
			var ts [8]byte
			binary.BigEndian.PutUint64(ts[:], uint64(time.Now().UnixNano()))
			l.sendCtl(kindPing, ts[:])
			timer.Reset(hb)
			continue
		case <-l.closing:
			l.mu.Lock()
			l.awaitWritesLocked() // a write-through in progress (it never blocks)
			buf := append(l.rest, l.out...)
			ad := l.ad.Load()
			final := l.graceful && len(buf) > 0 && !l.gone.Load()
			l.out, l.rest = nil, nil
			l.writing = final
			l.mu.Unlock()
			if final {
				var err error
				if ad != nil {
					l.closeBy.Store(time.Now().Add(time.Second).UnixNano())
					_, err = l.writeAll(ad.fd, buf)
				} else {
					_ = l.conn.SetWriteDeadline(time.Now().Add(time.Second))
					_, err = l.conn.Write(buf)
				}
				if err == nil {
					l.writes.Add(1)
					l.bytesOut.Add(uint64(len(buf)))
				}
				l.mu.Lock()
				l.writing = false
				l.mu.Unlock()
			}
			_ = l.conn.Close()
			if ad != nil {
				_ = ad.lc.Close()
			}
			return
		}
		if l.drainQueue() {
			last = time.Now()
		}
	}
}

// drainQueue writes (blocking) what a write-through left, then the queue, until there
// is nothing left or someone else is writing; it reports whether it wrote. A failed
// write closes the link (writeLoop's closing case takes over).
func (l *Link) drainQueue() (wrote bool) {
	for {
		if testBeforeSwap != nil {
			testBeforeSwap(l)
		}
		l.mu.Lock()
		if l.writing || l.closed || (l.rest == nil && len(l.out) == 0) {
			l.mu.Unlock()
			return wrote
		}
		buf, fromOut := l.rest, false
		if buf != nil {
			l.rest = nil
		} else {
			buf, fromOut = l.out, true
			l.out, l.spare = l.spare[:0], nil
			l.tail = -1
		}
		l.writing = true
		l.mu.Unlock()
		var err error
		if ad := l.ad.Load(); ad != nil {
			_, err = l.writeAll(ad.fd, buf)
		} else {
			_, err = l.conn.Write(buf)
		}
		l.writes.Add(1)
		l.mu.Lock()
		l.writing = false
		l.queued -= len(buf)
		if fromOut && l.spare == nil && cap(buf) <= maxKeepOut {
			l.spare = buf[:0]
		}
		l.mu.Unlock()
		if err != nil {
			l.writeFailed(fmt.Errorf("link: write: %w", err))
			return wrote
		}
		l.bytesOut.Add(uint64(len(buf)))
		wrote = true
	}
}
