package engine

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/switchyard-wamp/switchyard/codec"
)

// Event History (WAMP advanced profile): the broker keeps the last events of the topics
// that a realm's history rules name, and wamp.subscription.get_events returns them
// (history_meta.go). Storage is a bounded, lock-free ring per topic, created on the
// topic's first event. A PUBLISH to a realm without rules pays one atomic load; with
// rules, a topic that no rule names pays one table lookup and one rule lookup.

// DefaultStoredTopics is the default bound on retained topics and on topics with an
// event history, per realm.
const DefaultStoredTopics = 10000

// HistoryRule says that topics matching URI under Match ("exact" or "", "prefix",
// "wildcard") keep their last Limit events. Plain data.
type HistoryRule struct {
	URI   string
	Match string
	Limit int
}

// StoreConfig is what a realm stores for clients: event history rules and the bounds on
// retained topics and history topics (values below 1 mean DefaultStoredTopics). The
// zero value keeps no history. Plain data.
type StoreConfig struct {
	History        []HistoryRule
	RetainedTopics int
	HistoryTopics  int
}

// SetStore applies cfg to the realm: new history rules (histories of topics no rule
// names any more are dropped, others are resized to their new limit) and the bounds,
// which evict at once when lowered. Safe for concurrent use.
func (rl *Realm) SetStore(cfg StoreConfig) error {
	rules, err := compileHistory(cfg.History, cfg.HistoryTopics)
	if err != nil {
		return fmt.Errorf("realm %s: history: %w", rl.name, err)
	}
	rl.broker.retained.setMax(cfg.RetainedTopics)
	rl.broker.history.setRules(rules)
	return nil
}

// historyRules are compiled HistoryRules: an exact map and a pattern tree, the most
// specific rule winning (as for permissions). Immutable once built.
type historyRules struct {
	limits    uriRules[int]
	maxTopics int
}

func compileHistory(rules []HistoryRule, maxTopics int) (*historyRules, error) {
	if len(rules) == 0 {
		return nil, nil
	}
	if maxTopics < 1 {
		maxTopics = DefaultStoredTopics
	}
	h := &historyRules{limits: newURIRules[int](), maxTopics: maxTopics}
	for i, r := range rules {
		if r.Limit < 1 {
			return nil, fmt.Errorf("rule %d (%s): limit %d, want at least 1", i, r.URI, r.Limit)
		}
		if err := h.limits.add(r.URI, r.Match, r.Limit); err != nil {
			return nil, fmt.Errorf("rule %d (%s): %w", i, r.URI, err)
		}
	}
	return h, nil
}

// limitFor returns the history limit of topic, 0 when no rule names it. Lock-free.
func (h *historyRules) limitFor(topic []byte) int {
	n, _ := h.limits.best(topic)
	return n
}

// storedEvent is one event kept in a history ring: a copy of the payload in the
// publisher's serializer and what the EVENT's details said.
type storedEvent struct {
	pos         uint64 // position in its ring, to detect a slot overwritten meanwhile
	seq         uint64 // realm-wide store order, to merge rings for pattern subscriptions
	publication uint64
	at          time.Time
	topic       string
	ser         codec.Serializer
	args, kw    codec.Raw
	// publisher is the disclosed publisher (0: not disclosed).
	publisher                          uint64
	publisherAuthID, publisherAuthRole string
	// ppt holds the payload passthru keys; nil without.
	ppt map[string]any
	// elig holds the authid/authrole black/whitelists, applied to whoever asks for
	// the history; nil without.
	elig *eligibility
}

// historyRing holds the last limit events of one topic. Writers claim a position with
// one atomic add and publish the event with one atomic store; readers skip slots that a
// writer has not filled yet or has overwritten. Never locks.
type historyRing struct {
	topic string
	limit uint64
	slots []atomic.Pointer[storedEvent]
	next  atomic.Uint64
}

func newHistoryRing(topic string, limit int) *historyRing {
	return &historyRing{topic: topic, limit: uint64(limit), slots: make([]atomic.Pointer[storedEvent], limit)}
}

func (r *historyRing) entryURI() string { return r.topic }

func (r *historyRing) add(ev *storedEvent) {
	pos := r.next.Add(1) - 1
	ev.pos = pos
	r.slots[pos%r.limit].Store(ev)
}

// appendTo appends the ring's events, oldest first, to dst.
func (r *historyRing) appendTo(dst []*storedEvent) []*storedEvent {
	n := r.next.Load()
	start := uint64(0)
	if n > r.limit {
		start = n - r.limit
	}
	for p := start; p < n; p++ {
		if ev := r.slots[p%r.limit].Load(); ev != nil && ev.pos == p {
			dst = append(dst, ev)
		}
	}
	return dst
}

