package span

import (
	"fmt"
	"github.com/switchyard-wamp/switchyard/internal/hashmix"
	"log/slog"
	"math/bits"
	"math/rand/v2"

	"github.com/switchyard-wamp/switchyard/engine/match"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"
	"github.com/puzpuzpuz/xsync/v3"
	"github.com/switchyard-wamp/switchyard/engine"
)

// Transport carries span messages between routers (package link, or a loopback in
// tests).
type Transport interface {
	// Send queues payload (copied) for router `to`; messages with the same key between
	// the same two routers arrive in order. Never blocks, and never calls OnMessage of
	// any Span before it returns. An error means `to` is unreachable.
	Send(to string, key uint64, kind Kind, payload []byte) error
}

// Laned is implemented by a Transport whose messages to a router go over several
// lanes (links), each in order, key k on lane k mod Lanes(to) while it is up. A barrier
// answer then goes on every lane, so that it comes after everything sent before it
// whatever its key (an earlier forwarded PUBLISH, say). A Transport without it has one
// lane.
type Laned interface {
	Lanes(to string) int
}

// MaxRouters is the number of routers one Span can tell apart (interest is a bitmask).
const MaxRouters = 64

// Span makes the realms of one engine.Router part of realms spanning several routers.
// All methods are safe for concurrent use.
type Span struct {
	self string
	r    *engine.Router
	t    Transport
	log  *slog.Logger

	// mu guards membership changes (SetRouters, RouterDown) and the name index.
	mu sync.Mutex
	// bit gives each router name seen its interest bit; guarded by mu. A bit is reused
	// only once all are given, from a router that is not live (reclaimBit).
	bit map[string]int
	// names[i] is the router of bit i; written under mu before the bit is published.
	names [MaxRouters]atomic.Pointer[string]
	// live is the current membership; replaced under mu, read lock-free.
	live atomic.Pointer[members]
	// deferred maps a router that asked for our state before we counted it live to its
	// request's nonce; guarded by mu. SetRouters answers it when the router joins.
	deferred map[string]uint64
	// tag is this router's INVOCATION id tag, fixed by the first SetRouters.
	tag atomic.Uint64
	// tags maps the tag of another router (learned from its KindInvoke messages) to its
	// name, for answers.
	tags [engine.MaxRouterTag + 1]atomic.Pointer[string]

	// realms holds the per-realm state by realm name (copy on write under realmsMu).
	realmsMu sync.Mutex
	realms   atomic.Pointer[map[string]*realmState]

	// RPC: claims of our callees waiting for their owner's answer, and the owner's
	// broadcasts waiting for acks.
	claimSeq atomic.Uint64
	claims   *xsync.MapOf[uint64, *claim]
	ackSeq   atomic.Uint64
	acks     *xsync.MapOf[uint64, *ackWait]

	// gate holds the claims this router would decide as an owner while a resync is
	// incomplete (sync.go).
	gate syncGate
	// epoch is this incarnation's random id, sent with every resync request; epochs
	// are the other routers' as last seen, by name (guarded by epochMu): a new one
	// means that router restarted (sync.go, newIncarnation).
	epoch   uint64
	epochMu sync.Mutex
	epochs  map[string]uint64

	// Meta: realm-wide queries waiting for replies, and how long they wait.
	querySeq     atomic.Uint64
	queries      *xsync.MapOf[uint64, *query]
	queryTimeout atomic.Int64
	// inflight are the INVOCATIONs that ghosts on other routers sent to our callees and
	// that are not answered yet, so that a router's death can interrupt them.
	inflight *xsync.MapOf[invRef, invFrom]
}

// members is one membership: the live routers (sorted, self included), their hashes for
// rendezvous, and the interest bits of the live routers other than self.
type members struct {
	names  []string
	hashes []uint64
	others uint64
}

// New returns the Span of router self over transport t and installs it as r's
// federation (every realm of r, present and future). A nil log means slog.Default().
func New(self string, r *engine.Router, t Transport, log *slog.Logger) *Span {
	if log == nil {
		log = slog.Default()
	}
	s := &Span{self: self, r: r, t: t, log: log.With("router", self), bit: map[string]int{},
		claims: xsync.NewMapOf[uint64, *claim](), acks: xsync.NewMapOf[uint64, *ackWait](),
		queries: xsync.NewMapOf[uint64, *query](), inflight: xsync.NewMapOf[invRef, invFrom](),
		epoch: rand.Uint64() | 1, epochs: map[string]uint64{}}
	s.queryTimeout.Store(int64(DefaultQueryTimeout))
	empty := map[string]*realmState{}
	s.realms.Store(&empty)
	s.bitOf(self, nil)
	s.live.Store(&members{names: []string{self}, hashes: []uint64{xxhash.Sum64String(self)}})
	r.SetFederation(s)
	return s
}

