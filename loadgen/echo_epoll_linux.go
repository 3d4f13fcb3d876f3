//go:build linux

package loadgen

import (
	"errors"
	"fmt"
	"net"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// EpollEchoServer is the echo server reduced to what the kernel makes every server pay:
// the floor a router's CPU per message is read against (issue #15's "syscall floor").
// The accept and the transport handshake run on a goroutine per connection, as
// EchoServer's do; then the socket's descriptor is handed to one of a few event loops
// (round robin) and the goroutine ends. Each loop is a goroutine locked to its OS thread
// that waits in epoll_wait (level-triggered, no timeout), reads a ready socket into the
// loop's 64 KiB buffer, parses the complete frames with EchoServer's parser (only an
// incomplete frame is copied to the connection) and writes the replies of that read
// with one write(2): at one message in flight, one epoll_wait, one read and one write
// per message, with no goroutine, channel or Go netpoller in between. A write the socket
// does not take in full keeps the rest, stops reading that connection and waits for
// EPOLLOUT. Messages, Bytes and Conns count as EchoServer's do.
type EpollEchoServer struct {
	*tcpServer
	echoCounters
	loops    []*echoLoop
	next     atomic.Uint32 // round robin over loops
	wg       sync.WaitGroup
	closeMu  sync.Mutex   // one Close at a time
	partials atomic.Int64 // writes the socket took in part (tests check the path ran)
}

// StartEpollEchoServer listens on addr (e.g. "127.0.0.1:0") and echoes on loops event
// loops (at least 1; one thread is the floor) until Close.
func StartEpollEchoServer(addr string, loops int) (*EpollEchoServer, error) {
	s := &EpollEchoServer{}
	for range max(loops, 1) {
		l, err := newEchoLoop(s)
		if err != nil {
			s.stopLoops()
			return nil, err
		}
		s.loops = append(s.loops, l)
	}
	for _, l := range s.loops {
		s.wg.Go(l.run)
	}
	var err error
	if s.tcpServer, err = startTCPServer(addr, s.serve); err != nil {
		s.stopLoops()
		return nil, fmt.Errorf("loadgen: epoll echo server: %w", err)
	}
	return s, nil
}

// Close stops listening, ends the handshakes in progress, stops the loops and closes
// every connection; it returns when every goroutine of the server has ended. Safe for
// concurrent use (a second Close returns the listener's error).
func (s *EpollEchoServer) Close() error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	err := s.tcpServer.Close() // no handshake goroutine (and so no new connection) after this
	if lerr := s.stopLoops(); err == nil {
		err = lerr
	}
	return err
}

// stopLoops wakes every loop with its stop flag set, waits for them, then closes their
// descriptors and any connection a loop never took.
func (s *EpollEchoServer) stopLoops() error {
	for _, l := range s.loops {
		l.mu.Lock()
		l.stop = true
		l.mu.Unlock()
		l.wake()
	}
	s.wg.Wait()
	var errs []error
	for _, l := range s.loops {
		l.mu.Lock()
		for _, c := range l.adds { // handed to a loop that had ended on an error
			_ = unix.Close(int(c.fd))
		}
		l.adds = nil
		l.mu.Unlock()
		_ = unix.Close(l.ep)
		_ = unix.Close(l.wakeFD)
		if l.err != nil {
			errs = append(errs, l.err)
		}
	}
	s.loops = nil
	return errors.Join(errs...)
}

