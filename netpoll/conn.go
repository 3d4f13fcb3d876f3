package netpoll

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/switchyard-wamp/switchyard/codec"
	"github.com/switchyard-wamp/switchyard/internal/readbatch"
)

// Transport names returned by Conn.Transport.
const (
	transportWebSocket = "websocket"
	transportRawSocket = "rawsocket"
)

// Conn states (Conn.state, atomic).
const (
	stActive  int32 = iota // accepting Sends
	stClosing              // Close requested or protocol close: flush, then close
	stSlow                 // closed by the slow-consumer policy: no flush
	stClosed               // gnet closed it
)

// Loop-side protocol phases (Conn.phase, event-loop only).
const (
	phaseSniff       uint8 = iota // universal port, nothing read yet
	phaseHTTP                     // accumulating an HTTP request
	phaseRSHandshake              // waiting for the 4-byte RawSocket handshake
	phaseWS                       // WebSocket frames
	phaseRS                       // RawSocket frames
	phaseDone                     // closing: inbound is discarded
)

// Close reasons set from other goroutines (Conn.reason, atomic).
const (
	reasonNone int32 = iota
	reasonPingTimeout
	reasonHandshakeTimeout
)

var (
	errPingTimeout      = errors.New("netpoll: ping timeout")
	errHandshakeTimeout = errors.New("netpoll: handshake timeout")
	errNoCloseFrame     = errors.New("netpoll: websocket closed without close frame")
	errRSOnWebSocket    = errors.New("netpoll: rawsocket handshake on a websocket-only listener")
)

// connIO is what the protocol code needs from a socket: the subset of gnet.Conn it
// calls. gnet.Conn satisfies it for plain listeners, *tlsConn for TLS listeners.
// InboundBuffered, Peek, Discard, Write and OutboundBuffered are called only by the
// conn's "loop" (the gnet event loop, or whoever holds a TLS conn's protocol lock);
// Wake and Close may be called from any goroutine.
type connIO interface {
	InboundBuffered() int
	Peek(n int) ([]byte, error)
	Discard(n int) (int, error)
	Write(b []byte) (int, error)
	OutboundBuffered() int
	Wake(cb gnet.AsyncCallback) error
	Close() error
}

// Conn is one client connection (WebSocket or RawSocket) owned by one event loop (or,
// for TLS listeners, by its own reader and writer goroutines that take turns under a
// per-conn lock). Send, Close, SetContext, Context and the getters are safe for
// concurrent use from any goroutine; everything else in Conn runs on its loop.
type Conn struct {
	srv    *Server
	gc     connIO
	ln     *listener
	loop   *loopState
	remote net.Addr
	tlsSt  *tls.ConnectionState // nil on plain conns; immutable

	// Outbound: the append buffer (appendbuf.go) and the node queue, a Treiber stack of
	// framed messages for what cannot use the buffer. alock makes its holder the buffer's
	// only user (abuf, amsgs, aslot, arun); apend says the buffer holds frames; aretry
	// says a writer found alock held and left everything to its holder.
	alock  atomic.Bool
	apend  atomic.Bool
	aretry atomic.Bool
	aslot  uint8  // the codec.TypeSlot of the buffer's last messages
	arun   uint32 // how many of the last messages have aslot (not yet counted)
	amsgs  uint32 // WAMP messages in the buffer
	abuf   *[]byte
	q      atomic.Pointer[outNode]
	queued atomic.Int64 // bytes in the append buffer and q
	// overSince: when the backlog was first seen over OutboundLimit, without a break
	// since (unix nanos); 0 = under. Set by the loop, read by the ticker.
	overSince atomic.Int64
	// Direct writes (direct.go): bm defers the conn to the end of the open read batch,
	// fd is the socket a direct writer writes (-1: TLS, written by its writer only),
	// wtok is the write token (its holder is the socket's only writer), viaLoop sends
	// writes through the loop, dead says the descriptor is being closed.
	bm      readbatch.Mark
	fd      int
	wtok    atomic.Bool
	viaLoop atomic.Bool
	dead    atomic.Bool
	// rest: the unwritten end of a direct write, for the loop to write first. Token
	// holder only, like kernHint.
	rest []byte

	state  atomic.Int32
	reason atomic.Int32
	isOpen atomic.Bool // OnOpen done (ticker reads it; fields below are then immutable)
	// established: the Handler said the WAMP session is up (Established).
	established atomic.Bool
	lastRead    atomic.Int64
	pingAt      atomic.Int64 // when the outstanding keepalive ping was queued; 0 = none
	born        int64
	ctx         atomic.Pointer[ctxBox]

	// Fixed before OnOpen (published by isOpen / the Handler).
	transport string
	ser       codec.Serializer
	batched   bool
	wsOpcode  byte // opText or opBinary
	peerMax   int  // RawSocket: the client's max message length
	cookieID  string
	cookieNew bool
	deflate   bool // permessage-deflate negotiated
	inCtx     bool // the client takes over its compression context (inWin is kept)

	// Event-loop only.
	phase      uint8
	opened     bool // OnOpen was called
	closedLoop bool // onClosed ran (gnet may close synchronously inside Write)
	closeSent  bool // WebSocket close frame queued
	peerClosed bool // WebSocket close frame received
	kernOff    bool // the kernel cannot tell this socket's unsent bytes
	loopHolds  bool // the loop holds wtok
	closeCode  uint16
	closeErr   error // reported to Handler.OnClose
	leftover   int   // inbound bytes left unconsumed by the previous OnTraffic
	fragOp     byte
	frag       []byte // WebSocket fragmented message being reassembled (nil when none)
	fragActive bool
	fragComp   bool   // the message being reassembled is compressed (RSV1 on its first frame)
	inWin      []byte // last 32 KiB received, when the client takes over its context
	kernHint   int64  // upper bound on the kernel's unsent bytes (slowconsumer.go); token holder only
	// ringW: a direct write handed to a batch of writes (readbatch.Writes, with
	// Config.IOUring), from the conn's first such write on. Token holder only.
	ringW *ringWrite
}