// Self returns this router's name.
func (s *Span) Self() string { return s.self }

// Tag returns this router's INVOCATION id tag (1..engine.MaxRouterTag): 1 + the
// position of its name among the sorted names of the first SetRouters call.
func (s *Span) Tag() uint64 {
	if t := s.tag.Load(); t != 0 {
		return t
	}
	return 1
}

// bitOf returns name's interest bit, giving it one when new (reclaiming the bit of a
// router that is not live, and not in keep, once all are given); -1 when none is
// free. Caller holds mu (or is New).
func (s *Span) bitOf(name string, keep []string) int {
	if b, ok := s.bit[name]; ok {
		return b
	}
	b := len(s.bit)
	if b >= MaxRouters {
		if b = s.reclaimBit(keep); b < 0 {
			return -1
		}
	}
	s.bit[name] = b
	n := name
	s.names[b].Store(&n)
	return b
}

// reclaimBit frees the interest bit of a router that is neither self, live, nor in
// keep, after dropping what interest is still recorded under it: a long-lived router
// sees more than MaxRouters router names over its life when routers come and go under
// new names (a master's map). -1 when every bit belongs to a router that counts.
// Caller holds mu. A router whose bit went and that comes back gets another one and
// is resynced as any router seen again.
func (s *Span) reclaimBit(keep []string) int {
	live := s.live.Load()
	for name, b := range s.bit {
		if name == s.self || slices.Contains(live.names, name) || slices.Contains(keep, name) {
			continue
		}
		for _, st := range *s.realms.Load() {
			st.dropInterest(b)
		}
		delete(s.bit, name)
		s.log.Info("span: interest bit of a router gone reused", "gone", name, "bit", b)
		return b
	}
	return -1
}

// FixTag fixes this router's INVOCATION id tag from the cluster's full, static list of
// routers (1 + its position among the sorted names), before the first SetRouters: the
// live set at start differs from router to router, the configured list does not. It
// has no effect once the tag is fixed. Safe for concurrent use.
func (s *Span) FixTag(all []string) {
	names := slices.Clone(all)
	if !slices.Contains(names, s.self) {
		names = append(names, s.self)
	}
	slices.Sort(names)
	names = slices.Compact(names)
	tag := min(uint64(slices.Index(names, s.self)+1), engine.MaxRouterTag)
	s.tag.CompareAndSwap(0, tag)
}

// SetTag fixes this router's INVOCATION id tag to tag (1..engine.MaxRouterTag) as given
// from outside: the master hands every router a stable tag with its map (MapRouter.Tag),
// unique among the routers it knows, so routers that join later than others still never
// collide. Call it before the first SetRouters; it has no effect once the tag is fixed,
// and reports whether it took. Safe for concurrent use.
func (s *Span) SetTag(tag uint64) bool {
	if tag < 1 || tag > engine.MaxRouterTag {
		s.log.Error("span: router tag out of range, ignored", "tag", tag, "max", engine.MaxRouterTag)
		return false
	}
	return s.tag.CompareAndSwap(0, tag)
}

// SetRouters sets the live routers (self included or not: self always counts). A router
// not live before gets a full resync of our state: the interest of our subscriptions
// and our callees' registrations. The first call also fixes this router's tag.
func (s *Span) SetRouters(names []string) {
	s.mu.Lock()
	all := slices.Clone(names)
	if !slices.Contains(all, s.self) {
		all = append(all, s.self)
	}
	slices.Sort(all)
	all = slices.Compact(all)
	if s.tag.Load() == 0 {
		tag := uint64(slices.Index(all, s.self) + 1)
		if tag > engine.MaxRouterTag {
			s.log.Error("span: too many routers for invocation tags", "routers", len(all))
			tag = engine.MaxRouterTag
		}
		s.tag.Store(tag)
	}
	old := s.live.Load()
	m := &members{names: all}
	var fresh []string
	for _, n := range all {
		m.hashes = append(m.hashes, xxhash.Sum64String(n))
		if n == s.self {
			continue
		}
		b := s.bitOf(n, all)
		if b < 0 {
			s.log.Error("span: too many routers, ignoring one", "name", n, "max", MaxRouters)
			continue
		}
		m.others |= 1 << b
		if !slices.Contains(old.names, n) {
			fresh = append(fresh, n)
		}
	}
	// Claims wait (the resync gate, sync.go) from before a fresh router can be an
	// owner or a callee's router until its state is here.
	nonces := make([]uint64, len(fresh))
	asked := make([]uint64, len(fresh)) // nonces of its requests answerResync deferred
	for i, n := range fresh {
		nonces[i] = s.expectSync(n)
		asked[i] = s.deferred[n]
		delete(s.deferred, n)
	}
	s.live.Store(m)
	s.mu.Unlock()
	for i, n := range fresh {
		s.resync(n)
		if asked[i] != 0 {
			s.everyLane(n, KindSynced, asked[i])
		}
		// It may not have seen us go: ask for its state too, in case we dropped it.
		s.send(n, 0, KindResync, appendUvarint(appendUvarint(nil, nonces[i]), s.epoch))
	}
}

