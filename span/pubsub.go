package span

import (
	"fmt"
	"math/bits"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/puzpuzpuz/xsync/v3"
	"github.com/switchyard-wamp/switchyard/codec"
	"github.com/switchyard-wamp/switchyard/engine"
	"github.com/switchyard-wamp/switchyard/engine/match"
)

// realmState is what a Span keeps about one realm: the other routers' interest (which
// topics and patterns they subscribe to) and the realm-wide registrations.
type realmState struct {
	name string
	rl   atomic.Pointer[engine.Realm]

	// mu orders interest writers; readers (PUBLISH) never lock.
	mu sync.Mutex
	// exact maps xxhash(topic) to the routers (bitmask) subscribed to topic exactly.
	exact *xsync.MapOf[uint64, *exactBucket]
	// patterns holds the prefix and wildcard interest, one value per (pattern, kind).
	patterns  *match.Tree[*patternInterest]
	byPattern map[patKey]*patternInterest // guarded by mu

	// reg guards the registration table, the owner's queues and the tombstones.
	reg   sync.Mutex
	table map[regRef]*regEntry
	// removed remembers the callees the table dropped on a reg-del or unclaim, for
	// tombstoneTTL, so that a resync sent before the removal and arriving after it (its
	// sender is the callee's router, the removal's the owner) does not bring one back.
	removed map[calleeRef]tombstone
	// gone remembers the callees whose router said they left (KindGone), for
	// tombstoneTTL, so that a broadcast of their registration arriving after that (the
	// owner's, on another key) makes no ghost of them; swept at most once a second.
	gone      map[uint64]time.Time
	goneSwept time.Time
	// resetRegs are the registrations a reset of a router dropped from its callees'
	// ghosts without meta events, by router, until its resync ends (resetRegsOf).
	resetRegs map[string][]droppedReg
	// ghosts are the peers of this realm's ghosts, by callee id.
	ghosts *xsync.MapOf[uint64, *ghostPeer]

	// sessMu guards sessions: the sessions of the other routers, as they announce them.
	sessMu   sync.Mutex
	sessions map[uint64]*remoteSession
}

func newRealmState(name string) *realmState {
	return &realmState{name: name, exact: xsync.NewMapOf[uint64, *exactBucket](),
		patterns: match.New[*patternInterest](), byPattern: map[patKey]*patternInterest{},
		table: map[regRef]*regEntry{}, removed: map[calleeRef]tombstone{}, gone: map[uint64]time.Time{}, ghosts: xsync.NewMapOf[uint64, *ghostPeer](),
		sessions: map[uint64]*remoteSession{}}
}

// exactBucket holds the exact interest of the topics sharing one xxhash; immutable.
type exactBucket struct{ entries []exactInterest }

type exactInterest struct {
	topic string
	mask  uint64
	id    uint64 // the subscription's id (engine.SubscriptionID)
}

type patKey struct {
	pattern string
	kind    match.Kind
}

// patternInterest is the routers interested in one pattern.
type patternInterest struct {
	mask atomic.Uint64
	id   uint64 // the subscription's id (engine.SubscriptionID)
}

// setInterest adds (or removes) router bit b's interest in (topic, policy).
func (st *realmState) setInterest(topic string, pattern bool, kind match.Kind, b int, add bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	bit := uint64(1) << b
	if pattern {
		k := patKey{topic, kind}
		pi := st.byPattern[k]
		if pi == nil {
			if !add {
				return
			}
			pi = &patternInterest{id: engine.SubscriptionID(st.name, engine.PolicyName(true, kind), topic)}
			st.byPattern[k] = pi
			pi.mask.Store(bit)
			st.patterns.Insert(topic, kind, pi)
			return
		}
		if add {
			pi.mask.Store(pi.mask.Load() | bit)
			return
		}
		if m := pi.mask.Load() &^ bit; m != 0 {
			pi.mask.Store(m)
			return
		}
		pi.mask.Store(0)
		delete(st.byPattern, k)
		st.patterns.Remove(topic, kind, pi)
		return
	}
	h := xxhash.Sum64String(topic)
	var entries []exactInterest
	found := false
	if old, ok := st.exact.Load(h); ok {
		for _, e := range old.entries {
			if e.topic == topic {
				found = true
				if add {
					e.mask |= bit
				} else {
					e.mask &^= bit
				}
				if e.mask == 0 {
					continue
				}
			}
			entries = append(entries, e)
		}
	}
	if !found && add {
		entries = append(entries, exactInterest{topic: topic, mask: bit,
			id: engine.SubscriptionID(st.name, engine.PolicyName(false, 0), topic)})
	}
	if len(entries) == 0 {
		st.exact.Delete(h)
		return
	}
	st.exact.Store(h, &exactBucket{entries: entries})
}

