package engine

import (
	"sync/atomic"
	"time"

	"github.com/puzpuzpuz/xsync/v3"
	"github.com/switchyard-wamp/switchyard/codec"
	"github.com/switchyard-wamp/switchyard/engine/match"
)

// subscription is one (topic or pattern, match policy) subscription (router scope ID)
// and its subscribers.
type subscription struct {
	id      uint64
	topic   string
	created time.Time
	// pattern is false for exact subscriptions; kind is the match policy otherwise.
	pattern bool
	kind    match.Kind
	// subscribers is an immutable snapshot, replaced on every change (copy on write)
	// under the broker table's mutex; PUBLISH only loads it.
	subscribers atomic.Pointer[[]*Session]
	// pending: in a cluster, from the subscription's creation until the other routers
	// know of it (Federation.AwaitInterest). Its subscribers have no SUBSCRIBED yet (it
	// waits for that too), so no EVENT goes to them: a client rejects an EVENT for a
	// subscription it has not been told of, and on one node nothing published before
	// SUBSCRIBED reaches the new subscriber either.
	pending atomic.Bool
}

func (s *subscription) entryURI() string { return s.topic }

// patternKey names a pattern subscription in broker.byPattern.
type patternKey struct {
	pattern string
	kind    match.Kind
}

// broker holds a realm's subscriptions: exact ones by topic (O(1) lookup) and pattern
// ones (prefix, wildcard) in a token tree whose cost grows with the URI's depth, not
// with the number of subscriptions.
type broker struct {
	subs     *uriTable[*subscription]
	patterns *match.Tree[*subscription]
	// byPattern finds the subscription of a (pattern, kind); guarded by subs.mu.
	byPattern map[patternKey]*subscription
	// byID finds a subscription by its id, lock-free, for the EVENTs another router
	// encodes (DeliverEvent); written under subs.mu.
	byID     *xsync.MapOf[uint64, *subscription]
	retained *retainedStore
	history  *historyStore
}

func newBroker() *broker {
	return &broker{subs: newURITable[*subscription](), patterns: match.New[*subscription](),
		byPattern: map[patternKey]*subscription{}, byID: xsync.NewMapOf[uint64, *subscription](), retained: newRetainedStore(), history: newHistoryStore()}
}

// add subscribes s to topic under the match policy (exact when !pattern) and returns the
// subscription and whether s was newly added (false: s already held it, the spec says
// to answer with the same ID).
func (b *broker) add(rl *Realm, topic []byte, pattern bool, kind match.Kind, s *Session) (sub *subscription, added, created bool) {
	t := b.subs
	t.mu.Lock()
	defer t.mu.Unlock()
	var ok bool
	if pattern {
		sub, ok = b.byPattern[patternKey{string(topic), kind}]
	} else {
		sub, ok = t.getLocked(string(topic))
	}
	if !ok {
		created = true
		sub = &subscription{topic: string(topic), pattern: pattern, kind: kind, created: time.Now()}
		sub.id = SubscriptionID(rl.name, policyName(pattern, kind), sub.topic)
		sub.pending.Store(rl.router.federation() != nil) // before anyone can see it
		empty := []*Session{}
		sub.subscribers.Store(&empty)
		if pattern {
			b.byPattern[patternKey{sub.topic, kind}] = sub
			b.patterns.Insert(sub.topic, kind, sub)
		} else {
			t.putLocked(sub)
		}
		b.byID.Store(sub.id, sub)
		if f := rl.router.federation(); f != nil {
			f.SubscriptionChanged(rl, sub.topic, pattern, kind, true)
		}
	}
	old := *sub.subscribers.Load()
	for _, x := range old {
		if x == s {
			return sub, false, false
		}
	}
	next := make([]*Session, len(old), len(old)+1)
	copy(next, old)
	next = append(next, s)
	sub.subscribers.Store(&next)
	return sub, true, created
}

// remove drops s from sub, and sub from the broker when it has no subscribers left.
// It reports whether s was a subscriber and whether sub was deleted.
func (b *broker) remove(rl *Realm, sub *subscription, s *Session) (removed, deleted bool) {
	t := b.subs
	t.mu.Lock()
	defer t.mu.Unlock()
	old := *sub.subscribers.Load()
	idx := -1
	for i, x := range old {
		if x == s {
			idx = i
			break
		}
	}
	if idx < 0 {
		return false, false
	}
	next := make([]*Session, 0, len(old)-1)
	next = append(next, old[:idx]...)
	next = append(next, old[idx+1:]...)
	sub.subscribers.Store(&next)
	if len(next) == 0 {
		if sub.pattern {
			delete(b.byPattern, patternKey{sub.topic, sub.kind})
			b.patterns.Remove(sub.topic, sub.kind, sub)
		} else {
			t.deleteLocked(sub.topic)
		}
		b.byID.Delete(sub.id)
		if f := rl.router.federation(); f != nil {
			f.SubscriptionChanged(rl, sub.topic, sub.pattern, sub.kind, false)
		}
	}
	return true, len(next) == 0
}

