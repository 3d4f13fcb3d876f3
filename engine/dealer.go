package engine

import (
	"errors"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/switchyard-wamp/switchyard/codec"
	"github.com/switchyard-wamp/switchyard/engine/match"
)

// Invocation policies of shared registrations (REGISTER.Options.invoke).
const (
	invokeSingle     = "single"
	invokeRoundRobin = "roundrobin"
	invokeRandom     = "random"
	invokeFirst      = "first"
	invokeLast       = "last"
	// invokeHash is the consistent-hash policy (beyond the spec's five): the CALL's
	// rkey option, else its first positional argument, picks the callee by rendezvous
	// hashing over the callees' session ids. invokeHashBondy is Bondy's name for the
	// same contract, accepted as an alias.
	invokeHash      = "hash"
	invokeHashBondy = "jump_consistent_hash"
)

// registration is one procedure's (or pattern's) registration (router scope ID) and its
// callees: one for the single policy, several for a shared registration.
type registration struct {
	id        uint64
	procedure string
	pattern   bool
	kind      match.Kind
	invoke    string
	created   time.Time
	// callees is an immutable snapshot in registration order, replaced under the
	// dealer table's mutex; CALL only loads it.
	callees atomic.Pointer[[]*Session]
	rr      atomic.Uint64 // round-robin position
}

func (r *registration) entryURI() string { return r.procedure }

// pick chooses the callee of CALL m (from a caller speaking ser) by the invocation
// policy; nil when the registration has just lost its last callee. Lock-free; does not
// allocate.
func (r *registration) pick(m *codec.Message, ser codec.Serializer) *Session {
	cs := *r.callees.Load()
	switch n := len(cs); {
	case n == 0:
		return nil
	case n == 1 || r.invoke == invokeFirst || r.invoke == invokeSingle:
		return cs[0]
	case r.invoke == invokeLast:
		return cs[n-1]
	case r.invoke == invokeRoundRobin:
		return cs[(r.rr.Add(1)-1)%uint64(n)]
	case r.invoke == invokeHash:
		return rendezvous(cs, routingKey(m, ser))
	default: // random
		return cs[rand.IntN(n)]
	}
}

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

// add registers procedure (under the match policy and invocation policy) for callee.
// A shared registration takes more callees with the same policy. It returns nil and the
// error URI when the procedure is registered already under the single policy or by this
// callee (procedure_already_exists), or under another shared policy
// (procedure_exists_with_different_invocation_policy, as AutobahnPython, Bondy and
// WampSharp name it).
func (d *dealer) add(rl *Realm, procedure []byte, pattern bool, kind match.Kind, invoke string, callee *Session) (reg *registration, created bool, errURI string) {
	t := d.regs
	t.mu.Lock()
	defer t.mu.Unlock()
	var ok bool
	if pattern {
		reg, ok = d.byPattern[patternKey{string(procedure), kind}]
	} else {
		reg, ok = t.getLocked(string(procedure))
	}
	if ok {
		if reg.invoke == invokeSingle {
			return nil, false, ErrProcedureAlreadyExists
		}
		if reg.invoke != invoke {
			return nil, false, ErrProcedureExistsOtherPolicy
		}
		old := *reg.callees.Load()
		for _, c := range old {
			if c == callee {
				return nil, false, ErrProcedureAlreadyExists
			}
		}
		next := append(old[:len(old):len(old)], callee)
		reg.callees.Store(&next)
		return reg, false, ""
	}
	reg = &registration{procedure: string(procedure), pattern: pattern,
		kind: kind, invoke: invoke, created: time.Now()}
	reg.id = RegistrationID(rl.name, policyName(pattern, kind), reg.procedure)
	reg.callees.Store(&[]*Session{callee})
	if pattern {
		d.byPattern[patternKey{reg.procedure, kind}] = reg
		d.patterns.Insert(reg.procedure, kind, reg)
	} else {
		t.putLocked(reg)
	}
	return reg, true, ""
}

