package netpoll

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// TLS listeners. gnet has no TLS, so TLS conns run on goroutines: the listener's accept
// goroutine (accept.go) starts serveTLS for each accepted conn, which runs the TLS
// handshake (bounded by Listener.HandshakeTimeout), then starts a reader goroutine
// and, while there is output, a writer goroutine.
// They run the very same protocol code as a gnet loop (Conn.onTraffic: HTTP sniffing and upgrade, WebSocket and
// RawSocket framing, the outbound queue drain, the slow-consumer policy), taking turns
// under a per-conn lock, through the connIO interface that tlsConn implements:
//
//   - reader: reads decrypted bytes into the conn's inbound buffer, then runs onTraffic;
//   - writer: started by Wake (a Send on an idle conn, Close, the ticker) or Write when
//     none is running, runs onTraffic to drain the queue, then writes the conn's
//     outbound buffer to the tls.Conn, and exits when there is nothing left to do (an
//     idle TLS conn costs one goroutine, not two). Write only appends to that buffer,
//     so the protocol code never blocks on a socket, as on gnet; OutboundBuffered
//     reports what the writer has not written yet, which the slow-consumer policy
//     checks exactly as it checks gnet's backlog.

const (
	tlsReadMin   = 1 << 10 // grow the inbound buffer when less room than this is left
	tlsReadStart = 4 << 10 // first pooled inbound buffer (grows for big messages)
	tlsIdleRead  = 512     // the conn's own read buffer while nothing is buffered
	tlsCloseWait = time.Second
)

// tlsBufs holds the inbound and outbound buffers of TLS conns between bursts: an idle
// TLS conn reads into its own 512 bytes and holds no other buffer, and a busy one gets
// and returns pooled buffers without allocating. Pointers, so that Put allocates nothing.
var tlsBufs = sync.Pool{New: func() any { b := make([]byte, 0, tlsReadStart); return &b }}

// getBuf returns a pooled buffer (length 0) and its box, for putBuf.
func getBuf() (*[]byte, []byte) {
	p := tlsBufs.Get().(*[]byte)
	return p, (*p)[:0]
}

// putBuf returns b (grown from the buffer in box p, or nil p) to the pool.
func putBuf(p *[]byte, b []byte) {
	if p == nil || cap(b) > maxKeptBuf {
		return
	}
	*p = b[:0]
	tlsBufs.Put(p)
}

// tlsConn is the connIO of a TLS conn. Fields below mu are guarded by it; the
// outbound fields by omu.
type tlsConn struct {
	s       *Server
	c       *Conn
	raw     net.Conn
	tc      net.Conn     // the *tls.Conn; a plain conn taken back from net/http (handoff.go)
	handoff *webConn     // set by Conn.handOff: the reader gives tc to net/http
	writer  func()       // t.writeLoop, bound once: starting a writer then allocates nothing
	wakeReq atomic.Bool  // a Wake asked for the protocol code to run
	writing atomic.Bool  // a writer goroutine is running
	pending atomic.Bool  // work arrived for the writer since it last looked
	closed  atomic.Bool  // we closed the socket (errors after that are not reported)
	outLen  atomic.Int64 // bytes appended by Write and not yet written to the socket

	mu sync.Mutex // the conn's "event loop": held while protocol code runs
	// in[r:] are received bytes not yet consumed. Only the reader goroutine changes
	// len(in) and the backing array (it reads into in[len(in):cap(in)] without mu). in is
	// idle[:] when nothing is buffered, else a pooled buffer (boxed in inBox).
	in    []byte
	r     int
	inBox *[]byte
	idle  [tlsIdleRead]byte

	omu    sync.Mutex
	out    []byte  // waiting for the writer: a pooled buffer (boxed in outBox), nil when idle
	outBox *[]byte // guarded by omu
}

