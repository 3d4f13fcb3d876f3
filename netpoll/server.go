// Package netpoll carries every steady-state byte of switchyard on gnet/v2 event loops.
//
// It owns the byte-level transports: WebSocket (upgrade via gobwas/ws, frames parsed
// here), WAMP RawSocket, and HTTP sniffing so that one "universal" port serves the web
// page, WebSocket and RawSocket. It knows bytes and frames, not realms or WAMP
// semantics: the layer above implements Handler and gets one callback per complete,
// unmasked, un-batched WAMP message.
//
// A Server serves a list of listeners (Config.Listeners): each is TCP or a Unix domain
// socket, of kind universal, websocket-only or rawsocket-only, plain or TLS, with its
// own serializers, message size limit, keepalive and optional WebSocket cookie.
//
// Threading model: every plain connection belongs to one gnet event loop; all reads,
// all Handler calls for that connection and all socket writes happen on that loop. Any
// goroutine may call Conn.Send: it frames the message, copies it into a lock-free
// per-connection queue and wakes the loop once when the queue goes from empty to
// non-empty. The loop drains the queue after it has processed every inbound frame of a
// read batch, into one contiguous buffer and one write call (many frames per syscall).
//
// TLS connections do not run on gnet loops but on goroutines: gnet has no TLS, and
// crypto/tls needs a blocking net.Conn (its handshake and record layer read and write
// the socket themselves), so a TLS listener is a net.Listener with an accept goroutine,
// and each TLS conn has a reader goroutine and a writer goroutine that take turns
// running the same protocol code (the one copy of HTTP sniffing, WebSocket and
// RawSocket framing, keepalive, outbound queue and slow-consumer policy) under a
// per-conn lock. The Handler contract is unchanged: calls for one Conn never overlap,
// but for a TLS conn they run on that conn's goroutines, not on an event loop. Each TLS
// conn costs two goroutines and its own buffers; see tlsconn.go and docs/tls.md.
//
// Web: a listener with a Web handler gives every HTTP request that is not the
// WebSocket upgrade at its Path to Go's net/http, connection and bytes already read
// included (handoff.go, docs/web.md); WAMP stays on the loops.
//
// Accepting: every listener, plain or TLS, is a net.Listener with an accept goroutine
// that enforces the connection cap (Config.MaxConnections, below the descriptor limit)
// and survives running out of descriptors; plain conns are then handed to a gnet event
// loop. gnet itself listens on nothing: one failed accept stops its whole engine (see
// accept.go).
package netpoll

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"github.com/puzpuzpuz/xsync/v3"
	"github.com/switchyard-wamp/switchyard/codec"
	"github.com/switchyard-wamp/switchyard/internal/lograte"
	"github.com/switchyard-wamp/switchyard/internal/readbatch"
)

// Handler is implemented by the layer above. All calls for one Conn run on that Conn's
// event loop (TLS conns: on its goroutines), one at a time; calls for different Conns
// may run concurrently. Handler methods must not block: they run on the event loop.
type Handler interface {
	// OnOpen is called when the transport is ready: WebSocket upgraded with a WAMP
	// subprotocol, or RawSocket handshake done.
	OnOpen(c *Conn)
	// OnMessage is called with one complete WAMP message (unmasked, un-batched).
	// msg is valid only during the call; copy it to keep it.
	OnMessage(c *Conn, msg []byte)
	// OnClose is called once when the connection is gone (err nil on a clean close),
	// only for conns that got OnOpen.
	OnClose(c *Conn, err error)
}