// dropInterest removes router bit b from every interest (the router is down).
func (st *realmState) dropInterest(b int) {
	var topics []string
	st.exact.Range(func(_ uint64, bk *exactBucket) bool {
		for _, e := range bk.entries {
			if e.mask&(1<<b) != 0 {
				topics = append(topics, e.topic)
			}
		}
		return true
	})
	for _, t := range topics {
		st.setInterest(t, false, 0, b, false)
	}
	st.mu.Lock()
	var pats []patKey
	for k, pi := range st.byPattern {
		if pi.mask.Load()&(1<<b) != 0 {
			pats = append(pats, k)
		}
	}
	st.mu.Unlock()
	for _, k := range pats {
		st.setInterest(k.pattern, true, k.kind, b, false)
	}
}

// matchPool holds the pattern match buffers of interest lookups.
var matchPool = sync.Pool{New: func() any { s := make([]match.Match[*patternInterest], 0, 8); return &s }}

// interest returns the routers (bitmask) with a subscription matching topic. Lock-free;
// O(URI depth) for patterns.
func (st *realmState) interest(topic []byte) uint64 { return st.matchInterest(topic, nil) }

// interestHit is one subscription of other routers that matches a topic.
type interestHit struct {
	id      uint64 // the subscription's id
	pattern bool   // a prefix or wildcard subscription
	mask    uint64 // the routers that hold it
}

// matchInterest returns the routers (bitmask) with a subscription matching topic and,
// when hits is not nil, appends each matching subscription to it. Lock-free; O(URI
// depth) for patterns; no allocation beyond hits' growth.
func (st *realmState) matchInterest(topic []byte, hits *[]interestHit) uint64 {
	var mask uint64
	if bk, ok := st.exact.Load(xxhash.Sum64(topic)); ok {
		for i := range bk.entries {
			if e := &bk.entries[i]; e.topic == string(topic) {
				mask |= e.mask
				if hits != nil {
					*hits = append(*hits, interestHit{id: e.id, mask: e.mask})
				}
			}
		}
	}
	if st.patterns.Len() > 0 {
		bp := matchPool.Get().(*[]match.Match[*patternInterest])
		ms := st.patterns.AppendMatches((*bp)[:0], topic)
		for i := range ms {
			pi := ms[i].Value
			m := pi.mask.Load()
			mask |= m
			if hits != nil && m != 0 {
				*hits = append(*hits, interestHit{id: pi.id, pattern: true, mask: m})
			}
		}
		clear(ms)
		*bp = ms[:0]
		matchPool.Put(bp)
	}
	return mask
}

// HeldElsewhere implements engine.Federation: whether another router has announced
// interest in exactly (topic, policy).
func (s *Span) HeldElsewhere(rl *engine.Realm, topic string, pattern bool, kind match.Kind) bool {
	st := s.fedState(rl)
	live := s.live.Load().others
	if pattern {
		st.mu.Lock()
		pi := st.byPattern[patKey{topic, kind}]
		st.mu.Unlock()
		return pi != nil && pi.mask.Load()&live != 0
	}
	if bk, ok := st.exact.Load(xxhash.Sum64String(topic)); ok {
		for _, e := range bk.entries {
			if e.topic == topic && e.mask&live != 0 {
				return true
			}
		}
	}
	return false
}

// AwaitInterest implements engine.Federation: done runs once every other live router
// has handled the interest announcement of subscription subID (a barrier that follows it
// on the same key), so that a PUBLISH anywhere after SUBSCRIBED reaches the new
// subscriber. It reports false, and never calls done, when no other router is live.
func (s *Span) AwaitInterest(rl *engine.Realm, subID uint64, done func()) bool {
	w := &ackWait{barrier: done}
	for _, n := range s.live.Load().names {
		if n != s.self {
			w.wait = append(w.wait, n)
		}
	}
	if len(w.wait) == 0 {
		return false
	}
	s.startWait(w, "subscribe barrier", subID, KindBarrier, func(id uint64) []byte { return appendUvarint(nil, id) })
	return true
}

// barrierTimeout bounds a barrier's wait: an answer lost with a link that failed while
// the router stayed up (its other links) would otherwise hold SUBSCRIBED for good. A
// variable for tests only.
var barrierTimeout = 5 * time.Second

