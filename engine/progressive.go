package engine

import (
	"github.com/switchyard-wamp/switchyard/codec"
)

// ErrFeatureNotSupported answers a CALL that needs a feature the callee lacks.
const ErrFeatureNotSupported = "wamp.error.feature_not_supported"

// openCall is a progressive call invocation in progress: every later CALL chunk with the
// same request id goes to the same callee and invocation, with the initiating CALL's
// options (the spec's "freezing of options").
type openCall struct {
	callee   *Session
	inv, reg uint64
	opts     invocationOptions
}

// openProgressive remembers an open progressive call of s. Caller goroutine only, but
// guarded by s.mu because leaveRealm may run elsewhere.
func (s *Session) openProgressive(request uint64, oc *openCall) {
	s.mu.Lock()
	if s.open == nil {
		s.open = map[uint64]*openCall{}
	}
	s.open[request] = oc
	s.openCount.Store(int64(len(s.open)))
	s.mu.Unlock()
}

func (s *Session) openCall(request uint64) (*openCall, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	oc, ok := s.open[request]
	return oc, ok
}

func (s *Session) closeOpenCall(request uint64) {
	s.mu.Lock()
	delete(s.open, request)
	s.openCount.Store(int64(len(s.open)))
	s.mu.Unlock()
}

// callChunk routes a later CALL of a progressive call invocation. A chunk for a call
// that has already ended (answered, canceled, timed out) is dropped.
func (s *Session) callChunk(oc *openCall, m *codec.Message, sc *scratch) {
	if !m.Details.Progress {
		s.closeOpenCall(m.Request)
	}
	if _, live := oc.callee.pending.peek(oc.inv); !live {
		s.closeOpenCall(m.Request)
		return
	}
	if err := s.sendInvocation(oc.callee, oc.inv, oc.reg, m, &oc.opts, sc); err != nil {
		if _, mine := oc.callee.pending.take(oc.inv); mine {
			s.closeOpenCall(m.Request)
			uri, text := invocationFailure(err)
			s.sendErrorMsg(codec.CALL, m.Request, uri, text, sc)
		}
	}
}

// interruptOpenCalls ends s's open progressive calls when s leaves: the callee gets
// INTERRUPT killnowait (the spec's progressive call cancellation).
func (s *Session) interruptOpenCalls() {
	s.mu.Lock()
	open := s.open
	s.open = nil
	s.openCount.Store(0)
	s.mu.Unlock()
	if len(open) == 0 {
		return
	}
	sc := getScratch()
	defer putScratch(sc)
	for _, oc := range open {
		if _, mine := oc.callee.pending.take(oc.inv); mine {
			oc.callee.interrupt(oc.inv, cancelKillNoWait, ErrCanceled, sc)
		}
	}
}

// interruptCalls ends the calls the leaving session s is still waiting for: each is
// taken out of its callee's pending table (a late YIELD is dropped) and the callee, if
// it announced call canceling, gets INTERRUPT killnowait, as the spec asks when a
// caller goes away. It scans the realm's callees only when s has calls in flight.
func (s *Session) interruptCalls() {
	if s.inflight.Load() == 0 {
		return
	}
	sc := getScratch()
	defer putScratch(sc)
	s.realm.rangeCallees(func(callee *Session) bool {
		for s.inflight.Load() > 0 {
			inv, ok := callee.pending.find(func(pc pendingCall) bool { return pc.caller == s })
			if !ok {
				break
			}
			if _, mine := callee.pending.take(inv); mine && callee.features.CallCanceling {
				callee.interrupt(inv, cancelKillNoWait, ErrCanceled, sc)
			}
		}
		return s.inflight.Load() > 0
	})
}