// remove drops callee from reg, and reg from the dealer when no callee is left (then it
// reports true).
func (d *dealer) remove(reg *registration, callee *Session) (deleted bool) {
	t := d.regs
	t.mu.Lock()
	defer t.mu.Unlock()
	old := *reg.callees.Load()
	next := make([]*Session, 0, len(old))
	for _, c := range old {
		if c != callee {
			next = append(next, c)
		}
	}
	reg.callees.Store(&next)
	if len(next) > 0 || len(old) == 0 {
		return false
	}
	if reg.pattern {
		key := patternKey{reg.procedure, reg.kind}
		if d.byPattern[key] == reg {
			delete(d.byPattern, key)
			d.patterns.Remove(reg.procedure, reg.kind, reg)
		}
		return true
	}
	if cur, ok := t.getLocked(reg.procedure); ok && cur == reg {
		t.deleteLocked(reg.procedure)
	}
	return true
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
	invoke := invokeSingle
	if m.Details.Has&codec.KeyInvoke != 0 {
		switch p := string(m.Details.Invoke); p {
		case invokeSingle, invokeRoundRobin, invokeRandom, invokeFirst, invokeLast, invokeHash:
			invoke = p
		case invokeHashBondy:
			invoke = invokeHash
		default:
			s.sendErrorMsg(codec.REGISTER, m.Request, ErrOptionNotAllowed,
				"invocation policy "+p+" is not supported", sc)
			return
		}
	}
	if !validPattern(m.URI, pattern) {
		s.sendError(codec.REGISTER, m.Request, ErrInvalidURI, sc)
		return
	}
	// With a federation, the realm-wide decision comes first: the REGISTER waits (with
	// the session's later messages) until it is known, then runs again with it.
	f := s.realm.router.federation()
	var decided *string
	if f != nil {
		if h := s.hold.Load(); h != nil && h.draining {
			decided, h.regDecision = h.regDecision, nil
		}
	}
	if decided == nil {
		if !s.authorized(codec.REGISTER, m, sc) {
			return
		}
		if f != nil {
			s.pending.init()
			s.askFederation(f, m, pattern, kind, invoke)
			return
		}
	} else if *decided != "" {
		s.sendError(codec.REGISTER, m.Request, *decided, sc)
		return
	}
	s.pending.init()
	reg, created, errURI := s.realm.dealer.add(s.realm, m.URI, pattern, kind, invoke, s)
	if reg == nil {
		if f != nil {
			// The realm said yes but this router's table disagrees: give the claim back.
			s.logger().Warn("federated registration refused locally", "session", s.id,
				"procedure", string(m.URI), "error", errURI)
			f.Unregistered(s.realm, s, string(m.URI), pattern, kind)
		}
		s.sendError(codec.REGISTER, m.Request, errURI, sc)
		return
	}
	if !s.track(func() { s.regs = append(s.regs, reg) }) {
		s.realm.dealer.remove(reg, s)
		if f != nil {
			f.Unregistered(s.realm, s, reg.procedure, pattern, kind)
		}
		return
	}
	sc.m = codec.Message{Type: codec.REGISTERED, Request: m.Request, Registration: reg.id}
	s.sendAck(&sc.m, sc)
	s.realm.registered(s, reg, created)
}

// askFederation holds m (a REGISTER) and asks the federation for the realm-wide decision;
// when it comes, m runs again with it.
func (s *Session) askFederation(f Federation, m *codec.Message, pattern bool, kind match.Kind, invoke string) {
	s.deferMessage(m)
	rl, proc := s.realm, string(m.URI)
	f.Register(rl, s, proc, pattern, kind, invoke, func(errURI string) {
		unused := s.resolveHold(func(h *holdState) { h.regDecision = &errURI })
		if unused && errURI == "" {
			f.Unregistered(rl, s, proc, pattern, kind) // the session left first
		}
	})
}

func (s *Session) unregister(m *codec.Message, sc *scratch) {
	reg := untrack(s, &s.regs, func(x *registration) bool { return x.id == m.Registration })
	if reg == nil {
		s.sendError(codec.UNREGISTER, m.Request, ErrNoSuchRegistration, sc)
		return
	}
	s.realm.unregistered(s, reg)
	sc.m = codec.Message{Type: codec.UNREGISTERED, Request: m.Request}
	s.sendAck(&sc.m, sc)
}

