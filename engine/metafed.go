package engine

import (
	"github.com/switchyard-wamp/switchyard/codec"
)

// Meta procedures that answer for the whole realm. On one router each is this router's
// part (MetaPart) turned into the answer (mergeMeta). When the realm spans routers
// (a Federation), the engine holds the caller's messages, asks the other routers for
// their parts (Federation.MetaQuery) and merges them with its own, so the answer covers
// every router, and the caller's later messages are processed after it as on one node.
// Kills and revocations are parts too: each router executes them on its own sessions.
// The registration procedures other than remove_callee stay local: every router holds
// the realm's registrations (remote callees as ghosts).

// realmWide lists the meta procedures answered realm-wide.
var realmWide = map[string]bool{
	"wamp.session.count": true, "wamp.session.list": true, "wamp.session.get": true,
	"wamp.session.kill": true, "wamp.session.kill_by_authid": true,
	"wamp.session.kill_by_authrole": true, "wamp.session.kill_all": true,
	"wamp.subscription.list": true, "wamp.subscription.lookup": true, "wamp.subscription.match": true,
	"wamp.subscription.get": true, "wamp.subscription.list_subscribers": true,
	"wamp.subscription.count_subscribers": true, "wamp.subscription.remove_subscriber": true,
	"wamp.registration.remove_callee": true,
}

// realmMeta answers a realmWide procedure: with a federation, after the other routers'
// parts have come (the CALL is held meanwhile and runs again with them).
func (s *Session) realmMeta(m *codec.Message, args []any, kwargs map[string]any, sc *scratch) {
	uri := string(m.URI)
	if isKill(uri) {
		reason, _ := kwargs["reason"].(string)
		if reason != "" && !validURI([]byte(reason), false) {
			s.sendError(codec.CALL, m.Request, ErrInvalidURI, sc)
			return
		}
	}
	rl := s.realm
	var remote []any
	if f := rl.router.federation(); f != nil && !rl.answersAlone(uri, args) {
		h := s.hold.Load()
		if h != nil && h.draining && h.metaParts != nil {
			remote, h.metaParts = *h.metaParts, nil
		} else {
			s.deferMessage(m)
			f.MetaQuery(rl, s, uri, args, kwargs, func(parts []any) {
				s.resolveHold(func(h *holdState) { h.metaParts = &parts })
			})
			return
		}
	}
	result, errURI := mergeMeta(uri, rl.MetaPart(s.id, uri, args, kwargs), remote)
	if errURI != "" {
		s.sendError(codec.CALL, m.Request, errURI, sc)
		return
	}
	s.sendResultValues(m.Request, result, sc)
}

// metaRerun reports whether the CALL being processed is a held realm-wide meta call
// running again with the other routers' parts (it was authorized the first time).
func (s *Session) metaRerun() bool {
	h := s.hold.Load()
	return h != nil && h.draining && h.metaParts != nil
}

func isKill(uri string) bool {
	switch uri {
	case "wamp.session.kill", "wamp.session.kill_by_authid", "wamp.session.kill_by_authrole", "wamp.session.kill_all":
		return true
	}
	return false
}

// answersAlone reports whether this router's part is the whole answer: the procedure is
// about one session and it is joined here.
func (rl *Realm) answersAlone(uri string, args []any) bool {
	switch uri {
	case "wamp.session.get", "wamp.session.kill":
		return rl.sessionArg(args) != nil
	case "wamp.subscription.remove_subscriber", "wamp.registration.remove_callee":
		return rl.sessionArg(args[min(1, len(args)):]) != nil
	}
	return false
}

