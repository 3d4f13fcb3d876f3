package span

import (
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/switchyard-wamp/switchyard/codec"
	"github.com/switchyard-wamp/switchyard/engine"
	"github.com/switchyard-wamp/switchyard/engine/match"
)

// Registrations realm-wide. Each (realm, policy, procedure) has one decision point, its
// owner: the live router with the highest rendezvous weight for the registration id.
// Every router keeps the table of registrations (policy and callees in registration
// order) from the owner's broadcasts, so that a new owner has it when the old one dies.

// ErrUnavailable answers a REGISTER whose decision point cannot be reached.
const ErrUnavailable = "wamp.error.unavailable"

// regRef names a registration in a realm.
type regRef struct {
	pol  byte
	proc string
}

// regEntry is one registration as the realm knows it.
type regEntry struct {
	invoke  string
	callees []callee
	// Owner only: a decision waits for the acks of its broadcast (busy) and later
	// claims queue behind it, so that every router sees the callees in one order.
	busy  bool
	queue []*claim
}

// claim is a callee's request to register, at its own router (waiting for the owner's
// answer) or at the owner (queued).
type claim struct {
	id     uint64
	realm  string
	ref    regRef
	invoke string
	callee callee
	// owner is where the claim was sent (claimant side); written by each send, read by
	// a router's death (routerDownRPC) on another goroutine.
	owner atomic.Pointer[string]
	done  func(errURI string)
	// probed: the owner has probed the routers of the callees it conflicts with (see
	// probe); the next conflict is the answer.
	probed bool
}

// ackWait is an owner's broadcast waiting for the acks of the routers in wait.
type ackWait struct {
	st   *realmState
	ref  regRef
	c    *claim
	wait []string
	// barrier, when set, is what to run once every router has acked (an interest
	// barrier, AwaitInterest) instead of answering a claim.
	barrier func()
	// got counts the answers of a router that answers on several lanes (Laned).
	got map[string]int
	// timer, when set, gives up on the wait (giveUp); stopped when it ends. Set before
	// the wait is stored, read-only after.
	timer *time.Timer
}

func regKey(realm string, pol byte, proc string) uint64 {
	return engine.RegistrationID(realm, policyName(pol), proc)
}

func appendRegAdd(b []byte, ackID uint64, realm string, pol byte, proc, invoke string, c *callee) []byte {
	b = appendUvarint(b, ackID)
	b = appendString(b, realm)
	b = append(b, pol)
	b = appendString(b, proc)
	b = appendString(b, invoke)
	return appendCallee(b, c)
}

func appendClaim(c *claim) []byte {
	b := appendUvarint(nil, c.id)
	b = appendString(b, c.realm)
	b = append(b, c.ref.pol)
	b = appendString(b, c.ref.proc)
	b = appendString(b, c.invoke)
	return appendCallee(b, &c.callee)
}

// Register implements engine.Federation: send the claim to the owner (or decide here).
func (s *Span) Register(rl *engine.Realm, cs *engine.Session, procedure string, pattern bool, kind match.Kind, invoke string, done func(errURI string)) {
	c := &claim{id: s.claimSeq.Add(1), realm: rl.Name(), ref: regRef{policyByte(pattern, kind), procedure},
		invoke: invoke, callee: calleeOf(cs, s.self), done: done}
	s.claims.Store(c.id, c)
	s.sendClaim(c)
}

// sendClaim sends c to its owner as the membership now says.
func (s *Span) sendClaim(c *claim) {
	owner := s.owner(regKey(c.realm, c.ref.pol, c.ref.proc))
	c.owner.Store(&owner)
	if owner == s.self {
		s.decide(s.state(c.realm), c)
		return
	}
	if !s.send(owner, regKey(c.realm, c.ref.pol, c.ref.proc), KindClaim, appendClaim(c)) {
		if c, ok := s.claims.LoadAndDelete(c.id); ok {
			go c.done(ErrUnavailable)
		}
	}
}

func (s *Span) onClaim(from string, r *reader) error {
	c := &claim{id: r.uvarint(), realm: r.string()}
	c.ref.pol = r.byte1()
	c.ref.proc = r.string()
	c.invoke = r.string()
	c.callee = r.callee()
	if r.err != nil {
		return r.err
	}
	c.callee.router = from
	s.decide(s.state(c.realm), c)
	return nil
}

