package engine

import (
	"time"

	"github.com/switchyard-wamp/switchyard/codec"
	"github.com/switchyard-wamp/switchyard/engine/match"
)

// Subscription and registration meta API: lifecycle events and the wamp.subscription.*
// and wamp.registration.* procedures. Like the session meta API this is off the routing
// path: events cost one table lookup when nobody listens, procedures scan the tables.

// subscribed publishes on_create / on_subscribe after a SUBSCRIBE.
func (rl *Realm) subscribed(s *Session, sub *subscription, added, created bool) {
	if created && !rl.heldElsewhere(sub) {
		rl.publishMeta("wamp.subscription.on_create", []any{s.id, sub.metaDetails()})
	}
	if added {
		rl.publishMeta("wamp.subscription.on_subscribe", []any{s.id, sub.id})
		if f := rl.router.federation(); f != nil {
			f.SubscriberChanged(rl, s, sub.id, true)
		}
	}
}

// heldElsewhere reports whether another router of a cluster holds sub: its creation
// and deletion are then not realm-wide events (a single node: never).
func (rl *Realm) heldElsewhere(sub *subscription) bool {
	f := rl.router.federation()
	return f != nil && f.HeldElsewhere(rl, sub.topic, sub.pattern, sub.kind)
}

// unsubscribed removes s from sub and publishes on_unsubscribe / on_delete.
func (rl *Realm) unsubscribed(s *Session, sub *subscription) {
	removed, deleted := rl.broker.remove(rl, sub, s)
	if removed {
		rl.publishMeta("wamp.subscription.on_unsubscribe", []any{s.id, sub.id})
	}
	if deleted && !rl.heldElsewhere(sub) {
		rl.publishMeta("wamp.subscription.on_delete", []any{s.id, sub.id})
	}
	if f := rl.router.federation(); removed && f != nil {
		f.SubscriberChanged(rl, s, sub.id, false)
	}
}

// registered publishes on_create / on_register after a REGISTER.
func (rl *Realm) registered(s *Session, reg *registration, created bool) {
	if created {
		rl.publishMeta("wamp.registration.on_create", []any{s.id, reg.metaDetails()})
	}
	rl.publishMeta("wamp.registration.on_register", []any{s.id, reg.id})
}

// unregistered removes s from reg and publishes on_unregister / on_delete.
func (rl *Realm) unregistered(s *Session, reg *registration) {
	deleted := rl.dealer.remove(reg, s)
	if f := rl.router.federation(); f != nil {
		f.Unregistered(rl, s, reg.procedure, reg.pattern, reg.kind)
	}
	rl.publishMeta("wamp.registration.on_unregister", []any{s.id, reg.id})
	if deleted {
		rl.publishMeta("wamp.registration.on_delete", []any{s.id, reg.id})
	}
}

func policyName(pattern bool, kind match.Kind) string {
	if !pattern {
		return "exact"
	}
	return kind.String()
}

func (sub *subscription) metaDetails() map[string]any {
	return map[string]any{"id": sub.id, "created": sub.created.UTC().Format(time.RFC3339Nano),
		"uri": sub.topic, "match": policyName(sub.pattern, sub.kind)}
}

func (reg *registration) metaDetails() map[string]any {
	return map[string]any{"id": reg.id, "created": reg.created.UTC().Format(time.RFC3339Nano),
		"uri": reg.procedure, "match": policyName(reg.pattern, reg.kind), "invoke": reg.invoke}
}

// allSubscriptions lists the realm's subscriptions (exact and pattern).
func (b *broker) all() []*subscription {
	var out []*subscription
	b.subs.Range(func(s *subscription) bool { out = append(out, s); return true })
	b.subs.mu.Lock()
	for _, s := range b.byPattern {
		out = append(out, s)
	}
	b.subs.mu.Unlock()
	return out
}

func (d *dealer) all() []*registration {
	var out []*registration
	d.regs.Range(func(r *registration) bool { out = append(out, r); return true })
	d.regs.mu.Lock()
	for _, r := range d.byPattern {
		out = append(out, r)
	}
	d.regs.mu.Unlock()
	return out
}

// idArg reads args[0] as an id.
func idArg(args []any) uint64 {
	id, _ := argAt(args, 0).(uint64)
	return id
}

func stringOf(v any) string { s, _ := v.(string); return s }

// metaEntry is what the subscription and registration meta procedures read of a
// subscription or a registration.
type metaEntry interface {
	metaID() uint64
	metaURI() string
	metaPolicy() string
	metaMembers() []*Session
	metaDetails() map[string]any
}

func (sub *subscription) metaID() uint64          { return sub.id }
func (sub *subscription) metaURI() string         { return sub.topic }
func (sub *subscription) metaPolicy() string      { return policyName(sub.pattern, sub.kind) }
func (sub *subscription) metaMembers() []*Session { return *sub.subscribers.Load() }
func (reg *registration) metaID() uint64          { return reg.id }
func (reg *registration) metaURI() string         { return reg.procedure }
func (reg *registration) metaPolicy() string      { return policyName(reg.pattern, reg.kind) }
func (reg *registration) metaMembers() []*Session { return *reg.callees.Load() }

// entityMeta answers the procedures shared by wamp.subscription.* and
// wamp.registration.*: list, lookup, match, get, list_<members>, count_<members>.
// matchIDs gives match's result for a URI; noSuch is the error for an unknown id.
func (s *Session) entityMeta(m *codec.Message, args []any, sc *scratch, prefix, members string,
	all []metaEntry, matchIDs func([]byte) any, noSuch string) bool {
	var result []any
	switch string(m.URI)[len(prefix):] {
	case "list":
		lists := map[string]any{"exact": []any{}, "prefix": []any{}, "wildcard": []any{}}
		for _, e := range all {
			lists[e.metaPolicy()] = append(lists[e.metaPolicy()].([]any), e.metaID())
		}
		result = []any{lists}
	case "lookup":
		uri := stringOf(argAt(args, 0))
		opts, _ := argAt(args, 1).(map[string]any)
		policy := stringOf(opts["match"])
		if policy == "" {
			policy = "exact"
		}
		var found any
		for _, e := range all {
			if e.metaURI() == uri && e.metaPolicy() == policy {
				found = e.metaID()
			}
		}
		result = []any{found}
	case "match":
		result = []any{matchIDs([]byte(stringOf(argAt(args, 0))))}
	case "get", "list_" + members, "count_" + members:
		var e metaEntry
		for _, x := range all {
			if x.metaID() == idArg(args) {
				e = x
			}
		}
		if e == nil {
			s.sendError(codec.CALL, m.Request, noSuch, sc)
			return true
		}
		switch ms := e.metaMembers(); string(m.URI)[len(prefix):] {
		case "get":
			result = []any{e.metaDetails()}
		case "count_" + members:
			result = []any{uint64(len(ms))}
		default:
			ids := make([]any, len(ms))
			for i, x := range ms {
				ids[i] = x.id
			}
			result = []any{ids}
		}
	default:
		return false
	}
	s.sendResultValues(m.Request, result, sc)
	return true
}

// registrationMeta answers wamp.registration.*; false for an unknown procedure.
func (s *Session) registrationMeta(m *codec.Message, args []any, sc *scratch) bool {
	d := s.realm.dealer
	var all []metaEntry
	for _, reg := range d.all() {
		all = append(all, reg)
	}
	matchIDs := func(procedure []byte) any {
		if reg, ok := d.lookup(procedure); ok {
			return reg.id
		}
		return nil
	}
	return s.entityMeta(m, args, sc, "wamp.registration.", "callees", all, matchIDs, ErrNoSuchRegistration)
}