// RouterDown drops router name: its interest and its callees' registrations go (with
// the registration meta events published to our subscribers), calls in flight to its
// callees end with an ERROR at once, and claims waiting for it as owner go to the new
// owner. Safe for concurrent use.
func (s *Span) RouterDown(name string) { s.routerDown(name, true) }

// RouterReset is RouterDown for a router that is still there but may have lost
// messages to or from us (one of the pair's links failed): its state goes and what
// waits on it ends in the same way, but no meta event says its sessions left or its
// callees unregistered, since they did not; the caller then lists it in SetRouters
// again, and the resync both ways brings its state back. Safe for concurrent use.
func (s *Span) RouterReset(name string) { s.routerDown(name, false) }

// routerDown is RouterDown, with the meta events of the dead router's sessions and
// callees published to our subscribers when meta is set.
func (s *Span) routerDown(name string, meta bool) {
	if name == s.self {
		return
	}
	if !meta {
		s.holdSync(name) // claims wait until it is back and resynced
	} else {
		defer s.syncDropped(name)
	}
	s.mu.Lock()
	old := s.live.Load()
	m := &members{}
	for i, n := range old.names {
		if n != name {
			m.names = append(m.names, n)
			m.hashes = append(m.hashes, old.hashes[i])
		}
	}
	b, known := s.bit[name]
	m.others = old.others
	if known {
		m.others &^= 1 << b
	}
	s.live.Store(m)
	s.mu.Unlock()
	if meta {
		s.epochMu.Lock()
		delete(s.epochs, name) // its next incarnation starts afresh
		s.epochMu.Unlock()
	}
	for _, st := range *s.realms.Load() {
		if known {
			st.dropInterest(b)
		}
		s.dropRouterCallees(st, name, meta)
		s.dropRouterSessions(st, name, meta)
	}
	s.routerDownRPC(name)
	s.routerDownMeta(name, !meta)
}

// live returns the names of the live routers other than self, by interest bit mask.
func (s *Span) eachOf(mask uint64, f func(name string)) {
	for mask != 0 {
		b := bits.TrailingZeros64(mask)
		mask &^= 1 << b
		if n := s.names[b].Load(); n != nil {
			f(*n)
		}
	}
}

// others calls f for every live router other than self.
func (s *Span) others(f func(name string)) { s.eachOf(s.live.Load().others, f) }

// isLive reports whether name is a live router.
func (s *Span) isLive(name string) bool { return slices.Contains(s.live.Load().names, name) }

// owner is the decision point of a registration key: the live router with the highest
// rendezvous weight for it.
func (s *Span) owner(key uint64) string {
	m := s.live.Load()
	best, bestW := s.self, uint64(0)
	for i, n := range m.names {
		if w := weight(key, m.hashes[i]); i == 0 || w > bestW {
			best, bestW = n, w
		}
	}
	return best
}

// weight is the rendezvous weight of the router whose name hashes (xxhash) to h for key:
// the highest owns a registration (owner) and keeps it in a conflict (beats).
func weight(key, h uint64) uint64 { return hashmix.Mix64(key ^ h) }

// send queues a message; a failure is logged (the link layer reports the router down).
func (s *Span) send(to string, key uint64, kind Kind, payload []byte) bool {
	if err := s.t.Send(to, key, kind, payload); err != nil {
		s.log.Warn("span: send failed", "to", to, "kind", kind.String(), "err", err)
		return false
	}
	return true
}

// everyLane sends kind with id on every lane to router `to` (Laned), each message
// saying how many there are, so that the receiver knows it has everything sent before
// on any key once the last one comes: a barrier's answer (KindRegAck), a resync's end
// (KindSynced).
func (s *Span) everyLane(to string, kind Kind, id uint64) {
	n := 1
	if l, ok := s.t.(Laned); ok {
		n = max(1, min(l.Lanes(to), 64))
	}
	payload := appendUvarint(appendUvarint(nil, id), uint64(n))
	for k := range n {
		s.send(to, uint64(k), kind, payload)
	}
}

// state returns the per-realm state of realm name, making it when new.
func (s *Span) state(name string) *realmState {
	if st, ok := (*s.realms.Load())[name]; ok {
		return st
	}
	s.realmsMu.Lock()
	defer s.realmsMu.Unlock()
	cur := *s.realms.Load()
	if st, ok := cur[name]; ok {
		return st
	}
	st := newRealmState(name)
	next := make(map[string]*realmState, len(cur)+1)
	for k, v := range cur {
		next[k] = v
	}
	next[name] = st
	s.realms.Store(&next)
	return st
}