// decide is the owner's decision on claim c: accept (record, broadcast, answer once
// every live router has acked), probe, or refuse; held while the resync gate is closed.
func (s *Span) decide(st *realmState, c *claim) {
	if s.gateHolds(st, c) {
		return // decided when every live router's resync is here (sync.go)
	}
	st.reg.Lock()
	e := st.table[c.ref]
	if e != nil && e.busy {
		e.queue = append(e.queue, c)
		st.reg.Unlock()
		return
	}
	s.settleAndAct(st, c)
}

// settleAndAct decides c (settleLocked), releases st.reg, which the caller holds, acts
// on the outcome and, when c was refused, decides the claims queued behind it.
func (s *Span) settleAndAct(st *realmState, c *claim) {
	o := s.settleLocked(st, c)
	st.reg.Unlock()
	if s.act(st, c, o) {
		s.drainQueue(st, c.ref)
	}
}

// outcome is what the owner does with a claim: accept it, probe the routers of the
// callees it conflicts with, or refuse it with errURI.
type outcome struct {
	accept bool
	probe  []string
	errURI string
}

// settleLocked decides c. A conflict with callees of other routers is not the answer
// yet: their Unclaims may still be on the way (a callee that left or unregistered, whose
// caller already saw the call end and whose client registered again at once, as on one
// node); the owner probes those routers first (marking the entry busy) and decides
// again when they answer. Caller holds st.reg.
func (s *Span) settleLocked(st *realmState, c *claim) outcome {
	errURI, accept := s.decideLocked(st, c)
	if accept {
		return outcome{accept: true}
	}
	if c.probed || (errURI != engine.ErrProcedureAlreadyExists && errURI != engine.ErrProcedureExistsOtherPolicy) {
		return outcome{errURI: errURI}
	}
	e := st.table[c.ref]
	var routers []string
	for _, x := range e.callees {
		if x.router != s.self && !slices.Contains(routers, x.router) && s.isLive(x.router) {
			routers = append(routers, x.router)
		}
	}
	if len(routers) == 0 {
		return outcome{errURI: errURI}
	}
	c.probed = true
	e.busy = true
	return outcome{probe: routers}
}

// act carries out o for c (not holding st.reg) and reports whether the claims queued
// behind c may be decided now (c was refused).
func (s *Span) act(st *realmState, c *claim, o outcome) bool {
	switch {
	case o.accept:
		s.broadcastAdd(st, c)
	case o.probe != nil:
		s.probe(st, c, o.probe)
	default:
		s.answer(c, o.errURI)
		return true
	}
	return false
}

// probe sends a barrier on the registration's key to each router in routers, answered
// on the same key: its answer comes after any Unclaim that router sent before it saw
// the barrier, so once all have answered (or died) the table holds what they had
// released, and c is decided again.
func (s *Span) probe(st *realmState, c *claim, routers []string) {
	w := &ackWait{wait: slices.Clone(routers)}
	w.barrier = func() {
		st.reg.Lock()
		if e := st.table[c.ref]; e != nil {
			e.busy = false
		}
		s.settleAndAct(st, c)
	}
	// Without an answer (lost with a failed link) the claim is decided on what the
	// table holds then, rather than held for good.
	key := regKey(c.realm, c.ref.pol, c.ref.proc)
	s.startWait(w, "claim probe", key, KindBarrier, func(id uint64) []byte {
		return appendUvarint(appendUvarint(nil, id), key)
	})
}

// decideLocked checks c against the table and records it when accepted. Caller holds
// st.reg.
func (s *Span) decideLocked(st *realmState, c *claim) (errURI string, accept bool) {
	if !s.isLive(c.callee.router) {
		return engine.ErrCanceled, false
	}
	e := st.table[c.ref]
	if e == nil || len(e.callees) == 0 {
		if e == nil {
			e = &regEntry{}
			st.table[c.ref] = e
		}
		e.invoke = c.invoke
		e.callees = append(e.callees, c.callee)
		e.busy = true
		return "", true
	}
	if slices.ContainsFunc(e.callees, func(x callee) bool { return x.id == c.callee.id }) {
		// A claim sent again to a new owner after the old one died mid-way.
		e.busy = true
		return "", true
	}
	if e.invoke == "single" {
		return engine.ErrProcedureAlreadyExists, false
	}
	if e.invoke != c.invoke {
		return engine.ErrProcedureExistsOtherPolicy, false
	}
	e.callees = append(e.callees, c.callee)
	e.busy = true
	return "", true
}