// MetaPart computes this router's part of a realm-wide meta procedure (see
// Federation.MetaQuery) called by session caller (which may be on another router), and
// executes what it asks of this router's sessions (kill, revocation). The part is made
// of JSON-encodable values. Safe for concurrent use.
func (rl *Realm) MetaPart(caller uint64, procedure string, args []any, kwargs map[string]any) any {
	switch procedure {
	case "wamp.session.count", "wamp.session.list":
		var roles []any
		if len(args) > 0 {
			roles, _ = args[0].([]any)
		}
		ids := []any{}
		rl.sessions.Range(func(id uint64, x *Session) bool {
			if roles == nil || containsString(roles, x.auth.AuthRole) {
				ids = append(ids, id)
			}
			return true
		})
		if procedure == "wamp.session.count" {
			return uint64(len(ids))
		}
		return ids
	case "wamp.session.get":
		if x := rl.sessionArg(args); x != nil {
			return x.metaDetails()
		}
		return nil
	case "wamp.session.kill", "wamp.session.kill_by_authid", "wamp.session.kill_by_authrole", "wamp.session.kill_all":
		return uint64(rl.killPart(caller, procedure, args, kwargs))
	case "wamp.subscription.remove_subscriber", "wamp.registration.remove_callee":
		reason, _ := kwargs["reason"].(string)
		return rl.revokePart(procedure == "wamp.subscription.remove_subscriber", args, reason)
	}
	if len(procedure) > len("wamp.subscription.") {
		return rl.subscriptionPart(procedure[len("wamp.subscription."):], args)
	}
	return nil
}

func containsString(list []any, s string) bool {
	for _, v := range list {
		if v == any(s) {
			return true
		}
	}
	return false
}

// killPart closes the sessions here that procedure names (never caller) and returns how
// many.
func (rl *Realm) killPart(caller uint64, procedure string, args []any, kwargs map[string]any) int {
	reason, _ := kwargs["reason"].(string)
	if reason == "" || !validURI([]byte(reason), false) {
		reason = CloseNormal
	}
	message, _ := kwargs["message"].(string)
	var victims []*Session
	if procedure == "wamp.session.kill" {
		if x := rl.sessionArg(args); x != nil && x.id != caller {
			victims = []*Session{x}
		}
	} else {
		want, _ := argAt(args, 0).(string)
		rl.sessions.Range(func(_ uint64, x *Session) bool {
			hit := x.id != caller && (procedure == "wamp.session.kill_all" ||
				(procedure == "wamp.session.kill_by_authid" && x.auth.AuthID == want) ||
				(procedure == "wamp.session.kill_by_authrole" && x.auth.AuthRole == want))
			if hit {
				victims = append(victims, x)
			}
			return true
		})
	}
	quiet := procedure == "wamp.session.kill_all"
	for _, x := range victims {
		if quiet {
			// The spec: closing all sessions generates no session meta events and no
			// testament events.
			x.leftMeta.Store(true)
			x.mu.Lock()
			x.testaments = nil
			x.mu.Unlock()
		}
		x.goodbye(reason, message)
	}
	return len(victims)
}

// subscriptionPart is this router's part of wamp.subscription.<op>: what its own
// subscriptions say (nil: nothing here).
func (rl *Realm) subscriptionPart(op string, args []any) any {
	b := rl.broker
	switch op {
	case "list":
		lists := map[string]any{"exact": []any{}, "prefix": []any{}, "wildcard": []any{}}
		for _, sub := range b.all() {
			p := sub.metaPolicy()
			lists[p] = append(lists[p].([]any), sub.id)
		}
		return lists
	case "lookup":
		uri := stringOf(argAt(args, 0))
		opts, _ := argAt(args, 1).(map[string]any)
		policy := stringOf(opts["match"])
		if policy == "" {
			policy = "exact"
		}
		for _, sub := range b.all() {
			if sub.topic == uri && sub.metaPolicy() == policy {
				return sub.id
			}
		}
		return nil
	case "match":
		topic := []byte(stringOf(argAt(args, 0)))
		var ids []any
		if sub, ok := b.subs.Get(topic); ok {
			ids = append(ids, sub.id)
		}
		for _, mt := range b.patterns.AppendMatches(nil, topic) {
			ids = append(ids, mt.Value.id)
		}
		if ids == nil {
			return nil
		}
		return ids
	case "get", "list_subscribers", "count_subscribers":
		var sub *subscription
		for _, x := range b.all() {
			if x.id == idArg(args) {
				sub = x
			}
		}
		if sub == nil {
			return nil
		}
		ms := *sub.subscribers.Load()
		switch op {
		case "get":
			return sub.metaDetails()
		case "count_subscribers":
			return uint64(len(ms))
		}
		ids := make([]any, len(ms))
		for i, x := range ms {
			ids[i] = x.id
		}
		return ids
	}
	return nil
}

