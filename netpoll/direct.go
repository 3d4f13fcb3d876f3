package netpoll

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-wamp/switchyard/codec"
	"github.com/switchyard-wamp/switchyard/internal/readbatch"
)

// Direct writes (issue #15: cross-loop handoff without a wake).
//
// A Send that makes a plain conn's queue non-empty does not wake the conn's event loop:
// it defers the conn to the end of the open read batch (internal/readbatch), and that
// end, on whatever goroutine closes the batch (the event loop that read the CALL or the
// PUBLISH, a link reader), writes the queue to the socket itself with one non-blocking
// write(2). The conn's own loop is not involved, so a message crossing loops costs no
// eventfd write, no epoll return and no task on the other loop, and a loop that produced
// messages for many conns writes each of them once at the end of its read.
//
// The socket has one writer at a time: whoever holds the conn's write token (wtok). The
// loop takes it for its own writes (the drain at the end of OnTraffic, handshake replies,
// the close frame) and for the slow-consumer bookkeeping (kernHint); a direct writer
// takes it without waiting, and if it is held leaves the queue to the holder, which looks
// at the queue again after releasing the token.
//
// Writes go through the loop (viaLoop) whenever the direct path cannot keep the stream
// whole or the policy needs the loop: gnet holds bytes for the socket (they go first), a
// direct write was partial (its remainder, rest, goes first), the conn is over the soft
// limit or close to it (the loop measures the socket backlog), or the conn is closing
// (the loop writes the close frame last). TLS conns always go through their writer.
//
// The descriptor is never written after it is closed (its number could already belong
// to another connection): onClosed, which gnet calls before closing it, marks the conn
// dead and takes the token for good, waiting for a direct write in progress to end.
//
// With Config.IOUring the flush does not write: it gathers the bytes (gather) and adds
// the write to the flush's batch (readbatch.Writes), still holding the token, and the
// batch's submission (up to 64 writes in one io_uring_enter) finishes it (addToBatch's
// callback: the same bookkeeping as after a write(2), then the token is released and the
// queue looked at again).

// testLoopHolds, when set (tests), runs on the loop after its writes of an OnTraffic,
// while it still holds the conn's write token.
var testLoopHolds atomic.Pointer[func(*Conn)]

// testLeftHeld, when set (tests), runs in flush when writeQueue found the append
// buffer held, while the flush still holds the write token.
var testLeftHeld atomic.Pointer[func(*Conn)]

// partialWrites counts direct writes the socket did not take whole (tests).
var partialWrites atomic.Uint64

// outBufPool holds the buffers a direct write gathers several frames in.
var outBufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// flush is flushTo without a batch: the queue is written at once.
func (c *Conn) flush() { c.flushTo(nil) }

// flushTo is the conn's readbatch flush: it writes the queue to the socket from the
// calling goroutine, or adds the write to w (the flush's batch of writes, nil: none) and
// keeps the write token until the batch is submitted, or wakes the loop when the write
// must go through it. Safe for concurrent use; never blocks (it may wait for a direct
// write of the same conn in progress only when that one is the loop's).
func (c *Conn) flushTo(w *readbatch.Writes) {
	for c.hasOut() {
		if c.fd < 0 || c.viaLoop.Load() || c.state.Load() != stActive {
			c.wake()
			return
		}
		if !c.wtok.CompareAndSwap(false, true) {
			return // the holder looks at the queue after it releases the token
		}
		if c.dead.Load() {
			c.wtok.Store(false) // markDead waits for it, then keeps it
			return
		}
		if c.viaLoop.Load() {
			c.wtok.Store(false)
			c.wake()
			return
		}
		var done bool
		if w != nil {
			var p pendingWrite
			if p, done = c.gather(); done && !p.empty() {
				c.addToBatch(w, p) // the batch finishes it, holding the token
				return
			}
		} else {
			done = c.writeQueue()
		}
		if !done {
			if h := testLeftHeld.Load(); h != nil {
				(*h)(c)
			}
		}
		c.wtok.Store(false)
		if !done && c.aretry.Load() {
			// A sender holds the append buffer and has not seen aretry yet: it defers
			// the conn when it releases the buffer.
			return
		}
		// A flush that found the token held while we wrote left its frames to us; and
		// when a sender took aretry while we held the token, its flush may have been
		// one of them: look again either way.
	}
}