// broadcastAdd tells every live router of accepted claim c (and applies it here), then
// answers when all have acked.
func (s *Span) broadcastAdd(st *realmState, c *claim) {
	s.applyAdd(st, c.ref, c.invoke, c.callee, false)
	w := &ackWait{st: st, ref: c.ref, c: c}
	for _, n := range s.live.Load().names {
		if n != s.self {
			w.wait = append(w.wait, n)
		}
	}
	if len(w.wait) == 0 {
		s.acked(w)
		return
	}
	s.startWait(w, "", regKey(c.realm, c.ref.pol, c.ref.proc), KindRegAdd, func(id uint64) []byte {
		return appendRegAdd(nil, id, c.realm, c.ref.pol, c.ref.proc, c.invoke, &c.callee)
	})
}

// startWait stores w under a new ack id and sends every router in w.wait the message
// msg(id) of kind on key; a router it cannot reach counts as answered. With a give-up
// name (what), w ends after barrierTimeout even without every answer (giveUp).
func (s *Span) startWait(w *ackWait, what string, key uint64, kind Kind, msg func(id uint64) []byte) {
	id := s.ackSeq.Add(1)
	if what != "" {
		after := barrierTimeout
		w.timer = time.AfterFunc(after, func() { s.giveUp(id, what, after) })
	}
	to := slices.Clone(w.wait) // w belongs to the acks map once stored
	s.acks.Store(id, w)
	payload := msg(id)
	for _, n := range to {
		if !s.send(n, key, kind, payload) {
			s.onAck(n, id)
		}
	}
}

// onAck counts router from as done for ack id (an ack, or the router is down).
func (s *Span) onAck(from string, id uint64) { s.onAckN(from, id, 1) }

// onAckN counts one of the lanes answers router from sends for ack id; from is done
// with the last.
func (s *Span) onAckN(from string, id uint64, lanes int) {
	var done *ackWait
	s.acks.Compute(id, func(w *ackWait, loaded bool) (*ackWait, bool) {
		if !loaded {
			return nil, true
		}
		if lanes > 1 {
			if w.got == nil {
				w.got = map[string]int{}
			}
			if w.got[from]++; w.got[from] < lanes {
				return w, false
			}
		}
		w.wait = slices.DeleteFunc(w.wait, func(n string) bool { return n == from })
		if len(w.wait) == 0 {
			done = w
			return nil, true
		}
		return w, false
	})
	if done != nil {
		s.acked(done)
	}
}

// acked answers the claim whose broadcast every router has seen, and decides the claims
// that queued behind it.
func (s *Span) acked(w *ackWait) {
	if w.timer != nil {
		w.timer.Stop()
	}
	if w.barrier != nil {
		// On its own goroutine, as engine.Federation promises: the wait can end
		// inside AwaitInterest (every send refused), called from the engine while it
		// processes the session's held messages under their lock, which the barrier's
		// callback takes again. Off the link reader too: it may wait for that lock.
		go w.barrier()
		return
	}
	s.answer(w.c, "")
	s.drainQueue(w.st, w.ref)
}

// drainQueue decides the claims queued on ref, in order, until one is accepted or
// probed (its broadcast or probe continues with the rest when it ends).
func (s *Span) drainQueue(st *realmState, ref regRef) {
	for {
		st.reg.Lock()
		e := st.table[ref]
		if e == nil {
			st.reg.Unlock()
			return
		}
		e.busy = false
		if len(e.queue) == 0 {
			st.reg.Unlock()
			return
		}
		next := e.queue[0]
		e.queue = e.queue[1:]
		o := s.settleLocked(st, next)
		st.reg.Unlock()
		if !s.act(st, next, o) {
			return
		}
	}
}

// answer tells the claimant the decision.
func (s *Span) answer(c *claim, errURI string) {
	if c.callee.router == s.self {
		if mine, ok := s.claims.LoadAndDelete(c.id); ok {
			go mine.done(errURI) // never from inside Register
		}
		return
	}
	b := appendUvarint(nil, c.id)
	b = appendString(b, errURI)
	s.send(c.callee.router, regKey(c.realm, c.ref.pol, c.ref.proc), KindClaimAnswer, b)
}

func (s *Span) onClaimAnswer(r *reader) error {
	id := r.uvarint()
	errURI := r.string()
	if r.err != nil {
		return r.err
	}
	if c, ok := s.claims.LoadAndDelete(id); ok {
		c.done(errURI)
	}
	return nil
}

