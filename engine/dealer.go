package engine

import (
	"github.com/switchyard-wamp/switchyard/codec"
	"github.com/switchyard-wamp/switchyard/engine/match"
)

// registration is one procedure's (or pattern's) registration (router scope ID) and its
// callee.
type registration struct {
	id        uint64
	procedure string
	pattern   bool
	kind      match.Kind
	callee    *Session
}

func (r *registration) entryURI() string { return r.procedure }

// dealer holds a realm's registrations: exact ones by procedure and pattern ones (prefix,
// wildcard) in a token tree. A CALL goes to the exact registration if there is one, else
// to the best pattern: the longest prefix, then the wildcard with the longest literal
// components before its wildcards (the spec's precedence).
type dealer struct {
	regs     *uriTable[*registration]
	patterns *match.Tree[*registration]
	// byPattern finds the registration of a (pattern, kind); guarded by regs.mu.
	byPattern map[patternKey]*registration
}

func newDealer() *dealer {
	return &dealer{regs: newURITable[*registration](), patterns: match.New[*registration](),
		byPattern: map[patternKey]*registration{}}
}

// add registers procedure (under the match policy) for callee; nil when it is already
// registered.
func (d *dealer) add(r *Router, procedure []byte, pattern bool, kind match.Kind, callee *Session) *registration {
	t := d.regs
	t.mu.Lock()
	defer t.mu.Unlock()
	if pattern {
		if _, ok := d.byPattern[patternKey{string(procedure), kind}]; ok {
			return nil
		}
	} else if _, ok := t.getLocked(string(procedure)); ok {
		return nil
	}
	reg := &registration{id: r.regIDs.next(), procedure: string(procedure), pattern: pattern,
		kind: kind, callee: callee}
	if pattern {
		d.byPattern[patternKey{reg.procedure, kind}] = reg
		d.patterns.Insert(reg.procedure, kind, reg)
	} else {
		t.putLocked(reg)
	}
	return reg
}

// remove drops reg if it is still registered.
func (d *dealer) remove(reg *registration) {
	t := d.regs
	t.mu.Lock()
	defer t.mu.Unlock()
	if reg.pattern {
		key := patternKey{reg.procedure, reg.kind}
		if d.byPattern[key] == reg {
			delete(d.byPattern, key)
			d.patterns.Remove(reg.procedure, reg.kind, reg)
		}
		return
	}
	if cur, ok := t.getLocked(reg.procedure); ok && cur == reg {
		t.deleteLocked(reg.procedure)
	}
}

// lookup finds the registration a CALL to procedure goes to. Lock-free.
func (d *dealer) lookup(procedure []byte) (*registration, bool) {
	if reg, ok := d.regs.Get(procedure); ok {
		return reg, true
	}
	if d.patterns.Len() == 0 {
		return nil, false
	}
	_, _, reg, ok := d.patterns.Best(procedure)
	return reg, ok
}

func (s *Session) register(m *codec.Message, sc *scratch) {
	pattern, kind := matchPolicy(m)
	if m.Details.Has&codec.KeyInvoke != 0 && string(m.Details.Invoke) != "single" {
		s.sendErrorMsg(codec.REGISTER, m.Request, ErrOptionNotAllowed,
			"invocation policy "+string(m.Details.Invoke)+" is not supported", sc)
		return
	}
	if !validPattern(m.URI, pattern) {
		s.sendError(codec.REGISTER, m.Request, ErrInvalidURI, sc)
		return
	}
	s.pending.init()
	reg := s.realm.dealer.add(s.realm.router, m.URI, pattern, kind, s)
	if reg == nil {
		s.sendError(codec.REGISTER, m.Request, ErrProcedureAlreadyExists, sc)
		return
	}
	if !s.track(func() { s.regs = append(s.regs, reg) }) {
		s.realm.dealer.remove(reg)
		return
	}
	sc.m = codec.Message{Type: codec.REGISTERED, Request: m.Request, Registration: reg.id}
	s.sendAck(&sc.m, sc)
}

func (s *Session) unregister(m *codec.Message, sc *scratch) {
	reg := untrack(s, &s.regs, func(x *registration) bool { return x.id == m.Registration })
	if reg == nil {
		s.sendError(codec.UNREGISTER, m.Request, ErrNoSuchRegistration, sc)
		return
	}
	s.realm.dealer.remove(reg)
	sc.m = codec.Message{Type: codec.UNREGISTERED, Request: m.Request}
	s.sendAck(&sc.m, sc)
}