// serve does the handshake on the accepting goroutine, then gives a duplicate of the
// socket's descriptor to a loop; the net.Conn is closed by the caller on return (the
// duplicate keeps the socket open).
func (s *EpollEchoServer) serve(c net.Conn) error {
	sc, err := acceptTransport(c)
	if err != nil {
		return err
	}
	sysc, ok := c.(syscall.Conn)
	if !ok {
		return fmt.Errorf("loadgen: epoll echo: %T has no descriptor", c)
	}
	rc, err := sysc.SyscallConn()
	if err != nil {
		return fmt.Errorf("loadgen: epoll echo: %w", err)
	}
	fd := -1
	var derr error
	if err := rc.Control(func(f uintptr) { fd, derr = unix.FcntlInt(f, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return fmt.Errorf("loadgen: epoll echo: %w", err)
	}
	if derr != nil {
		return fmt.Errorf("loadgen: epoll echo: dup: %w", derr)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		_ = unix.Close(fd)
		return fmt.Errorf("loadgen: epoll echo: %w", err)
	}
	s.echoConns.Add(1)
	ec := &epollConn{fd: int32(fd), ws: sc.ws, in: handshakeLeftover(sc)}
	l := s.loops[int(s.next.Add(1)-1)%len(s.loops)]
	return l.add(ec)
}

// epollConn is one connection of a loop. Owned by its loop once added.
type epollConn struct {
	fd      int32
	ws      bool
	closing bool   // a close frame (or an error) came: close once out is written
	in      []byte // an incomplete frame carried to the next read
	out     []byte // replies the socket did not take yet: out[off:]
	off     int
	msgs    int64 // the data messages in out, and their payload bytes
	bytes   int64
}

// echoLoop is one event loop. Its fields other than mu, adds and stop are owned by its
// goroutine.
type echoLoop struct {
	s      *EpollEchoServer
	ep     int
	wakeFD int // an eventfd: a connection to add, or stop
	mu     sync.Mutex
	adds   []*epollConn
	stop   bool
	conns  map[int32]*epollConn
	events []unix.EpollEvent
	rbuf   []byte
	out    []byte
	err    error // why the loop ended early
}

// maxReadsPerEvent bounds the reads of one readiness event when every read fills the
// buffer (level-triggered epoll reports the socket again if bytes are left).
const maxReadsPerEvent = 16

func newEchoLoop(s *EpollEchoServer) (*echoLoop, error) {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("loadgen: epoll echo: epoll_create1: %w", err)
	}
	wfd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		_ = unix.Close(ep)
		return nil, fmt.Errorf("loadgen: epoll echo: eventfd: %w", err)
	}
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, wfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wfd)}); err != nil {
		_ = unix.Close(ep)
		_ = unix.Close(wfd)
		return nil, fmt.Errorf("loadgen: epoll echo: epoll_ctl: %w", err)
	}
	return &echoLoop{s: s, ep: ep, wakeFD: wfd, conns: make(map[int32]*epollConn),
		events: make([]unix.EpollEvent, 256), rbuf: make([]byte, echoReadSize)}, nil
}

// add hands c to the loop. Safe for concurrent use.
func (l *echoLoop) add(c *epollConn) error {
	l.mu.Lock()
	if l.stop {
		l.mu.Unlock()
		_ = unix.Close(int(c.fd))
		return errors.New("loadgen: epoll echo: server closed")
	}
	l.adds = append(l.adds, c)
	l.mu.Unlock()
	l.wake()
	return nil
}

// wake makes the loop's epoll_wait return. Safe for concurrent use.
func (l *echoLoop) wake() {
	one := [8]byte{1}
	_, _ = unix.Write(l.wakeFD, one[:]) // EAGAIN: the counter is already non-zero
}

func (l *echoLoop) run() {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer l.closeAll()
	for {
		n, err := unix.EpollWait(l.ep, l.events, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			l.err = fmt.Errorf("loadgen: epoll echo: epoll_wait: %w", err)
			return
		}
		for i := range n {
			ev := &l.events[i]
			if ev.Fd == int32(l.wakeFD) {
				if !l.takeAdds() {
					return
				}
				continue
			}
			c := l.conns[ev.Fd]
			if c == nil {
				continue
			}
			if len(c.out) > 0 {
				l.flush(c) // only EPOLLOUT is armed while replies wait
			} else {
				l.read(c)
			}
		}
	}
}