// matchPolicy reads SUBSCRIBE/REGISTER.Options.match: exact (pattern false), prefix or
// wildcard. The codec has already rejected other values.
func matchPolicy(m *codec.Message) (pattern bool, kind match.Kind) {
	if m.Details.Has&codec.KeyMatch == 0 {
		return false, 0
	}
	k, ok := match.ParseKind(string(m.Details.Match))
	return ok, k
}

// validPattern checks a SUBSCRIBE/REGISTER URI under its match policy: wildcard
// patterns may have empty components, and a prefix may end in a dot.
func validPattern(u []byte, pattern bool) bool {
	return validURI(u, pattern)
}

func (s *Session) subscribe(m *codec.Message, sc *scratch) {
	pattern, kind := matchPolicy(m)
	if !validPattern(m.URI, pattern) {
		s.sendError(codec.SUBSCRIBE, m.Request, ErrInvalidURI, sc)
		return
	}
	if !s.authorized(codec.SUBSCRIBE, m, sc) {
		return
	}
	sub, added, created := s.realm.broker.add(s.realm, m.URI, pattern, kind, s)
	if added && !s.track(func() { s.subs = append(s.subs, sub) }) {
		s.realm.broker.remove(s.realm, sub, s) // the session left meanwhile
		return
	}
	if sub.pending.Load() {
		// In a cluster, SUBSCRIBED waits until every router knows of the new
		// subscription (with the session's later messages, in order): then this SUBSCRIBE
		// runs again, finds s subscribed and answers. So does a subscriber that joins
		// the subscription meanwhile.
		if f := s.realm.router.federation(); f != nil {
			rl := s.realm
			s.deferMessage(m)
			if f.AwaitInterest(rl, sub.id, func() {
				sub.pending.Store(false)
				s.resolveHold(func(*holdState) {})
				rl.subscribed(s, sub, added, created) // after SUBSCRIBED, as on one node
			}) {
				return
			}
			s.undefer()
		}
		sub.pending.Store(false) // no other router is live
	}
	sc.m = codec.Message{Type: codec.SUBSCRIBED, Request: m.Request, Subscription: sub.id}
	s.sendAck(&sc.m, sc)
	if m.Details.GetRetained {
		s.sendRetained(sub, sc)
	}
	s.realm.subscribed(s, sub, added, created)
}

func (s *Session) unsubscribe(m *codec.Message, sc *scratch) {
	sub := untrack(s, &s.subs, func(x *subscription) bool { return x.id == m.Subscription })
	if sub == nil {
		s.sendError(codec.UNSUBSCRIBE, m.Request, ErrNoSuchSubscription, sc)
		return
	}
	s.realm.unsubscribed(s, sub)
	sc.m = codec.Message{Type: codec.UNSUBSCRIBED, Request: m.Request}
	s.sendAck(&sc.m, sc)
}

// publisher is who published an event: a local session (self) or, for a publication
// from another router, only its identity (self nil).
type publisher struct {
	self             *Session
	id               uint64
	ser              codec.Serializer
	authID, authRole []byte
}

// publish routes a PUBLISH: one EVENT encoded per serializer in use among the
// subscribers, the same bytes queued to each of them, then (federation) to the other
// routers with matching interest. No lock, no allocation in steady state.
func (s *Session) publish(m *codec.Message, sc *scratch) {
	ack := m.Details.Acknowledge
	if !validURI(m.URI, false) {
		if ack {
			s.sendError(codec.PUBLISH, m.Request, ErrInvalidURI, sc)
		}
		return
	}
	if !s.authorized(codec.PUBLISH, m, sc) {
		return
	}
	pub := globalID()
	excludeMe := m.Details.Has&codec.KeyExcludeMe == 0 || m.Details.ExcludeMe
	p := publisher{self: s, id: s.id, ser: s.ser, authID: s.authID, authRole: s.authRole}
	rl := s.realm
	rules := rl.route(&p, pub, m, excludeMe, sc)
	if f := rl.router.federation(); f != nil && s != rl.metaLocal {
		fp := &sc.pub
		*fp = Publication{ID: pub, Publisher: s.id, AuthID: s.authID, AuthRole: s.authRole,
			Serializer: s.ser, Message: m,
			ToAll:    m.Details.Retain || (rules != nil && rules.limitFor(m.URI) > 0),
			Filtered: m.Details.Has&listKeys != 0, sc: sc}
		f.Published(rl, fp)
		*fp = Publication{}
	}
	if ack {
		sc.m = codec.Message{Type: codec.PUBLISHED, Request: m.Request, Publication: pub}
		s.sendAck(&sc.m, sc)
	}
}

