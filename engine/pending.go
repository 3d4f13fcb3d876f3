package engine

import (
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/puzpuzpuz/xsync/v3"
)

// pendingCall is a CALL waiting for its callee's YIELD or ERROR.
type pendingCall struct {
	caller  *Session
	request uint64
	// progress: the caller asked for progressive results (receive_progress).
	progress bool
}

// pendingSlots is the fixed ring of a callee's in-flight calls, indexed by INVOCATION
// id. IDs are sequential per callee, so slots are reused in order and collide only when
// more than len(slots) calls are in flight at once: those go to the overflow map.
const pendingSlots = 256

// Slot states.
const (
	slotFree uint32 = iota
	slotWriting
	slotReady
	slotReading
)

type pendingSlot struct {
	state atomic.Uint32
	id    uint64
	call  pendingCall
}

// pendingTable holds a callee's in-flight calls. put runs on callers' goroutines and take
// on the callee's, concurrently: each slot is claimed with a CAS, so neither side locks
// and neither allocates unless the ring overflows.
type pendingTable struct {
	once     sync.Once
	slots    atomic.Pointer[[pendingSlots]pendingSlot]
	overflow *xsync.MapOf[uint64, pendingCall]
}

// init allocates the table; sessions that never register pay nothing. Safe for
// concurrent use.
func (p *pendingTable) init() {
	p.once.Do(func() {
		p.overflow = xsync.NewMapOf[uint64, pendingCall]()
		p.slots.Store(new([pendingSlots]pendingSlot))
	})
}

// put records call under id. It returns false if the table was never initialised (the
// session never registered, so it cannot be a callee).
func (p *pendingTable) put(id uint64, call pendingCall) bool {
	slots := p.slots.Load()
	if slots == nil {
		return false
	}
	call.caller.inflight.Add(1)
	sl := &slots[id%pendingSlots]
	if sl.state.CompareAndSwap(slotFree, slotWriting) {
		sl.id = id
		sl.call = call
		sl.state.Store(slotReady)
		return true
	}
	p.overflow.Store(id, call)
	return true
}

// claim spins until sl is ready and claimed for reading (true) or holds no call
// (false); a slot another goroutine is updating is a few instructions from either.
func (sl *pendingSlot) claim() bool {
	for {
		switch sl.state.Load() {
		case slotReady:
			if sl.state.CompareAndSwap(slotReady, slotReading) {
				return true
			}
		case slotWriting, slotReading:
			runtime.Gosched()
		default:
			return false
		}
	}
}

// remove empties a claimed slot and returns its call; the caller has one call fewer in
// flight.
func (sl *pendingSlot) remove() pendingCall {
	c := sl.call
	sl.call = pendingCall{}
	sl.state.Store(slotFree)
	c.caller.inflight.Add(-1)
	return c
}

// take removes and returns the call recorded under id.
func (p *pendingTable) take(id uint64) (pendingCall, bool) {
	slots := p.slots.Load()
	if slots == nil {
		return pendingCall{}, false
	}
	if sl := &slots[id%pendingSlots]; sl.claim() {
		if sl.id == id {
			return sl.remove(), true
		}
		sl.state.Store(slotReady)
	}
	c, ok := p.overflow.LoadAndDelete(id)
	if ok {
		c.caller.inflight.Add(-1)
	}
	return c, ok
}

// drain removes every recorded call and passes it to f.
func (p *pendingTable) drain(f func(pendingCall)) {
	slots := p.slots.Load()
	if slots == nil {
		return
	}
	for i := range slots {
		if sl := &slots[i]; sl.claim() {
			f(sl.remove())
		}
	}
	p.overflow.Range(func(id uint64, c pendingCall) bool {
		if _, ok := p.overflow.LoadAndDelete(id); ok {
			c.caller.inflight.Add(-1)
			f(c)
		}
		return true
	})
}

// peek returns the call recorded under id without removing it (progressive results keep
// the call open). Safe against concurrent put and take.
func (p *pendingTable) peek(id uint64) (pendingCall, bool) {
	slots := p.slots.Load()
	if slots == nil {
		return pendingCall{}, false
	}
	if sl := &slots[id%pendingSlots]; sl.claim() {
		c, hit := sl.call, sl.id == id
		sl.state.Store(slotReady)
		if hit {
			return c, true
		}
	}
	return p.overflow.Load(id)
}

// find returns the id of the first call for which match is true, without removing it.
// Each slot is claimed while it is looked at, so this is safe against concurrent put and
// take. It scans the whole table: for rare operations (CANCEL) only.
func (p *pendingTable) find(match func(pendingCall) bool) (uint64, bool) {
	slots := p.slots.Load()
	if slots == nil {
		return 0, false
	}
	for i := range slots {
		sl := &slots[i]
		if sl.state.Load() != slotReady || !sl.state.CompareAndSwap(slotReady, slotReading) {
			continue
		}
		id, hit := sl.id, match(sl.call)
		sl.state.Store(slotReady)
		if hit {
			return id, true
		}
	}
	var found uint64
	var ok bool
	p.overflow.Range(func(id uint64, c pendingCall) bool {
		if match(c) {
			found, ok = id, true
			return false
		}
		return true
	})
	return found, ok
}

// count returns the number of calls in flight. Safe for concurrent use; approximate.
func (p *pendingTable) count() int {
	slots := p.slots.Load()
	if slots == nil {
		return 0
	}
	n := p.overflow.Size()
	for i := range slots {
		if slots[i].state.Load() == slotReady {
			n++
		}
	}
	return n
}
