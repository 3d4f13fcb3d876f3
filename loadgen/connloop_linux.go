//go:build linux

package loadgen

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/switchyard-wamp/switchyard/codec"
)

// The connect scenario's event loops: a few goroutines (one per CPU, at most
// --concurrency), each with its own epoll instance, join the sessions and then hold
// them, with no goroutine, channel or timer per session. A join on a loop is a state
// machine driven by edge-triggered readiness:
//
//	socket + non-blocking connect -> at once (or on the writable edge if the socket is
//	still connecting): send the upgrade request (WebSocket) or the 4-byte handshake
//	(RawSocket) -> its reply: send HELLO -> CHALLENGE: send AUTHENTICATE -> WELCOME:
//	joined (latency recorded), held idle.
//
// Everything a join sends is pre-encoded once per run (HELLO, AUTHENTICATE, the upgrade
// request with the key patched in per connection); a read goes to the loop's buffer and
// only an incomplete frame is copied to the connection. While held, a session answers
// the router's WebSocket and RawSocket pings, and a close, GOODBYE or ABORT from the
// router is counted as an error. TLS is not done here (see connect.go).

// loopsSupported reports whether the event loops run on this platform.
const loopsSupported = true

// joinTimeout bounds one join, as the goroutine path's context does.
const joinTimeout = 10 * time.Second

// Join states.
const (
	jsIdle       uint8 = iota // not started
	jsConnecting              // connect in progress
	jsUpgrade                 // upgrade request sent, waiting for 101
	jsRSReply                 // RawSocket handshake sent, waiting for the reply
	jsHello                   // HELLO sent
	jsAuth                    // AUTHENTICATE sent
	jsJoined                  // WELCOME received: held
	jsDone                    // closed (failed, ended or closed by the run)
)

var stateNames = [...]string{"not started", "connect", "upgrade reply", "RawSocket handshake reply",
	"WELCOME", "WELCOME after AUTHENTICATE", "", ""}

// jconn is one session of a loop run. Owned by the loop that started it.
type jconn struct {
	fd         int32
	state      uint8
	target     int32
	t0         int64 // start, ns since loopRun.epoch
	prev, next int32 // in the loop's in-flight list (oldest first); -1: none
	id         uint64
	key        [wsKeyLen]byte
	in         []byte // an incomplete frame carried over to the next read
	out        []byte // bytes the socket did not take yet
}

// connLoop is one event loop. Its fields are owned by its goroutine.
type connLoop struct {
	r         *loopRun
	id        int
	ep        int
	epf       *os.File        // ep, for the runtime's netpoller
	rc        syscall.RawConn // epf's
	pollFn    func(uintptr) bool
	polled    int   // pollFn's result
	pollErr   error // pollFn's error
	deadline  bool  // epf has a read deadline set
	wakeFD    int
	sas       []unix.Sockaddr        // per target: its address (Connect writes into it)
	srcs      [][]unix.SockaddrInet4 // per target: its source addresses (Bind writes into them)
	limit     int                    // joins in flight at most
	inflight  int
	head      int32 // in-flight list, oldest first
	tail      int32
	pace      *pacer
	hist      *histogram
	rbuf      []byte
	wbuf      []byte
	mask      uint64
	msg       codec.Message
	ev        unix.EpollEvent
	events    []unix.EpollEvent
	held      []int32
	joining   bool
	exhausted bool // no session left to start
}