type ctxBox struct{ v any }

// Established tells the server that the conn's WAMP session is up (WELCOME sent): with
// Config.AwaitSession, a conn not established within its listener's HandshakeTimeout is
// closed. Safe for concurrent use.
func (c *Conn) Established() { c.established.Store(true) }

// Serializer returns the negotiated serializer. Safe for concurrent use.
func (c *Conn) Serializer() codec.Serializer { return c.ser }

// Transport returns "websocket" or "rawsocket". Safe for concurrent use.
func (c *Conn) Transport() string { return c.transport }

// Batched reports whether a batched WebSocket subprotocol was negotiated. Safe for
// concurrent use.
func (c *Conn) Batched() bool { return c.batched }

// RemoteAddr returns the peer address. Safe for concurrent use.
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

// TLS returns the state of the TLS connection (a copy taken after the handshake:
// negotiated version, peer certificates, channel-binding material via
// ExportKeyingMaterial), or nil on a plain conn. Safe for concurrent use; do not modify
// the result.
func (c *Conn) TLS() *tls.ConnectionState { return c.tlsSt }

// Listener returns the name of the listener the conn came in on (Listener.Name). Safe
// for concurrent use.
func (c *Conn) Listener() string { return c.ln.Name }

// CookieID returns the cookie token of a WebSocket conn on a listener with a Cookie
// option: the one the client sent, or the fresh one set in the upgrade response. ""
// for RawSocket conns and listeners without the option. Safe for concurrent use.
func (c *Conn) CookieID() string { return c.cookieID }

// CookieIsNew reports whether CookieID was generated for this upgrade (the client sent
// no valid cookie). Safe for concurrent use.
func (c *Conn) CookieIsNew() bool { return c.cookieNew }

// SetContext stores the upper layer's per-conn state (usually in OnOpen). Safe for
// concurrent use.
func (c *Conn) SetContext(v any) { c.ctx.Store(&ctxBox{v}) }

// Context returns the value stored by SetContext, or nil. Safe for concurrent use.
func (c *Conn) Context() any {
	if b := c.ctx.Load(); b != nil {
		return b.v
	}
	return nil
}

// Close flushes what is queued, then closes the connection (WebSocket: close frame
// 1000 first). Later Sends return ErrClosed. Safe for concurrent use; never blocks and
// never calls into Handler (OnClose follows on the loop).
func (c *Conn) Close() {
	if c.state.CompareAndSwap(stActive, stClosing) {
		c.wake()
	}
}

func (c *Conn) wake() {
	if c.srv.stopped.Load() {
		return
	}
	// gnet's Wake allocates one closure per call; it is called once per batch (queue
	// empty -> non-empty), not once per message.
	_ = c.gc.Wake(nil)
}

// onTraffic runs on the loop for readable data and for Wake. The messages it reads
// form one read batch: what they send to other conns is written at its end
// (direct.go).
func (c *Conn) onTraffic() gnet.Action {
	if c.closedLoop {
		return gnet.None
	}
	readbatch.Begin()
	a := c.traffic()
	if h := testLoopHolds.Load(); h != nil && c.loopHolds {
		(*h)(c)
	}
	c.unlockWrite()
	c.endBatch()
	return a
}