// tombstoneTTL is how long a removed callee's tombstone keeps a late resync from
// bringing it back; far above any link's delivery time.
const tombstoneTTL = 30 * time.Second

// calleeRef names one callee of one registration.
type calleeRef struct {
	ref regRef
	id  uint64
}

// tombstone is a removed callee: when, and its router ("" when the table no longer
// held it). A router dropped here (RouterDown, RouterReset) takes its tombstones along:
// its next resync is the truth, and a re-registration it broadcast meanwhile may have
// been lost.
type tombstone struct {
	at     time.Time
	router string
}

// departedLocked reports whether callee id's router said it left (KindGone) within
// tombstoneTTL. Caller holds st.reg.
func (st *realmState) departedLocked(id uint64) bool {
	at, ok := st.gone[id]
	return ok && time.Since(at) < tombstoneTTL
}

// applyAdd records callee c of ref in the table (when not there yet) and, for a callee
// on another router, registers its ghost here. A resync's add (resync) of a callee
// removed here within tombstoneTTL is stale and ignored; an owner's broadcast clears
// the tombstone (the callee registered again).
func (s *Span) applyAdd(st *realmState, ref regRef, invoke string, c callee, resync bool) {
	st.reg.Lock()
	if c.router != s.self && st.departedLocked(c.id) {
		st.reg.Unlock()
		s.log.Debug("span: registration of a departed callee ignored", "realm", st.name,
			"procedure", ref.proc, "callee", c.id, "router", c.router)
		return
	}
	cr := calleeRef{ref, c.id}
	if ts, ok := st.removed[cr]; ok {
		if resync && time.Since(ts.at) < tombstoneTTL {
			st.reg.Unlock()
			s.log.Debug("span: stale resync of a removed callee ignored", "realm", st.name,
				"procedure", ref.proc, "callee", c.id, "router", c.router)
			return
		}
		delete(st.removed, cr)
	}
	e := st.table[ref]
	if e == nil {
		e = &regEntry{}
		st.table[ref] = e
	}
	if len(e.callees) == 0 {
		e.invoke = invoke
	}
	present := slices.ContainsFunc(e.callees, func(x callee) bool { return x.id == c.id })
	var revoke []callee
	var lost bool
	if e.conflicts(invoke) { // two owners accepted both (conflict.go)
		revoke, lost = s.conflictLocked(st, ref, e, invoke, c)
	}
	if !present {
		e.callees = append(e.callees, c)
	} else {
		revoke = nil // seen again (a resync both ways): its conflicts are being settled
	}
	if lost {
		// c's own router revokes it; no ghost for it here meanwhile. (If c is ours, its
		// claim is being answered: the engine refuses it locally, since the callee that
		// beats it holds the procedure here as a ghost.)
		st.reg.Unlock()
		return
	}
	st.reg.Unlock()
	if len(revoke) > 0 {
		s.revokeLosers(st, ref, c, revoke)
	}
	if c.router == s.self {
		return // the engine registers its own session when the claim is answered
	}
	rl := s.realmOf(st)
	if rl == nil {
		return
	}
	g := s.ghost(st, rl, c)
	pattern, kind := policyOf(ref.pol)
	// procedure_already_exists: this ghost has it, or a callee the table has not yet
	// dropped holds it here; reghost registers this one when that one goes.
	if errURI := g.GhostRegister(ref.proc, pattern, kind, invoke); errURI != "" && errURI != engine.ErrProcedureAlreadyExists {
		s.log.Error("span: ghost registration refused: tables disagree", "realm", st.name,
			"procedure", ref.proc, "callee", c.id, "router", c.router, "error", errURI)
	}
}

func (s *Span) onRegAdd(from string, r *reader) error {
	ackID := r.uvarint()
	realm := r.string()
	var ref regRef
	ref.pol = r.byte1()
	ref.proc = r.string()
	invoke := r.string()
	c := r.callee()
	if r.err != nil {
		return r.err
	}
	if ackID == 0 {
		c.router = from // a resync: the callee's own router sends it
	}
	s.applyAdd(s.state(realm), ref, invoke, c, ackID == 0)
	if ackID != 0 {
		s.send(from, regKey(realm, ref.pol, ref.proc), KindRegAck, appendUvarint(nil, ackID))
	}
	return nil
}

