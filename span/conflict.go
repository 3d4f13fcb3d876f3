package span

import (
	"slices"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/switchyard-wamp/switchyard/engine"
)

// Registration conflicts. The owner of a registration never accepts two callees of a
// `single` registration, or callees with different invoke policies; but two owners can:
// routers cut off from each other (a partition: every link between them down) each
// accept their own callee through their own owner, and when the links come back the
// resync brings both into every table. The conflict is settled without a vote, by a
// rule every router applies alike to what it sees: of two conflicting callees, the one
// whose router ranks higher for the registration (rendezvous weight, as for owners;
// then the lower session id) keeps it. The loser's own router revokes it (UNREGISTERED
// to a callee that announced registration_revocation, the registration meta events),
// which removes it realm-wide through the owner as an UNREGISTER would; every other
// router just waits for that removal. Since every router sees every callee in the end
// (the resync both ways), each conflicting pair is settled by the loser's router. It
// does so after conflictGrace, and only if the conflict still stands then: a "winner"
// can be the stale entry of a router that has just died.

// ReasonRegistrationConflict is the reason of the UNREGISTERED a callee gets when its
// registration lost a conflict: another callee holds the procedure.
const ReasonRegistrationConflict = engine.ErrProcedureAlreadyExists

// conflicts reports whether a callee registered with invoke may not stand beside some
// of the callees of e (conflictLocked says which).
func (e *regEntry) conflicts(invoke string) bool {
	return len(e.callees) > 0 && (e.invoke == "single" || invoke == "single" || e.invoke != invoke)
}

// beats reports whether callee a keeps a registration (key) that b also claims.
func beats(key uint64, a, b callee) bool {
	if a.router != b.router {
		return weight(key, xxhash.Sum64String(a.router)) > weight(key, xxhash.Sum64String(b.router))
	}
	return a.id < b.id
}

// conflictLocked settles the conflicts of callee c, arriving in e with invoke, with the
// callees e holds (e.conflicts(invoke) is true). It returns this router's own callees
// that lose to c (to revoke) and whether c itself loses to one. When c wins against all,
// e takes its invoke policy. A callee whose removal is on its way (a session of this
// router that no longer holds the registration, a remote one whose router said it
// left) is no party: the table drops it soon, and settling against it would revoke a
// callee for nothing or hide one. Caller holds st.reg.
func (s *Span) conflictLocked(st *realmState, ref regRef, e *regEntry, invoke string, c callee) (revoke []callee, lost bool) {
	key := regKey(st.name, ref.pol, ref.proc)
	rl := s.realmOf(st)
	for _, x := range e.callees {
		switch {
		case x.id == c.id || !s.standsLocked(st, rl, key, x):
		case !beats(key, c, x):
			lost = true
		case x.router == s.self:
			revoke = append(revoke, x)
		}
	}
	if !lost {
		e.invoke = invoke
	}
	return revoke, lost
}

// standsLocked reports whether callee x of registration key is still there as far as
// this router knows. Caller holds st.reg.
func (s *Span) standsLocked(st *realmState, rl *engine.Realm, key uint64, x callee) bool {
	if x.router != s.self {
		return !st.departedLocked(x.id)
	}
	if rl == nil {
		return false
	}
	cs, ok := rl.LocalSession(x.id)
	return ok && cs.HoldsRegistration(key)
}

// conflictGrace is how long a router waits before it revokes its callee that lost a
// conflict, and then only if the conflict still stands: the winner may be the stale entry
// of a router that died a moment ago (its death not yet seen here, the new owner already
// accepting a new callee), and revoking for it would leave the procedure with no callee.
// It exceeds the links' default dead_after (3 s), by which a dead router is noticed.
// A variable for tests only.
var conflictGrace = 5 * time.Second

// revokeLosers takes this router's callees that lost a conflict to winner off ref, after
// conflictGrace and if the conflict still stands then: each is told (UNREGISTERED, when
// it announced registration_revocation) and removed realm-wide. Called without st.reg
// held.
func (s *Span) revokeLosers(st *realmState, ref regRef, winner callee, losers []callee) {
	rl := s.realmOf(st)
	if rl == nil {
		return
	}
	for _, x := range losers {
		time.AfterFunc(conflictGrace, func() { s.revoke(rl, st, ref, winner, x) })
	}
}

// stillBeatenLocked reports whether callee x of ref still loses to winner: both in the
// table, both still there (the winner's router live, neither gone) and the winner
// ranking higher. Caller holds st.reg.
func (s *Span) stillBeatenLocked(st *realmState, rl *engine.Realm, ref regRef, winner, x callee) bool {
	e := st.table[ref]
	if e == nil {
		return false
	}
	has := func(c callee) bool {
		return slices.ContainsFunc(e.callees, func(y callee) bool { return y.id == c.id })
	}
	key := regKey(st.name, ref.pol, ref.proc)
	return has(winner) && has(x) && (winner.router == s.self || s.isLive(winner.router)) &&
		s.standsLocked(st, rl, key, winner) && s.standsLocked(st, rl, key, x) && beats(key, winner, x)
}

// revoke revokes callee x of this router if it still loses to winner.
func (s *Span) revoke(rl *engine.Realm, st *realmState, ref regRef, winner, x callee) {
	st.reg.Lock()
	beaten := s.stillBeatenLocked(st, rl, ref, winner, x)
	st.reg.Unlock()
	if !beaten {
		s.log.Info("span: registration conflict gone before it was settled", "realm", st.name,
			"procedure", ref.proc, "callee", x.id, "other", winner.id, "other_router", winner.router)
		return
	}
	s.log.Warn("span: conflicting registration revoked", "realm", st.name, "procedure", ref.proc,
		"revoked", x.id, "kept", winner.id, "kept_router", winner.router)
	key := regKey(st.name, ref.pol, ref.proc)
	if errURI, _ := rl.MetaPart(0, "wamp.registration.remove_callee", []any{key, x.id},
		map[string]any{"reason": ReasonRegistrationConflict}).(string); errURI != "" {
		s.log.Warn("span: conflicting registration not revoked", "realm", st.name,
			"procedure", ref.proc, "callee", x.id, "error", errURI)
		return
	}
	// The winner's ghost takes the procedure here at once, rather than when the
	// removal has come back from the owner: calls here meanwhile would get
	// no_such_procedure.
	s.reghost(st, rl, []regRef{ref})
}