// call routes a CALL to the callee as an INVOCATION and remembers who waits for it.
// No lock, no allocation in steady state.
func (s *Session) call(m *codec.Message, sc *scratch) {
	if s.openCount.Load() > 0 {
		if oc, ok := s.openCall(m.Request); ok {
			s.callChunk(oc, m, sc)
			return
		}
	}
	if m.Details.Progress && !s.features.ProgressiveCallInvocations {
		s.Abort(ErrProtocolViolation, "CALL with progress=true from a caller that did not announce progressive_call_invocations")
		return
	}
	if !validURI(m.URI, false) {
		s.sendError(codec.CALL, m.Request, ErrInvalidURI, sc)
		return
	}
	if !(isMetaURI(m.URI) && s.metaRerun()) && !s.authorized(codec.CALL, m, sc) {
		return
	}
	if isMetaURI(m.URI) && s.metaCall(m, sc) {
		return
	}
	reg, ok := s.realm.dealer.lookup(m.URI)
	if !ok {
		s.sendError(codec.CALL, m.Request, ErrNoSuchProcedure, sc)
		return
	}
	callee := reg.pick(m, s.ser)
	if callee == nil {
		s.sendError(codec.CALL, m.Request, ErrNoSuchProcedure, sc)
		return
	}
	if m.Details.Progress && !(callee.features.ProgressiveCallInvocations && callee.features.CallCanceling) {
		s.sendErrorMsg(codec.CALL, m.Request, ErrFeatureNotSupported, "the callee does not support progressive call invocations", sc)
		return
	}
	inv := callee.nextInv()
	// receive_progress is forwarded even to a callee without call_canceling, which the
	// newest spec text says to treat as not supporting progressive results: AutobahnJS
	// callees announce progressive_call_results without call_canceling, and would lose
	// progressive results (docs/features.md, deliberate deviations).
	opts := invocationOptions{receiveProgress: m.Details.ReceiveProgress, disclose: m.Details.DiscloseMe}
	if reg.pattern {
		opts.procedure = m.URI
	}
	forwardPpt(&opts.ppt, &m.Details)
	if !callee.pending.put(inv, pendingCall{caller: s, request: m.Request, progress: opts.receiveProgress}) ||
		callee.state.Load() != sessionOpen {
		// The callee is leaving: take the entry back unless its leave already did and
		// answered the caller.
		if _, mine := callee.pending.take(inv); mine {
			s.sendErrorMsg(codec.CALL, m.Request, ErrCanceled, "callee disconnected from in-flight request", sc)
		}
		return
	}
	err := s.sendInvocation(callee, inv, reg.id, m, &opts, sc)
	if err == nil && m.Details.Timeout > 0 {
		armTimeout(callee, inv, time.Duration(m.Details.Timeout)*time.Millisecond)
	}
	if err != nil {
		if _, mine := callee.pending.take(inv); mine {
			uri, text := invocationFailure(err)
			s.sendErrorMsg(codec.CALL, m.Request, uri, text, sc)
		}
		return
	}
	if m.Details.Progress {
		s.openProgressive(m.Request, &openCall{callee: callee, inv: inv, reg: reg.id, opts: opts.frozen()})
	}
}

// invocationOptions are the INVOCATION details that come from the initiating CALL (and
// stay frozen for the later chunks of a progressive call).
type invocationOptions struct {
	procedure       []byte // concrete procedure, for pattern registrations
	receiveProgress bool
	disclose        bool
	ppt             codec.Details // only the ppt_* keys
}

// frozen copies o so that it outlives the CALL's buffer.
func (o invocationOptions) frozen() invocationOptions {
	o.procedure = clone(o.procedure)
	o.ppt.PptScheme, o.ppt.PptSerializer = clone(o.ppt.PptScheme), clone(o.ppt.PptSerializer)
	o.ppt.PptCipher, o.ppt.PptKeyID = clone(o.ppt.PptCipher), clone(o.ppt.PptKeyID)
	return o
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte(nil), b...)
}