// pendingWrite is what gather took from the queues for one write: the buffer that holds
// the bytes (the append buffer, or a pooled one the nodes were copied into, pooled; nil:
// the single node's own bytes) and the nodes. Zero: nothing to write.
type pendingWrite struct {
	pbuf   *[]byte
	fifo   *outNode
	pooled bool
}

// empty reports whether there is nothing to write.
func (p *pendingWrite) empty() bool { return p.pbuf == nil && p.fifo == nil }

// bytes returns what the write is made of.
func (p *pendingWrite) bytes() []byte {
	if p.pbuf != nil {
		return *p.pbuf
	}
	return p.fifo.buf
}

// ringWrite is a conn's state for a write in a batch: the write, and done, bound once.
type ringWrite struct {
	p    pendingWrite
	done func(int)
}

// writeQueue writes the append buffer and the node queue with one write(2), holding the
// token. What the socket does not take becomes rest, written by the loop before
// anything else. It returns false, having written nothing, when a sender holds the
// append buffer (appendbuf.go).
func (c *Conn) writeQueue() bool {
	p, ok := c.gather()
	if !ok {
		return false
	}
	if !p.empty() {
		c.wrote(&p, readbatch.WriteNonBlocking(c.fd, p.bytes()))
	}
	return true
}

// gather takes the append buffer and the node queue for one write, holding the token:
// empty when there is nothing; ok false, having taken nothing, when a sender holds the
// append buffer. wrote must follow a write that is not empty.
func (c *Conn) gather() (p pendingWrite, ok bool) {
	ap, fifo, ok := c.takeOut(false)
	if !ok || (fifo == nil && ap == nil) {
		return p, ok
	}
	p.fifo = fifo
	switch {
	case ap != nil:
		buf := *ap // the append buffer is ours: the nodes go behind its frames
		for n := fifo; n != nil; n = n.next {
			buf = append(buf, n.buf...)
		}
		*ap, p.pbuf = buf, ap
	case fifo.next == nil:
		// one frame (an INVOCATION, a RESULT, an EVENT): its own bytes, no copy
	default:
		p.pbuf, p.pooled = outBufPool.Get().(*[]byte), true
		buf := (*p.pbuf)[:0]
		for n := fifo; n != nil; n = n.next {
			buf = append(buf, n.buf...)
		}
		*p.pbuf = buf
	}
	return p, true
}

// wrote finishes the write p, of which the socket took n bytes (0: full, -1: failed),
// holding the token.
func (c *Conn) wrote(p *pendingWrite, n int) {
	buf, fifo := p.bytes(), p.fifo
	bytes, msgs := c.countOut(fifo)
	w := max(n, 0)
	if w < len(buf) {
		partialWrites.Add(1)
		// The socket is full (or failed: the loop's write of the rest then reports it
		// and gnet closes the conn): the rest goes through the loop, first.
		c.rest = append(c.rest, buf[w:]...)
	}
	putNodes(fifo)
	switch {
	case p.pooled:
		if cap(buf) <= maxKeptBuf {
			*p.pbuf = buf[:0]
			outBufPool.Put(p.pbuf)
		}
	case p.pbuf != nil:
		putAppend(p.pbuf)
	}
	ls := c.loop
	c.queued.Add(-int64(bytes))
	ls.msgsOut.Add(uint64(msgs))
	ls.bytesOut.Add(uint64(w))
	c.kernHint += int64(w)
	if c.rest != nil || c.kernHint+c.queued.Load() > int64(c.srv.cfg.OutboundLimit) {
		// A remainder, or possibly over the soft limit (the loop measures the socket
		// backlog): writes go through the loop until it says otherwise.
		c.viaLoop.Store(true)
		c.wake()
	}
}

