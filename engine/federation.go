package engine

import (
	"github.com/cespare/xxhash/v2"
	"github.com/switchyard-wamp/switchyard/codec"
	"github.com/switchyard-wamp/switchyard/engine/match"
)

// A realm may span several routers (package span): each router's engine holds the realm's
// local sessions, and a Federation, installed with Router.SetFederation, carries what the
// other routers need to know. The engine calls the Federation at a few points (a
// subscription appearing or disappearing, a PUBLISH after its local fan-out, a REGISTER
// before it is answered, a callee's answer for a remote caller) and offers entry points
// for what arrives from other routers (PublishRemote, ghost sessions for remote callees,
// SendRaw). The engine does not import the federation: it knows this interface only.

// Federation is implemented by package span. Every method must be safe for concurrent
// use and must not block (it may queue work); none is called while an engine lock that
// the Federation's own calls into the engine would take is held, except
// SubscriptionChanged (see there).
type Federation interface {
	// RealmAdded tells of a realm of the router: called once per realm present when the
	// federation is installed and for every realm created later (possibly twice for a
	// realm created concurrently with SetFederation).
	RealmAdded(rl *Realm)
	// SubscriptionChanged says that (topic, match policy) gained its first local
	// subscriber (present) or lost its last one. It is called under the realm's broker
	// lock so that the changes of one topic are reported in the order they happened:
	// it must only queue (no call back into the realm's broker).
	SubscriptionChanged(rl *Realm, topic string, pattern bool, kind match.Kind, present bool)
	// RemoteInterest reports whether another router has a subscription matching topic
	// (so that a meta event nobody here listens to is still published). Lock-free.
	RemoteInterest(rl *Realm, topic []byte) bool
	// HeldElsewhere reports whether another live router holds the subscription (topic,
	// match policy): on_create and on_delete are then not this router's to publish (the
	// realm's subscription existed before, or still exists).
	HeldElsewhere(rl *Realm, topic string, pattern bool, kind match.Kind) bool
	// AwaitInterest calls done (on another goroutine) once every other live router
	// knows of subscription subID, which this router just created; it reports false,
	// and never calls done, when there is nothing to wait for. SUBSCRIBED waits for it.
	AwaitInterest(rl *Realm, subID uint64, done func()) bool
	// Published is called after the local fan-out of a PUBLISH from a local session
	// (never for PublishRemote). p and everything it points to are valid only during
	// the call. On the publish path: it must not lock or allocate in steady state.
	Published(rl *Realm, p *Publication)
	// Register asks whether callee may register procedure under (pattern, kind) with
	// invocation policy invoke, realm-wide. The engine holds the session's later
	// messages until done is called with "" (accepted: the engine registers locally
	// and answers REGISTERED) or an error URI (refused). done must not be called before
	// Register has returned, and may be called from any goroutine.
	Register(rl *Realm, callee *Session, procedure string, pattern bool, kind match.Kind, invoke string, done func(errURI string))
	// Unregistered says that a local callee no longer holds (procedure, pattern, kind):
	// UNREGISTER, revocation, leaving, or an accepted claim the engine could not use.
	Unregistered(rl *Realm, callee *Session, procedure string, pattern bool, kind match.Kind)
	// CalleeLeft says that a local session that registered at some point has left the
	// realm, after its Unregistered calls.
	CalleeLeft(rl *Realm, callee *Session)
	// Answer carries a YIELD or ERROR(INVOCATION) of a local callee whose request id is
	// not one of the session's own INVOCATION ids (IsRemoteInvocation) to the router
	// whose ghost sent that INVOCATION. m is valid only during the call.
	Answer(callee *Session, m *codec.Message)
	// MetaQuery asks every other live router of the realm for its part of a meta
	// procedure that answers for the whole realm (session count/list/get/kill, the
	// subscription meta API, revocation): each computes Realm.MetaPart and the answers
	// come back, in any order, as the parts given to done. A router that does not answer
	// in time is left out. The engine holds the caller's later messages until done is
	// called; done must be called exactly once, not before MetaQuery has returned, from
	// any goroutine.
	MetaQuery(rl *Realm, caller *Session, procedure string, args []any, kwargs map[string]any, done func(parts []any))
	// SessionChanged says that a local session joined (true) or left (false) the realm,
	// so that the other routers know the realm's sessions (e.g. to publish on_leave for
	// the sessions of a router that died). Called off the routing path.
	SessionChanged(rl *Realm, s *Session, joined bool)
	// TestamentsChanged says that local session s added or flushed testaments
	// (Session.Testaments has them now), so that the other routers can publish them
	// should this router die with s. Called off the routing path.
	TestamentsChanged(rl *Realm, s *Session)
	// SubscriberChanged says that local session s was added to (true) or removed from
	// subscription sub; called after the subscription meta events, off the publish path.
	SubscriberChanged(rl *Realm, s *Session, sub uint64, added bool)
}

