// Package netpoll carries every steady-state byte of switchyard on gnet/v2 event loops.
//
// It owns the byte-level transports: WebSocket (upgrade via gobwas/ws, frames parsed
// here), WAMP RawSocket, and HTTP sniffing so that one "universal" port serves the web
// page, WebSocket and RawSocket. It knows bytes and frames, not realms or WAMP
// semantics: the layer above implements Handler and gets one callback per complete,
// unmasked, un-batched WAMP message.
//
// Threading model: every connection belongs to one gnet event loop; all reads, all
// Handler calls for that connection and all socket writes happen on that loop. Any
// goroutine may call Conn.Send: it frames the message, copies it into a lock-free
// per-connection queue and wakes the loop once when the queue goes from empty to
// non-empty. The loop drains the queue after it has processed every inbound frame of a
// read batch, into one contiguous buffer and one write call (many frames per syscall).
package netpoll

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/panjf2000/gnet/v2"
	"github.com/puzpuzpuz/xsync/v3"
)

// Handler is implemented by the layer above. All calls for one Conn run on that Conn's
// event loop, one at a time; calls for different Conns may run concurrently on
// different loops. Handler methods must not block: they run on the event loop.
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
// A Config is read by NewServer and not retained by reference.
type Config struct {
	// Universal is the address of the universal listener (e.g. "127.0.0.1:8080"):
	// HTTP page at "/", WebSocket at WSPath, RawSocket (first byte 0x7F) on the same
	// port. "" disables it. Port 0 picks a free port (see Server.UniversalAddr).
	Universal string
	// RawSocket is the address of a RawSocket-only listener, e.g. ":8081"; "" disables.
	RawSocket string
	// WSPath is the WebSocket endpoint path; default "/ws".
	WSPath string
	// MaxMessageSize bounds inbound messages; default 1 MiB. Over it the conn is closed
	// (WebSocket: close 1009). RawSocket announces the largest power of two <= it
	// (minimum 512, the protocol's smallest) in the handshake and enforces that.
	MaxMessageSize int
	// PingInterval: a conn idle (nothing received) for this long gets a ping
	// (WebSocket ping frame, RawSocket PING); default 10s.
	PingInterval time.Duration
	// PingTimeout: no pong (or any other traffic) within it after a ping closes the
	// conn; default 5s. A connection must also finish its handshake (HTTP upgrade or
	// RawSocket) within PingInterval+PingTimeout.
	PingTimeout time.Duration
	// OutboundLimit is the number of bytes that may be queued per conn before the
	// slow-consumer policy (log, count, disconnect) fires; default 4 MiB. It bounds the
	// Send queue and, separately, the socket backlog held by gnet, so the memory held
	// for one conn stays below about 2*OutboundLimit.
	OutboundLimit int
	// Loops is the number of gnet event loops; default runtime.GOMAXPROCS(0).
	Loops int
	// StatusPage returns the body (text/html) served at "/" (and, with status 404, for
	// other non-WebSocket paths). nil serves a minimal built-in page.
	StatusPage func() []byte
	// Logger receives structured logs, one per abnormal close; default slog.Default().
	Logger *slog.Logger
}

// Stats is a snapshot of the server counters (see Server.Stats).
type Stats struct {
	Accepted           uint64 // TCP connections accepted on any listener
	Open               int64  // connections currently open (got OnOpen, not yet OnClose)
	SlowConsumerClosed uint64 // connections closed by the slow-consumer policy
	ProtocolErrors     uint64 // bad handshakes and bad frames (each closed the conn)
	BytesIn            uint64 // bytes consumed from sockets
	BytesOut           uint64 // bytes handed to sockets
	MessagesIn         uint64 // WAMP messages delivered to Handler.OnMessage
	MessagesOut        uint64 // WAMP messages (not control frames) handed to sockets
}