// PublishRemote delivers a publication of another router of the realm to this router's
// subscribers (exact and pattern), with the eligibility, disclosure and payload passthru
// rules of a local PUBLISH, and keeps it when retained or when its topic has a history.
// It answers nothing and forwards nothing. Safe for concurrent use; p is not retained.
func (rl *Realm) PublishRemote(p *Publication) {
	sc := getScratch()
	defer putScratch(sc)
	pb := publisher{id: p.Publisher, ser: p.Serializer, authID: p.AuthID, authRole: p.AuthRole}
	rl.route(&pb, p.ID, p.Message, false, sc)
}

// route fans publication pub of m out to the realm's local subscribers and stores it
// (retention, history). It returns the realm's history rules (nil: none).
func (rl *Realm) route(p *publisher, pub uint64, m *codec.Message, excludeMe bool, sc *scratch) *historyRules {
	elig := newEligibility(p.ser, &m.Details)
	b := rl.broker
	sc.frameSub = [codec.NumSerializers]uint64{}
	if sub, ok := b.subs.Get(m.URI); ok {
		p.fanOut(rl, sub, pub, m, excludeMe, elig, sc)
	}
	if b.patterns.Len() > 0 {
		sc.matches = b.patterns.AppendMatches(sc.matches[:0], m.URI)
		for i := range sc.matches {
			p.fanOut(rl, sc.matches[i].Value, pub, m, excludeMe, elig, sc)
		}
		clear(sc.matches) // drop the references for the pool
	}
	if m.Details.Retain {
		b.retained.keep(m, p, pub, elig)
	}
	rules := b.history.rules.Load()
	if rules != nil {
		b.history.record(rules, m, p, pub, elig)
	}
	return rules
}

// fanOut queues the EVENT for pub to every subscriber of sub that the publisher's
// exclusion and black/whitelists (elig, nil for none) allow.
func (p *publisher) fanOut(rl *Realm, sub *subscription, pub uint64, m *codec.Message, excludeMe bool, elig *eligibility, sc *scratch) {
	if sub.pending.Load() {
		return // nobody has its SUBSCRIBED yet
	}
	var built [codec.NumSerializers]bool
	for _, r := range *sub.subscribers.Load() {
		if (r == p.self && excludeMe) || (elig != nil && !elig.allows(r)) {
			continue
		}
		ser := r.ser
		if !built[ser] {
			args, kw, _, err := sc.payloadFor(ser, p.ser, m.Args, m.Kwargs, nil)
			if err != nil {
				rl.router.log.Warn("publish: payload transcode failed", "session", p.id,
					"topic", sub.topic, "to", ser.String(), "err", err)
				continue
			}
			// sc.m, not a local: a Message passed to the Codec interface escapes.
			p.event(&sc.m, sub.id, sub.pattern, pub, m, args, kw)
			sc.frame[ser], err = r.codec.Append(sc.frame[ser][:0], &sc.m)
			if err != nil {
				rl.router.log.Warn("publish: encode failed", "session", p.id, "err", err)
				continue
			}
			built[ser] = true
			sc.frameSub[ser] = sub.id
		}
		_ = r.peer.Send(sc.frame[ser])
	}
}

// event sets em to the EVENT of publication pub of m for subscription subID (pattern: a
// prefix or wildcard one, whose EVENT names the topic) with payload args and kw.
func (p *publisher) event(em *codec.Message, subID uint64, pattern bool, pub uint64, m *codec.Message, args, kw codec.Raw) {
	em.Init(codec.EVENT)
	em.Subscription, em.Publication, em.Args, em.Kwargs = subID, pub, args, kw
	if pattern {
		// A pattern match tells the subscriber which topic the event was for.
		em.Details.Has, em.Details.Topic = codec.KeyTopic, m.URI
	}
	forwardPpt(&em.Details, &m.Details)
	if m.Details.DiscloseMe {
		d := &em.Details
		d.Has |= codec.KeyPublisher | codec.KeyPublisherAuthID | codec.KeyPublisherAuthRole
		d.Publisher, d.PublisherAuthID, d.PublisherAuthRole = p.id, p.authID, p.authRole
	}
}
