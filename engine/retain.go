package engine

import (
	"bytes"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/puzpuzpuz/xsync/v3"
	"github.com/switchyard-wamp/switchyard/codec"
	"github.com/switchyard-wamp/switchyard/engine/match"
)

// retainedEvent is the last event published with retain=true on a topic (Event
// Retention): a copy of its payload in the publisher's serializer.
type retainedEvent struct {
	topic       string
	publication uint64
	ser         codec.Serializer
	args, kw    codec.Raw
	// What a live subscriber's EVENT would say besides the payload: the disclosed
	// publisher (0: none), the payload passthru keys (ppt.Has), and the black/whitelists
	// (nil: none), which the spec says a retained event must honour too.
	publisher                          uint64
	publisherAuthID, publisherAuthRole []byte
	ppt                                codec.Details
	elig                               *eligibility
}

// retainedStore keeps one retained event per topic, for at most max topics: when a new
// topic would exceed it, the retained event stored longest ago is dropped (a topic
// retained again counts from its latest store). Only PUBLISH with retain=true and
// SUBSCRIBE with get_retained=true touch it, so its copies and its mutex stay off the
// plain publish path; readers (get_retained) never lock.
type retainedStore struct {
	m *xsync.MapOf[string, *retainedEvent]
	// mu orders writers: the map update, order and the eviction happen together.
	mu sync.Mutex
	// order lists events in store order, oldest first; an entry whose topic has been
	// retained again since is stale and skipped. Guarded by mu.
	order []*retainedEvent
	max   atomic.Int64
}

func newRetainedStore() *retainedStore {
	r := &retainedStore{m: xsync.NewMapOf[string, *retainedEvent]()}
	r.max.Store(DefaultStoredTopics)
	return r
}

// keep retains a copy of m (published by p as pub, with black/whitelists elig) as the
// topic's last event, dropping the oldest retained event when the store is full.
func (r *retainedStore) keep(m *codec.Message, p *publisher, pub uint64, elig *eligibility) {
	ev := &retainedEvent{topic: string(m.URI), publication: pub, ser: p.ser, elig: elig}
	if m.Args != nil {
		ev.args = append(codec.Raw(nil), m.Args...)
	}
	if m.Kwargs != nil {
		ev.kw = append(codec.Raw(nil), m.Kwargs...)
	}
	if m.Details.DiscloseMe {
		// Copies: a remote publisher's identity aliases the link's buffer.
		ev.publisher, ev.publisherAuthID, ev.publisherAuthRole = p.id, bytes.Clone(p.authID), bytes.Clone(p.authRole)
	}
	if d := &m.Details; d.Has&pptKeys != 0 {
		// Copies: m aliases the read buffer.
		ev.ppt.Has = d.Has & pptKeys
		ev.ppt.PptScheme, ev.ppt.PptSerializer = bytes.Clone(d.PptScheme), bytes.Clone(d.PptSerializer)
		ev.ppt.PptCipher, ev.ppt.PptKeyID = bytes.Clone(d.PptCipher), bytes.Clone(d.PptKeyID)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.m.Store(ev.topic, ev)
	r.order = append(r.order, ev)
	r.trimLocked()
}

// trimLocked drops the oldest retained events beyond max and compacts order. Caller
// holds mu.
func (r *retainedStore) trimLocked() {
	max := int(r.max.Load())
	i := 0
	for ; r.m.Size() > max && i < len(r.order); i++ {
		old := r.order[i]
		if cur, ok := r.m.Load(old.topic); ok && cur == old {
			r.m.Delete(old.topic)
		}
	}
	r.order = r.order[i:]
	if len(r.order) > 2*r.m.Size()+16 {
		live := make([]*retainedEvent, 0, r.m.Size())
		for _, ev := range r.order {
			if cur, ok := r.m.Load(ev.topic); ok && cur == ev {
				live = append(live, ev)
			}
		}
		r.order = live
	}
}

// setMax changes the bound (n < 1: DefaultStoredTopics) and applies it now.
func (r *retainedStore) setMax(n int) {
	if n < 1 {
		n = DefaultStoredTopics
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.max.Store(int64(n))
	r.trimLocked()
}

// sendRetained sends sub's subscriber s the retained events its topic or pattern
// matches and the event's black/whitelists allow, flagged details.retained (spec: right
// after SUBSCRIBED), with the details a live subscriber would have got.
func (s *Session) sendRetained(sub *subscription, sc *scratch) {
	send := func(ev *retainedEvent) {
		if ev.elig != nil && !ev.elig.allows(s) {
			return
		}
		args, kw, _, err := sc.payloadFor(s.ser, ev.ser, ev.args, ev.kw, nil)
		if err != nil {
			return
		}
		sc.m = codec.Message{Type: codec.EVENT, Subscription: sub.id, Publication: ev.publication,
			Args: args, Kwargs: kw}
		sc.m.Details.Has, sc.m.Details.Retained = codec.KeyRetained, true
		if sub.pattern {
			sc.m.Details.Has |= codec.KeyTopic
			sc.m.Details.Topic = []byte(ev.topic)
		}
		forwardPpt(&sc.m.Details, &ev.ppt)
		if ev.publisher != 0 {
			d := &sc.m.Details
			d.Has |= codec.KeyPublisher | codec.KeyPublisherAuthID | codec.KeyPublisherAuthRole
			d.Publisher, d.PublisherAuthID, d.PublisherAuthRole = ev.publisher, ev.publisherAuthID, ev.publisherAuthRole
		}
		s.sendMsg(&sc.m, sc)
	}
	store := s.realm.broker.retained
	if !sub.pattern {
		if ev, ok := store.m.Load(sub.topic); ok {
			send(ev)
		}
		return
	}
	store.m.Range(func(topic string, ev *retainedEvent) bool {
		if patternMatches(sub.topic, sub.kind, topic) {
			send(ev)
		}
		return true
	})
}

// patternMatches applies one pattern to one topic, as engine/match does for many:
// prefix is a string prefix, wildcard matches whole components (empty = any).
func patternMatches(pattern string, kind match.Kind, topic string) bool {
	if kind == match.Prefix {
		return strings.HasPrefix(topic, pattern)
	}
	pc, tc := strings.Split(pattern, "."), strings.Split(topic, ".")
	if len(pc) != len(tc) {
		return false
	}
	for i := range pc {
		if pc[i] != "" && pc[i] != tc[i] {
			return false
		}
	}
	return true
}
