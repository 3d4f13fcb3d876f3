package link

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
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
	Coalesced           uint64 // session ids added to the tail frame instead of a new frame
	Queued              int    // bytes queued, not yet written
	RTT                 time.Duration
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
	t.Coalesced += o.Coalesced
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
// bytes (to hold the writer and make batching deterministic). Nil in production.
var testBeforeSwap func(*Link)

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

	mu        sync.Mutex
	out       []byte // queued frames, not yet taken by the writer
	tail      int    // offset in out of the last frame if it may take more targets, else -1
	queued    int    // bytes in out plus bytes being written
	closed    bool
	graceful  bool
	err       error
	framesOut uint64
	coalesced uint64

	isClosed atomic.Bool
	wake     chan struct{} // capacity 1: out went from empty to non-empty
	closing  chan struct{} // closed when the link starts closing
	wdone    chan struct{} // closed when the writer has exited
	done     chan struct{} // closed after OnLinkDown

	framesIn, bytesIn, reads, bytesOut, writes atomic.Uint64
	rtt                                        atomic.Int64
}

// newLink wraps an authenticated connection.
func newLink(c net.Conn, cfg *Config, h Handler, peer PeerInfo, ctr *counters) *Link {
	return &Link{
		conn: c, cfg: cfg, h: h, peer: peer, ctr: ctr, tail: -1,
		wake:    make(chan struct{}, 1),
		closing: make(chan struct{}),
		wdone:   make(chan struct{}),
		done:    make(chan struct{}),
	}
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
	s.BytesOut, s.Writes = l.bytesOut.Load(), l.writes.Load()
	s.RTT = time.Duration(l.rtt.Load())
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
	l.mu.Unlock()
	if wasEmpty {
		l.signal()
	}
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
	l.mu.Unlock()
	if wasEmpty {
		l.signal()
	}
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

// signal wakes the writer.
func (l *Link) signal() {
	select {
	case l.wake <- struct{}{}:
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
	l.mu.Unlock()
	if wasEmpty {
		l.signal()
	}
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
		_ = l.conn.SetWriteDeadline(time.Now().Add(time.Second))
	} else {
		_ = l.conn.Close()
	}
	return true
}

// run drives an authenticated link to its end on the calling goroutine (which becomes
// the reader) and reports it to the handler.
func (l *Link) run() {
	go l.writeLoop()
	l.h.OnLinkUp(l)
	if l.onUp != nil {
		l.onUp(l)
	}
	err := l.readLoop()
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

// writeLoop writes whatever is queued in one write call per wake-up and pings when the
// link has sent nothing for Heartbeat.
func (l *Link) writeLoop() {
	defer close(l.wdone)
	hb := l.cfg.Heartbeat
	timer := time.NewTimer(hb)
	defer timer.Stop()
	last := time.Now()
	var spare []byte
	for {
		select {
		case <-l.wake:
		case <-timer.C:
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
			buf, graceful := l.out, l.graceful
			l.out = nil
			l.mu.Unlock()
			if graceful && len(buf) > 0 {
				_ = l.conn.SetWriteDeadline(time.Now().Add(time.Second))
				if _, err := l.conn.Write(buf); err == nil {
					l.writes.Add(1)
					l.bytesOut.Add(uint64(len(buf)))
				}
			}
			_ = l.conn.Close()
			return
		}
		if testBeforeSwap != nil {
			testBeforeSwap(l)
		}
		l.mu.Lock()
		buf := l.out
		l.out = spare[:0]
		l.tail = -1
		l.mu.Unlock()
		if len(buf) == 0 {
			spare = buf
			continue
		}
		_, err := l.conn.Write(buf)
		l.writes.Add(1)
		l.mu.Lock()
		l.queued -= len(buf)
		l.mu.Unlock()
		if err != nil {
			if l.shut(fmt.Errorf("link: write: %w", err), false) {
				l.cfg.Logger.Warn("link: write failed, closing the link", "peer", l.peer.Node, "err", err)
			}
			continue // the closing case takes over
		}
		l.bytesOut.Add(uint64(len(buf)))
		last = time.Now()
		if cap(buf) > maxKeepOut {
			buf = nil
		}
		spare = buf[:0]
	}
}