// Config configures a Server. Zero values select the documented defaults.
// A Config is read by NewServer and not retained by reference (the TLS configs of its
// listeners are, see Listener).
type Config struct {
	// Listeners are the sockets to serve; at least one unless Adopting. Each has its
	// own kind, optional TLS, serializers, message size limit, keepalive and cookie
	// settings.
	Listeners []Listener
	// Adopting starts the event loops even when no plain listener needs them, for
	// connections other packages hand over (Server.Adopt: a cluster router's links);
	// with it, Listeners may be empty.
	Adopting bool
	// BeforeLoopsStop, when set, is called by Stop once the client conns are closed and
	// before the event loops stop, for the owner of adopted connections to close them
	// while their loops still run.
	BeforeLoopsStop func()
	// OutboundLimit is the soft limit of the slow-consumer policy (slowconsumer.go):
	// a conn whose backlog (Send queue, gnet's or the TLS writer's buffer, the kernel's
	// unsent bytes) stays over it for WriteDeadline is logged, counted and closed. A
	// burst may go over it. Default 4 MiB.
	OutboundLimit int
	// OutboundHardLimit: a conn whose backlog goes over it is closed at once, which
	// bounds the memory one conn can pin (about twice this). Default the larger of
	// 32 MiB and 2*OutboundLimit; must not be below OutboundLimit.
	OutboundHardLimit int
	// WriteDeadline is how long a conn's backlog may stay over OutboundLimit; default 5s.
	WriteDeadline time.Duration
	// Loops is the number of gnet event loops; default runtime.GOMAXPROCS(0).
	Loops int
	// IOUring batches the direct writes of one read batch's flush into io_uring
	// submissions (internal/readbatch, writes.go) instead of one write(2) each; a
	// process-wide switch, turned on by the first server that asks. Off: write(2).
	IOUring bool
	// StatusPage returns the body (text/html) served at "/" of the universal listeners
	// whose StatusPage is StatusFull; nil: they serve the minimal page too.
	StatusPage func() []byte
	// Logger receives structured logs, one per abnormal close; default slog.Default().
	Logger *slog.Logger
	// LogLimit rate-limits the log lines remote peers can cause (bad handshakes and
	// frames, timeouts), per cause and address; nil: one with lograte's defaults.
	LogLimit *lograte.Limiter
	// MaxConnections caps the connections held at once (plain and TLS, from accept to
	// close, handshakes included). At the cap a new connection is closed at once,
	// before any handshake work, and counted (Stats.RefusedAtCap, a log line at most
	// every 5s); existing conns are not affected. 0 or less selects
	// DefaultMaxConnections(), which keeps the process below its descriptor limit.
	MaxConnections int
	// AwaitSession makes the WAMP opening handshake part of each listener's
	// HandshakeTimeout: a conn that the Handler has not marked Established (its session
	// welcomed) within it is closed. Without it only the transport handshakes are
	// timed, for Handlers that have no session to wait for.
	AwaitSession bool
}

// Stats is a snapshot of the server counters (see Server.Stats).
type Stats struct {
	Accepted           uint64 // connections accepted on any listener and kept (TLS: before the handshake)
	Open               int64  // connections currently open (got OnOpen, not yet OnClose)
	SlowConsumerClosed uint64 // connections closed by the slow-consumer policy
	SlowConsumerHard   uint64 // of those, closed at once over OutboundHardLimit (the others stayed over OutboundLimit for WriteDeadline)
	OverOutboundLimit  int64  // connections whose backlog is over OutboundLimit now (closed if it lasts)
	ProtocolErrors     uint64 // bad handshakes (TLS included) and bad frames (each closed the conn)
	BytesIn            uint64 // bytes consumed from sockets
	BytesOut           uint64 // bytes handed to sockets
	MessagesIn         uint64 // WAMP messages delivered to Handler.OnMessage
	MessagesOut        uint64 // WAMP messages (not control frames) handed to sockets
	RefusedAtCap       uint64 // connections closed at accept because MaxConnections were held
	HandshakeTimeouts  uint64 // connections closed for not finishing their handshakes in time (Listener.HandshakeTimeout)
	DeflateCompressed  uint64 // outbound messages compressed (permessage-deflate)
	DeflateShared      uint64 // outbound compressed messages that reused a fan-out's compression
	DeflateInflated    uint64 // inbound compressed messages inflated
	WebHandedOff       uint64 // connections handed to net/http for a web request (handoff.go)
	WebOpen            int64  // of those, still open (held by net/http or its handlers)
	RingWrites         uint64 // socket writes made in io_uring submissions, process-wide (Config.IOUring)
}