// Errors returned by Conn.Send.
var (
	// ErrClosed is returned by Send on a conn that is closing or closed.
	ErrClosed = errors.New("netpoll: connection closed")
	// ErrSlowConsumer is returned by Send once the conn has been closed by the
	// slow-consumer policy (its outbound queue went over Config.OutboundLimit).
	ErrSlowConsumer = errors.New("netpoll: slow consumer, connection closed")
)

// Server runs the gnet engine that serves the configured listeners.
// Its methods are safe for concurrent use.
type Server struct {
	cfg Config
	h   Handler
	log *slog.Logger

	rsNibble byte // RawSocket max-length exponent we announce (2^(9+n))
	rsMax    int  // inbound RawSocket limit: 1<<(9+rsNibble)

	startOnce sync.Once
	eng       gnet.Engine
	booted    chan struct{}
	runDone   chan struct{}
	runErr    error
	uniAddr   net.Addr
	rawAddr   net.Addr
	rawPort   int // port of the RawSocket-only listener, to tell listeners apart
	uniSpec   string
	rawSpec   string
	bootErr   error
	stopping  atomic.Bool
	stopped   atomic.Bool

	conns    *xsync.MapOf[*Conn, struct{}] // every live gnet conn (pre-open too)
	flushing *xsync.MapOf[*Conn, int64]    // closing conns waiting for gnet's backlog to drain: deadline
	loops    *xsync.MapOf[gnet.EventLoop, *loopState]

	clock      atomic.Int64 // coarse now (unix nanos), refreshed by the ticker
	lastSweep  int64        // ticker goroutine only
	tick       time.Duration
	sweepEvery time.Duration

	accepted   atomic.Uint64
	open       atomic.Int64
	slowClosed atomic.Uint64
	protoErrs  atomic.Uint64
}

// loopState is per gnet event loop: buffers and counters used only on that loop
// (counters are atomics so that Stats can read them; each loop has its own, so there is
// no cross-core contention on the hot path).
type loopState struct {
	wbuf                               []byte // contiguous write buffer: one conn's frames of one batch
	scratch                            []byte // unmasked WebSocket payloads, valid during one OnMessage
	_                                  [64]byte
	bytesIn, bytesOut, msgsIn, msgsOut atomic.Uint64
	_                                  [64]byte
}

// NewServer validates cfg, applies defaults and returns a Server that is not yet
// listening (see Start). h must not be nil.
func NewServer(cfg Config, h Handler) (*Server, error) {
	if h == nil {
		return nil, errors.New("netpoll: nil Handler")
	}
	if cfg.Universal == "" && cfg.RawSocket == "" {
		return nil, errors.New("netpoll: no listener configured")
	}
	if cfg.WSPath == "" {
		cfg.WSPath = "/ws"
	}
	if cfg.MaxMessageSize <= 0 {
		cfg.MaxMessageSize = 1 << 20
	}
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = 10 * time.Second
	}
	if cfg.PingTimeout <= 0 {
		cfg.PingTimeout = 5 * time.Second
	}
	if cfg.OutboundLimit <= 0 {
		cfg.OutboundLimit = 4 << 20
	}
	if cfg.Loops <= 0 {
		cfg.Loops = runtime.GOMAXPROCS(0)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{
		cfg:      cfg,
		h:        h,
		log:      cfg.Logger,
		booted:   make(chan struct{}),
		runDone:  make(chan struct{}),
		conns:    xsync.NewMapOf[*Conn, struct{}](),
		flushing: xsync.NewMapOf[*Conn, int64](),
		loops:    xsync.NewMapOf[gnet.EventLoop, *loopState](),
	}
	// Largest n with 2^(9+n) <= MaxMessageSize, 0..15.
	for n := byte(15); ; n-- {
		if 1<<(9+int(n)) <= cfg.MaxMessageSize || n == 0 {
			s.rsNibble = n
			break
		}
	}
	s.rsMax = 1 << (9 + int(s.rsNibble))
	if s.rsMax > 1<<24-1 {
		s.rsMax = 1<<24 - 1 // a RawSocket frame length has 24 bits
	}
	s.sweepEvery = min(cfg.PingInterval, cfg.PingTimeout) / 4
	s.sweepEvery = max(min(s.sweepEvery, time.Second), 5*time.Millisecond)
	s.tick = min(s.sweepEvery, 50*time.Millisecond)
	return s, nil
}

