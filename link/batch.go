package link

import "fmt"

// Per-read-batch flush (issue #15, package internal/readbatch). A link reader hands every
// complete frame of one read to OnFrame inside a readbatch batch; a Send those frames
// cause (a router forwarding a CALL to the callee's proxy, a proxy delivering to clients)
// that makes a link's queue non-empty leaves the link to the batch's end instead of
// waking its writer goroutine, and the end flushes it: the reader writes the queue itself
// with one non-blocking write (write-through), and only bytes the socket does not take at
// once, or a link whose writer is busy, go to the writer goroutine. One write then carries
// every frame the batch produced for that link. The netpoll event loops open batches too,
// so a proxy's loop that reads client messages for a link writes the link itself at the
// end of its read. TLS links take part in the marking but are flushed by waking their
// writer.

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
	if ad := l.ad.Load(); ad != nil {
		return writeFd(ad.fd, buf)
	}
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