func (c *Conn) traffic() gnet.Action {
	s := c.srv
	ls := c.loop
	ls.wbuf = ls.wbuf[:0]
	if in := c.gc.InboundBuffered(); in > c.leftover {
		c.lastRead.Store(s.now())
		c.pingAt.Store(0)
	}
	consumed := c.readFrames()
	ls.bytesIn.Add(uint64(consumed))
	c.leftover = c.gc.InboundBuffered()
	if c.closedLoop {
		return gnet.None
	}
	// Load the state before draining: a Send that happened before Close() is then
	// guaranteed to be in the queue this drain takes.
	closing := c.phase == phaseDone || c.state.Load() != stActive
	if !closing && len(ls.wbuf) == 0 && !c.hasOut() && !c.viaLoop.Load() && c.overSince.Load() == 0 {
		// Nothing to write and nothing to measure (a direct writer that may have put the
		// conn near the soft limit sets viaLoop): leave the socket to direct writers,
		// one of which may be writing it right now.
		return gnet.None
	}
	c.lockWrite()
	if !closing {
		c.resetIfUnder()
	}
	c.drain()
	if c.closedLoop {
		return gnet.None
	}
	if closing {
		return c.finishClose()
	}
	if c.checkBacklog() {
		return gnet.Close
	}
	return gnet.None
}

// readFrames handles every complete inbound frame and returns the bytes consumed.
func (c *Conn) readFrames() (consumed int) {
	for !c.closedLoop {
		var n int
		switch c.phase {
		case phaseSniff:
			if c.gc.InboundBuffered() == 0 {
				return
			}
			b, _ := c.gc.Peek(1)
			switch {
			case b[0] == rsMagic && c.ln.Kind == KindWebSocket:
				c.protocolClose(0, "rawsocket on a websocket-only listener", errRSOnWebSocket)
				n, _ = c.gc.Discard(-1)
				return consumed + n
			case b[0] == rsMagic:
				c.phase = phaseRSHandshake
			default:
				c.phase = phaseHTTP
			}
			continue
		case phaseHTTP:
			n = c.readHTTP()
		case phaseRSHandshake:
			n = c.readRSHandshake()
		case phaseWS:
			n = c.readWS()
		case phaseRS:
			n = c.readRS()
		case phaseDone:
			n, _ = c.gc.Discard(-1)
			consumed += n
			return
		}
		if n == 0 {
			return
		}
		consumed += n
		if c.state.Load() != stActive && c.phase != phaseDone {
			c.phase = phaseDone // Close() called from OnMessage: stop reading
		}
	}
	return
}

// protocolClose closes the conn from the loop after a protocol violation: counts it,
// logs it, sends a WebSocket close frame with code when the WS is open.
func (c *Conn) protocolClose(code uint16, msg string, err error, attrs ...any) {
	c.srv.protoErrs.Add(1)
	if err == nil {
		err = errors.New("netpoll: " + msg)
	}
	if c.srv.infoOK(msg, c.remote) {
		c.srv.log.Info("netpoll: "+msg+", closing", append([]any{"remote", c.remote.String(), "transport", c.transportName(), "error", err}, attrs...)...)
	}
	c.closeWith(code, err)
}

// closeWith starts the close on the loop; err is reported to Handler.OnClose.
func (c *Conn) closeWith(code uint16, err error) {
	if c.phase == phaseDone {
		return
	}
	c.phase = phaseDone
	c.closeCode = code
	c.closeErr = err
	c.state.CompareAndSwap(stActive, stClosing)
}

func (c *Conn) transportName() string {
	if c.transport != "" {
		return c.transport
	}
	switch c.phase {
	case phaseHTTP:
		return "http"
	case phaseRSHandshake:
		return transportRawSocket
	}
	return "unknown"
}

// finishClose runs on the loop once the conn is closing: queue the WebSocket close
// frame, then close as soon as gnet's outbound backlog has been written.
func (c *Conn) finishClose() gnet.Action {
	c.phase = phaseDone
	if c.state.Load() == stSlow {
		return gnet.Close
	}
	if c.opened && c.transport == transportWebSocket && !c.closeSent {
		c.closeSent = true
		code := c.closeCode
		if code == 0 && !c.peerClosed {
			code = 1000
		}
		c.loop.wbuf = appendCloseFrame(c.loop.wbuf[:0], code)
		c.write()
		if c.closedLoop {
			return gnet.None
		}
	}
	s := c.srv
	if c.gc.OutboundBuffered() == 0 {
		return gnet.Close
	}
	dl, loaded := s.flushing.LoadOrStore(c, s.now()+int64(c.ln.PingTimeout))
	if loaded && s.now() >= dl {
		return gnet.Close
	}
	return gnet.None // the ticker wakes us to check again
}