func newConnLoop(r *loopRun, id, n int) (*connLoop, error) {
	l := &connLoop{r: r, id: id, head: -1, tail: -1, hist: newHistogram(), rbuf: make([]byte, 64<<10),
		events: make([]unix.EpollEvent, 256), joining: true, mask: uint64(time.Now().UnixNano())<<1 | 1 + uint64(id)<<32,
		limit: r.o.Concurrency / n, held: make([]int32, 0, len(r.conns)/n+1)}
	if id < r.o.Concurrency%n {
		l.limit++
	}
	for _, t := range r.targets {
		l.sas = append(l.sas, t.sockaddr())
		l.srcs = append(l.srcs, slices.Clone(t.srcs))
	}
	var err error
	if l.ep, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return nil, fmt.Errorf("loadgen: epoll_create: %w", err)
	}
	// The epoll fd is readable while it has events: the loop parks in the runtime's
	// netpoller on it (os.File on a non-blocking fd) instead of blocking a thread in
	// epoll_wait.
	if err := unix.SetNonblock(l.ep, true); err != nil {
		unix.Close(l.ep)
		return nil, fmt.Errorf("loadgen: epoll fd: %w", err)
	}
	l.epf = os.NewFile(uintptr(l.ep), "loadgen-epoll")
	if l.rc, err = l.epf.SyscallConn(); err != nil {
		l.epf.Close()
		return nil, fmt.Errorf("loadgen: epoll fd: %w", err)
	}
	l.pollFn = func(uintptr) bool {
		l.polled, l.pollErr = l.poll()
		return l.polled > 0 || l.pollErr != nil
	}
	if l.wakeFD, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC); err != nil {
		l.epf.Close()
		return nil, fmt.Errorf("loadgen: eventfd: %w", err)
	}
	l.ev = unix.EpollEvent{Events: unix.EPOLLIN, Fd: -1}
	if err := unix.EpollCtl(l.ep, unix.EPOLL_CTL_ADD, l.wakeFD, &l.ev); err != nil {
		l.closeFDs()
		unix.Close(l.wakeFD)
		return nil, fmt.Errorf("loadgen: epoll_ctl: %w", err)
	}
	return l, nil
}

// closeFDs closes the epoll fd (the loop, on exit); the eventfd is closed by
// loopJoiner.close.
func (l *connLoop) closeFDs() { l.epf.Close() }

// poll returns the ready events without waiting.
func (l *connLoop) poll() (int, error) {
	for {
		n, err := unix.EpollWait(l.ep, l.events, 0)
		if err != unix.EINTR {
			return n, err
		}
	}
}

// wait returns the ready events, waiting for them at most d (d < 0: until one comes)
// parked in the runtime's netpoller: no thread blocks, and the deadline (a runtime
// timer) is as precise as Go's timers, which the pacing of --rate needs.
func (l *connLoop) wait(d time.Duration) (int, error) {
	if n, err := l.poll(); n > 0 || err != nil || d == 0 {
		return n, err
	}
	switch {
	case d > 0:
		_ = l.epf.SetReadDeadline(time.Now().Add(d))
		l.deadline = true
	case l.deadline:
		_ = l.epf.SetReadDeadline(time.Time{})
		l.deadline = false
	}
	l.polled, l.pollErr = 0, nil
	if err := l.rc.Read(l.pollFn); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		return 0, err
	}
	return l.polled, l.pollErr
}

func (l *connLoop) now() int64 { return int64(time.Since(l.r.epoch)) }

// run is the loop: start the joins that are due, wait for readiness, handle it, expire
// joins past joinTimeout; after its joins, hold its sessions until closing.
func (l *connLoop) run() {
	r := l.r
	defer r.doneWG.Done()
	defer l.closeFDs()
	for {
		if r.closing.Load() {
			l.closeAll()
			if l.joining { // closing before the joins ended: only when stopped
				l.joining = false
				r.joinWG.Done()
			}
			return
		}
		timeout := time.Duration(-1)
		if l.joining {
			if r.stop.Load() {
				l.abortInflight()
				l.joining = false
				r.joinWG.Done()
				continue
			}
			now := l.now()
			wait := l.startDue(now)
			if l.exhausted && l.inflight == 0 {
				l.joining = false
				r.joinWG.Done()
				continue
			}
			if l.head >= 0 {
				expiry := time.Duration(r.conns[l.head].t0 + int64(joinTimeout) - now)
				if wait < 0 || expiry < wait {
					wait = max(expiry, 0)
				}
			}
			timeout = wait
		}
		n, err := l.wait(timeout)
		if err != nil {
			l.r.errs.add(fmt.Errorf("loadgen: epoll_wait: %w", err))
			l.r.stop.Store(true)
			continue
		}
		for _, ev := range l.events[:n] {
			if ev.Fd < 0 {
				var b [8]byte
				_, _ = unix.Read(l.wakeFD, b[:])
				continue
			}
			l.event(ev.Fd, ev.Events)
		}
		if l.joining {
			l.expire(l.now())
		}
	}
}