// Errors returned by Conn.Send.
var (
	// ErrClosed is returned by Send on a conn that is closing or closed.
	ErrClosed = errors.New("netpoll: connection closed")
	// ErrSlowConsumer is returned by Send once the conn has been closed by the
	// slow-consumer policy (see Config.OutboundLimit).
	ErrSlowConsumer = errors.New("netpoll: slow consumer, connection closed")
)

// Server runs the accept goroutines of the configured listeners, the gnet event loops
// that serve the plain conns and the goroutines of the TLS conns. Its methods are safe for
// concurrent use.
type Server struct {
	cfg     Config
	h       Handler
	log     *slog.Logger
	lns     []*listener // every listener, in Config order
	deflate deflateStats

	startOnce sync.Once
	cli       *gnet.Client // the event loops of the plain conns; nil without plain listeners
	started   atomic.Bool
	stopping  atomic.Bool
	stopped   atomic.Bool
	draining  atomic.Bool // StopAccepting was called
	tickDone  chan struct{}
	died      chan error // the network layer stopped on its own (see Done)
	diedOnce  atomic.Bool
	gnetTicks atomic.Uint64 // OnTick calls (liveness of gnet's loops, see liveness.go)
	deadAfter time.Duration
	watch     engineWatch    // ticker goroutine only
	acceptWG  sync.WaitGroup // accept goroutines
	enrollWG  sync.WaitGroup // plain conns being handed to gnet
	enrolling chan struct{}  // semaphore: at most maxEnrolling of them

	maxConns     int64
	live         atomic.Int64 // conns held: accepted and not yet closed (plain and TLS)
	refused      atomic.Uint64
	refuseLog    rateLog
	acceptErrLog rateLog
	enrollLog    rateLog

	conns       *xsync.MapOf[*Conn, struct{}] // every live conn (pre-open too)
	flushing    *xsync.MapOf[*Conn, int64]    // closing conns waiting for their socket backlog to drain: deadline
	overLimit   *xsync.MapOf[*Conn, struct{}] // conns over the soft outbound limit (slowconsumer.go)
	loops       *xsync.MapOf[gnet.EventLoop, *loopState]
	tlsStates   *xsync.MapOf[*loopState, struct{}] // one per live TLS conn
	handshaking *xsync.MapOf[net.Conn, struct{}]   // TLS conns in their TLS handshake
	retired     loopState                          // counters of closed TLS conns

	webSrv    *http.Server // serves the conns handed off to net/http; nil without Web listeners
	webLn     *webListener
	webConns  *xsync.MapOf[*webConn, struct{}] // handed-off conns not yet closed
	webHanded atomic.Uint64

	clock      atomic.Int64 // coarse now (unix nanos), refreshed by the ticker
	lastSweep  int64        // ticker goroutine only
	tick       time.Duration
	sweepEvery time.Duration

	accepted   atomic.Uint64
	open       atomic.Int64
	slowClosed atomic.Uint64
	hsTimeouts atomic.Uint64
	slowHard   atomic.Uint64 // of slowClosed: over OutboundHardLimit
	protoErrs  atomic.Uint64
}

// loopState is per gnet event loop (and per TLS conn): buffers and counters used only
// by the code that holds that loop (counters are atomics so that Stats can read them;
// each loop has its own, so there is no cross-core contention on the hot path).
type loopState struct {
	wbuf                       []byte // contiguous write buffer: one conn's frames of one batch
	scratch                    []byte // unmasked WebSocket payloads, valid during one OnMessage
	inflated                   []byte // inflated WebSocket messages, valid during one OnMessage
	flushSched                 bool   // a round-end flush is scheduled (Wake with flushCB; direct.go)
	lastFlush                  int64  // when the loop last flushed at the end of a read (nanotime)
	flushCB                    gnet.AsyncCallback
	_                          [64]byte
	bytesIn, bytesOut, msgsOut atomic.Uint64
	// typesIn and typesOut count WAMP messages by serializer and codec.TypeSlot (the
	// sum of typesIn is Stats.MessagesIn).
	typesIn, typesOut [codec.NumSerializers][codec.NumTypeSlots]atomic.Uint64
	_                 [64]byte
}