// historyStore is a realm's event history: the rules and one ring per topic, for at most
// rules.maxTopics topics (when full, the ring created first is dropped).
type historyStore struct {
	// rules is nil when the realm keeps no history: then PUBLISH pays this one load.
	rules atomic.Pointer[historyRules]
	rings *uriTable[*historyRing]
	// order lists the rings in creation order; guarded by rings.mu.
	order []*historyRing
	seq   atomic.Uint64
}

func newHistoryStore() *historyStore {
	return &historyStore{rings: newURITable[*historyRing]()}
}

// record stores a copy of the event of m (published by p as pub) if a rule names its
// topic. Events filtered by session id (exclude, eligible) are not stored, as the spec
// asks: session ids do not outlive sessions.
func (hs *historyStore) record(rules *historyRules, m *codec.Message, p *publisher, pub uint64, elig *eligibility) {
	ring, ok := hs.rings.Get(m.URI)
	if !ok {
		limit := rules.limitFor(m.URI)
		if limit == 0 {
			return
		}
		ring = hs.create(string(m.URI), limit, rules.maxTopics)
	}
	if m.Details.Has&(codec.KeyExclude|codec.KeyEligible) != 0 {
		return // after create: the topic has a history, just not this event
	}
	ev := &storedEvent{seq: hs.seq.Add(1), publication: pub, at: time.Now(), topic: ring.topic,
		ser: p.ser, elig: elig}
	if n := len(m.Args) + len(m.Kwargs); n > 0 {
		buf := make([]byte, 0, n)
		buf = append(buf, m.Args...)
		buf = append(buf, m.Kwargs...)
		if m.Args != nil {
			ev.args = buf[:len(m.Args):len(m.Args)]
		}
		if m.Kwargs != nil {
			ev.kw = buf[len(m.Args):]
		}
	}
	if m.Details.DiscloseMe {
		ev.publisher, ev.publisherAuthID, ev.publisherAuthRole = p.id, string(p.authID), string(p.authRole)
	}
	if d := &m.Details; d.Has&pptKeys != 0 {
		ev.ppt = map[string]any{}
		for _, k := range []struct {
			bit  uint64
			name string
			v    []byte
		}{{codec.KeyPptScheme, "ppt_scheme", d.PptScheme}, {codec.KeyPptSerializer, "ppt_serializer", d.PptSerializer},
			{codec.KeyPptCipher, "ppt_cipher", d.PptCipher}, {codec.KeyPptKeyID, "ppt_keyid", d.PptKeyID}} {
			if d.Has&k.bit != 0 {
				ev.ppt[k.name] = string(k.v)
			}
		}
	}
	ring.add(ev)
}

// create returns topic's ring, creating it (and dropping the oldest ring when maxTopics
// are held).
func (hs *historyStore) create(topic string, limit, maxTopics int) *historyRing {
	t := hs.rings
	t.mu.Lock()
	defer t.mu.Unlock()
	if r, ok := t.getLocked(topic); ok {
		return r
	}
	for len(hs.order) >= maxTopics {
		t.deleteLocked(hs.order[0].topic)
		hs.order = hs.order[1:]
	}
	r := newHistoryRing(topic, limit)
	t.putLocked(r)
	hs.order = append(hs.order, r)
	return r
}

// setRules installs rules (nil: no history): rings of topics no rule names are dropped,
// rings whose limit changed are rebuilt with their newest events.
func (hs *historyStore) setRules(rules *historyRules) {
	t := hs.rings
	t.mu.Lock()
	defer t.mu.Unlock()
	hs.rules.Store(rules)
	var kept []*historyRing
	for _, r := range hs.order {
		limit := 0
		if rules != nil {
			limit = rules.limitFor([]byte(r.topic))
		}
		switch {
		case limit == 0:
			t.deleteLocked(r.topic)
		case uint64(limit) != r.limit:
			nr := newHistoryRing(r.topic, limit)
			evs := r.appendTo(nil)
			for _, ev := range evs[max(0, len(evs)-limit):] {
				cp := *ev
				nr.add(&cp)
			}
			t.deleteLocked(r.topic)
			t.putLocked(nr)
			kept = append(kept, nr)
		default:
			kept = append(kept, r)
		}
	}
	if rules != nil {
		for len(kept) > rules.maxTopics {
			t.deleteLocked(kept[0].topic)
			kept = kept[1:]
		}
	}
	hs.order = kept
}

// eventsOf returns the stored events a subscription covers, oldest first: its topic's
// for an exact subscription, every matching topic's for a pattern.
func (hs *historyStore) eventsOf(sub *subscription) []*storedEvent {
	if !sub.pattern {
		if r, ok := hs.rings.Get([]byte(sub.topic)); ok {
			return r.appendTo(nil)
		}
		return nil
	}
	var evs []*storedEvent
	hs.rings.Range(func(r *historyRing) bool {
		if patternMatches(sub.topic, sub.kind, r.topic) {
			evs = r.appendTo(evs)
		}
		return true
	})
	sortBySeq(evs)
	return evs
}
