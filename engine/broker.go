package engine

import (
	"sync/atomic"
	"time"

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
	retained  *retainedStore
	history   *historyStore
}

func newBroker() *broker {
	return &broker{subs: newURITable[*subscription](), patterns: match.New[*subscription](),
		byPattern: map[patternKey]*subscription{}, retained: newRetainedStore(), history: newHistoryStore()}
}

// add subscribes s to topic under the match policy (exact when !pattern) and returns the
// subscription and whether s was newly added (false: s already held it, the spec says
// to answer with the same ID).
func (b *broker) add(r *Router, topic []byte, pattern bool, kind match.Kind, s *Session) (sub *subscription, added, created bool) {
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
		sub = &subscription{id: r.subIDs.next(), topic: string(topic), pattern: pattern, kind: kind,
			created: time.Now()}
		empty := []*Session{}
		sub.subscribers.Store(&empty)
		if pattern {
			b.byPattern[patternKey{sub.topic, kind}] = sub
			b.patterns.Insert(sub.topic, kind, sub)
		} else {
			t.putLocked(sub)
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
func (b *broker) remove(sub *subscription, s *Session) (removed, deleted bool) {
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
	sub, added, created := s.realm.broker.add(s.realm.router, m.URI, pattern, kind, s)
	if added && !s.track(func() { s.subs = append(s.subs, sub) }) {
		s.realm.broker.remove(sub, s) // the session left meanwhile
		return
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

// publish routes a PUBLISH: one EVENT encoded per serializer in use among the
// subscribers, the same bytes queued to each of them. No lock, no allocation in steady
// state.
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
	elig := newEligibility(s.ser, &m.Details)
	b := s.realm.broker
	if sub, ok := b.subs.Get(m.URI); ok {
		s.fanOut(sub, pub, m, excludeMe, elig, sc)
	}
	if b.patterns.Len() > 0 {
		sc.matches = b.patterns.AppendMatches(sc.matches[:0], m.URI)
		for i := range sc.matches {
			s.fanOut(sc.matches[i].Value, pub, m, excludeMe, elig, sc)
		}
		clear(sc.matches) // drop the references for the pool
	}
	if m.Details.Retain {
		b.retained.keep(m, s, pub, elig)
	}
	if rules := b.history.rules.Load(); rules != nil {
		b.history.record(rules, m, s, pub, elig)
	}
	if ack {
		sc.m = codec.Message{Type: codec.PUBLISHED, Request: m.Request, Publication: pub}
		s.sendAck(&sc.m, sc)
	}
}

// fanOut queues the EVENT for pub to every subscriber of sub that the publisher's
// exclusion and black/whitelists (elig, nil for none) allow.
func (s *Session) fanOut(sub *subscription, pub uint64, m *codec.Message, excludeMe bool, elig *eligibility, sc *scratch) {
	var built [codec.NumSerializers]bool
	for _, r := range *sub.subscribers.Load() {
		if (r == s && excludeMe) || (elig != nil && !elig.allows(r)) {
			continue
		}
		ser := r.ser
		if !built[ser] {
			args, kw, _, err := sc.payloadFor(ser, s.ser, m.Args, m.Kwargs, nil)
			if err != nil {
				s.logger().Warn("publish: payload transcode failed", "session", s.id,
					"topic", sub.topic, "to", ser.String(), "err", err)
				continue
			}
			// sc.m, not a local: a Message passed to the Codec interface escapes.
			sc.m.Init(codec.EVENT)
			sc.m.Subscription, sc.m.Publication, sc.m.Args, sc.m.Kwargs = sub.id, pub, args, kw
			if sub.pattern {
				// A pattern match tells the subscriber which topic the event was for.
				sc.m.Details.Has, sc.m.Details.Topic = codec.KeyTopic, m.URI
			}
			forwardPpt(&sc.m.Details, &m.Details)
			if m.Details.DiscloseMe {
				d := &sc.m.Details
				d.Has |= codec.KeyPublisher | codec.KeyPublisherAuthID | codec.KeyPublisherAuthRole
				d.Publisher, d.PublisherAuthID, d.PublisherAuthRole = s.id, s.authID, s.authRole
			}
			sc.frame[ser], err = r.codec.Append(sc.frame[ser][:0], &sc.m)
			if err != nil {
				s.logger().Warn("publish: encode failed", "session", s.id, "err", err)
				continue
			}
			built[ser] = true
		}
		_ = r.peer.Send(sc.frame[ser])
	}
}