// Publication is one PUBLISH as it crosses to another router: what the receiving router
// needs to fan it out to its own subscribers exactly as the publishing router would have.
type Publication struct {
	// ID is the publication id (global scope) of the publisher's PUBLISHED and of every
	// EVENT, on every router.
	ID uint64
	// Publisher is the publishing session's id (0: the router itself, meta events).
	Publisher uint64
	// AuthID and AuthRole are the publisher's, for disclosure and black/whitelists.
	AuthID, AuthRole []byte
	// Serializer is the publisher's: Message's raw parts are encoded with it.
	Serializer codec.Serializer
	// Message is the PUBLISH (options, topic, payload).
	Message *codec.Message
	// ToAll: every router of the realm must get it, interest or not (retain=true, or a
	// topic with an event history rule), so that each keeps it.
	ToAll bool
	// Filtered: the PUBLISH has black- or whitelists (exclude, eligible and their authid
	// and authrole forms), which a receiving router applies to its own subscribers.
	Filtered bool

	sc *scratch // the publishing routine's, for AppendEvent
}

// fedBox holds the federation behind one atomic pointer.
type fedBox struct{ f Federation }

// SetFederation installs f (nil: none) for every realm of r, present and future. Safe for
// concurrent use; normally called once at start.
func (r *Router) SetFederation(f Federation) {
	if f == nil {
		r.fed.Store(nil)
		return
	}
	r.fed.Store(&fedBox{f})
	r.realms.Range(func(_ string, rl *Realm) bool { f.RealmAdded(rl); return true })
}

// federation returns the installed Federation or nil. Lock-free.
func (r *Router) federation() Federation {
	if b := r.fed.Load(); b != nil {
		return b.f
	}
	return nil
}

// FedState returns what the federation attached to the realm with SetFedState (nil:
// nothing). Safe for concurrent use; lock-free.
func (rl *Realm) FedState() any { return rl.fedState.Load() }

// SetFedState attaches v to the realm for the federation's own use (its per-realm
// tables). Safe for concurrent use. v must always be of the same concrete type.
func (rl *Realm) SetFedState(v any) { rl.fedState.Store(v) }

// SubscriptionID is the id of the subscription to (topic, match policy) in realm: a hash,
// so that it is the same on every router. policy is "exact", "prefix" or "wildcard".
func SubscriptionID(realm, policy, topic string) uint64 { return entityID("s", realm, policy, topic) }

// RegistrationID is the id of the registration of (procedure, match policy) in realm,
// the same on every router.
func RegistrationID(realm, policy, procedure string) uint64 {
	return entityID("r", realm, policy, procedure)
}

// entityID hashes its parts (separated by a NUL, which URIs never contain) into [1, 2^53].
func entityID(parts ...string) uint64 {
	d := xxhash.New()
	for i, p := range parts {
		if i > 0 {
			_, _ = d.Write([]byte{0})
		}
		_, _ = d.WriteString(p)
	}
	return d.Sum64()%maxID + 1
}

// PolicyName is the match policy's name: "exact" (pattern false), "prefix" or "wildcard".
func PolicyName(pattern bool, kind match.Kind) string { return policyName(pattern, kind) }

// Session-scope INVOCATION ids are split between a session's own router and the ghosts of
// the session on other routers: the home router's ids stay below 2^InvocationTagShift and
// a ghost's ids carry its router's tag (1..MaxRouterTag) above that, so the home router
// knows from the id alone where a YIELD goes.
const (
	InvocationTagShift = 45
	MaxRouterTag       = maxID>>InvocationTagShift - 1
	localInvMask       = 1<<InvocationTagShift - 1
)

// IsRemoteInvocation reports whether an INVOCATION id was handed out by a ghost on another
// router, and the tag of that router.
func IsRemoteInvocation(id uint64) (tag uint64, ok bool) {
	if id <= localInvMask {
		return 0, false
	}
	return id >> InvocationTagShift, true
}

// nextInv returns the callee's next INVOCATION id: a sequence in [1, 2^45) with the
// session's tag bits (0 for a local session) above it.
func (s *Session) nextInv() uint64 {
	return s.invBase | (s.invIDs.next()%localInvMask + 1)
}

// rangeCallees calls f for every session that may hold calls in flight: the realm's
// sessions and its ghosts, until f returns false.
func (rl *Realm) rangeCallees(f func(*Session) bool) {
	cont := true
	rl.sessions.Range(func(_ uint64, s *Session) bool { cont = f(s); return cont })
	if cont {
		rl.ghosts.Range(func(_ uint64, s *Session) bool { return f(s) })
	}
}