// Unregistered implements engine.Federation: the owner removes the callee realm-wide.
func (s *Span) Unregistered(rl *engine.Realm, cs *engine.Session, procedure string, pattern bool, kind match.Kind) {
	ref := regRef{policyByte(pattern, kind), procedure}
	key := regKey(rl.Name(), ref.pol, procedure)
	if owner := s.owner(key); owner != s.self {
		b := appendString(nil, rl.Name())
		b = append(b, ref.pol)
		b = appendString(b, procedure)
		b = appendUvarint(b, cs.ID())
		if s.send(owner, key, KindUnclaim, b) {
			return
		}
	}
	s.unclaim(s.fedState(rl), ref, cs.ID())
}

func (s *Span) onUnclaim(r *reader) error {
	realm, ref, id, err := readCalleeRef(r)
	if err != nil {
		return err
	}
	s.unclaim(s.state(realm), ref, id)
	return nil
}

// readCalleeRef reads the fields unclaim and reg-del share: realm, policy, procedure,
// callee id.
func readCalleeRef(r *reader) (realm string, ref regRef, id uint64, err error) {
	realm = r.string()
	ref.pol = r.byte1()
	ref.proc = r.string()
	id = r.uvarint()
	return realm, ref, id, r.err
}

// unclaim is the owner's removal of callee id from ref: applied here and broadcast.
func (s *Span) unclaim(st *realmState, ref regRef, id uint64) {
	s.applyDel(st, ref, id)
	b := appendString(nil, st.name)
	b = append(b, ref.pol)
	b = appendString(b, ref.proc)
	b = appendUvarint(b, id)
	key := regKey(st.name, ref.pol, ref.proc)
	s.others(func(to string) { s.send(to, key, KindRegDel, b) })
}

func (s *Span) onRegDel(r *reader) error {
	realm, ref, id, err := readCalleeRef(r)
	if err != nil {
		return err
	}
	s.applyDel(s.state(realm), ref, id)
	return nil
}

// applyDel removes callee id of ref from the table and from its ghost here, and leaves
// a tombstone (applyAdd).
func (s *Span) applyDel(st *realmState, ref regRef, id uint64) {
	st.reg.Lock()
	now := time.Now()
	if len(st.removed) >= 1024 {
		for k, ts := range st.removed {
			if now.Sub(ts.at) >= tombstoneTTL {
				delete(st.removed, k)
			}
		}
	}
	ts := tombstone{at: now}
	if e := st.table[ref]; e != nil {
		if i := slices.IndexFunc(e.callees, func(x callee) bool { return x.id == id }); i >= 0 {
			ts.router = e.callees[i].router
		}
	}
	st.removed[calleeRef{ref, id}] = ts
	if e := st.table[ref]; e != nil {
		e.callees = slices.DeleteFunc(e.callees, func(x callee) bool { return x.id == id })
		if len(e.callees) == 0 && !e.busy && len(e.queue) == 0 {
			delete(st.table, ref)
		}
	}
	st.reg.Unlock()
	if rl := s.realmOf(st); rl != nil {
		if g, ok := rl.LookupGhost(id); ok {
			pattern, kind := policyOf(ref.pol)
			g.GhostUnregister(ref.proc, pattern, kind, false)
		}
		s.reghost(st, rl, []regRef{ref})
	}
}

// reghost registers in this router's engine the ghosts of refs' remote callees that the
// table holds: a ghost's registration is refused while a callee the table has not yet
// dropped (of a router that died, or a reg-del still on its way) holds a single
// registration here, and must follow once that one is gone. Registrations already in
// place are left as they are.
func (s *Span) reghost(st *realmState, rl *engine.Realm, refs []regRef) {
	for _, ref := range refs {
		st.reg.Lock()
		var cs []callee
		var invoke string
		if e := st.table[ref]; e != nil {
			invoke = e.invoke
			for _, c := range e.callees {
				if !st.departedLocked(c.id) { // else its reg-del is on its way
					cs = append(cs, c)
				}
			}
		}
		st.reg.Unlock()
		pattern, kind := policyOf(ref.pol)
		for _, c := range cs {
			if c.router != s.self && s.isLive(c.router) {
				_ = s.ghost(st, rl, c).GhostRegister(ref.proc, pattern, kind, invoke)
			}
		}
	}
}

