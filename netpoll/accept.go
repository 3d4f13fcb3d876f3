package netpoll

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"time"
)

// Accepting connections. Every listener, plain or TLS, is a net.Listener with its own
// accept goroutine. gnet v2.9.7 treats any accept error other than EAGAIN, EINTR,
// ECONNRESET and ECONNABORTED as fatal: its acceptor returns ErrAcceptSocket, the poller
// loop returns it, and the whole engine shuts down (every event loop, every conn) on
// the first EMFILE, whatever the EventHandler does; OnOpen runs only after accept, on
// another loop, so a cap there cannot keep a burst of accepts below the limit. So gnet
// accepts nothing here: its event loops run as a gnet.Client, which has no listener,
// and each accepted plain conn is handed to a loop with Client.EnrollContext (gnet
// duplicates the descriptor, closes ours and calls OnOpen on the loop). The accept
// goroutine applies the connection cap (Config.MaxConnections) before any handshake
// work, and when accept fails (out of descriptors) it backs off and retries, as
// net/http does; the pending conns wait in the backlog. A failed hand-over (EMFILE on
// that dup included) closes that one conn and nothing else.

const (
	// capReserve is how many descriptors the default cap leaves for everything that is
	// not a client connection, at least: listeners, the event loops' pollers, log and
	// config files, TLS certificate reads, cluster links, and the transient second
	// descriptor of a plain conn while gnet takes it over.
	capReserve = 64
	// capLogEvery bounds the rate of the log lines about refused connections and
	// failed accepts: one line per cause at most this often, with a count.
	capLogEvery = 5 * time.Second
	// TCP keepalive of accepted conns (Go's defaults for them): first probe after
	// keepAliveIdle seconds idle, then every keepAliveInterval, keepAliveCount probes.
	keepAliveIdle, keepAliveInterval, keepAliveCount = 15, 15, 9
	// acceptBackoffMax is the longest pause between accept attempts after errors.
	acceptBackoffMax = time.Second
	// maxEnrolling bounds the plain conns being handed to gnet at once: each holds a
	// second descriptor until gnet has registered its duplicate, and a burst of them
	// must stay well inside capReserve.
	maxEnrolling = 16
)

// maxConnsFor is the default cap for a descriptor limit of n.
func maxConnsFor(n uint64) int {
	n = min(n, 1<<30) // RLIM_INFINITY and other huge limits
	reserve := max(capReserve, n/16)
	if n < 2*reserve {
		return max(int(n/2), 1) // tiny limits: still serve something
	}
	return int(n - reserve)
}

// rateLog lets a log line through at most once per capLogEvery and counts the events
// in between. Safe for concurrent use.
type rateLog struct {
	at atomic.Int64  // unix nanos of the last line
	n  atomic.Uint64 // events since the last line
}

// event counts one event; ok is true when a line should be logged now, n is the number
// of events it reports (this one included).
func (r *rateLog) event() (n uint64, ok bool) {
	r.n.Add(1)
	now := time.Now().UnixNano()
	last := r.at.Load()
	if last != 0 && now-last < int64(capLogEvery) || !r.at.CompareAndSwap(last, now) {
		return 0, false
	}
	return r.n.Swap(0), true
}

// listen binds the socket of listener l.
func (s *Server) listen(l *listener) error {
	if l.Network == "unix" {
		_ = os.Remove(l.Address) // a stale socket of a previous run (checkUnixPath)
	}
	lc := listenConfig()
	ln, err := lc.Listen(context.Background(), l.Network, l.Address)
	if err != nil {
		return fmt.Errorf("netpoll: listener %s: %w", l.Name, err)
	}
	l.netLn, l.addr = ln, ln.Addr()
	return nil
}

// closeListeners closes every bound listening socket; their accept goroutines return.
func (s *Server) closeListeners() {
	for _, l := range s.lns {
		if l.netLn != nil {
			_ = l.netLn.Close()
		}
	}
}

// acceptLoop is the accept goroutine of listener l; it returns when the listener is
// closed.
func (s *Server) acceptLoop(l *listener) {
	defer s.acceptWG.Done()
	var backoff time.Duration
	for {
		nc, err := l.netLn.Accept()
		if err != nil {
			if s.stopping.Load() || s.draining.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of descriptors (EMFILE, ENFILE) and the like: the pending conns wait in
			// the backlog until descriptors are free again.
			backoff = min(max(2*backoff, 5*time.Millisecond), acceptBackoffMax)
			if n, ok := s.acceptErrLog.event(); ok {
				s.log.Warn("netpoll: accept failed, retrying", "listener", l.Name, "error", err,
					"failures", n, "retry_in", backoff)
			}
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if s.live.Add(1) > s.maxConns {
			s.live.Add(-1)
			s.refuse(l, nc)
			continue
		}
		s.accepted.Add(1)
		if l.TLS != nil {
			s.handshaking.Store(nc, struct{}{})
			go s.serveTLS(l, nc)
			continue
		}
		s.enrolling <- struct{}{} // released by enroll
		s.enrollWG.Add(1)
		go s.enroll(l, nc)
	}
}

// refuse closes nc at once, with a reset so that neither side keeps it in TIME_WAIT,
// counts it and logs (rate-limited).
func (s *Server) refuse(l *listener, nc net.Conn) {
	s.refused.Add(1) // before the close: whoever sees the close sees the count
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = nc.Close()
	if n, ok := s.refuseLog.event(); ok {
		s.log.Warn("netpoll: connection limit reached, closing new connections",
			"listener", l.Name, "max_connections", s.maxConns, "refused", n, "open", s.live.Load())
	}
}

// pendingConn is the gnet context of a plain conn until OnOpen replaces it with its
// *Conn.
type pendingConn struct {
	l      *listener
	opened atomic.Bool // OnOpen ran: OnClose will release the conn's slot
}

// enroll hands plain conn nc to a gnet event loop (gnet duplicates its descriptor and
// closes nc) and waits until OnOpen ran there; on failure the conn is closed and its
// slot released.
func (s *Server) enroll(l *listener, nc net.Conn) {
	defer s.enrollWG.Done()
	p := &pendingConn{l: l}
	_, err := s.cli.EnrollContext(nc, p)
	<-s.enrolling
	if p.opened.Load() {
		return
	}
	s.live.Add(-1)
	if err == nil {
		err = errors.New("not registered with the event loop")
	}
	if s.stopping.Load() {
		return
	}
	if n, ok := s.enrollLog.event(); ok {
		s.log.Warn("netpoll: could not hand a connection to an event loop, closed it",
			"listener", l.Name, "error", err, "failures", n)
	}
}

// StopAccepting closes every listener (a lame-duck drain): no new connection is
// accepted, and the open ones are served until Stop. It returns once the accept
// goroutines have exited. Safe for concurrent use; idempotent.
func (s *Server) StopAccepting() {
	if !s.started.Load() {
		return
	}
	s.draining.Store(true)
	s.closeListeners()
	s.acceptWG.Wait()
}
