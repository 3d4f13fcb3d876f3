package link

import (
	"fmt"
	"sync/atomic"
	"syscall"
)

// Per-read-batch flush (issue #15). A link reader hands every complete frame of one
// read to OnFrame, and what those frames cause is typically a Send on other links (a
// router forwards a CALL to the callee's proxy, a proxy delivers to clients). Waking each
// target link's writer goroutine per frame costs a futex wake and a goroutine switch per
// hop; instead, while any link reader of the process is inside such a batch, a Send that
// makes a link's queue non-empty only marks the link dirty, and the end of the batch
// flushes every dirty link: the reader writes the queue itself with one non-blocking
// write (write-through), and only bytes the socket does not take at once, or a link whose
// writer is busy, go to the writer goroutine. One write then carries every frame the
// batch produced for that link.
//
// The batch state is process-wide rather than per reader (the engine calls Send without
// knowing which reader it runs on): a frame queued by any goroutine while some batch is
// open waits at most until that batch ends, which is bounded by OnFrame not blocking.
// TLS links take part in the marking but are flushed by waking their writer.
var (
	batchOpen atomic.Int32         // link readers inside a read batch
	dirtyTop  atomic.Pointer[Link] // stack of links to flush, linked by dirtyNext
)

// beginBatch and endBatch bracket the frames of one read on a link reader.
func beginBatch() { batchOpen.Add(1) }

func endBatch() {
	batchOpen.Add(-1)
	flushDirty()
}

// deferFlush leaves l, whose queue just became non-empty, to the end of the open read
// batches. If the last batch ended meanwhile, it flushes itself: a batch's end flushes
// every link pushed before its decrement, and any push after it sees the count at zero.
func (l *Link) deferFlush() {
	if l.dirty.CompareAndSwap(false, true) {
		for {
			top := dirtyTop.Load()
			l.dirtyNext = top
			if dirtyTop.CompareAndSwap(top, l) {
				break
			}
		}
	}
	if batchOpen.Load() == 0 {
		flushDirty()
	}
}

// flushDirty flushes every link on the dirty stack. Safe for concurrent use.
func flushDirty() {
	for l := dirtyTop.Swap(nil); l != nil; {
		next := l.dirtyNext
		l.dirtyNext = nil
		l.dirty.Store(false) // a Send from now on pushes l again if it finds out empty
		l.flush()
		l = next
	}
}

// flush gets l's queue written: by the calling goroutine without blocking on a plain
// TCP link, else by waking the writer goroutine. Nothing to do when the queue is empty,
// when someone is writing (they look at the queue again when done), when the writer has a
// remainder to write (it was woken and takes the queue after it), or when the link is
// closing (the writer's closing path writes what is queued).
func (l *Link) flush() {
	l.mu.Lock()
	if len(l.out) == 0 || l.writing || l.rest != nil || l.closed {
		l.mu.Unlock()
		return
	}
	if l.raw == nil || (testHeld != nil && testHeld(l)) {
		l.mu.Unlock()
		l.signal()
		return
	}
	l.writeThrough()
}

// writeThrough writes the queue from the calling goroutine with one non-blocking write;
// l.mu is held, out is not empty and nobody is writing. It unlocks l.mu. What the socket
// does not take goes to the writer goroutine, before anything queued since.
func (l *Link) writeThrough() {
	buf := l.out
	l.out, l.spare = l.spare[:0], nil
	l.tail = -1 // the queued frames are being written: no more coalescing into them
	l.writing = true
	l.mu.Unlock()
	n, err := l.writeNow(buf)
	l.writes.Add(1)
	if n > 0 {
		l.bytesOut.Add(uint64(n))
		l.wrote.Store(true)
	}
	l.mu.Lock()
	l.writing = false
	if err != nil {
		l.queued -= len(buf)
		l.mu.Unlock()
		l.writeFailed(err)
		return
	}
	l.queued -= n
	if n < len(buf) {
		// The socket is full: the writer goroutine writes the rest (blocking), first.
		l.rest = buf[n:]
		l.mu.Unlock()
		l.signal()
		return
	}
	if l.spare == nil && cap(buf) <= maxKeepOut {
		l.spare = buf[:0]
	}
	more := len(l.out) > 0 // queued while we wrote: those Sends told nobody
	l.mu.Unlock()
	if more {
		l.signal()
	}
}

// writeNow writes buf to the socket without blocking and returns how much it took.
// Only the goroutine holding the writing role calls it.
func (l *Link) writeNow(buf []byte) (int, error) {
	l.wtBuf = buf
	err := l.raw.Write(l.writeFn)
	n, werr := l.wtN, l.wtErr
	l.wtBuf, l.wtErr = nil, nil
	if err != nil {
		return 0, fmt.Errorf("link: write: %w", err)
	}
	if werr != nil {
		return 0, fmt.Errorf("link: write: %w", werr)
	}
	return n, nil
}

// writeNonBlocking is writeFn: one write(2) of wtBuf on the non-blocking socket. It
// always returns true, so that raw.Write never parks the caller waiting for room (a
// full socket reports 0 bytes written).
func (l *Link) writeNonBlocking(fd uintptr) bool {
	for {
		n, err := syscall.Write(int(fd), l.wtBuf)
		switch err {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			n, err = 0, nil
		}
		l.wtN, l.wtErr = max(n, 0), err
		return true
	}
}
