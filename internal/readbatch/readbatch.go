// Package readbatch is the process-wide per-read-batch flush shared by the netpoll event
// loops and the cluster's link readers (nats-server's flush at the end of each read,
// issue #15).
//
// A goroutine that has just read a batch of messages (an event loop in OnTraffic, a link
// reader with the frames of one read) opens a batch with Begin. What those messages cause
// is mostly sends on other sockets: an INVOCATION to a callee, EVENTs to subscribers,
// frames to a link. Waking each target's writer (an event loop, a writer goroutine) per
// message costs an eventfd or futex write, a wake-up and a scheduler pass per hop.
// Instead, a send that makes a target's queue non-empty calls Defer, which only pushes the
// target on a lock-free stack while some batch is open, and End flushes every target on
// the stack from the goroutine that closes its batch: one write per target carries
// everything the batch produced for it, and nobody else is woken.
//
// The state is process-wide rather than per goroutine: the engine sends without knowing
// which loop or reader runs it. A target deferred by any goroutine while some batch is
// open is flushed by the next End of any batch, which is bounded because batches do not
// block. Defer with no batch open flushes at once.
package readbatch

import "sync/atomic"

// Mark is the per-target state of the dirty stack; a target embeds one and calls Init
// once before its first Defer.
type Mark struct {
	flush  func()
	wflush func(*Writes)
	dirty  atomic.Bool
	next   *Mark
}

// Init ties m to its target's flush: a function that writes (or hands to its owner) what
// is queued on the target. It may be called by any goroutine, also concurrently with the
// target's own writer, at least once per Defer and possibly more often, and must not
// block. Init is not safe for concurrent use with Defer on m.
func (m *Mark) Init(flush func()) { m.flush = flush }

// InitWrites is Init for a target that can hand its socket write to the Flush (see
// Writes): flush gets the Flush's Writes, nil when writes are not batched (then it
// writes itself, as an Init target does).
func (m *Mark) InitWrites(flush func(*Writes)) { m.wflush = flush }

var (
	open atomic.Int32         // batches open in the process
	top  atomic.Pointer[Mark] // targets to flush, linked by Mark.next
)

// Begin opens a batch. Safe for concurrent use; every Begin needs its End.
func Begin() { open.Add(1) }

// End closes a batch and flushes every deferred target from the calling goroutine. Safe
// for concurrent use.
func End() {
	open.Add(-1)
	Flush()
}

// Leave closes a batch without flushing and reports whether targets wait on the stack:
// the caller then owes a Flush soon (an event loop flushes at the end of its polling
// round, so that a round's messages for one target go in one write). Safe for
// concurrent use.
func Leave() bool {
	open.Add(-1)
	return top.Load() != nil
}

// Open reports whether some batch is open (tests and statistics).
func Open() bool { return open.Load() > 0 }

// Defer leaves m's target, whose queue just became non-empty, to the end of the open
// batches; with none open it flushes at once. Safe for concurrent use.
//
// Why no send is left behind: a batch's End decrements the count and then takes the
// whole stack, so every target pushed before that decrement is flushed by it; a push
// after the last decrement finds the count at zero and flushes itself.
func Defer(m *Mark) {
	if m.dirty.CompareAndSwap(false, true) {
		for {
			t := top.Load()
			m.next = t
			if top.CompareAndSwap(t, m) {
				break
			}
		}
	}
	if open.Load() == 0 {
		Flush()
	}
}

// Flush flushes every target on the stack. Safe for concurrent use.
func Flush() {
	if top.Load() == nil {
		return
	}
	w := getWrites()
	for m := top.Swap(nil); m != nil; {
		next := m.next
		m.next = nil
		m.dirty.Store(false) // a send from now on pushes the target again
		if m.wflush != nil {
			m.wflush(w)
		} else {
			m.flush()
		}
		m = next
	}
	if w != nil {
		w.submit()
		putWrites(w)
	}
}
