package readbatch

import (
	"sync/atomic"

	"github.com/switchyard-wamp/switchyard/internal/uring"
)

// Batched socket writes (issue #15's io_uring lever, off by default: SetURing).
//
// With it on, a Flush hands the targets that take part (the netpoll conns, InitWrites) a
// Writes to which each adds its one non-blocking socket write instead of making it, and
// the writes go to the kernel together: up to writesChunk of them in one io_uring_enter.
// A target keeps its socket's write token from Add until its done callback has run, so
// the order of its bytes and its single-writer rule are what they are with write(2).

// writesChunk bounds a batch: its targets hold their write tokens until it is submitted.
const writesChunk = 64

// maxRings bounds the rings (each a file descriptor and three mappings) kept for the
// goroutines that flush at the same time; a flush that finds none free writes alone.
const maxRings = 16

// Writes collects the socket writes of one Flush. Not safe for concurrent use: it
// belongs to the Flush that got it.
type Writes struct {
	ring *uring.Ring
	fds  []int
	bufs [][]byte
	res  []int
	done []func(int)
}

var (
	uringOn    atomic.Bool
	ringWrites atomic.Uint64 // writes made through a ring (statistics, tests)
	rings      = make(chan *Writes, maxRings)
	made       atomic.Int32
)

// SetURing turns batched writes over io_uring on or off for the process and reports
// whether they are on: false, with the reason, when the kernel has none (too old,
// kernel.io_uring_disabled, a seccomp filter). Safe for concurrent use; the first Flush
// after it follows the new setting.
func SetURing(on bool) (bool, error) {
	if !on {
		uringOn.Store(false)
		return false, nil
	}
	r, err := uring.New(writesChunk)
	if err != nil {
		uringOn.Store(false)
		return false, err
	}
	_ = r.Close()
	uringOn.Store(true)
	return true, nil
}

// URingWrites is the number of socket writes made through io_uring so far (a batch of
// one is a plain write(2) and not counted). Safe for concurrent use.
func URingWrites() uint64 { return ringWrites.Load() }

// getWrites returns a free Writes with its ring, nil when batching is off or every ring
// is in use.
func getWrites() *Writes {
	if !uringOn.Load() {
		return nil
	}
	select {
	case w := <-rings:
		return w
	default:
	}
	if made.Add(1) > maxRings {
		made.Add(-1)
		return nil
	}
	r, err := uring.New(writesChunk)
	if err != nil {
		made.Add(-1)
		uringOn.Store(false)
		return nil
	}
	return &Writes{ring: r, fds: make([]int, 0, writesChunk), bufs: make([][]byte, 0, writesChunk),
		res: make([]int, writesChunk), done: make([]func(int), 0, writesChunk)}
}

// putWrites gives w back once it is empty.
func putWrites(w *Writes) {
	select {
	case rings <- w:
	default: // cannot happen (at most maxRings exist); keep the descriptor count honest
		_ = w.ring.Close()
		made.Add(-1)
	}
}

// Add queues one non-blocking write of buf to the socket fd; done gets what write(2)
// would have returned (bytes taken, 0 when the socket was full, -1 on error) once the
// write is made, on the goroutine of the Flush, before Flush returns. buf must stay
// untouched until then. Not safe for concurrent use.
func (w *Writes) Add(fd int, buf []byte, done func(int)) {
	w.fds = append(w.fds, fd)
	w.bufs = append(w.bufs, buf)
	w.done = append(w.done, done)
	if len(w.fds) == writesChunk {
		w.submit()
	}
}

// submit makes the queued writes (one write(2) when there is only one) and runs their
// done callbacks in order.
func (w *Writes) submit() {
	n := len(w.fds)
	switch {
	case n == 0:
		return
	case n == 1:
		w.res[0] = WriteNonBlocking(w.fds[0], w.bufs[0])
	default:
		if err := w.ring.Send(w.fds, w.bufs, w.res[:n]); err != nil {
			for i := range n { // what the ring did not send (-1): write(2) it
				if w.res[i] < 0 {
					w.res[i] = WriteNonBlocking(w.fds[i], w.bufs[i])
				}
			}
		} else {
			ringWrites.Add(uint64(n))
		}
	}
	for i := range n {
		w.done[i](w.res[i])
		w.bufs[i], w.done[i] = nil, nil
	}
	w.fds, w.bufs, w.done = w.fds[:0], w.bufs[:0], w.done[:0]
}
