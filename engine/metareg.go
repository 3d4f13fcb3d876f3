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
	if created {
		rl.publishMeta("wamp.subscription.on_create", []any{s.id, sub.metaDetails()}, nil)
	}
	if added {
		rl.publishMeta("wamp.subscription.on_subscribe", []any{s.id, sub.id}, nil)
	}
}

// unsubscribed removes s from sub and publishes on_unsubscribe / on_delete.
func (rl *Realm) unsubscribed(s *Session, sub *subscription) {
	removed, deleted := rl.broker.remove(sub, s)
	if removed {
		rl.publishMeta("wamp.subscription.on_unsubscribe", []any{s.id, sub.id}, nil)
	}
	if deleted {
		rl.publishMeta("wamp.subscription.on_delete", []any{s.id, sub.id}, nil)
	}
}

// registered publishes on_create / on_register after a REGISTER.
func (rl *Realm) registered(s *Session, reg *registration, created bool) {
	if created {
		rl.publishMeta("wamp.registration.on_create", []any{s.id, reg.metaDetails()}, nil)
	}
	rl.publishMeta("wamp.registration.on_register", []any{s.id, reg.id}, nil)
}

// unregistered removes s from reg and publishes on_unregister / on_delete.
func (rl *Realm) unregistered(s *Session, reg *registration) {
	deleted := rl.dealer.remove(reg, s)
	rl.publishMeta("wamp.registration.on_unregister", []any{s.id, reg.id}, nil)
	if deleted {
		rl.publishMeta("wamp.registration.on_delete", []any{s.id, reg.id}, nil)
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

// lookupPolicy reads the match policy from a lookup's options dict (args[1]).
func lookupPolicy(args []any) (bool, match.Kind) {
	opts, _ := argAt(args, 1).(map[string]any)
	k, ok := match.ParseKind(stringOf(opts["match"]))
	return ok, k
}

func stringOf(v any) string { s, _ := v.(string); return s }

// subscriptionMeta answers wamp.subscription.*; false for an unknown procedure.
func (s *Session) subscriptionMeta(m *codec.Message, args []any, sc *scratch) bool {
	b := s.realm.broker
	byID := func() *subscription {
		id := idArg(args)
		for _, sub := range b.all() {
			if sub.id == id {
				return sub
			}
		}
		return nil
	}
	var result []any
	switch string(m.URI) {
	case "wamp.subscription.list":
		lists := map[string]any{"exact": []any{}, "prefix": []any{}, "wildcard": []any{}}
		for _, sub := range b.all() {
			p := policyName(sub.pattern, sub.kind)
			lists[p] = append(lists[p].([]any), sub.id)
		}
		result = []any{lists}
	case "wamp.subscription.lookup":
		topic := stringOf(argAt(args, 0))
		pattern, kind := lookupPolicy(args)
		var found any
		for _, sub := range b.all() {
			if sub.topic == topic && sub.pattern == pattern && (!pattern || sub.kind == kind) {
				found = sub.id
			}
		}
		result = []any{found}
	case "wamp.subscription.match":
		topic := []byte(stringOf(argAt(args, 0)))
		var ids []any
		if sub, ok := b.subs.Get(topic); ok {
			ids = append(ids, sub.id)
		}
		for _, mt := range b.patterns.AppendMatches(nil, topic) {
			ids = append(ids, mt.Value.id)
		}
		if ids == nil {
			result = []any{nil}
		} else {
			result = []any{ids}
		}
	case "wamp.subscription.get", "wamp.subscription.list_subscribers", "wamp.subscription.count_subscribers":
		sub := byID()
		if sub == nil {
			s.sendError(codec.CALL, m.Request, ErrNoSuchSubscription, sc)
			return true
		}
		subs := *sub.subscribers.Load()
		switch string(m.URI) {
		case "wamp.subscription.get":
			result = []any{sub.metaDetails()}
		case "wamp.subscription.count_subscribers":
			result = []any{uint64(len(subs))}
		default:
			ids := make([]any, len(subs))
			for i, x := range subs {
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
	var result []any
	switch string(m.URI) {
	case "wamp.registration.list":
		lists := map[string]any{"exact": []any{}, "prefix": []any{}, "wildcard": []any{}}
		for _, reg := range d.all() {
			p := policyName(reg.pattern, reg.kind)
			lists[p] = append(lists[p].([]any), reg.id)
		}
		result = []any{lists}
	case "wamp.registration.lookup":
		proc := stringOf(argAt(args, 0))
		pattern, kind := lookupPolicy(args)
		var found any
		for _, reg := range d.all() {
			if reg.procedure == proc && reg.pattern == pattern && (!pattern || reg.kind == kind) {
				found = reg.id
			}
		}
		result = []any{found}
	case "wamp.registration.match":
		var found any
		if reg, ok := d.lookup([]byte(stringOf(argAt(args, 0)))); ok {
			found = reg.id
		}
		result = []any{found}
	case "wamp.registration.get", "wamp.registration.list_callees", "wamp.registration.count_callees":
		id := idArg(args)
		var reg *registration
		for _, r := range d.all() {
			if r.id == id {
				reg = r
			}
		}
		if reg == nil {
			s.sendError(codec.CALL, m.Request, ErrNoSuchRegistration, sc)
			return true
		}
		callees := *reg.callees.Load()
		switch string(m.URI) {
		case "wamp.registration.get":
			result = []any{reg.metaDetails()}
		case "wamp.registration.count_callees":
			result = []any{uint64(len(callees))}
		default:
			ids := make([]any, len(callees))
			for i, x := range callees {
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
