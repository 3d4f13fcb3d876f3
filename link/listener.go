package link

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// EndpointStats are the totals of a Listener or Pool over all its links.
type EndpointStats struct {
	Links      int    // links up now
	Accepted   uint64 // connections accepted (Listener) or dialed (Pool)
	Rejected   uint64 // Listener: connections closed at once, over MaxConns
	AuthFailed uint64 // handshakes that failed (wrong secret, bad certificate, timeout)
	Overloaded uint64 // links closed for OutboundLimit
	Dead       uint64 // links closed for DeadAfter
	Errors     uint64 // accept errors (Listener) or dial failures (Pool)
}

// Listener accepts links. Its methods are safe for concurrent use.
type Listener struct {
	ln  net.Listener
	cfg Config
	h   Handler
	ctr counters

	active                     atomic.Int64 // connections held: handshaking or up
	accepted, rejected, errors atomic.Uint64
	rejectLog, authLog, errLog rateLog

	mu     sync.Mutex
	links  map[*Link]struct{}
	conns  map[net.Conn]struct{} // connections still in their handshake
	closed bool
	wg     sync.WaitGroup
}

// Listen listens on addr (host:port, port 0 for any) and accepts links in a goroutine;
// each authenticated link is reported to h. Safe for concurrent use.
func Listen(addr string, cfg Config, h Handler) (*Listener, error) {
	cfg, err := cfg.withDefaults(true)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("link: listen %s: %w", addr, err)
	}
	return serveOn(ln, cfg, h), nil
}

// Serve is Listen on a socket the caller bound already (e.g. every node of a test cluster
// binds its port before any node starts, so that each knows the others' addresses
// without a window in which another process takes the port). The Listener owns ln.
func Serve(ln net.Listener, cfg Config, h Handler) (*Listener, error) {
	cfg, err := cfg.withDefaults(true)
	if err != nil {
		return nil, err
	}
	return serveOn(ln, cfg, h), nil
}

// serveOn runs a Listener on ln with a checked config.
func serveOn(ln net.Listener, cfg Config, h Handler) *Listener {
	l := &Listener{ln: ln, cfg: cfg, h: h, links: map[*Link]struct{}{}, conns: map[net.Conn]struct{}{}}
	for _, r := range []*rateLog{&l.rejectLog, &l.authLog, &l.errLog} {
		r.interval = time.Second
	}
	l.wg.Add(1)
	go l.acceptLoop()
	cfg.Logger.Info("link: listening", "addr", ln.Addr().String(), "node", cfg.Node, "tls", cfg.TLS != nil)
	return l
}

// Addr returns the listening address. Safe for concurrent use.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// Stats returns the listener's totals. Safe for concurrent use.
func (l *Listener) Stats() EndpointStats {
	l.mu.Lock()
	n := len(l.links)
	l.mu.Unlock()
	return EndpointStats{
		Links: n, Accepted: l.accepted.Load(), Rejected: l.rejected.Load(),
		AuthFailed: l.ctr.authFailed.Load(), Overloaded: l.ctr.overloaded.Load(),
		Dead: l.ctr.dead.Load(), Errors: l.errors.Load(),
	}
}

// Close stops accepting, closes every link as Link.Close does (queued frames are flushed
// for at most a second, the peer is told why; OnLinkDown follows for each) and waits for
// their goroutines. Safe for concurrent use; idempotent.
func (l *Listener) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	err := l.ln.Close()
	for lk := range l.links {
		lk.Close(fmt.Errorf("%w: listener closed", ErrClosed))
	}
	for c := range l.conns {
		_ = c.Close()
	}
	l.mu.Unlock()
	l.wg.Wait()
	return err
}

// acceptLoop accepts until the listener is closed, backing off on errors such as
// EMFILE instead of spinning or giving up.
func (l *Listener) acceptLoop() {
	defer l.wg.Done()
	backoff := time.Duration(0)
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			l.errors.Add(1)
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			l.errLog.log(l.cfg.Logger, slog.LevelWarn, "link: accept failed, backing off",
				"addr", l.ln.Addr().String(), "err", err, "backoff", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if n := l.active.Add(1); n > int64(l.cfg.MaxConns) {
			l.active.Add(-1)
			l.rejected.Add(1)
			_ = c.Close()
			l.rejectLog.log(l.cfg.Logger, slog.LevelWarn, "link: over max_conns, connection closed",
				"remote", c.RemoteAddr().String(), "max_conns", l.cfg.MaxConns)
			continue
		}
		l.accepted.Add(1)
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			_ = c.Close()
			l.active.Add(-1)
			return
		}
		l.conns[c] = struct{}{}
		l.wg.Add(1)
		l.mu.Unlock()
		go l.serve(c)
	}
}

// serve authenticates one accepted connection and runs its link.
func (l *Listener) serve(c net.Conn) {
	defer l.wg.Done()
	defer l.active.Add(-1)
	peer, conn, err := l.handshake(c)
	l.mu.Lock()
	delete(l.conns, c)
	if err == nil && l.closed {
		err = fmt.Errorf("%w: listener closed", ErrClosed)
	}
	if err != nil {
		l.mu.Unlock()
		_ = conn.Close()
		if !errors.Is(err, ErrClosed) {
			l.ctr.authFailed.Add(1)
			l.authLog.log(l.cfg.Logger, slog.LevelWarn, "link: handshake refused",
				"remote", c.RemoteAddr().String(), "err", err)
		}
		return
	}
	lk := newLink(conn, &l.cfg, l.h, peer, &l.ctr)
	l.links[lk] = struct{}{}
	l.mu.Unlock()
	lk.onDown = func(lk *Link) {
		l.mu.Lock()
		delete(l.links, lk)
		l.mu.Unlock()
		l.cfg.Logger.Info("link: down", "peer", peer.Node, "role", peer.Role, "err", lk.Err())
	}
	l.cfg.Logger.Info("link: up", "peer", peer.Node, "role", peer.Role, "remote", c.RemoteAddr().String())
	lk.run()
}

// handshake runs TLS (if configured) and the link handshake under HandshakeTimeout.
func (l *Listener) handshake(c net.Conn) (PeerInfo, net.Conn, error) {
	conn := c
	_ = c.SetDeadline(time.Now().Add(HandshakeTimeout))
	if l.cfg.TLS != nil {
		tc := tls.Server(c, l.cfg.TLS)
		if err := tc.Handshake(); err != nil {
			return PeerInfo{}, c, fmt.Errorf("%w: tls: %v", ErrAuth, err)
		}
		conn = tc
	}
	peer, err := listenerHandshake(conn, &l.cfg)
	if err != nil {
		return PeerInfo{}, conn, err
	}
	_ = c.SetDeadline(time.Time{})
	return peer, conn, nil
}