// stateBytes is state for a realm name read from a payload (no allocation when known).
func (s *Span) stateBytes(name []byte) *realmState {
	if st, ok := (*s.realms.Load())[string(name)]; ok {
		return st
	}
	return s.state(string(name))
}

// realmOf returns st's engine realm, or nil when this router does not have it.
func (s *Span) realmOf(st *realmState) *engine.Realm {
	if rl := st.rl.Load(); rl != nil {
		return rl
	}
	rl, ok := s.r.Realm(st.name)
	if !ok {
		return nil
	}
	st.rl.Store(rl)
	return rl
}

// RealmAdded implements engine.Federation.
func (s *Span) RealmAdded(rl *engine.Realm) {
	st := s.state(rl.Name())
	st.rl.Store(rl)
	rl.SetFedState(st)
}

// fedState returns the realm's state (set by RealmAdded).
func (s *Span) fedState(rl *engine.Realm) *realmState {
	if st, ok := rl.FedState().(*realmState); ok {
		return st
	}
	s.RealmAdded(rl)
	return rl.FedState().(*realmState)
}

// resync sends router `to` our whole state: the interest of every local subscription
// and every local callee's registrations.
func (s *Span) resync(to string) {
	for _, name := range s.r.RealmNames() {
		rl, ok := s.r.Realm(name)
		if !ok {
			continue
		}
		rl.LocalSubscriptions(func(topic string, pattern bool, kind match.Kind) {
			s.sendInterest(to, name, topic, policyByte(pattern, kind), true)
		})
		s.resyncSessions(to, rl)
		rl.LocalRegistrations(func(c *engine.Session, procedure string, pattern bool, kind match.Kind, invoke string) {
			pol := policyByte(pattern, kind)
			ce := calleeOf(c, s.self)
			s.send(to, regKey(name, pol, procedure), KindRegAdd, appendRegAdd(nil, 0, name, pol, procedure, invoke, &ce))
		})
	}
}

// OnMessage handles one message from router `from`; payload is valid during the call.
// Messages of one key from one router must be passed in order; others may be passed
// concurrently.
func (s *Span) OnMessage(from string, kind Kind, payload []byte) {
	r := reader{b: payload}
	var err error
	switch kind {
	case KindInterest:
		err = s.onInterest(from, &r)
	case KindResync:
		var nonce, epoch uint64
		if len(r.b) > 0 {
			nonce = r.uvarint()
		}
		if len(r.b) > 0 {
			epoch = r.uvarint()
		}
		if err = r.err; err == nil {
			s.answerResync(from, nonce, epoch)
		}
	case KindSynced:
		nonce, lanes := r.uvarint(), r.uvarint()
		if err = r.err; err == nil {
			s.onSynced(from, nonce, int(min(max(lanes, 1), 64)))
		}
	case KindPublish:
		err = s.onPublish(&r)
	case KindEvents:
		err = s.onEvents(&r)
	case KindClaim:
		err = s.onClaim(from, &r)
	case KindClaimAnswer:
		err = s.onClaimAnswer(&r)
	case KindRegAdd:
		err = s.onRegAdd(from, &r)
	case KindRegAck:
		id, lanes := r.uvarint(), uint64(1)
		if len(r.b) > 0 {
			lanes = r.uvarint() // a barrier's answer on every lane: wait for all
		}
		if err = r.err; err == nil {
			s.onAckN(from, id, int(min(lanes, 64)))
		}
	case KindBarrier:
		id := r.uvarint()
		if len(r.b) > 0 {
			// A probe (rpc.go): the answer goes on the key it names.
			key := r.uvarint()
			if err = r.err; err == nil {
				s.send(from, key, KindRegAck, appendUvarint(nil, id))
			}
			break
		}
		if err = r.err; err == nil {
			s.everyLane(from, KindRegAck, id)
		}
	case KindUnclaim:
		err = s.onUnclaim(&r)
	case KindRegDel:
		err = s.onRegDel(&r)
	case KindInvoke:
		err = s.onInvoke(from, &r)
	case KindAnswer:
		err = s.onAnswer(&r)
	case KindGone:
		err = s.onGone(&r)
	case KindQuery:
		err = s.onQuery(from, &r)
	case KindReply:
		err = s.onReply(from, &r)
	case KindSession:
		err = s.onSession(from, &r)
	case KindSubscriber:
		err = s.onSubscriber(from, &r)
	case KindTestaments:
		err = s.onTestaments(from, &r)
	default:
		err = fmt.Errorf("unknown kind %d", kind)
	}
	if err != nil {
		s.log.Warn("span: bad message", "from", from, "kind", kind.String(), "err", err)
	}
}
