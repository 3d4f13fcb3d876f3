package engine

import (
	"fmt"

	"github.com/switchyard-wamp/switchyard/codec"
	"github.com/switchyard-wamp/switchyard/engine/match"
)

// Ghosts: a callee on another router of a federated realm is represented here by a
// ghost session with the callee's id, identity, serializer and features. The ghost is a
// callee in this router's dealer like any other, so a local CALL to it runs the whole
// call state machine here (pending table, progressive results and invocations, cancel,
// timeout, caller disclosure, shared-registration policies); its Peer carries the
// INVOCATION and INTERRUPT bytes to the callee's router, and the callee's answers come
// back through GhostReceive. A ghost never joins: the session meta API does not list it
// and it publishes no session meta events; its registrations publish no registration
// meta events either (the callee's own router publishes them for the whole realm).

// GhostSpec is who a ghost stands for.
type GhostSpec struct {
	ID         uint64
	Auth       AuthInfo
	Serializer codec.Serializer
	Features   Features
	// Tag is this router's tag (1..MaxRouterTag): the ghost's INVOCATION ids carry it.
	Tag uint64
}

// Ghost returns the realm's ghost for spec.ID, making it with peer when there is none.
// Safe for concurrent use.
func (rl *Realm) Ghost(spec GhostSpec, peer Peer) *Session {
	if g, ok := rl.ghosts.Load(spec.ID); ok {
		return g
	}
	g, _ := rl.ghosts.LoadOrCompute(spec.ID, func() *Session {
		g := &Session{id: spec.ID, realm: rl, peer: peer, ser: spec.Serializer, codec: codec.For(spec.Serializer),
			auth: spec.Auth, authID: []byte(spec.Auth.AuthID), authRole: []byte(spec.Auth.AuthRole),
			features: spec.Features, ghost: true, invBase: spec.Tag << InvocationTagShift}
		g.pending.init()
		return g
	})
	return g
}

// LookupGhost returns the ghost of session id. Safe for concurrent use.
func (rl *Realm) LookupGhost(id uint64) (*Session, bool) { return rl.ghosts.Load(id) }

// GhostRegister adds ghost g as a callee of (procedure, match policy) with invocation
// policy invoke, without meta events. It returns "" or the error URI of a local conflict
// (which means this router's table disagrees with the realm's decision point). Safe for
// concurrent use.
func (g *Session) GhostRegister(procedure string, pattern bool, kind match.Kind, invoke string) string {
	rl := g.realm
	reg, _, errURI := rl.dealer.add(rl, []byte(procedure), pattern, kind, invoke, g)
	if reg == nil {
		return errURI
	}
	if !g.track(func() { g.regs = append(g.regs, reg) }) {
		rl.dealer.remove(reg, g)
		return ErrCanceled
	}
	return ""
}

// GhostUnregister removes ghost g from (procedure, match policy). With localMeta, the
// registration meta events are published to this router's subscribers only (used when
// the callee's router is gone and cannot publish them). It reports whether g held it.
// Safe for concurrent use.
func (g *Session) GhostUnregister(procedure string, pattern bool, kind match.Kind, localMeta bool) bool {
	reg := untrack(g, &g.regs, func(x *registration) bool {
		return x.procedure == procedure && x.pattern == pattern && (!pattern || x.kind == kind)
	})
	if reg == nil {
		return false
	}
	g.realm.ghostUnregistered(g, reg, localMeta)
	return true
}

// ghostUnregistered removes reg of ghost g and reports whether reg went with it.
func (rl *Realm) ghostUnregistered(g *Session, reg *registration, localMeta bool) (deleted bool) {
	deleted = rl.dealer.remove(reg, g)
	if localMeta {
		rl.publishMetaAs(rl.metaLocal, "wamp.registration.on_unregister", []any{g.id, reg.id})
		if deleted {
			rl.publishMetaAs(rl.metaLocal, "wamp.registration.on_delete", []any{g.id, reg.id})
		}
	}
	return deleted
}