// startDue starts the joins that are due (pacing) while fewer than limit are in flight,
// and returns how long until the next is due (-1: none is waiting for its time).
func (l *connLoop) startDue(now int64) time.Duration {
	r := l.r
	for !l.exhausted && l.inflight < l.limit {
		n, wait := int64(l.limit-l.inflight), time.Duration(0)
		if r.o.Rate > 0 {
			n, wait = l.pace.due(r.epoch.Add(time.Duration(now)), n)
			if n == 0 {
				return wait
			}
		}
		for range n {
			i := r.next.Add(1) - 1
			if i >= int64(len(r.conns)) {
				l.exhausted = true
				break
			}
			if r.o.Rate > 0 {
				l.pace.took(1)
			}
			l.start(int32(i), now)
		}
		now = l.now()
	}
	return -1
}

// start opens session i's socket and starts connecting.
func (l *connLoop) start(i int32, now int64) {
	r := l.r
	c := &r.conns[i]
	k := r.o.urlAt(r.base, int(i))
	t := r.targets[k]
	*c = jconn{fd: -1, state: jsConnecting, target: int32(k), t0: now, prev: -1, next: -1}
	r.attempts.Add(1)
	l.link(i)
	fd, err := unix.Socket(t.family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		l.fail(i, fmt.Errorf("socket: %w", err))
		return
	}
	c.fd = int32(fd)
	// No TCP_NODELAY: a join is request/response, each send goes when the previous one
	// was acknowledged by the reply, so Nagle never holds one back (and it saves a call).
	if srcs := l.srcs[k]; len(srcs) > 0 {
		// The port is chosen by connect, for the whole 4-tuple (IP_BIND_ADDRESS_NO_PORT).
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
		if err := unix.Bind(fd, &srcs[int(i)%len(srcs)]); err != nil {
			l.fail(i, fmt.Errorf("bind: %w", err))
			return
		}
	}
	connected := false
	switch err := unix.Connect(fd, l.sas[k]); err {
	case nil:
		connected = true
	case unix.EINPROGRESS, unix.EINTR: // EINTR: the connect goes on asynchronously
	default:
		l.fail(i, fmt.Errorf("connect: %w", err))
		return
	}
	l.ev = unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET, Fd: i}
	if err := unix.EpollCtl(l.ep, unix.EPOLL_CTL_ADD, fd, &l.ev); err != nil {
		l.fail(i, fmt.Errorf("epoll_ctl: %w", err))
		return
	}
	l.sendHandshake(i, !connected)
}

// sendHandshake sends the transport handshake: the upgrade request with a fresh key, or
// the RawSocket handshake. early: connect has not reported completion yet. On loopback
// the TCP handshake is usually over when connect returns, so the request goes at once
// (one wake-up per join saved); a socket still connecting takes nothing (EAGAIN) and the
// request waits for the writable edge.
func (l *connLoop) sendHandshake(i int32, early bool) {
	c := &l.r.conns[i]
	t := l.r.targets[c.target]
	req, next := t.req, jsRSReply
	if t.ws {
		newWSKey(&c.key, &l.mask)
		l.wbuf = append(l.wbuf[:0], t.req...)
		copy(l.wbuf[t.keyAt:], c.key[:])
		req, next = l.wbuf, jsUpgrade
	}
	if !early {
		c.state = next
		l.write(i, req)
		return
	}
	n, err := writeFD(c.fd, req)
	switch {
	case err != nil:
		l.fail(i, fmt.Errorf("connect: %w", err))
		return
	case n == 0:
		return // not connected yet: the writable edge sends it
	}
	c.state = next
	if n < len(req) {
		c.out = append(c.out[:0], req[n:]...)
	}
}

// sendMsg frames and sends one WAMP message.
func (l *connLoop) sendMsg(i int32, msg []byte) {
	if l.r.targets[l.r.conns[i].target].ws {
		l.wbuf = appendWSFrame(l.wbuf[:0], wsDataOp(l.r.ser), msg, &l.mask)
	} else {
		l.wbuf = appendRSFrame(l.wbuf[:0], rsFrameMessage, msg)
	}
	l.write(i, l.wbuf)
}