// CalleeLeft implements engine.Federation: every router drops the callee's ghost.
func (s *Span) CalleeLeft(rl *engine.Realm, cs *engine.Session) {
	s.inflight.Range(func(ref invRef, _ invFrom) bool {
		if ref.callee == cs.ID() {
			s.inflight.Delete(ref)
		}
		return true
	})
	b := appendString(nil, rl.Name())
	b = appendUvarint(b, cs.ID())
	s.others(func(to string) { s.send(to, cs.ID(), KindGone, b) })
}

func (s *Span) onGone(r *reader) error {
	realm := r.bytes()
	id := r.uvarint()
	if r.err != nil {
		return r.err
	}
	st := s.stateBytes(realm)
	st.reg.Lock()
	now := time.Now()
	if now.Sub(st.goneSwept) >= time.Second {
		st.goneSwept = now
		for k, at := range st.gone {
			if now.Sub(at) >= tombstoneTTL {
				delete(st.gone, k)
			}
		}
	}
	st.gone[id] = now
	st.reg.Unlock()
	st.ghosts.Delete(id)
	if rl := s.realmOf(st); rl != nil {
		rl.DropGhost(id, false)
	}
	return nil
}

// dropRouterCallees removes the callees of a dead router from st's table and drops
// their ghosts (calls in flight to them end with an ERROR now; the registration meta
// events go to our subscribers).
func (s *Span) dropRouterCallees(st *realmState, name string, meta bool) {
	st.reg.Lock()
	for k, ts := range st.removed {
		if ts.router == name || ts.router == "" {
			delete(st.removed, k)
		}
	}
	var left []regRef // refs that lost a callee and still have others
	for ref, e := range st.table {
		n := len(e.callees)
		e.callees = slices.DeleteFunc(e.callees, func(x callee) bool { return x.router == name })
		if len(e.callees) == 0 && !e.busy && len(e.queue) == 0 {
			delete(st.table, ref)
		} else if len(e.callees) < n && len(e.callees) > 0 {
			left = append(left, ref)
		}
	}
	st.reg.Unlock()
	rl := s.realmOf(st)
	var dropped []droppedReg
	live := map[uint64]bool{} // the router's callees with a ghost here now
	st.ghosts.Range(func(id uint64, p *ghostPeer) bool {
		if p.home == name {
			st.ghosts.Delete(id)
			live[id] = true
			if rl != nil {
				for _, d := range rl.DropGhost(id, meta) {
					dropped = append(dropped, droppedReg{id, d})
				}
			}
		}
		return true
	})
	s.resetRegsOf(st, name, meta, dropped, live, rl)
	if rl != nil {
		s.reghost(st, rl, left)
	}
}

// droppedReg is a registration a reset dropped from a callee's ghost without meta
// events.
type droppedReg struct {
	callee uint64
	engine.DroppedRegistration
}

// resetRegsOf keeps, on a reset (meta false), the registrations the reset dropped
// silently, and publishes them on a death (meta true): the registration meta events a
// router's callees would have had if it had died without the reset just before (a
// stopping router's links fail one by one). Callees the resync brought back (live) had
// theirs published by DropGhost. The end of the resync forgets them (forgetResetRegs).
func (s *Span) resetRegsOf(st *realmState, name string, meta bool, dropped []droppedReg, live map[uint64]bool, rl *engine.Realm) {
	st.reg.Lock()
	kept := st.resetRegs[name]
	if !meta {
		if len(dropped) > 0 {
			if st.resetRegs == nil {
				st.resetRegs = map[string][]droppedReg{}
			}
			st.resetRegs[name] = append(kept, dropped...)
		}
		st.reg.Unlock()
		return
	}
	delete(st.resetRegs, name)
	st.reg.Unlock()
	if rl == nil {
		return
	}
	for _, d := range kept {
		if live[d.callee] {
			continue
		}
		rl.PublishMetaLocal("wamp.registration.on_unregister", []any{d.callee, d.Registration})
		if d.Deleted {
			rl.PublishMetaLocal("wamp.registration.on_delete", []any{d.callee, d.Registration})
		}
	}
}

// forgetResetRegs drops what resetRegsOf kept for router name: its resync has ended.
func (s *Span) forgetResetRegs(name string) {
	for _, st := range *s.realms.Load() {
		st.reg.Lock()
		delete(st.resetRegs, name)
		st.reg.Unlock()
	}
}