// takeAdds registers the connections handed to the loop and answers the bytes they
// brought; it reports false when the loop must stop.
func (l *echoLoop) takeAdds() bool {
	var cnt [8]byte
	_, _ = unix.Read(l.wakeFD, cnt[:])
	l.mu.Lock()
	adds, stop := l.adds, l.stop
	l.adds = nil
	l.mu.Unlock()
	if stop {
		for _, c := range adds {
			_ = unix.Close(int(c.fd))
		}
		return false
	}
	for _, c := range adds {
		if err := unix.EpollCtl(l.ep, unix.EPOLL_CTL_ADD, int(c.fd), &unix.EpollEvent{Events: unix.EPOLLIN, Fd: c.fd}); err != nil {
			_ = unix.Close(int(c.fd))
			continue
		}
		l.conns[c.fd] = c
		if len(c.in) > 0 {
			l.consume(c, c.in, true)
		}
	}
	return true
}

// read reads what the socket has (bounded) and answers it, one write per read.
func (l *echoLoop) read(c *epollConn) {
	for range maxReadsPerEvent {
		carried := len(c.in) > 0
		buf := l.rbuf[:0]
		if carried {
			if cap(c.in)-len(c.in) < echoReadSize/4 {
				c.in = slices.Grow(c.in, echoReadSize)
			}
			buf = c.in
		}
		space := buf[len(buf):cap(buf)]
		n, err := unix.Read(int(c.fd), space)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return
		case err != nil || n == 0: // an error, or EOF
			l.closeConn(c)
			return
		}
		if !l.consume(c, buf[:len(buf)+n], carried) || n < len(space) {
			return // closed or waiting for EPOLLOUT; or the socket is most likely drained
		}
	}
}

// consume answers the complete frames of buf (c.in when carried, else the loop's read
// buffer) with one write and keeps an incomplete frame in c.in. It reports whether c can
// be read again now (false: closed, or replies wait for EPOLLOUT).
func (l *echoLoop) consume(c *epollConn, buf []byte, carried bool) bool {
	used, out, msgs, nb, closed, perr := echoFrames(buf, l.out[:0], c.ws)
	l.out = out
	if rest := buf[used:]; carried { // buf is c.in with the bytes just read
		c.in = c.in[:copy(c.in[:cap(c.in)], rest)]
	} else {
		c.in = append(c.in[:0], rest...)
	}
	c.closing = closed || perr != nil
	if len(out) > 0 {
		w, err := writeFD(c.fd, out)
		if err != nil {
			l.closeConn(c)
			return false
		}
		if w < len(out) {
			l.s.partials.Add(1)
			c.out, c.off = append(c.out[:0], out[w:]...), 0
			c.msgs, c.bytes = msgs, nb
			if err := unix.EpollCtl(l.ep, unix.EPOLL_CTL_MOD, int(c.fd), &unix.EpollEvent{Events: unix.EPOLLOUT, Fd: c.fd}); err != nil {
				l.closeConn(c)
			}
			return false
		}
	}
	l.s.echoMsgs.Add(msgs)
	l.s.echoBytes.Add(nb)
	if c.closing {
		l.closeConn(c)
		return false
	}
	return true
}

// flush writes the replies the socket did not take; once they are out, c is read again
// (or closed after an echoed close frame).
func (l *echoLoop) flush(c *epollConn) {
	w, err := writeFD(c.fd, c.out[c.off:])
	if err != nil {
		l.closeConn(c)
		return
	}
	if c.off += w; c.off < len(c.out) {
		l.s.partials.Add(1)
		return
	}
	c.out, c.off = c.out[:0], 0
	l.s.echoMsgs.Add(c.msgs)
	l.s.echoBytes.Add(c.bytes)
	c.msgs, c.bytes = 0, 0
	if c.closing {
		l.closeConn(c)
		return
	}
	if err := unix.EpollCtl(l.ep, unix.EPOLL_CTL_MOD, int(c.fd), &unix.EpollEvent{Events: unix.EPOLLIN, Fd: c.fd}); err != nil {
		l.closeConn(c)
	}
}

func (l *echoLoop) closeConn(c *epollConn) {
	// Deleted first: the socket may still be open in the net.Conn being closed.
	_ = unix.EpollCtl(l.ep, unix.EPOLL_CTL_DEL, int(c.fd), nil)
	_ = unix.Close(int(c.fd))
	delete(l.conns, c.fd)
}

// closeAll closes the loop's connections when it ends.
func (l *echoLoop) closeAll() {
	for _, c := range l.conns {
		l.closeConn(c)
	}
}