// write hands the loop's write buffer to gnet (one write syscall, or a copy into
// gnet's outbound buffer when the socket is full) and resets it.
func (c *Conn) write() {
	ls := c.loop
	if len(ls.wbuf) == 0 {
		return
	}
	ls.bytesOut.Add(uint64(len(ls.wbuf)))
	c.kernHint += int64(len(ls.wbuf))
	_, _ = c.gc.Write(ls.wbuf) // on error gnet closes the conn (onClosed runs inside)
	if cap(ls.wbuf) > maxKeptBuf {
		ls.wbuf = nil
	} else {
		ls.wbuf = ls.wbuf[:0]
	}
}

// slowConsumer applies the slow-consumer policy once: mark, log, count, close. backlog
// is the conn's backlog in bytes, reason the limit it broke (slowconsumer.go).
func (c *Conn) slowConsumer(backlog int64, reason string) {
	for {
		st := c.state.Load()
		if st == stSlow || st == stClosed {
			return
		}
		if c.state.CompareAndSwap(st, stSlow) {
			break
		}
	}
	s := c.srv
	s.slowClosed.Add(1)
	if reason == "hard_limit" {
		s.slowHard.Add(1)
	}
	var over time.Duration
	if since := c.overSince.Load(); since != 0 {
		over = time.Duration(time.Now().UnixNano() - since)
	}
	if s.warnOK("slow consumer", c.remote) {
		s.log.Warn("netpoll: slow consumer, closing", "remote", c.remote.String(),
			"transport", c.transport, "reason", reason, "backlog_bytes", backlog, "over_limit_for", over,
			"limit", s.cfg.OutboundLimit, "hard_limit", s.cfg.OutboundHardLimit, "write_deadline", s.cfg.WriteDeadline)
	}
	if t, ok := c.gc.(*tlsConn); ok {
		abortOnClose(t.raw) // a net.Conn: safe from any goroutine
	}
	if !s.stopped.Load() {
		_ = c.gc.Close()
	}
}

// abortOnClose makes the coming close of a slow consumer's socket a reset (SO_LINGER 0):
// the kernel drops what it still holds for the peer (up to its send buffer, MBs) at once,
// instead of trickling it to a peer that does not read for as long as the peer keeps its
// window open. s is a *net.TCPConn or a gnet.Conn; other kinds are left as they are.
func abortOnClose(s any) {
	if l, ok := s.(interface{ SetLinger(int) error }); ok {
		_ = l.SetLinger(0)
	}
}

// onClosed runs on the loop when gnet closed the connection.
func (c *Conn) onClosed(err error) {
	if c.closedLoop {
		return
	}
	c.markDead()
	c.closedLoop = true
	// Keep stSlow so that later Sends report ErrSlowConsumer.
	var st int32
	for {
		st = c.state.Load()
		if st == stSlow || c.state.CompareAndSwap(st, stClosed) {
			break
		}
	}
	if st == stSlow {
		if g, ok := c.gc.(gnet.Conn); ok {
			abortOnClose(g) // on the loop, before gnet closes the descriptor
		}
	}
	s := c.srv
	s.conns.Delete(c)
	s.flushing.Delete(c)
	s.overLimit.Delete(c)
	c.dropOut()
	c.queued.Store(0)
	c.frag = nil
	if !c.opened {
		return
	}
	s.open.Add(-1)
	var reported error
	switch {
	case st == stSlow:
		reported = ErrSlowConsumer
	case c.reason.Load() == reasonPingTimeout:
		reported = errPingTimeout
	case c.reason.Load() == reasonHandshakeTimeout:
		reported = errHandshakeTimeout
	case c.closeErr != nil:
		reported = c.closeErr
	case c.phase == phaseDone:
		reported = nil // we or the peer closed it cleanly
	case err == nil || errors.Is(err, io.EOF):
		if c.transport == transportWebSocket {
			reported = errNoCloseFrame
		}
	default:
		reported = err
	}
	s.h.OnClose(c, reported)
}

// markOpen completes the handshake: the transport fields are set; call OnOpen.
func (c *Conn) markOpen() {
	s := c.srv
	c.opened = true
	c.lastRead.Store(s.now())
	c.isOpen.Store(true)
	s.open.Add(1)
	s.h.OnOpen(c)
}
