package engine

import (
	"strings"

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
}

// retainedStore keeps one retained event per topic. Only PUBLISH with retain=true and
// SUBSCRIBE with get_retained=true touch it, so its copies stay off the hot path.
type retainedStore struct {
	m *xsync.MapOf[string, *retainedEvent]
}

func newRetainedStore() retainedStore {
	return retainedStore{m: xsync.NewMapOf[string, *retainedEvent]()}
}

// keep retains a copy of m as the topic's last event.
func (r retainedStore) keep(m *codec.Message, ser codec.Serializer, pub uint64) {
	ev := &retainedEvent{topic: string(m.URI), publication: pub, ser: ser}
	if m.Args != nil {
		ev.args = append(codec.Raw(nil), m.Args...)
	}
	if m.Kwargs != nil {
		ev.kw = append(codec.Raw(nil), m.Kwargs...)
	}
	r.m.Store(ev.topic, ev)
}

// sendRetained sends sub's subscriber s the retained events its topic or pattern
// matches, flagged details.retained (spec: right after SUBSCRIBED).
func (s *Session) sendRetained(sub *subscription, sc *scratch) {
	send := func(ev *retainedEvent) {
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