// addTypes adds o's per-type counters to l's (folding a closed TLS conn's counters
// into the retired totals).
func (l *loopState) addTypes(o *loopState) {
	for s := range l.typesIn {
		for t := range l.typesIn[s] {
			l.typesIn[s][t].Add(o.typesIn[s][t].Load())
			l.typesOut[s][t].Add(o.typesOut[s][t].Load())
		}
	}
}

// MessageCounts are WAMP messages by serializer (codec.Serializer) and message type
// (codec.TypeSlot; slot 0 counts messages whose type code is unknown).
type MessageCounts struct {
	In, Out [codec.NumSerializers][codec.NumTypeSlots]uint64
}

// MessageCounts returns the messages delivered to the Handler (In) and written to
// sockets (Out) so far, by serializer and type. The counters are kept per event loop
// (and per TLS conn) without a lock; this sums them. Safe for concurrent use.
func (s *Server) MessageCounts() MessageCounts {
	var mc MessageCounts
	add := func(l *loopState) {
		for i := range l.typesIn {
			for t := range l.typesIn[i] {
				mc.In[i][t] += l.typesIn[i][t].Load()
				mc.Out[i][t] += l.typesOut[i][t].Load()
			}
		}
	}
	s.eachLoopState(add)
	return mc
}

// QueuedBytes returns the bytes queued by Send and not yet handed to a socket, summed
// over every conn (it walks the conns: a scrape-time cost, not a hot-path one). Safe
// for concurrent use.
func (s *Server) QueuedBytes() int64 {
	var q int64
	s.conns.Range(func(c *Conn, _ struct{}) bool {
		q += c.queued.Load()
		return true
	})
	return q
}