// Start binds the listeners (port 0 allowed) and starts the event loops. It returns
// once the listeners accept connections. It may be called once.
func (s *Server) Start() error {
	err := errors.New("netpoll: Start called twice")
	s.startOnce.Do(func() { err = s.start() })
	return err
}

func (s *Server) start() error {
	s.clock.Store(time.Now().UnixNano())
	var addrs []string
	uni, raw := s.cfg.Universal, s.cfg.RawSocket
	if uni != "" {
		addrs = append(addrs, "tcp://"+uni)
	}
	if raw != "" {
		if raw == uni {
			// Both on the same "host:0": gnet finds listeners by their address string,
			// so spell port 0 differently ("00" resolves to the same port 0).
			host, port, err := net.SplitHostPort(raw)
			if err != nil || port != "0" {
				return fmt.Errorf("netpoll: universal and rawsocket listeners both on %q", raw)
			}
			raw = net.JoinHostPort(host, "00")
		}
		addrs = append(addrs, "tcp://"+raw)
	}
	s.uniSpec, s.rawSpec = uni, raw
	eh := &engineHandler{s: s}
	go func() {
		defer close(s.runDone)
		s.runErr = gnet.Rotate(eh, addrs,
			gnet.WithMulticore(true),
			gnet.WithNumEventLoop(s.cfg.Loops),
			gnet.WithReusePort(false),
			// A restarted node must bind while its old connections sit in TIME_WAIT.
			gnet.WithReuseAddr(true),
			gnet.WithTCPNoDelay(gnet.TCPNoDelay),
			gnet.WithTicker(true),
			gnet.WithLogger(gnetLogger{s.log}),
		)
	}()
	select {
	case <-s.booted:
		if s.bootErr != nil {
			<-s.runDone
			return s.bootErr
		}
	case <-s.runDone:
		if s.runErr != nil {
			return fmt.Errorf("netpoll: start: %w", s.runErr)
		}
		return errors.New("netpoll: engine exited during start")
	}
	return nil
}

// resolveAddrs runs in OnBoot, before the event loops start (so the loops see rawPort
// without further synchronization): it records the actual bound addresses.
func (s *Server) resolveAddrs(eng gnet.Engine) error {
	s.eng = eng
	var err error
	if s.uniSpec != "" {
		if s.uniAddr, err = s.boundAddr(s.uniSpec); err != nil {
			return err
		}
	}
	if s.rawSpec != "" {
		if s.rawAddr, err = s.boundAddr(s.rawSpec); err != nil {
			return err
		}
		s.rawPort = s.rawAddr.(*net.TCPAddr).Port
	}
	return nil
}

// boundAddr returns the actual address of the listener configured as addr.
func (s *Server) boundAddr(addr string) (net.Addr, error) {
	fd, err := s.eng.DupListener("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("netpoll: listener %s: %w", addr, err)
	}
	f := os.NewFile(uintptr(fd), "listener")
	defer f.Close()
	ln, err := net.FileListener(f)
	if err != nil {
		return nil, fmt.Errorf("netpoll: listener %s: %w", addr, err)
	}
	defer ln.Close()
	return ln.Addr(), nil
}

// UniversalAddr returns the bound address of the universal listener (nil if disabled
// or not started). Safe for concurrent use after Start returned.
func (s *Server) UniversalAddr() net.Addr { return s.uniAddr }

// RawSocketAddr returns the bound address of the RawSocket-only listener (nil if
// disabled or not started). Safe for concurrent use after Start returned.
func (s *Server) RawSocketAddr() net.Addr { return s.rawAddr }