// DroppedRegistration is a registration a ghost lost in DropGhost: its id, and whether
// it went with it (no callee left here). Without localMeta nothing was published for
// it; the federation publishes it later (PublishMetaLocal) should the callee's router
// turn out to be dead.
type DroppedRegistration struct {
	Registration uint64
	Deleted      bool
}

// DropGhost removes the ghost of session id: its registrations go (meta events to local
// subscribers only when localMeta) and its calls in flight end with wamp.error.canceled.
// It returns the registrations that went. Safe for concurrent use and idempotent.
func (rl *Realm) DropGhost(id uint64, localMeta bool) []DroppedRegistration {
	g, ok := rl.ghosts.LoadAndDelete(id)
	if !ok {
		return nil
	}
	g.state.Store(sessionClosed)
	g.mu.Lock()
	regs := g.regs
	g.regs = nil
	g.mu.Unlock()
	var out []DroppedRegistration
	for _, reg := range regs {
		out = append(out, DroppedRegistration{Registration: reg.id, Deleted: rl.ghostUnregistered(g, reg, localMeta)})
	}
	g.failPending()
	return out
}

// GhostIDs returns the ids of the realm's ghosts. Safe for concurrent use.
func (rl *Realm) GhostIDs() []uint64 {
	var ids []uint64
	rl.ghosts.Range(func(id uint64, _ *Session) bool { ids = append(ids, id); return true })
	return ids
}

// GhostReceive processes the remote callee's answer (YIELD, or ERROR for an INVOCATION)
// to one of the ghost's INVOCATIONs: the caller here gets its RESULT or ERROR. Calls for
// one ghost must not run concurrently (the federation delivers one callee's answers in
// order); m is not retained.
func (g *Session) GhostReceive(m *codec.Message) error {
	if !g.ghost {
		return fmt.Errorf("session %d is not a ghost", g.id)
	}
	sc := getScratch()
	defer putScratch(sc)
	switch {
	case m.Type == codec.YIELD:
		g.yield(m, sc)
	case m.Type == codec.ERROR && m.ErrType == codec.INVOCATION:
		g.invocationError(m, sc)
	default:
		return fmt.Errorf("ghost %d: unexpected %s", g.id, m.Type)
	}
	return nil
}

// SendRaw queues b, an encoded message in the session's serializer, to local session id
// unchanged (a ghost's INVOCATION or INTERRUPT arriving from another router). Safe for
// concurrent use.
func (rl *Realm) SendRaw(id uint64, b []byte) error {
	s, ok := rl.sessions.Load(id)
	if !ok {
		return fmt.Errorf("realm %s: no session %d", rl.name, id)
	}
	return s.peer.Send(b)
}

// LocalSubscriptions calls f for every subscription of the realm (they all have local
// subscribers), under the broker's lock so that no SubscriptionChanged report for the
// realm interleaves: f must only queue. Safe for concurrent use.
func (rl *Realm) LocalSubscriptions(f func(topic string, pattern bool, kind match.Kind)) {
	b := rl.broker
	b.subs.mu.Lock()
	defer b.subs.mu.Unlock()
	b.subs.Range(func(s *subscription) bool { f(s.topic, false, 0); return true })
	for _, s := range b.byPattern {
		f(s.topic, true, s.kind)
	}
}

// LocalRegistrations calls f for every (registration, local callee) of the realm, in
// registration order. Safe for concurrent use.
func (rl *Realm) LocalRegistrations(f func(callee *Session, procedure string, pattern bool, kind match.Kind, invoke string)) {
	for _, reg := range rl.dealer.all() {
		for _, c := range *reg.callees.Load() {
			if !c.ghost {
				f(c, reg.procedure, reg.pattern, reg.kind, reg.invoke)
			}
		}
	}
}