// call routes a CALL to the callee as an INVOCATION and remembers who waits for it.
// No lock, no allocation in steady state.
func (s *Session) call(m *codec.Message, sc *scratch) {
	if !validURI(m.URI, false) {
		s.sendError(codec.CALL, m.Request, ErrInvalidURI, sc)
		return
	}
	reg, ok := s.realm.dealer.lookup(m.URI)
	if !ok {
		s.sendError(codec.CALL, m.Request, ErrNoSuchProcedure, sc)
		return
	}
	callee := reg.callee
	inv := callee.invIDs.next()
	if !callee.pending.put(inv, pendingCall{caller: s, request: m.Request}) ||
		callee.state.Load() != sessionOpen {
		// The callee is leaving: take the entry back unless its leave already did and
		// answered the caller.
		if _, mine := callee.pending.take(inv); mine {
			s.sendErrorMsg(codec.CALL, m.Request, ErrCanceled, "callee disconnected from in-flight request", sc)
		}
		return
	}
	args, kw, _, err := sc.payloadFor(callee.ser, s.ser, m.Args, m.Kwargs, nil)
	if err != nil {
		callee.pending.take(inv)
		s.sendErrorMsg(codec.CALL, m.Request, ErrInvalidArgument, "payload cannot be transcoded: "+err.Error(), sc)
		return
	}
	sc.m = codec.Message{Type: codec.INVOCATION, Request: inv, Registration: reg.id, Args: args, Kwargs: kw}
	if reg.pattern {
		// A pattern registration tells the callee which procedure was called.
		sc.m.Details.Has, sc.m.Details.Procedure = codec.KeyProcedure, m.URI
	}
	if m.Details.DiscloseMe {
		d := &sc.m.Details
		d.Has |= codec.KeyCaller | codec.KeyCallerAuthID | codec.KeyCallerAuthRole
		d.Caller, d.CallerAuthID, d.CallerAuthRole = s.id, s.authID, s.authRole
	}
	if sc.out, err = callee.codec.Append(sc.out[:0], &sc.m); err == nil {
		err = callee.peer.Send(sc.out)
	}
	if err != nil {
		if _, mine := callee.pending.take(inv); mine {
			s.sendErrorMsg(codec.CALL, m.Request, ErrCanceled, "callee unreachable: "+err.Error(), sc)
		}
	}
}

// yield routes a callee's YIELD back to the caller as RESULT.
func (s *Session) yield(m *codec.Message, sc *scratch) {
	pc, ok := s.pending.take(m.Request)
	if !ok {
		// The call is gone (caller left, or a duplicate YIELD): nothing to answer.
		return
	}
	caller := pc.caller
	args, kw, _, err := sc.payloadFor(caller.ser, s.ser, m.Args, m.Kwargs, nil)
	if err != nil {
		caller.sendErrorMsg(codec.CALL, pc.request, ErrInvalidArgument, "result cannot be transcoded: "+err.Error(), sc)
		return
	}
	sc.m = codec.Message{Type: codec.RESULT, Request: pc.request, Args: args, Kwargs: kw}
	caller.sendMsg(&sc.m, sc)
}

// invocationError routes a callee's ERROR for an INVOCATION back to the caller.
func (s *Session) invocationError(m *codec.Message, sc *scratch) {
	pc, ok := s.pending.take(m.Request)
	if !ok {
		return
	}
	caller := pc.caller
	if !validURI(m.URI, false) {
		caller.sendErrorMsg(codec.CALL, pc.request, ErrInvalidURI, "callee answered with an invalid error URI", sc)
		return
	}
	args, kw, dict, err := sc.payloadFor(caller.ser, s.ser, m.Args, m.Kwargs, m.Dict)
	if err != nil {
		caller.sendErrorMsg(codec.CALL, pc.request, ErrInvalidArgument, "error payload cannot be transcoded: "+err.Error(), sc)
		return
	}
	sc.m = codec.Message{Type: codec.ERROR, ErrType: codec.CALL, Request: pc.request,
		URI: m.URI, Dict: dict, Args: args, Kwargs: kw}
	caller.sendMsg(&sc.m, sc)
}

// failPending answers every call in flight to s (as callee) with wamp.error.canceled.
func (s *Session) failPending() {
	sc := getScratch()
	defer putScratch(sc)
	s.pending.drain(func(pc pendingCall) {
		pc.caller.sendErrorMsg(codec.CALL, pc.request, ErrCanceled, "callee disconnected from in-flight request", sc)
	})
}
