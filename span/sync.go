package span

import (
	"slices"
	"sync"
	"time"
)

// The resync gate. An owner decides a claim on the registration table it holds, and a
// router that is new to it, or back after it dropped its state (RouterDown, or
// RouterReset after a failed link), sends its callees in the resync. Until they are all
// here the table may lack callees of that router, so a claim decided then could be
// accepted although the procedure is taken (the known limit that a join and a failed
// link opened). So while any live router's resync is incomplete the owner holds the
// claims it would decide, and decides them, in arrival order, once every resync has
// ended: the resync request carries a nonce, and the answering router sends a
// KindSynced with that nonce on every lane after its state, so the last of them comes
// after all of it. A gate that stays closed for syncTimeout (a router that never
// answers) opens anyway, with a log line, rather than hold REGISTERs for good.

// syncTimeout is how long the gate waits for resyncs before it decides what it holds.
var syncTimeout = 5 * time.Second

// syncGate is the Span's resync gate. Its methods are safe for concurrent use.
type syncGate struct {
	mu sync.Mutex
	// waiting maps a router to the nonce of the resync request whose end we wait for
	// (0: its state was dropped and the request is about to go).
	waiting map[string]uint64
	// got counts the lanes on which the current nonce's end arrived, per router.
	got  map[string]int
	held []heldClaim
	seq  uint64
	// timer opens the gate after syncTimeout; epoch tells a stale timer from the one
	// of the current closure.
	timer *time.Timer
	epoch uint64
}

// heldClaim is a claim the owner holds until the gate opens.
type heldClaim struct {
	st *realmState
	c  *claim
}

// closeGateLocked records that name's state is awaited (nonce 0: not requested yet) and
// starts the give-up timer when the gate was open. Caller holds g.mu.
func (s *Span) closeGateLocked(name string, nonce uint64) {
	g := &s.gate
	if g.waiting == nil {
		g.waiting, g.got = map[string]uint64{}, map[string]int{}
	}
	if len(g.waiting) == 0 {
		g.epoch++
		epoch := g.epoch
		g.timer = time.AfterFunc(syncTimeout, func() { s.gateTimedOut(epoch) })
	}
	g.waiting[name] = nonce
	g.got[name] = 0
}

// holdSync closes the gate for name before its state is dropped (RouterReset): the
// request follows from SetRouters.
func (s *Span) holdSync(name string) {
	s.gate.mu.Lock()
	s.closeGateLocked(name, 0)
	s.gate.mu.Unlock()
}

// expectSync closes the gate for name and returns the nonce its resync request carries.
func (s *Span) expectSync(name string) uint64 {
	g := &s.gate
	g.mu.Lock()
	g.seq++
	nonce := g.seq
	s.closeGateLocked(name, nonce)
	g.mu.Unlock()
	return nonce
}

// syncDropped stops waiting for name (it is down: nothing more comes from it).
func (s *Span) syncDropped(name string) {
	g := &s.gate
	g.mu.Lock()
	if _, ok := g.waiting[name]; !ok {
		g.mu.Unlock()
		return
	}
	delete(g.waiting, name)
	delete(g.got, name)
	s.openIfDoneLocked() // unlocks
}

// onSynced counts one lane's end of name's resync for nonce.
func (s *Span) onSynced(name string, nonce uint64, lanes int) {
	g := &s.gate
	g.mu.Lock()
	if w, ok := g.waiting[name]; !ok || w != nonce || nonce == 0 {
		g.mu.Unlock()
		return // an end we do not wait for (an older request's)
	}
	if g.got[name]++; g.got[name] < lanes {
		g.mu.Unlock()
		return
	}
	delete(g.waiting, name)
	delete(g.got, name)
	s.openIfDoneLocked()
	s.dropStaleSessions(name) // the resync has announced all that are still there
	s.forgetResetRegs(name)
}

// openIfDoneLocked opens the gate when no resync is awaited: it decides the held
// claims in order. Caller holds g.mu, which it releases.
func (s *Span) openIfDoneLocked() {
	g := &s.gate
	if len(g.waiting) > 0 {
		g.mu.Unlock()
		return
	}
	held := g.held
	g.held = nil
	if g.timer != nil {
		g.timer.Stop()
		g.timer = nil
	}
	g.mu.Unlock()
	for _, h := range held {
		s.decide(h.st, h.c)
	}
}

// gateTimedOut opens the gate of closure epoch if it is still closed.
func (s *Span) gateTimedOut(epoch uint64) {
	g := &s.gate
	g.mu.Lock()
	if g.epoch != epoch || len(g.waiting) == 0 {
		g.mu.Unlock()
		return
	}
	names := make([]string, 0, len(g.waiting))
	for n := range g.waiting {
		names = append(names, n)
	}
	slices.Sort(names)
	s.log.Warn("span: no end of resync in time, deciding held claims", "routers", names, "after", syncTimeout)
	clear(g.waiting)
	clear(g.got)
	s.openIfDoneLocked()
}

// gateHolds holds claim c (for st) when the gate is closed, and reports whether it did.
func (s *Span) gateHolds(st *realmState, c *claim) bool {
	g := &s.gate
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.waiting) == 0 {
		return false
	}
	g.held = append(g.held, heldClaim{st, c})
	return true
}

// answerResync sends router `to` our whole state, then, when the request carried a
// nonce, its end on every lane.
func (s *Span) answerResync(to string, nonce, epoch uint64) {
	if s.newIncarnation(to, epoch) {
		// It restarted before we saw its old links die: what its previous incarnation
		// told us (sessions, interest, callees) is stale. That one is dead (meta
		// events, testaments), and the new one is a fresh router: resync both ways.
		s.log.Info("span: router restarted, dropping its previous incarnation's state", "peer", to)
		s.routerDown(to, true)
		s.epochMu.Lock()
		s.epochs[to] = epoch
		s.epochMu.Unlock()
		s.SetRouters(append(slices.Clone(s.live.Load().names), to))
		if nonce != 0 {
			s.everyLane(to, KindSynced, nonce)
		}
		return
	}
	// A router we do not count live yet (its link is up, our membership has not caught
	// up) is left out of our broadcasts until it is: state sent now and changed before
	// then would stay stale there. SetRouters sends it when the router joins.
	s.mu.Lock()
	if !slices.Contains(s.live.Load().names, to) {
		if s.deferred == nil {
			s.deferred = map[string]uint64{}
		}
		s.deferred[to] = nonce
		s.mu.Unlock()
		s.log.Debug("span: resync request from a router not live here yet, answered when it is", "peer", to)
		return
	}
	s.mu.Unlock()
	s.resync(to)
	if nonce != 0 {
		s.everyLane(to, KindSynced, nonce)
	}
}

// newIncarnation records router name's epoch (from its resync request; 0 from routers
// that send none) and reports whether it differs from the one seen before.
func (s *Span) newIncarnation(name string, epoch uint64) bool {
	if epoch == 0 {
		return false
	}
	s.epochMu.Lock()
	defer s.epochMu.Unlock()
	old, seen := s.epochs[name]
	s.epochs[name] = epoch
	return seen && old != epoch
}