// write sends b, keeping what the socket does not take for the next writable edge.
func (l *connLoop) write(i int32, b []byte) {
	c := &l.r.conns[i]
	if len(c.out) > 0 {
		c.out = append(c.out, b...)
		return
	}
	n, err := writeFD(c.fd, b)
	if err != nil {
		l.fail(i, fmt.Errorf("write: %w", err))
		return
	}
	if n < len(b) {
		c.out = append(c.out[:0], b[n:]...)
	}
}

// flush writes the bytes kept by write.
func (l *connLoop) flush(i int32) {
	c := &l.r.conns[i]
	n, err := writeFD(c.fd, c.out)
	if err != nil {
		l.fail(i, fmt.Errorf("write: %w", err))
		return
	}
	if c.out = c.out[n:]; len(c.out) == 0 {
		c.out = nil
	}
}

// event handles readiness ev of session i.
func (l *connLoop) event(i int32, ev uint32) {
	c := &l.r.conns[i]
	if c.state == jsDone {
		return
	}
	if c.state == jsConnecting {
		if ev&(unix.EPOLLERR|unix.EPOLLHUP) != 0 {
			errno, err := unix.GetsockoptInt(int(c.fd), unix.SOL_SOCKET, unix.SO_ERROR)
			if err == nil && errno != 0 {
				err = unix.Errno(errno)
			} else if err == nil {
				err = errors.New("connection failed")
			}
			l.fail(i, fmt.Errorf("connect: %w", err))
			return
		}
		if ev&unix.EPOLLOUT == 0 {
			return
		}
		l.sendHandshake(i, false)
		if c.state == jsDone {
			return
		}
	}
	if ev&unix.EPOLLOUT != 0 && len(c.out) > 0 {
		if l.flush(i); c.state == jsDone {
			return
		}
	}
	if ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		l.read(i, ev&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0)
	}
}

// read reads until the socket is drained (a short read drains a stream socket; after
// a hang-up, until EOF) and handles what came.
func (l *connLoop) read(i int32, hup bool) {
	c := &l.r.conns[i]
	for c.state != jsDone {
		n, err := unix.Read(int(c.fd), l.rbuf)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return
		case err != nil:
			l.fail(i, fmt.Errorf("read: %w", err))
			return
		case n == 0:
			l.fail(i, errors.New("connection closed by the router"))
			return
		}
		data := l.rbuf[:n]
		if len(c.in) > 0 {
			c.in = append(c.in, data...)
			data = c.in
		}
		rest := l.consume(i, data)
		if c.state == jsDone {
			return
		}
		switch {
		case len(rest) == 0:
			c.in = c.in[:0]
		case len(c.in) > 0: // rest is the tail of c.in
			c.in = append(c.in[:0], rest...)
		default:
			c.in = append(make([]byte, 0, max(len(rest), 512)), rest...)
		}
		if n < len(l.rbuf) && !hup {
			return
		}
	}
}

// consume handles the bytes b from session i's socket and returns the incomplete rest.
func (l *connLoop) consume(i int32, b []byte) []byte {
	r := l.r
	c := &r.conns[i]
	t := r.targets[c.target]
	for len(b) > 0 && c.state != jsDone {
		switch c.state {
		case jsUpgrade:
			n, err := checkUpgrade(b, &c.key, t.proto)
			if err != nil {
				l.fail(i, err)
				return nil
			}
			if n == 0 {
				return b
			}
			b = b[n:]
			c.state = jsHello
			l.sendMsg(i, r.hello)
		case jsRSReply:
			if len(b) < 4 {
				return b
			}
			if err := checkRSReply(b, r.ser); err != nil {
				l.fail(i, err)
				return nil
			}
			b = b[4:]
			c.state = jsHello
			l.sendMsg(i, r.hello)
		default:
			f, err := parseFrame(b, t.ws)
			if err != nil {
				l.fail(i, err)
				return nil
			}
			if f.n == 0 {
				return b
			}
			b = b[f.n:]
			l.frame(i, t, f)
		}
	}
	return b
}