// serveTLS runs the TLS handshake of raw, then starts the conn's reader and writer.
func (s *Server) serveTLS(l *listener, raw net.Conn) {
	born := s.now()
	tc := tls.Server(raw, l.TLS)
	ctx, cancel := context.WithTimeout(context.Background(), l.HandshakeTimeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	s.handshaking.Delete(raw)
	if err == nil && s.stopping.Load() {
		err = ErrClosed
	}
	if err != nil {
		_ = raw.Close()
		s.live.Add(-1)
		if !s.stopping.Load() {
			s.protoErrs.Add(1)
			if errors.Is(err, context.DeadlineExceeded) {
				s.hsTimeouts.Add(1)
			}
			if s.infoOK("tls handshake failed", raw.RemoteAddr()) {
				s.log.Info("netpoll: tls handshake failed, closing", "listener", l.Name,
					"remote", raw.RemoteAddr().String(), "error", err)
			}
		}
		return
	}
	st := tc.ConnectionState()
	// A fresh goroutine: this one's stack grew during the handshake.
	s.startGoroutineConn(l, raw, tc, born, &st, nil)
}

// startGoroutineConn runs conn tc (over socket raw) on a reader goroutine and writer
// goroutines; pre are bytes already read from it.
func (s *Server) startGoroutineConn(l *listener, raw, tc net.Conn, born int64, st *tls.ConnectionState, pre []byte) {
	t := &tlsConn{s: s, raw: raw, tc: tc}
	t.writer = t.writeLoop
	t.in = t.idle[:0]
	if len(pre) > 0 {
		t.inBox, t.in = getBuf()
		t.in = append(t.in, pre...)
	}
	ls := new(loopState)
	s.tlsStates.Store(ls, struct{}{})
	t.c = s.newConn(l, t, ls, raw.RemoteAddr(), born, st)
	s.conns.Store(t.c, struct{}{}) // from here on Stop and the ticker see it
	if s.stopping.Load() {
		t.closeSocket(false) // Stop may have walked the conns before the Store
	}
	go t.readLoop()
}

// serveGoroutineConn serves conn nc (a plain or TLS conn taken back from net/http for a
// WebSocket upgrade, see handoff.go) on goroutines; pre is the request head and what
// followed it.
func (s *Server) serveGoroutineConn(l *listener, nc net.Conn, pre []byte) {
	var st *tls.ConnectionState
	raw := nc
	if tc, ok := nc.(*tls.Conn); ok {
		cs := tc.ConnectionState()
		st = &cs
		raw = tc.NetConn()
	}
	s.startGoroutineConn(l, raw, nc, s.now(), st, pre)
}

// readLoop reads until the socket fails or is closed, then reports the close.
func (t *tlsConn) readLoop() {
	c := t.c
	if t.InboundBuffered() > 0 { // bytes read before this conn was made (handoff.go)
		t.mu.Lock()
		t.act(c.onTraffic())
		if t.handoff != nil {
			t.giveAway()
			return
		}
		t.mu.Unlock()
	}
	for {
		t.mu.Lock()
		t.compact()
		tail := t.in[len(t.in):cap(t.in)]
		t.mu.Unlock()
		n, err := t.tc.Read(tail)
		t.mu.Lock()
		if n > 0 {
			t.in = t.in[:len(t.in)+n]
			t.act(c.onTraffic())
			if t.handoff != nil {
				t.giveAway()
				return
			}
		}
		if err != nil {
			if t.closed.Load() {
				err = nil // we closed it: the Conn knows why
			} else if errors.Is(err, io.EOF) {
				err = io.EOF
			}
			c.onClosed(err)
			putBuf(t.inBox, t.in)
			t.in, t.r, t.inBox = nil, 0, nil
			t.mu.Unlock()
			break
		}
		t.mu.Unlock()
	}
	t.closeSocket(false)
	t.s.live.Add(-1)
	t.retire()
}

// giveAway ends the reader of a conn handed to net/http (mu held, released here): the
// conn leaves netpoll's books, and its socket and slot go to the webConn.
func (t *tlsConn) giveAway() {
	t.c.onClosed(nil)
	putBuf(t.inBox, t.in)
	t.in, t.r, t.inBox = nil, 0, nil
	t.mu.Unlock()
	t.retire()
	t.s.pushWeb(t.handoff)
}

// retire folds the conn's counters into the retired totals so that Stats still add up.
func (t *tlsConn) retire() {
	s, c := t.s, t.c
	s.tlsStates.Delete(c.loop)
	ls := c.loop
	s.retired.bytesIn.Add(ls.bytesIn.Load())
	s.retired.bytesOut.Add(ls.bytesOut.Load())
	s.retired.msgsOut.Add(ls.msgsOut.Load())
	s.retired.addTypes(ls)
}

// compact makes room for the next read (mu held, reader goroutine only). With nothing
// buffered the conn goes back to its small idle buffer and returns the pooled one.
func (t *tlsConn) compact() {
	if t.r == len(t.in) {
		putBuf(t.inBox, t.in)
		t.in, t.r, t.inBox = t.idle[:0], 0, nil
		return
	}
	if cap(t.in)-len(t.in) >= tlsReadMin {
		return
	}
	rest := len(t.in) - t.r
	if t.r > 0 && cap(t.in)-rest >= tlsReadMin && t.r >= rest {
		copy(t.in, t.in[t.r:])
		t.in, t.r = t.in[:rest], 0
		return
	}
	need := max(2*cap(t.in), tlsReadStart, rest+tlsReadMin)
	box, nb := getBuf()
	if cap(nb) < need {
		nb = make([]byte, 0, need)
	}
	nb = append(nb, t.in[t.r:]...)
	putBuf(t.inBox, t.in)
	t.in, t.r, t.inBox = nb, 0, box
}

// writeLoop runs the protocol code on Wake and writes the outbound buffer, until there
// is nothing left to do.
func (t *tlsConn) writeLoop() {
	c := t.c
	for {
		t.pending.Store(false)
		if t.wakeReq.Swap(false) {
			t.mu.Lock()
			t.act(c.onTraffic())
			t.mu.Unlock()
		}
		// A closing conn whose backlog is now written can finish its close at once
		// rather than at the next tick.
		if t.flush() && c.state.Load() != stActive && !t.closed.Load() && t.outLen.Load() == 0 {
			t.mu.Lock()
			t.act(c.onTraffic())
			t.mu.Unlock()
		}
		if t.pending.Load() {
			continue
		}
		t.writing.Store(false)
		// A signal between the check above and the Store either started a new writer
		// (its CAS succeeded) or must be handled here.
		if !t.pending.Load() || !t.writing.CompareAndSwap(false, true) {
			return
		}
	}
}

// flush writes everything Write buffered; false if the socket failed.
func (t *tlsConn) flush() bool {
	for {
		t.omu.Lock()
		b, box := t.out, t.outBox
		t.out, t.outBox = nil, nil
		t.omu.Unlock()
		if len(b) == 0 {
			putBuf(box, b) // idle: the conn holds no outbound buffer
			return true
		}
		// Blocks while the peer does not read: Sends then pile up in the Conn's queue
		// and the slow-consumer policy closes the socket, which ends this Write.
		_, err := t.tc.Write(b)
		t.outLen.Add(-int64(len(b)))
		putBuf(box, b)
		if err != nil {
			t.closeSocket(false)
			return false
		}
	}
}

// act applies the action the protocol code returned (mu held).
func (t *tlsConn) act(a gnet.Action) {
	if t.handoff != nil {
		return // the socket lives on in net/http
	}
	if a == gnet.Close || a == gnet.Shutdown {
		t.closeSocket(true)
	}
}

// closeSocket closes the conn once; clean sends TLS close_notify first (bounded wait).
// The reader's Read then fails and it reports the close. Safe from any goroutine.
func (t *tlsConn) closeSocket(clean bool) {
	if !t.closed.CompareAndSwap(false, true) {
		return
	}
	if clean && t.outLen.Load() == 0 {
		_ = t.raw.SetWriteDeadline(time.Now().Add(tlsCloseWait))
		_ = t.tc.Close() // close_notify, unless a Write is in flight
		return
	}
	_ = t.raw.Close()
}

// signal makes sure a writer goroutine will look at the conn.
func (t *tlsConn) signal() {
	t.pending.Store(true)
	if t.writing.CompareAndSwap(false, true) {
		go t.writer()
	}
}

// connIO implementation. InboundBuffered, Peek, Discard, Write and OutboundBuffered run
// with mu held; Wake and Close from any goroutine.

func (t *tlsConn) InboundBuffered() int { return len(t.in) - t.r }

func (t *tlsConn) Peek(n int) ([]byte, error) {
	avail := len(t.in) - t.r
	if n < 0 || n > avail {
		return t.in[t.r:], io.ErrShortBuffer
	}
	return t.in[t.r : t.r+n], nil
}

func (t *tlsConn) Discard(n int) (int, error) {
	avail := len(t.in) - t.r
	if n < 0 || n > avail {
		n = avail
	}
	t.r += n
	return n, nil
}

func (t *tlsConn) Write(b []byte) (int, error) {
	if t.closed.Load() {
		return 0, net.ErrClosed
	}
	t.omu.Lock()
	if t.outBox == nil {
		t.outBox, t.out = getBuf()
	}
	t.out = append(t.out, b...)
	t.outLen.Add(int64(len(b)))
	t.omu.Unlock()
	t.signal()
	return len(b), nil
}

func (t *tlsConn) OutboundBuffered() int { return int(t.outLen.Load()) }

func (t *tlsConn) Wake(gnet.AsyncCallback) error {
	t.wakeReq.Store(true)
	t.signal()
	return nil
}

func (t *tlsConn) Close() error {
	t.closeSocket(false)
	return nil
}

// checkBacklog applies the slow-consumer policy from the ticker: the writer may be
// blocked on the socket for as long as the peer does not read, so the deadline cannot
// wait for it to run the protocol code. Safe from any goroutine.
func (t *tlsConn) checkBacklog() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed.Load() || t.c.closedLoop {
		return
	}
	t.c.checkBacklog()
}