// addToBatch adds the write p to the flush's batch w, holding the token (kept until the
// batch is submitted). The done callback finishes the write, releases the token and, like
// flushTo after its own write, looks at the queue again (frames a flush left to the token
// holder meanwhile).
func (c *Conn) addToBatch(w *readbatch.Writes, p pendingWrite) {
	rw := c.ringW
	if rw == nil {
		rw = &ringWrite{}
		rw.done = func(n int) {
			c.wrote(&rw.p, n)
			rw.p = pendingWrite{}
			c.wtok.Store(false)
			c.flushTo(nil)
		}
		c.ringW = rw
	}
	rw.p = p
	w.Add(c.fd, p.bytes(), rw.done)
}

// reverse turns the queue's LIFO stack into FIFO order.
func reverse(head *outNode) *outNode {
	var fifo *outNode
	for head != nil {
		next := head.next
		head.next = fifo
		fifo = head
		head = next
	}
	return fifo
}

// countOut adds the per-type counters of the frames in fifo and returns their bytes and
// WAMP messages. Runs of one type cost one atomic add (a fan-out batch is mostly
// EVENTs).
func (c *Conn) countOut(fifo *outNode) (bytes, msgs int) {
	types := &c.loop.typesOut[c.ser%codec.NumSerializers]
	var runSlot uint8
	var run uint64
	for n := fifo; n != nil; n = n.next {
		bytes += len(n.buf)
		if !n.msg {
			continue
		}
		msgs++
		if run > 0 && n.slot != runSlot {
			types[runSlot].Add(run)
			run = 0
		}
		runSlot = n.slot
		run++
	}
	if run > 0 {
		types[runSlot].Add(run)
	}
	return bytes, msgs
}

// lockWrite takes the write token for the loop, waiting for a direct write in progress
// (one non-blocking write(2)). Loop only; TLS conns have no direct writers.
func (c *Conn) lockWrite() {
	if c.fd < 0 || c.loopHolds {
		return
	}
	acquire(&c.wtok)
	c.loopHolds = true
}

// acquire waits for b to go from false to true, spinning (its holders keep it for one
// write or one append) and yielding after a few tries.
func acquire(b *atomic.Bool) {
	for i := 0; !b.CompareAndSwap(false, true); i++ {
		if i > 16 {
			runtime.Gosched()
		}
	}
}

// unlockWrite releases the loop's token: the conn goes back to direct writes unless the
// loop must keep seeing them (see viaLoop), and frames a direct writer left to the loop
// while it held the token are flushed. Loop only; a closed conn keeps the token.
func (c *Conn) unlockWrite() {
	if c.fd < 0 || !c.loopHolds || c.closedLoop {
		return
	}
	c.viaLoop.Store(c.rest != nil || c.gc.OutboundBuffered() > 0 || c.overSince.Load() != 0 ||
		c.state.Load() != stActive)
	c.loopHolds = false
	c.wtok.Store(false)
	if c.hasOut() {
		readbatch.Defer(&c.bm)
	}
}

// writeRest hands a direct write's remainder to gnet ahead of everything else. Loop
// only, holding the token.
func (c *Conn) writeRest() {
	if c.rest == nil {
		return
	}
	r := c.rest
	c.rest = nil
	_, _ = c.gc.Write(r) // gnet copies what the socket does not take; on error it closes the conn
}

// markDead runs in onClosed, before gnet closes the descriptor: no direct write may
// start after it, and one in progress is waited for. The token is never released.
func (c *Conn) markDead() {
	c.dead.Store(true)
	c.lockWrite()
}

// roundGap: a loop that flushed at the end of a read less than this ago defers what its
// next reads send to the end of its polling round (see loopState.endBatch). A variable
// for tests only (set before the server starts).
var roundGap = 50 * time.Microsecond

// roundEndFlushes counts the flushes done at the end of a loop's polling round (tests).
var roundEndFlushes atomic.Uint64

// monoBase is the origin of the loops' monotonic flush times.
var monoBase = time.Now()

// endBatch closes the read batch of an OnTraffic (loopState.endBatch); TLS conns flush
// at once.
func (c *Conn) endBatch() {
	if c.fd < 0 {
		readbatch.End()
		return
	}
	c.loop.endBatch(c.gc)
}