// frame handles one frame from the router.
func (l *connLoop) frame(i int32, t *joinTarget, f inFrame) {
	c := &l.r.conns[i]
	switch f.kind {
	case framePing:
		if t.ws {
			l.wbuf = appendWSFrame(l.wbuf[:0], 0xA, f.payload, &l.mask)
		} else {
			l.wbuf = appendRSFrame(l.wbuf[:0], rsFramePong, f.payload)
		}
		l.write(i, l.wbuf)
		return
	case framePong:
		return
	case frameClose:
		l.fail(i, fmt.Errorf("router closed the WebSocket: %s", closeText(f.payload)))
		return
	}
	m := &l.msg
	if err := l.r.cdc.Decode(f.payload, m); err != nil {
		l.fail(i, fmt.Errorf("decoding a message: %w", err))
		return
	}
	if c.state == jsJoined {
		if m.Type == codec.GOODBYE || m.Type == codec.ABORT {
			l.fail(i, fmt.Errorf("router sent %v %s", m.Type, m.URI))
		}
		return
	}
	switch m.Type {
	case codec.WELCOME:
		l.welcome(i, m.Session)
	case codec.ABORT:
		l.fail(i, fmt.Errorf("ABORT %s %s", m.URI, m.Details.Message))
	case codec.CHALLENGE:
		if c.state != jsHello {
			l.fail(i, errors.New("a second CHALLENGE"))
			return
		}
		if _, err := l.r.auth.onChallenge(string(m.URI), nil); err != nil {
			l.fail(i, err)
			return
		}
		c.state = jsAuth
		l.sendMsg(i, l.r.authMsg)
	default:
		l.fail(i, fmt.Errorf("router sent %v before WELCOME", m.Type))
	}
}

// welcome records session i as joined.
func (l *connLoop) welcome(i int32, id uint64) {
	r := l.r
	c := &r.conns[i]
	l.hist.Record(l.now() - c.t0)
	l.unlink(i)
	c.state, c.id, c.in = jsJoined, id, nil
	l.held = append(l.held, i)
	r.o.joinedAt(int(c.target))
	r.joined.Add(1)
}

// fail closes session i: a failed join, or a held session that ended. It counts an
// error unless the run is stopping (its context ended) or closing.
func (l *connLoop) fail(i int32, err error) {
	r := l.r
	c := &r.conns[i]
	joined := c.state == jsJoined
	if !joined && c.state != jsDone {
		if !r.stop.Load() && !r.closing.Load() {
			r.errs.add(fmt.Errorf("loadgen: joining %s realm %q (waiting for %s): %w",
				r.targets[c.target].url, r.auth.realm, stateNames[c.state], err))
		}
		l.unlink(i)
	} else if joined && !r.closing.Load() {
		r.errs.add(fmt.Errorf("session %d ended: %w", c.id, err))
	}
	l.closeConn(c)
}

func (l *connLoop) closeConn(c *jconn) {
	if c.fd >= 0 {
		unix.Close(int(c.fd))
		c.fd = -1
	}
	c.state, c.in, c.out = jsDone, nil, nil
}

// link appends session i to the in-flight list.
func (l *connLoop) link(i int32) {
	c := &l.r.conns[i]
	c.prev, c.next = l.tail, -1
	if l.tail >= 0 {
		l.r.conns[l.tail].next = i
	} else {
		l.head = i
	}
	l.tail = i
	l.inflight++
}

// unlink removes session i from the in-flight list.
func (l *connLoop) unlink(i int32) {
	cs := l.r.conns
	c := &cs[i]
	if c.prev >= 0 {
		cs[c.prev].next = c.next
	} else {
		l.head = c.next
	}
	if c.next >= 0 {
		cs[c.next].prev = c.prev
	} else {
		l.tail = c.prev
	}
	c.prev, c.next = -1, -1
	l.inflight--
}

// expire fails the joins in flight for longer than joinTimeout.
func (l *connLoop) expire(now int64) {
	for l.head >= 0 && now-l.r.conns[l.head].t0 >= int64(joinTimeout) {
		l.fail(l.head, fmt.Errorf("timed out after %v", joinTimeout))
	}
}

// abortInflight closes the joins in flight without counting errors (the run stopped).
func (l *connLoop) abortInflight() {
	for l.head >= 0 {
		i := l.head
		l.unlink(i)
		l.closeConn(&l.r.conns[i])
	}
}

// closeAll closes every session of the loop (held or in flight).
func (l *connLoop) closeAll() {
	l.abortInflight()
	for _, i := range l.held {
		l.closeConn(&l.r.conns[i])
	}
	l.held = nil
}