// mergeMeta turns the parts of every router (local first) into the procedure's answer:
// its positional result (nil: none) or an error URI.
func mergeMeta(uri string, local any, remote []any) (result []any, errURI string) {
	parts := make([]any, 0, 1+len(remote))
	parts = append(parts, local)
	parts = append(parts, remote...)
	switch uri {
	case "wamp.session.count", "wamp.subscription.count_subscribers":
		var n uint64
		found := false
		for _, p := range parts {
			if p != nil {
				n += numberOf(p)
				found = true
			}
		}
		if !found {
			return nil, ErrNoSuchSubscription
		}
		return []any{n}, ""
	case "wamp.session.list", "wamp.subscription.list_subscribers":
		ids := []any{}
		found := false
		for _, p := range parts {
			if l, ok := p.([]any); ok {
				ids = append(ids, l...)
				found = true
			}
		}
		if !found {
			return nil, ErrNoSuchSubscription
		}
		return []any{ids}, ""
	case "wamp.session.get", "wamp.subscription.get":
		for _, p := range parts {
			if d, ok := p.(map[string]any); ok {
				return []any{d}, ""
			}
		}
		if uri == "wamp.session.get" {
			return nil, ErrNoSuchSession
		}
		return nil, ErrNoSuchSubscription
	case "wamp.session.kill", "wamp.session.kill_by_authid", "wamp.session.kill_by_authrole", "wamp.session.kill_all":
		var n uint64
		for _, p := range parts {
			n += numberOf(p)
		}
		if uri != "wamp.session.kill" {
			return []any{n}, ""
		}
		if n == 0 {
			return nil, ErrNoSuchSession
		}
		return nil, ""
	case "wamp.subscription.remove_subscriber", "wamp.registration.remove_callee":
		errURI = ErrNoSuchSession
		for _, p := range parts {
			switch e, _ := p.(string); {
			case e == "" && p != nil:
				return nil, ""
			case e != "" && e != ErrNoSuchSession:
				errURI = e
			}
		}
		return nil, errURI
	case "wamp.subscription.list":
		lists := map[string]any{}
		seen := map[uint64]bool{}
		for _, pol := range []string{"exact", "prefix", "wildcard"} {
			var ids []any
			for _, p := range parts {
				if m, ok := p.(map[string]any); ok {
					l, _ := m[pol].([]any)
					ids = appendNew(ids, l, seen)
				}
			}
			if ids == nil {
				ids = []any{}
			}
			lists[pol] = ids
		}
		return []any{lists}, ""
	case "wamp.subscription.lookup":
		for _, p := range parts {
			if p != nil {
				return []any{numberOf(p)}, ""
			}
		}
		return []any{nil}, ""
	case "wamp.subscription.match":
		var ids []any
		seen := map[uint64]bool{}
		for _, p := range parts {
			l, _ := p.([]any)
			ids = appendNew(ids, l, seen)
		}
		if ids == nil {
			return []any{nil}, ""
		}
		return []any{ids}, ""
	}
	return nil, ErrNoSuchProcedure
}

// appendNew appends the ids of add not in seen yet (and records them there).
func appendNew(ids, add []any, seen map[uint64]bool) []any {
	for _, v := range add {
		if id := numberOf(v); !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	return ids
}

// numberOf reads an id or count, whatever integer type a decoder produced.
func numberOf(v any) uint64 {
	switch x := v.(type) {
	case uint64:
		return x
	case int64:
		return uint64(x)
	case int:
		return uint64(x)
	case float64:
		return uint64(x)
	}
	return 0
}