// NewServer validates cfg, applies defaults and returns a Server that is not yet
// listening (see Start). h must not be nil.
func NewServer(cfg Config, h Handler) (*Server, error) {
	if h == nil {
		return nil, errors.New("netpoll: nil Handler")
	}
	if len(cfg.Listeners) == 0 && !cfg.Adopting {
		return nil, errNoListener
	}
	if err := applyOutboundDefaults(&cfg); err != nil {
		return nil, err
	}
	if cfg.Loops <= 0 {
		cfg.Loops = runtime.GOMAXPROCS(0)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.LogLimit == nil {
		cfg.LogLimit = lograte.New(cfg.Logger, 0, 0, 0)
	}
	if cfg.IOUring {
		if on, err := readbatch.SetURing(true); !on {
			cfg.Logger.Warn("netpoll: io_uring unavailable, writing with write(2)", "err", err)
		} else {
			cfg.Logger.Info("netpoll: the writes of a read batch go to the kernel in io_uring submissions")
		}
	}
	if def := DefaultMaxConnections(); cfg.MaxConnections <= 0 {
		cfg.MaxConnections = def
	} else if cfg.MaxConnections > def {
		cfg.Logger.Warn("netpoll: max_connections is above the default derived from the descriptor limit; at that limit accepts fail and are retried",
			"max_connections", cfg.MaxConnections, "default", def)
	}
	s := &Server{
		cfg:         cfg,
		h:           h,
		log:         cfg.Logger,
		deadAfter:   gnetDeadAfter,
		tickDone:    make(chan struct{}),
		died:        make(chan error, 1),
		enrolling:   make(chan struct{}, maxEnrolling),
		maxConns:    int64(cfg.MaxConnections),
		conns:       xsync.NewMapOf[*Conn, struct{}](),
		flushing:    xsync.NewMapOf[*Conn, int64](),
		overLimit:   xsync.NewMapOf[*Conn, struct{}](),
		loops:       xsync.NewMapOf[gnet.EventLoop, *loopState](),
		tlsStates:   xsync.NewMapOf[*loopState, struct{}](),
		handshaking: xsync.NewMapOf[net.Conn, struct{}](),
		webConns:    xsync.NewMapOf[*webConn, struct{}](),
	}
	s.sweepEvery = time.Second
	for i, l := range cfg.Listeners {
		ln, err := newListener(i, l)
		if err != nil {
			return nil, fmt.Errorf("netpoll: %w", err)
		}
		s.lns = append(s.lns, ln)
		s.sweepEvery = min(s.sweepEvery, ln.PingInterval/4, ln.PingTimeout/4, ln.HandshakeTimeout/4)
	}
	s.cfg.Listeners = nil
	s.sweepEvery = max(s.sweepEvery, 5*time.Millisecond)
	s.tick = min(s.sweepEvery, 50*time.Millisecond)
	return s, nil
}

// Start binds the listeners (port 0 allowed) and starts the event loops and the TLS
// acceptors. It returns once the listeners accept connections. It may be called once.
func (s *Server) Start() error {
	err := errors.New("netpoll: Start called twice")
	s.startOnce.Do(func() { err = s.start() })
	return err
}

func (s *Server) start() error {
	s.clock.Store(time.Now().UnixNano())
	for _, l := range s.lns {
		if err := checkUnixPath(l); err != nil {
			return err
		}
	}
	plain := false
	for _, l := range s.lns {
		if err := s.listen(l); err != nil {
			s.closeListeners()
			return err
		}
		plain = plain || l.TLS == nil
	}
	if plain || s.cfg.Adopting {
		cli, err := gnet.NewClient(&engineHandler{s: s},
			gnet.WithMulticore(true),
			gnet.WithNumEventLoop(s.cfg.Loops),
			gnet.WithTicker(true), // liveness of the loops (engineHandler.OnTick)
			// Go's accept has set TCP_NODELAY on the socket gnet takes over: no second call.
			gnet.WithTCPNoDelay(gnet.TCPDelay),
			gnet.WithLogger(gnetLogger{s.log}),
		)
		if err == nil {
			err = cli.Start()
		}
		if err != nil {
			s.closeListeners()
			return fmt.Errorf("netpoll: start event loops: %w", err)
		}
		s.cli = cli
	}
	s.startWeb()
	s.started.Store(true)
	go s.tickLoop()
	for _, l := range s.lns {
		s.acceptWG.Add(1)
		go s.acceptLoop(l)
	}
	return nil
}

// Addr returns the bound address of listener i (Config.Listeners order), nil if i is
// out of range or the server has not started. Safe for concurrent use after Start
// returned.
func (s *Server) Addr(i int) net.Addr {
	if i < 0 || i >= len(s.lns) {
		return nil
	}
	return s.lns[i].addr
}

// UniversalAddr returns the bound address of the first universal listener (nil if
// there is none or the server has not started). Safe for concurrent use after Start
// returned.
func (s *Server) UniversalAddr() net.Addr { return s.firstAddr(KindUniversal) }

// RawSocketAddr returns the bound address of the first RawSocket-only listener (nil if
// there is none or the server has not started). Safe for concurrent use after Start
// returned.
func (s *Server) RawSocketAddr() net.Addr { return s.firstAddr(KindRawSocket) }

func (s *Server) firstAddr(k Kind) net.Addr {
	for _, l := range s.lns {
		if l.Kind == k {
			return l.addr
		}
	}
	return nil
}

// Stop stops accepting connections, flushes the frames queued on every conn, closes
// every conn (WebSocket: close frame 1000 first), then stops the event loops. Conns
// that cannot be flushed before ctx is done are closed anyway. Safe for concurrent use;
// later calls return nil at once.
func (s *Server) Stop(ctx context.Context) error {
	if !s.started.Load() {
		return nil // never started
	}
	if s.stopping.Swap(true) {
		<-s.tickDone
		return nil
	}
	s.closeListeners()
	s.acceptWG.Wait()
	// Conns being handed to gnet finish (OnOpen then sees stopping and closes them).
	enrolled := make(chan struct{})
	go func() {
		s.enrollWG.Wait()
		close(enrolled)
	}()
	select {
	case <-enrolled:
	case <-ctx.Done():
	}
	s.stopWeb(ctx)
	s.handshaking.Range(func(c net.Conn, _ struct{}) bool {
		_ = c.Close()
		return true
	})
	s.conns.Range(func(c *Conn, _ struct{}) bool {
		c.Close()
		return true
	})
	var ctxErr error
	t := time.NewTicker(2 * time.Millisecond)
	for s.conns.Size() > 0 && ctxErr == nil {
		select {
		case <-ctx.Done():
			ctxErr = ctx.Err()
		case <-t.C:
		}
	}
	t.Stop()
	if ctxErr != nil {
		// TLS conns are not closed by stopping gnet: cut them now.
		s.conns.Range(func(c *Conn, _ struct{}) bool {
			if _, ok := c.gc.(*tlsConn); ok {
				_ = c.gc.Close()
			}
			return true
		})
	}
	if s.cfg.BeforeLoopsStop != nil {
		s.cfg.BeforeLoopsStop()
	}
	s.stopped.Store(true)
	if s.cli != nil {
		_ = s.cli.Stop() // the loops exit and close what is left
	}
	<-s.tickDone
	return ctxErr
}

// MaxConnections returns the connection cap in force (Config.MaxConnections or its
// default). Safe for concurrent use.
func (s *Server) MaxConnections() int { return int(s.maxConns) }

// Stats returns a snapshot of the counters. Safe for concurrent use.
func (s *Server) Stats() Stats {
	st := Stats{
		Accepted:           s.accepted.Load(),
		Open:               s.open.Load(),
		SlowConsumerClosed: s.slowClosed.Load(),
		SlowConsumerHard:   s.slowHard.Load(),
		OverOutboundLimit:  int64(s.overLimit.Size()),
		ProtocolErrors:     s.protoErrs.Load(),
		RefusedAtCap:       s.refused.Load(),
		WebHandedOff:       s.webHanded.Load(),
		WebOpen:            int64(s.webConns.Size()),
		HandshakeTimeouts:  s.hsTimeouts.Load(),
		DeflateCompressed:  s.deflate.compressed.Load(),
		DeflateShared:      s.deflate.shared.Load(),
		DeflateInflated:    s.deflate.inflated.Load(),
		RingWrites:         readbatch.URingWrites(),
	}
	add := func(l *loopState) {
		st.BytesIn += l.bytesIn.Load()
		st.BytesOut += l.bytesOut.Load()
		for i := range l.typesIn {
			for t := range l.typesIn[i] {
				st.MessagesIn += l.typesIn[i][t].Load()
			}
		}
		st.MessagesOut += l.msgsOut.Load()
	}
	s.eachLoopState(add)
	return st
}

func (s *Server) now() int64 { return s.clock.Load() }

// newConn builds a conn accepted on l at born (unix nanos); st is its TLS state (nil:
// plain). The caller registers it in s.conns once it is fully set up.
func (s *Server) newConn(l *listener, io connIO, ls *loopState, remote net.Addr, born int64, st *tls.ConnectionState) *Conn {
	c := &Conn{srv: s, gc: io, ln: l, loop: ls, remote: remote, born: born, tlsSt: st, fd: -1}
	if g, ok := io.(gnet.Conn); ok {
		c.fd = g.Fd()
	}
	c.bm.InitWrites(c.flushTo)
	switch l.Kind {
	case KindUniversal, KindWebSocket:
		c.phase = phaseSniff
	default:
		c.phase = phaseRSHandshake
	}
	return c
}

// engineHandler adapts gnet's callbacks; kept off Server so that they are not exported.
type engineHandler struct {
	gnet.BuiltinEventEngine
	s *Server
}

// OnTick records that gnet's ticker still runs (see checkEngine).
func (e *engineHandler) OnTick() (time.Duration, gnet.Action) {
	e.s.gnetTicks.Add(1)
	return e.s.deadAfter / 20, gnet.None
}

func (e *engineHandler) OnOpen(gc gnet.Conn) ([]byte, gnet.Action) {
	s := e.s
	p, ok := gc.Context().(*pendingConn)
	if !ok {
		if a, ok := gc.Context().(*adoptedConn); ok {
			return nil, a.open(s, gc)
		}
		return nil, gnet.Close
	}
	p.opened.Store(true) // from here on OnClose releases the conn's slot
	if s.stopping.Load() {
		return nil, gnet.Close
	}
	ls := s.loopState(gc.EventLoop())
	c := s.newConn(p.l, gc, ls, cloneAddr(gc.RemoteAddr()), s.now(), nil)
	gc.SetContext(c)
	s.conns.Store(c, struct{}{})
	return nil, gnet.None
}

func (e *engineHandler) OnTraffic(gc gnet.Conn) gnet.Action {
	c, ok := gc.Context().(*Conn)
	if !ok {
		if a, ok := gc.Context().(*adoptedConn); ok {
			return a.traffic(gc)
		}
		return gnet.Close
	}
	return c.onTraffic()
}

func (e *engineHandler) OnClose(gc gnet.Conn, err error) gnet.Action {
	switch c := gc.Context().(type) {
	case *Conn:
		c.onClosed(err)
		e.s.live.Add(-1)
	case *pendingConn:
		e.s.live.Add(-1)
	case *adoptedConn:
		if c.ls != nil { // opened: the owner learns of the end
			c.r.OnClosed(err)
		}
	}
	return gnet.None
}

// cloneAddr copies a TCP address: gnet recycles parts of its address values after close.
func cloneAddr(a net.Addr) net.Addr {
	switch t := a.(type) {
	case *net.TCPAddr:
		return &net.TCPAddr{IP: append(net.IP(nil), t.IP...), Port: t.Port, Zone: string([]byte(t.Zone))}
	case *net.UnixAddr:
		if t == nil {
			return &net.UnixAddr{Net: "unix"}
		}
		return &net.UnixAddr{Name: string([]byte(t.Name)), Net: t.Net}
	case nil:
		return &net.UnixAddr{Net: "unix"}
	}
	return a
}

// gnetLogger routes gnet's own logs to slog.
type gnetLogger struct{ l *slog.Logger }

func (g gnetLogger) Debugf(f string, a ...any) { g.l.Debug("gnet: " + fmt.Sprintf(f, a...)) }
func (g gnetLogger) Infof(f string, a ...any)  { g.l.Debug("gnet: " + fmt.Sprintf(f, a...)) }
func (g gnetLogger) Warnf(f string, a ...any)  { g.l.Warn("gnet: " + fmt.Sprintf(f, a...)) }
func (g gnetLogger) Errorf(f string, a ...any) { g.l.Error("gnet: " + fmt.Sprintf(f, a...)) }
func (g gnetLogger) Fatalf(f string, a ...any) { g.l.Error("gnet: fatal: " + fmt.Sprintf(f, a...)) }

// eachLoopState calls f for the counters of every event loop, every TLS conn and the
// retired ones (the totals of conns gone): what Stats and the per-type counters sum.
func (s *Server) eachLoopState(f func(*loopState)) {
	s.loops.Range(func(_ gnet.EventLoop, l *loopState) bool {
		f(l)
		return true
	})
	s.tlsStates.Range(func(l *loopState, _ struct{}) bool {
		f(l)
		return true
	})
	f(&s.retired)
}