// routerDownRPC moves the claims that waited for a dead owner to the new owner and
// stops waiting for the dead router's acks.
func (s *Span) routerDownRPC(name string) {
	s.claims.Range(func(_ uint64, c *claim) bool {
		if o := c.owner.Load(); o != nil && *o == name {
			s.sendClaim(c)
		}
		return true
	})
	// A wait's fields change only inside s.acks.Compute (onAckN), so Range takes the ids
	// alone; onAck is a no-op for a wait that does not wait for name.
	var ids []uint64
	s.acks.Range(func(id uint64, _ *ackWait) bool {
		ids = append(ids, id)
		return true
	})
	for _, id := range ids {
		s.onAck(name, id)
	}
}

// ghostPeer is the Peer of a ghost: it carries the ghost's INVOCATION and INTERRUPT
// bytes to the callee's router.
type ghostPeer struct {
	s     *Span
	realm string
	home  string
	id    uint64
	ser   codec.Serializer
}

func (p *ghostPeer) Serializer() codec.Serializer { return p.ser }
func (p *ghostPeer) Close()                       {}

// Send forwards an INVOCATION or INTERRUPT for the callee. Safe for concurrent use.
func (p *ghostPeer) Send(msg []byte) error {
	bp := bufPool.Get().(*[]byte)
	b := appendString((*bp)[:0], p.realm)
	b = appendUvarint(b, p.id)
	b = appendUvarint(b, p.s.Tag())
	b = append(b, msg...)
	err := p.s.t.Send(p.home, p.id, KindInvoke, b)
	*bp = b[:0]
	bufPool.Put(bp)
	if err != nil {
		return fmt.Errorf("router %s: %w", p.home, err)
	}
	return nil
}

// ghost returns the ghost of callee c in rl, making it when new.
func (s *Span) ghost(st *realmState, rl *engine.Realm, c callee) *engine.Session {
	p, _ := st.ghosts.LoadOrCompute(c.id, func() *ghostPeer {
		return &ghostPeer{s: s, realm: st.name, home: c.router, id: c.id, ser: c.ser}
	})
	return rl.Ghost(engine.GhostSpec{ID: c.id, Serializer: c.ser, Features: c.feat, Tag: s.Tag(),
		Auth: engine.AuthInfo{AuthID: c.authID, AuthRole: c.authRole}}, p)
}

func (s *Span) onInvoke(from string, r *reader) error {
	realm := r.bytes()
	id := r.uvarint()
	tag := r.uvarint()
	msg := r.rest()
	if r.err != nil {
		return r.err
	}
	if tag == 0 || tag > engine.MaxRouterTag {
		return fmt.Errorf("invoke with tag %d", tag)
	}
	if cur := s.tags[tag].Load(); cur == nil || *cur != from {
		n := from
		s.tags[tag].Store(&n)
	}
	st := s.stateBytes(realm)
	rl := s.realmOf(st)
	var cs *engine.Session
	if rl != nil {
		cs, _ = rl.LocalSession(id)
	}
	if cs != nil {
		s.trackInvoke(st, from, cs, msg)
	}
	if cs == nil || rl.SendRaw(id, msg) != nil {
		// The callee is gone: the caller's router drops its ghost, failing the call.
		b := appendString(nil, st.name)
		b = appendUvarint(b, id)
		s.send(from, id, KindGone, b)
	}
	return nil
}

// invRef names an INVOCATION a ghost on another router sent to one of our callees.
type invRef struct{ callee, inv uint64 }

// invFrom is where that INVOCATION came from.
type invFrom struct {
	st     *realmState
	router string
}

// trackInvoke remembers an INVOCATION (msg, in the callee's serializer) from router
// `from` until the callee's final answer, so that from's death can interrupt it.
func (s *Span) trackInvoke(st *realmState, from string, cs *engine.Session, msg []byte) {
	m := msgPool.Get().(*codec.Message)
	defer msgPool.Put(m)
	if err := codec.For(cs.Serializer()).Decode(msg, m); err != nil || m.Type != codec.INVOCATION {
		return
	}
	ref := invRef{cs.ID(), m.Request}
	if _, ok := s.inflight.Load(ref); !ok {
		s.inflight.Store(ref, invFrom{st, from})
	}
}

