package engine

import (
	"time"

	"github.com/switchyard-wamp/switchyard/codec"
)

// Features are the advanced features a client announced in HELLO.Details.roles that
// change what the router may send it.
type Features struct {
	// CallCanceling: the callee understands INTERRUPT (roles.callee.features.call_canceling).
	CallCanceling bool
	// ProgressiveCallInvocations: the client (as caller and/or callee) announced
	// progressive_call_invocations.
	ProgressiveCallInvocations bool
	// SubscriptionRevocation / RegistrationRevocation: the client understands
	// UNSUBSCRIBED / UNREGISTERED sent by the router on its own.
	SubscriptionRevocation, RegistrationRevocation bool
}

// Cancel modes (CANCEL.Options.mode).
const (
	cancelSkip       = "skip"
	cancelKill       = "kill"
	cancelKillNoWait = "killnowait"
)

// ErrTimeout is the ERROR a caller gets when the router ends a call at its timeout.
const ErrTimeout = "wamp.error.timeout"

// cancel handles CANCEL from a caller. skip answers the caller with wamp.error.canceled
// now and drops the callee's late answer; killnowait does that and sends INTERRUPT; kill
// sends INTERRUPT and lets the callee's ERROR (or RESULT) answer the caller. A callee
// without call_canceling gets no INTERRUPT, so kill behaves as skip for it (the spec's
// rule). Finding the call scans the realm's callees: CANCEL is rare and this keeps the
// CALL path free of a second index.
func (s *Session) cancel(m *codec.Message, sc *scratch) {
	mode := cancelSkip
	if m.Details.Has&codec.KeyMode != 0 {
		mode = string(m.Details.Mode)
	}
	var callee *Session
	var inv uint64
	s.realm.rangeCallees(func(c *Session) bool {
		id, ok := c.pending.find(func(pc pendingCall) bool { return pc.caller == s && pc.request == m.Request })
		if ok {
			callee, inv = c, id
		}
		return !ok
	})
	if callee == nil {
		return // already answered: nothing to cancel
	}
	if mode == cancelKill && callee.features.CallCanceling {
		callee.interrupt(inv, cancelKill, ErrCanceled, sc)
		return
	}
	if _, mine := callee.pending.take(inv); !mine {
		return // the answer won the race
	}
	if mode != cancelSkip && callee.features.CallCanceling {
		callee.interrupt(inv, cancelKillNoWait, ErrCanceled, sc)
	}
	s.sendErrorMsg(codec.CALL, m.Request, ErrCanceled, "call canceled by the caller", sc)
}

// interrupt sends INTERRUPT for invocation inv to s (the callee).
func (s *Session) interrupt(inv uint64, mode, reason string, sc *scratch) {
	sc.m = codec.Message{Type: codec.INTERRUPT, Request: inv}
	sc.m.Details.Has = codec.KeyMode | codec.KeyReason
	sc.m.Details.Mode = append(sc.text[:0], mode...)
	sc.m.Details.Reason = append(sc.uri[:0], reason...)
	s.sendMsg(&sc.m, sc)
}

// armTimeout ends invocation inv of callee after d unless it was answered first: the
// caller gets wamp.error.timeout and a callee with call_canceling an INTERRUPT. Only calls
// with CALL.Options.timeout pay for the timer.
func armTimeout(callee *Session, inv uint64, d time.Duration) {
	time.AfterFunc(d, func() {
		pc, ok := callee.pending.take(inv)
		if !ok {
			return // answered in time
		}
		sc := getScratch()
		defer putScratch(sc)
		if callee.features.CallCanceling {
			callee.interrupt(inv, cancelKillNoWait, ErrTimeout, sc)
		}
		pc.caller.sendErrorMsg(codec.CALL, pc.request, ErrTimeout, "call timed out in the router", sc)
	})
}
