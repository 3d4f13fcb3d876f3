package link

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"time"
)

// Links on event loops (Config.Loops). By default each link has a reader goroutine that
// parks in Go's netpoller between reads; a proxy then sleeps in two places (its event
// loops' epoll_wait for the clients, the netpoller for the links) and every link read
// is a goroutine wake-up. With Loops, a plain TCP link's reads run on an event loop of
// the node (netpoll.Server.Adopt), beside the client conns: one epoll_wait sees both, and
// a link read is a read batch like a client's (its sends flushed at its end). The link
// still writes its socket itself: write-through and the writer goroutine write the
// loop's descriptor without blocking, and wait for room with poll(2) when it is full.
// Dead peers are found by the writer goroutine's heartbeat timer instead of a read
// deadline. TLS links keep their reader goroutine.

// Loops runs links' reads on event loops. netpoll.Server does it (node adapts it).
type Loops interface {
	// Adopt takes over c's reads: from the return on, r gets c's bytes on a loop and c
	// itself is closed (the loop owns a duplicate descriptor, LoopConn.Fd). A nil
	// LoopConn with a nil error declines (no loops yet): c is untouched and the link
	// reads it itself. On error c is closed.
	Adopt(c net.Conn, r LoopReader) (LoopConn, error)
}

// LoopReader is the link's side of an adopted connection; see netpoll.AdoptedReader.
type LoopReader interface {
	OnData(in []byte) (consumed, need int, err error)
	OnClosed(err error)
}

// LoopConn is an adopted connection's handle; see netpoll.AdoptedConn.
type LoopConn interface {
	Fd() int
	Wake() error
	Close() error
}

// adoption is a link's adopted connection.
type adoption struct {
	lc LoopConn
	fd int
}

// loopReader is the LoopReader of link l; its methods run on l's event loop.
type loopReader struct{ l *Link }

// pollSlice bounds one wait for room on a full adopted socket, so that a closing link
// is noticed soon.
const pollSlice = 10 * time.Millisecond

// adopt hands l's reads to the event loops, unless they decline. On error l.conn is
// closed.
func (l *Link) adopt() error {
	l.readDone = make(chan error, 1)
	lc, err := l.cfg.Loops.Adopt(l.conn, loopReader{l})
	if err != nil {
		return fmt.Errorf("link: onto an event loop: %w", err)
	}
	if lc == nil {
		return nil
	}
	l.lastData.Store(time.Now().UnixNano())
	l.ad.Store(&adoption{lc: lc, fd: lc.Fd()})
	return nil
}

// OnData delivers the complete frames of in, once the link is up.
func (r loopReader) OnData(in []byte) (int, int, error) {
	l := r.l
	if !l.ready.Load() {
		return 0, 0, nil // OnLinkUp has not run yet: kept until the Wake that follows it
	}
	l.reads.Add(1)
	if len(in) == 0 {
		return 0, 0, nil
	}
	l.lastData.Store(time.Now().UnixNano())
	n, err := l.frames(in, &l.lf, &l.ltbuf)
	if err != nil {
		l.readFailed(err)
		return n, 0, err
	}
	need := 0
	if rest := in[n:]; len(rest) >= 4 { // a partial frame: wait for all of it
		need = 4 + int(binary.BigEndian.Uint32(rest))
	}
	return n, need, nil
}

// OnClosed ends the link's reading: no write may touch the descriptor once it returns.
func (r loopReader) OnClosed(err error) {
	l := r.l
	l.gone.Store(true)
	l.mu.Lock()
	rerr := l.rdErr
	l.mu.Unlock()
	switch {
	case rerr != nil:
		err = rerr
	case err == nil:
		err = fmt.Errorf("%w: connection ended", ErrPeerClosed)
	default:
		err = fmt.Errorf("%w: %w", ErrPeerClosed, err)
	}
	l.shut(err, false)
	l.mu.Lock()
	l.awaitWritesLocked() // a write in progress notices gone within pollSlice
	l.mu.Unlock()
	l.readDone <- err
}

// awaitWritesLocked waits, l.mu held (released while it sleeps), until no goroutine
// holds the writing role. The caller has closed the link, so none takes it again.
func (l *Link) awaitWritesLocked() {
	for l.writing {
		l.mu.Unlock()
		time.Sleep(10 * time.Microsecond)
		l.mu.Lock()
	}
}

// readFailed records why reading stopped (the first reason wins); OnClosed reports it.
func (l *Link) readFailed(err error) {
	l.mu.Lock()
	if l.rdErr == nil {
		l.rdErr = err
	}
	l.mu.Unlock()
}

// checkDead closes an adopted link that received nothing for DeadAfter (the writer's
// heartbeat timer calls it) and reports whether it did.
func (l *Link) checkDead() bool {
	if l.ad.Load() == nil || l.isClosed.Load() {
		return false
	}
	silent := time.Since(time.Unix(0, l.lastData.Load()))
	if silent < l.cfg.DeadAfter {
		return false
	}
	err := fmt.Errorf("%w: nothing received for %v", ErrDead, l.cfg.DeadAfter)
	l.readFailed(err)
	if l.shut(err, false) {
		l.ctr.dead.Add(1)
		l.cfg.Logger.Warn("link: peer silent, closing the link", "peer", l.peer.Node,
			"role", l.peer.Role, "dead_after", l.cfg.DeadAfter)
	}
	return true
}

// errWriteAborted: a blocking write on an adopted socket gave up (the link is closing).
var errWriteAborted = errors.New("link: write abandoned, the link is closing")

// writeAll writes buf to the adopted socket fd, waiting for room with poll(2) in
// pollSlice steps. It gives up when the loop closed the socket, or when the link is
// closing and its close deadline (shut) has passed. The caller holds the writing role.
func (l *Link) writeAll(fd int, buf []byte) (int, error) {
	done := 0
	for done < len(buf) {
		n, err := writeFd(fd, buf[done:])
		done += n
		if err != nil {
			return done, err
		}
		if done == len(buf) {
			break
		}
		if l.gone.Load() {
			return done, errWriteAborted
		}
		if by := l.closeBy.Load(); by != 0 && time.Now().UnixNano() > by {
			return done, errWriteAborted
		}
		if err := waitWritable(fd, pollSlice); err != nil {
			return done, err
		}
	}
	return done, nil
}
