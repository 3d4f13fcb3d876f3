package netpoll

import (
	"sync"
	"sync/atomic"

	"github.com/switchyard-wamp/switchyard/codec"
	"github.com/switchyard-wamp/switchyard/internal/readbatch"
)

// The append buffer (issue #15: wide fan-out is memory-bound).
//
// A loop that reads a backlog of PUBLISHes sends dozens of EVENTs to each of hundreds of
// conns before its batch ends. Queued as one pooled node per frame, those frames are
// scattered over memory that no longer fits the caches, and the write walks them twice
// (reverse, copy). So a Send normally appends its frame to the conn's append buffer
// instead: the frames of one conn sit back to back and are written from there with no
// copy. The node queue (outbound.go) stays for what cannot use the buffer.
//
// The buffer belongs to whoever holds alock, which nobody waits for on the send path: a
// Send that finds it taken (another sender is appending, or a writer is taking the
// buffer) queues a node instead, and so does every Send while the node queue is not
// empty. That keeps one goroutine's messages in order: its frames in the buffer are
// older than its frames in the node queue, and a writer takes the buffer before the
// queue and writes it first.
//
// A writer (the write-token holder) takes the whole buffer and the node queue under
// alock (takeOut says why both). The loop waits for a sender's append to end; a direct
// writer does not: it sets aretry and leaves everything (buffer and queue, or the order
// would break) to the sender, which defers the conn again when it releases alock. A
// flush of that defer may find the write token still held by the writer that left, and
// leave the conn to it: so that writer looks again after releasing the token, unless
// aretry is still set (the sender has yet to release alock, and its defer comes after
// the token is free).

// appendPool holds append buffers. They start small: a fan-out batch holds one per
// target conn until its end, and most conns get one or a few frames per batch.
var appendPool = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

// heldTakes counts direct writers that found alock held and left the conn to the
// sender (tests).
var heldTakes atomic.Uint64

// sendAppend appends msg's frame to the append buffer; the caller holds alock, which
// this releases. Safe for concurrent use (alock makes the caller the buffer's only user).
func (c *Conn) sendAppend(msg []byte) error {
	p := c.abuf
	if p == nil {
		p = appendPool.Get().(*[]byte)
		c.abuf = p
	}
	b := *p
	was := len(b)
	b = c.appendFrame(b, msg)
	size := int64(len(b) - was)
	if q := c.queued.Add(size); q > int64(c.srv.cfg.OutboundHardLimit) {
		c.queued.Add(-size)
		*p = b[:was]
		c.releaseAppend(false)
		c.slowConsumer(q, "hard_limit")
		return ErrSlowConsumer
	}
	*p = b
	slot := uint8(codec.TypeSlot(codec.PeekType(c.ser, msg)))
	if c.arun > 0 && slot != c.aslot {
		c.loop.typesOut[c.ser%codec.NumSerializers][c.aslot].Add(uint64(c.arun))
		c.arun = 0
	}
	c.aslot = slot
	c.arun++
	c.amsgs++
	if was == 0 {
		c.apend.Store(true)
	}
	c.releaseAppend(was == 0)
	return nil
}

// releaseAppend releases alock and defers the conn to the end of the read batch when
// the buffer became non-empty or a writer found alock held while it tried to take it.
func (c *Conn) releaseAppend(first bool) {
	c.alock.Store(false)
	if (c.aretry.Load() && c.aretry.Swap(false)) || first {
		readbatch.Defer(&c.bm)
	}
}

// hasOut reports whether frames wait in the append buffer or the node queue. Safe for
// concurrent use.
func (c *Conn) hasOut() bool { return c.q.Load() != nil || c.apend.Load() }

// takeOut takes everything waiting for the socket: the append buffer's frames (counted
// as written) and the node queue in FIFO order. The caller holds the write token,
// writes the buffer before the nodes, gives the buffer back with putAppend and the nodes
// with putNode. With wait (the loop) it waits for a sender's append to end; without, it
// returns ok false when a sender holds alock: the caller must then write nothing, and
// that sender defers the conn when it releases alock.
//
// Both are taken under alock. A sender appends only while the queue is empty, so if the
// queue were swapped after alock's release, one goroutine could append a message to the
// fresh buffer, then (alock taken by another sender) queue its next message as a node,
// and the swap would take and write that node before the buffered message.
func (c *Conn) takeOut(wait bool) (p *[]byte, fifo *outNode, ok bool) {
	if !c.apend.Load() && c.q.Load() == nil {
		return nil, nil, true // nothing taken, nothing to keep in order
	}
	switch {
	case c.alock.CompareAndSwap(false, true):
	case wait:
		acquire(&c.alock)
	default:
		c.aretry.Store(true)
		if !c.alock.CompareAndSwap(false, true) {
			heldTakes.Add(1)
			return nil, nil, false
		}
		c.aretry.Store(false) // everything is taken now
	}
	if c.apend.Load() {
		p = c.abuf // not nil: apend is set only with frames in it
		c.abuf = nil
		if c.arun > 0 {
			c.loop.typesOut[c.ser%codec.NumSerializers][c.aslot].Add(uint64(c.arun))
			c.arun = 0
		}
		c.loop.msgsOut.Add(uint64(c.amsgs))
		c.amsgs = 0
		c.apend.Store(false)
		c.queued.Add(-int64(len(*p)))
	}
	head := c.q.Swap(nil)
	c.alock.Store(false)
	return p, reverse(head), true
}

// putAppend returns a buffer taken by takeOut to the pool (nil: nothing).
func putAppend(p *[]byte) {
	if p == nil || cap(*p) > maxKeptBuf {
		return
	}
	*p = (*p)[:0]
	appendPool.Put(p)
}

// dropOut discards what is still queued on a closed conn (loop only; Sends racing with
// this are dropped: the conn is gone).
func (c *Conn) dropOut() {
	p, fifo, _ := c.takeOut(true)
	putAppend(p)
	putNodes(fifo)
}
