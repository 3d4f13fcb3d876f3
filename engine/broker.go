package engine

import (
	"sync/atomic"

	"github.com/switchyard-wamp/switchyard/codec"
)

// subscription is one topic's subscription (router scope ID) and its subscribers.
type subscription struct {
	id    uint64
	topic string
	// subscribers is an immutable snapshot, replaced on every change (copy on write)
	// under the broker table's mutex; PUBLISH only loads it.
	subscribers atomic.Pointer[[]*Session]
}

func (s *subscription) entryURI() string { return s.topic }

// broker holds a realm's subscriptions by topic.
type broker struct {
	subs *uriTable[*subscription]
}

func newBroker() *broker { return &broker{subs: newURITable[*subscription]()} }

// add subscribes s to topic and returns the subscription and whether s was newly added
// (false: s already held it, the spec says to answer with the same ID).
func (b *broker) add(r *Router, topic []byte, s *Session) (*subscription, bool) {
	t := b.subs
	t.mu.Lock()
	defer t.mu.Unlock()
	sub, ok := t.getLocked(string(topic))
	if !ok {
		sub = &subscription{id: r.subIDs.next(), topic: string(topic)}
		empty := []*Session{}
		sub.subscribers.Store(&empty)
		t.putLocked(sub)
	}
	old := *sub.subscribers.Load()
	for _, x := range old {
		if x == s {
			return sub, false
		}
	}
	next := make([]*Session, len(old), len(old)+1)
	copy(next, old)
	next = append(next, s)
	sub.subscribers.Store(&next)
	return sub, true
}

// remove drops s from sub, and sub from the table when it has no subscribers left.
// It reports whether s was a subscriber.
func (b *broker) remove(sub *subscription, s *Session) bool {
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
		return false
	}
	next := make([]*Session, 0, len(old)-1)
	next = append(next, old[:idx]...)
	next = append(next, old[idx+1:]...)
	sub.subscribers.Store(&next)
	if len(next) == 0 {
		t.deleteLocked(sub.topic)
	}
	return true
}

func (s *Session) subscribe(m *codec.Message, sc *scratch) {
	if m.Details.Has&codec.KeyMatch != 0 && string(m.Details.Match) != "exact" {
		s.sendErrorMsg(codec.SUBSCRIBE, m.Request, ErrOptionNotAllowed,
			"match policy "+string(m.Details.Match)+" is not supported", sc)
		return
	}
	if !validURI(m.URI, false) {
		s.sendError(codec.SUBSCRIBE, m.Request, ErrInvalidURI, sc)
		return
	}
	sub, added := s.realm.broker.add(s.realm.router, m.URI, s)
	if added && !s.track(func() { s.subs = append(s.subs, sub) }) {
		s.realm.broker.remove(sub, s) // the session left meanwhile
		return
	}
	sc.m = codec.Message{Type: codec.SUBSCRIBED, Request: m.Request, Subscription: sub.id}
	s.sendAck(&sc.m, sc)
}

func (s *Session) unsubscribe(m *codec.Message, sc *scratch) {
	sub := untrack(s, &s.subs, func(x *subscription) bool { return x.id == m.Subscription })
	if sub == nil {
		s.sendError(codec.UNSUBSCRIBE, m.Request, ErrNoSuchSubscription, sc)
		return
	}
	s.realm.broker.remove(sub, s)
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
	pub := globalID()
	if sub, ok := s.realm.broker.subs.Get(m.URI); ok {
		excludeMe := m.Details.Has&codec.KeyExcludeMe == 0 || m.Details.ExcludeMe
		s.fanOut(sub, pub, m, excludeMe, sc)
	}
	if ack {
		sc.m = codec.Message{Type: codec.PUBLISHED, Request: m.Request, Publication: pub}
		s.sendAck(&sc.m, sc)
	}
}

// fanOut queues the EVENT for pub to every subscriber of sub.
func (s *Session) fanOut(sub *subscription, pub uint64, m *codec.Message, excludeMe bool, sc *scratch) {
	var built [codec.NumSerializers]bool
	for _, r := range *sub.subscribers.Load() {
		if r == s && excludeMe {
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
			sc.m = codec.Message{Type: codec.EVENT, Subscription: sub.id, Publication: pub,
				Args: args, Kwargs: kw}
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
