package netpoll

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/switchyard-wamp/switchyard/internal/readbatch"
)

// Adopted sockets: connections another package owns (the cluster's links) whose reads
// run on this server's event loops, beside the client conns, instead of on a goroutine
// of their own parked in Go's netpoller. A proxy then waits for client and link traffic
// in one epoll_wait per loop, and a read of either is one read batch whose sends are
// flushed at its end (issue #15: the cluster's extra CPU was mostly parks and wake-ups
// of link readers, profiles/NOTES.md). The owner keeps writing the socket itself
// (AdoptedConn.Fd, non-blocking) and closes it with AdoptedConn.Close.

// AdoptedReader receives an adopted connection's bytes; its methods run on the event
// loop, one at a time.
type AdoptedReader interface {
	// OnData is called with every byte read and not yet consumed (also after Wake, with
	// no new bytes) and returns how many it consumed; the rest is offered again with the
	// next bytes, once at least need bytes are there (need 0: any; a large frame then
	// costs no copy of its partial bytes per read). in is valid only during the call.
	// An error closes the connection. What it sends to other conns or links is flushed
	// at the end of the read, like a client conn's read batch.
	OnData(in []byte) (consumed, need int, err error)
	// OnClosed is called once when the connection closes (err: why, nil when closed
	// by Close), before its descriptor is closed: no write on AdoptedConn.Fd may be in
	// progress or start once it returns.
	OnClosed(err error)
}

// AdoptedConn is an adopted connection's handle. Its methods are safe for concurrent
// use.
type AdoptedConn struct {
	gc gnet.Conn
	fd int
}

// Fd is the socket's descriptor (non-blocking): the owner writes it directly. It stays
// valid until OnClosed has returned.
func (a *AdoptedConn) Fd() int { return a.fd }

// Wake has OnData called soon on the loop with the bytes buffered so far.
func (a *AdoptedConn) Wake() error { return a.gc.Wake(nil) }

// Close closes the connection on its loop (OnClosed follows, with a nil error).
func (a *AdoptedConn) Close() error { return a.gc.Close() }

// adoptedConn is the gnet context of an adopted connection.
type adoptedConn struct {
	r    AdoptedReader
	ls   *loopState
	need int // bytes OnData wants before it is called again
}

// errNoLoops: Adopt on a server without event loops (TLS listeners only).
var errNoLoops = errors.New("netpoll: no event loops to adopt a connection")

// Adopt hands the reads of nc, a plain TCP or Unix connection, to one of the server's
// event loops. nc itself is closed (the loop owns a duplicate of its descriptor); from
// here on r gets its bytes and the returned handle writes and closes it. On error nc is
// closed as well. Safe for concurrent use after Start.
func (s *Server) Adopt(nc net.Conn, r AdoptedReader) (*AdoptedConn, error) {
	if s.cli == nil || s.stopping.Load() {
		_ = nc.Close()
		return nil, errNoLoops
	}
	a := &adoptedConn{r: r}
	gc, err := s.cli.EnrollContext(nc, a)
	if err != nil {
		return nil, fmt.Errorf("netpoll: adopt: %w", err)
	}
	if a.ls == nil { // OnOpen refused it (the server is stopping)
		return nil, errNoLoops
	}
	return &AdoptedConn{gc: gc, fd: gc.Fd()}, nil
}

// open is OnOpen for an adopted connection.
func (a *adoptedConn) open(s *Server, gc gnet.Conn) gnet.Action {
	if s.stopping.Load() {
		return gnet.Close
	}
	a.ls = s.loopState(gc.EventLoop())
	return gnet.None
}

// traffic is OnTraffic for an adopted connection: one read batch.
func (a *adoptedConn) traffic(gc gnet.Conn) gnet.Action {
	if a.need > 0 && gc.InboundBuffered() < a.need {
		return gnet.None
	}
	readbatch.Begin()
	in, _ := gc.Peek(-1)
	n, need, err := a.r.OnData(in)
	a.need = need
	if n > 0 {
		_, _ = gc.Discard(n) // never Discard(0): gnet drops everything then
	}
	a.ls.endBatch(gc)
	if err != nil {
		return gnet.Close
	}
	return gnet.None
}

// loopState returns the per-loop state of el, made on first use.
func (s *Server) loopState(el gnet.EventLoop) *loopState {
	ls, _ := s.loops.LoadOrCompute(el, func() *loopState {
		ls := new(loopState)
		ls.flushCB = func(gnet.Conn, error) error {
			ls.flushSched = false
			roundEndFlushes.Add(1)
			readbatch.Flush()
			return nil
		}
		return ls
	})
	return ls
}

// endBatch closes the read batch of one OnTraffic on this loop (gc's). What the batch
// sent to other conns is written now, unless this loop already wrote at the end of a
// read less than roundGap ago: under load, many conns' reads send to the same few
// targets (64 callers' CALLs to one callee), and one write per read would cost a
// write(2) per message; then the flush waits for the end of the loop's polling round (a
// Wake whose callback runs after the round's reads), and one write carries the round's
// messages for each target. Under light load every read is flushed at once, with no
// wake.
func (ls *loopState) endBatch(gc connIO) {
	if !readbatch.Leave() || ls.flushSched {
		return
	}
	now := int64(time.Since(monoBase))
	if now-ls.lastFlush >= int64(roundGap) {
		ls.lastFlush = now
		readbatch.Flush()
		return
	}
	ls.flushSched = true
	_ = gc.Wake(ls.flushCB)
}
