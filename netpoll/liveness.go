package netpoll

import (
	"fmt"
	"time"
)

// Liveness of the event loops. gnet's event loops end only on an epoll failure or on
// Stop; when one ends, gnet closes that loop's conns and cancels its context, which
// stops its ticker (gnet calls no handler for it). So the server counts gnet's ticks
// (engineHandler.OnTick) and its own ticker checks that the count moves: a count that
// stands still while the server is not being stopped means the plain conns are no
// longer served, which is reported once (Done, a log line) and the plain listeners are
// closed, so that the process can exit rather than linger without serving.

const (
	// gnetDeadAfter without a tick from gnet means its event loops stopped. gnet ticks
	// every twentieth of it (500ms).
	gnetDeadAfter = 10 * time.Second
	// engDeadChecks is how many checks in a row (one every gnetDeadAfter/10) must see
	// no tick, on top of gnetDeadAfter: a process that was paused (SIGSTOP, a frozen
	// VM) sees a long silence at its first check after resuming, and gnet's overdue
	// tick comes right after it.
	engDeadChecks = 5
)

// engineWatch is the state of checkEngine; used by the ticker goroutine only.
type engineWatch struct {
	lastCheck   time.Time
	seen        uint64 // gnet ticks at the last check
	silent      int    // checks in a row without a tick
	silentSince time.Time
	initialized bool
}

// checkEngine runs on the ticker goroutine (every tick; it checks every deadAfter/10).
func (s *Server) checkEngine() {
	if s.cli == nil || s.diedOnce.Load() {
		return
	}
	w, now := &s.watch, time.Now()
	if !w.initialized {
		w.initialized, w.lastCheck, w.silentSince = true, now, now
		return
	}
	if now.Sub(w.lastCheck) < s.deadAfter/10 {
		return
	}
	w.lastCheck = now
	if n := s.gnetTicks.Load(); n != w.seen {
		w.seen, w.silent, w.silentSince = n, 0, now
		return
	}
	w.silent++
	silence := now.Sub(w.silentSince)
	if w.silent < engDeadChecks || silence < s.deadAfter || s.stopping.Load() ||
		!s.diedOnce.CompareAndSwap(false, true) {
		return
	}
	err := fmt.Errorf("netpoll: network layer stopped unexpectedly: no event loop tick for %v",
		silence.Round(time.Millisecond))
	s.log.Error("netpoll: network layer stopped unexpectedly, plain listeners closed", "error", err)
	for _, l := range s.lns {
		if l.TLS == nil && l.netLn != nil {
			_ = l.netLn.Close()
		}
	}
	s.died <- err
}

// Done returns a channel that receives one error if the network layer (the gnet
// event loops serving the plain listeners) stops while the server is not being
// stopped: those listeners then serve nothing, and the process should exit. Nothing is
// sent after Stop. Safe for concurrent use.
func (s *Server) Done() <-chan error { return s.died }