// Stop stops accepting connections, flushes the frames queued on every conn, closes
// every conn (WebSocket: close frame 1000 first), then stops the event loops. Conns
// that cannot be flushed before ctx is done are closed anyway. Safe for concurrent use;
// later calls return nil at once.
func (s *Server) Stop(ctx context.Context) error {
	select {
	case <-s.booted:
	default:
		return nil // never started
	}
	if s.stopping.Swap(true) {
		<-s.runDone
		return nil
	}
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
	s.stopped.Store(true)
	// Engine.Stop polls for completion every 500ms; the Rotate call returning is the
	// precise signal, so wait for that instead.
	stopCtx, cancel := context.WithCancel(context.Background())
	go func() { _ = s.eng.Stop(stopCtx) }()
	<-s.runDone
	cancel()
	return ctxErr
}

// Stats returns a snapshot of the counters. Safe for concurrent use.
func (s *Server) Stats() Stats {
	st := Stats{
		Accepted:           s.accepted.Load(),
		Open:               s.open.Load(),
		SlowConsumerClosed: s.slowClosed.Load(),
		ProtocolErrors:     s.protoErrs.Load(),
	}
	s.loops.Range(func(_ gnet.EventLoop, l *loopState) bool {
		st.BytesIn += l.bytesIn.Load()
		st.BytesOut += l.bytesOut.Load()
		st.MessagesIn += l.msgsIn.Load()
		st.MessagesOut += l.msgsOut.Load()
		return true
	})
	return st
}

func (s *Server) now() int64 { return s.clock.Load() }

// engineHandler adapts gnet's callbacks; kept off Server so that they are not exported.
type engineHandler struct {
	gnet.BuiltinEventEngine
	s *Server
}

func (e *engineHandler) OnBoot(eng gnet.Engine) gnet.Action {
	e.s.bootErr = e.s.resolveAddrs(eng)
	close(e.s.booted)
	if e.s.bootErr != nil {
		return gnet.Shutdown
	}
	return gnet.None
}

func (e *engineHandler) OnOpen(gc gnet.Conn) ([]byte, gnet.Action) {
	s := e.s
	if s.stopping.Load() {
		return nil, gnet.Close
	}
	s.accepted.Add(1)
	el := gc.EventLoop()
	ls, _ := s.loops.LoadOrCompute(el, func() *loopState { return new(loopState) })
	c := &Conn{srv: s, gc: gc, loop: ls, remote: cloneAddr(gc.RemoteAddr())}
	c.born = s.now()
	c.phase = phaseSniff
	if s.cfg.Universal == "" || (s.rawPort != 0 && localPort(gc.Fd()) == s.rawPort) {
		c.phase = phaseRSHandshake
	}
	gc.SetContext(c)
	s.conns.Store(c, struct{}{})
	return nil, gnet.None
}

func (e *engineHandler) OnTraffic(gc gnet.Conn) gnet.Action {
	c, ok := gc.Context().(*Conn)
	if !ok {
		return gnet.Close
	}
	return c.onTraffic()
}

func (e *engineHandler) OnClose(gc gnet.Conn, err error) gnet.Action {
	if c, ok := gc.Context().(*Conn); ok {
		c.onClosed(err)
	}
	return gnet.None
}

func (e *engineHandler) OnTick() (time.Duration, gnet.Action) {
	return e.s.onTick(), gnet.None
}

// localPort returns the local port of socket fd (0 on error).
func localPort(fd int) int {
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		return 0
	}
	switch a := sa.(type) {
	case *syscall.SockaddrInet4:
		return a.Port
	case *syscall.SockaddrInet6:
		return a.Port
	}
	return 0
}

// cloneAddr copies a TCP address: gnet recycles parts of its address values after close.
func cloneAddr(a net.Addr) net.Addr {
	if t, ok := a.(*net.TCPAddr); ok {
		return &net.TCPAddr{IP: append(net.IP(nil), t.IP...), Port: t.Port, Zone: string([]byte(t.Zone))}
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