// giveUp ends ack wait id if it still waits, as if the routers it waits for had
// answered, and logs them.
func (s *Span) giveUp(id uint64, what string, after time.Duration) {
	var rest []string
	s.acks.Compute(id, func(w *ackWait, loaded bool) (*ackWait, bool) {
		if !loaded {
			return nil, true
		}
		rest = slices.Clone(w.wait)
		return w, false
	})
	if len(rest) == 0 {
		return
	}
	s.log.Warn("span: no answer in time, going on", "wait", what, "routers", rest, "after", after)
	for _, n := range rest {
		s.onAck(n, id)
	}
}

// SubscriptionChanged implements engine.Federation: tell every other live router.
func (s *Span) SubscriptionChanged(rl *engine.Realm, topic string, pattern bool, kind match.Kind, present bool) {
	pol := policyByte(pattern, kind)
	name := rl.Name()
	s.others(func(to string) { s.sendInterest(to, name, topic, pol, present) })
}

func (s *Span) sendInterest(to, realm, topic string, pol byte, add bool) {
	var a byte
	if add {
		a = 1
	}
	b := append(make([]byte, 0, 8+len(realm)+len(topic)), a)
	b = appendString(b, realm)
	b = append(b, pol)
	b = appendString(b, topic)
	s.send(to, engine.SubscriptionID(realm, policyName(pol), topic), KindInterest, b)
}

func (s *Span) onInterest(from string, r *reader) error {
	add := r.byte1() == 1
	realm := r.bytes()
	pol := r.byte1()
	topic := r.string()
	if r.err != nil {
		return r.err
	}
	s.mu.Lock()
	b := s.bitOf(from, nil)
	s.mu.Unlock()
	if b < 0 {
		return fmt.Errorf("no interest bit for router %s", from)
	}
	pattern, kind := policyOf(pol)
	s.stateBytes(realm).setInterest(topic, pattern, kind, b, add)
	return nil
}

// RemoteInterest implements engine.Federation.
func (s *Span) RemoteInterest(rl *engine.Realm, topic []byte) bool {
	return s.fedState(rl).interest(topic)&s.live.Load().others != 0
}

// Published implements engine.Federation: forward the publication once to each live
// router with matching interest, as the EVENTs of the subscriptions it holds when it is
// plain (forwardEvents), or as the PUBLISH when the receiving router must apply black- or
// whitelists, or keep it (then every live router gets it).
func (s *Span) Published(rl *engine.Realm, p *engine.Publication) {
	others := s.live.Load().others
	if others == 0 {
		return
	}
	if !p.ToAll && !p.Filtered {
		s.forwardEvents(rl, p, others)
		return
	}
	mask := others
	if !p.ToAll {
		mask &= s.fedState(rl).interest(p.Message.URI)
		if mask == 0 {
			return
		}
	}
	bp := bufPool.Get().(*[]byte)
	b := appendString((*bp)[:0], rl.Name())
	b = appendUvarint(b, p.ID)
	b = appendUvarint(b, p.Publisher)
	b = appendBytes(b, p.AuthID)
	b = appendBytes(b, p.AuthRole)
	b = append(b, byte(p.Serializer))
	msg := p.Message
	if msg.Details.DiscloseMe && msg.Dict != nil {
		// Disclosure may have been forced by the publisher's role (engine/authorize.go),
		// which the raw options do not say: encode the options from the decoded keys.
		cp := *msg
		cp.Dict = nil
		msg = &cp
	}
	b, err := codec.For(p.Serializer).Append(b, msg)
	if err != nil {
		s.log.Warn("span: publish encode failed", "realm", rl.Name(), "err", err)
	} else {
		for mask != 0 {
			i := bits.TrailingZeros64(mask)
			mask &^= 1 << i
			if n := s.names[i].Load(); n != nil {
				s.send(*n, p.Publisher, KindPublish, b)
			}
		}
	}
	*bp = b[:0]
	bufPool.Put(bp)
}

func (s *Span) onPublish(r *reader) error {
	realm := r.bytes()
	var p engine.Publication
	p.ID = r.uvarint()
	p.Publisher = r.uvarint()
	p.AuthID = r.bytes()
	p.AuthRole = r.bytes()
	p.Serializer = codec.Serializer(r.byte1())
	raw := r.rest()
	if r.err != nil {
		return r.err
	}
	st := s.stateBytes(realm)
	rl := s.realmOf(st)
	if rl == nil {
		return fmt.Errorf("publish for realm %s, unknown here", st.name)
	}
	c, err := codecOf(p.Serializer)
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	m := msgPool.Get().(*codec.Message)
	defer msgPool.Put(m)
	if err := c.Decode(raw, m); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	if m.Type != codec.PUBLISH {
		return fmt.Errorf("publish carries %s", m.Type)
	}
	p.Message = m
	rl.PublishRemote(&p)
	return nil
}