// invocationFailure names, for the caller, why sendInvocation failed: arguments the
// callee's serializer cannot carry are the caller's mistake (wamp.error.invalid_argument,
// as for a RESULT the caller's serializer cannot carry); anything else is the callee's
// connection (wamp.error.canceled).
func invocationFailure(err error) (uri, text string) {
	if errors.Is(err, codec.ErrInvalid) {
		return ErrInvalidArgument, "arguments cannot be transcoded for the callee: " + err.Error()
	}
	return ErrCanceled, "callee unreachable: " + err.Error()
}

// sendInvocation sends INVOCATION inv for registration regID to callee with m's payload
// and the details of opts (plus progress when m is a non-final progressive chunk).
func (s *Session) sendInvocation(callee *Session, inv, regID uint64, m *codec.Message, opts *invocationOptions, sc *scratch) error {
	args, kw, _, err := sc.payloadFor(callee.ser, s.ser, m.Args, m.Kwargs, nil)
	if err != nil {
		return err
	}
	sc.m.Init(codec.INVOCATION)
	sc.m.Request, sc.m.Registration, sc.m.Args, sc.m.Kwargs = inv, regID, args, kw
	d := &sc.m.Details
	if opts.procedure != nil {
		// A pattern registration tells the callee which procedure was called.
		d.Has, d.Procedure = codec.KeyProcedure, opts.procedure
	}
	if opts.receiveProgress {
		d.Has, d.ReceiveProgress = d.Has|codec.KeyReceiveProgress, true
	}
	if m.Details.Progress {
		d.Has, d.Progress = d.Has|codec.KeyProgress, true
	}
	forwardPpt(d, &opts.ppt)
	if opts.disclose {
		d.Has |= codec.KeyCaller | codec.KeyCallerAuthID | codec.KeyCallerAuthRole
		d.Caller, d.CallerAuthID, d.CallerAuthRole = s.id, s.authID, s.authRole
	}
	if sc.out, err = callee.codec.Append(sc.out[:0], &sc.m); err != nil {
		return err
	}
	return callee.peer.Send(sc.out)
}

// yield routes a callee's YIELD back to the caller as RESULT. A progressive YIELD
// (progress=true) for a caller that asked receive_progress becomes a progressive RESULT
// and keeps the call open; one the caller did not ask for is dropped.
func (s *Session) yield(m *codec.Message, sc *scratch) {
	if m.Request > localInvMask && !s.ghost {
		s.remoteAnswer(m)
		return
	}
	progress := m.Details.Progress
	var pc pendingCall
	var ok bool
	if progress {
		pc, ok = s.pending.peek(m.Request)
		if ok && !pc.progress {
			return
		}
	} else {
		pc, ok = s.pending.take(m.Request)
	}
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
	sc.m.Init(codec.RESULT)
	sc.m.Request, sc.m.Args, sc.m.Kwargs = pc.request, args, kw
	if progress {
		sc.m.Details.Has, sc.m.Details.Progress = codec.KeyProgress, true
	}
	forwardPpt(&sc.m.Details, &m.Details)
	caller.sendMsg(&sc.m, sc)
}

// invocationError routes a callee's ERROR for an INVOCATION back to the caller.
func (s *Session) invocationError(m *codec.Message, sc *scratch) {
	if m.Request > localInvMask && !s.ghost {
		s.remoteAnswer(m)
		return
	}
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

// remoteAnswer hands an answer to an INVOCATION that a ghost of s on another router sent
// to the federation; without one it is dropped like any unknown id.
func (s *Session) remoteAnswer(m *codec.Message) {
	if f := s.realm.router.federation(); f != nil {
		f.Answer(s, m)
	}
}

// failPending answers every call in flight to s (as callee) with wamp.error.canceled.
func (s *Session) failPending() {
	sc := getScratch()
	defer putScratch(sc)
	s.pending.drain(func(pc pendingCall) {
		pc.caller.sendErrorMsg(codec.CALL, pc.request, ErrCanceled, "callee disconnected from in-flight request", sc)
	})
}