// interruptFrom ends the invocations that a dead router's callers had in flight to our
// callees: a callee with call_canceling gets INTERRUPT (killnowait,
// wamp.error.canceled), and its late answer is dropped here. When the router is alive
// (tellCaller: a reset after a failed link), its ghost's call gets ERROR
// wamp.error.canceled from here, since the callee's answer will not go: the caller's
// router may have reset us before, and have sent this INVOCATION after it, so nothing
// else would end that call.
func (s *Span) interruptFrom(name string, tellCaller bool) {
	var refs []invRef
	var froms []invFrom
	s.inflight.Range(func(ref invRef, f invFrom) bool {
		if f.router == name {
			refs, froms = append(refs, ref), append(froms, f)
		}
		return true
	})
	for i, ref := range refs {
		s.inflight.Delete(ref)
		rl := s.realmOf(froms[i].st)
		if rl == nil {
			continue
		}
		cs, ok := rl.LocalSession(ref.callee)
		if !ok {
			continue
		}
		if tellCaller {
			s.cancelForCaller(name, cs, ref.inv)
		}
		if !cs.Features().CallCanceling {
			continue
		}
		m := codec.Message{Type: codec.INTERRUPT, Request: ref.inv}
		m.Details.Has = codec.KeyMode | codec.KeyReason
		m.Details.Mode, m.Details.Reason = []byte("killnowait"), []byte(engine.ErrCanceled)
		b, err := codec.For(cs.Serializer()).Append(nil, &m)
		if err == nil {
			err = rl.SendRaw(ref.callee, b)
		}
		if err != nil {
			s.log.Debug("span: interrupt after router death not sent", "session", ref.callee, "err", err)
		}
	}
}

// cancelForCaller sends router `to` ERROR wamp.error.canceled for invocation inv of
// callee cs, as if the callee had answered so.
func (s *Span) cancelForCaller(to string, cs *engine.Session, inv uint64) {
	m := codec.Message{Type: codec.ERROR, ErrType: codec.INVOCATION, Request: inv, URI: []byte(engine.ErrCanceled)}
	b := appendString(nil, cs.Realm().Name())
	b = appendUvarint(b, cs.ID())
	b, err := codec.For(cs.Serializer()).Append(b, &m)
	if err != nil {
		s.log.Warn("span: cancel encode failed", "session", cs.ID(), "err", err)
		return
	}
	s.send(to, cs.ID(), KindAnswer, b)
}

// Answer implements engine.Federation: a local callee's YIELD or ERROR goes to the
// router whose ghost sent the INVOCATION.
func (s *Span) Answer(cs *engine.Session, m *codec.Message) {
	tag, _ := engine.IsRemoteInvocation(m.Request)
	if tag > engine.MaxRouterTag {
		return
	}
	ref := invRef{cs.ID(), m.Request}
	if _, ok := s.inflight.Load(ref); !ok {
		// Not (or no longer) in flight: its caller's router died, or a duplicate.
		s.log.Debug("span: answer to no invocation in flight dropped", "session", cs.ID(), "invocation", m.Request)
		return
	}
	if m.Type != codec.YIELD || !m.Details.Progress {
		s.inflight.Delete(ref)
	}
	to := s.tags[tag].Load()
	if to == nil {
		s.log.Warn("span: answer for an unknown router tag", "session", cs.ID(), "tag", tag)
		return
	}
	bp := bufPool.Get().(*[]byte)
	b := appendString((*bp)[:0], cs.Realm().Name())
	b = appendUvarint(b, cs.ID())
	b, err := codec.For(cs.Serializer()).Append(b, m)
	if err == nil {
		s.send(*to, cs.ID(), KindAnswer, b)
	} else {
		s.log.Warn("span: answer encode failed", "session", cs.ID(), "err", err)
	}
	*bp = b[:0]
	bufPool.Put(bp)
}

func (s *Span) onAnswer(r *reader) error {
	realm := r.bytes()
	id := r.uvarint()
	raw := r.rest()
	if r.err != nil {
		return r.err
	}
	st := s.stateBytes(realm)
	rl := s.realmOf(st)
	if rl == nil {
		return fmt.Errorf("answer for realm %s, unknown here", st.name)
	}
	g, ok := rl.LookupGhost(id)
	if !ok {
		return nil // dropped meanwhile: its calls have ended
	}
	m := msgPool.Get().(*codec.Message)
	defer msgPool.Put(m)
	if err := codec.For(g.Serializer()).Decode(raw, m); err != nil {
		return fmt.Errorf("answer: %w", err)
	}
	return g.GhostReceive(m)
}
