package engine

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-wamp/switchyard/codec"
)

// Authorizer is a realm's dynamic authorizer: a WAMP procedure, registered in the realm
// by a trusted client, that decides the actions of every session whose authrole has no
// static permissions (SetRoles). It is called as Crossbar calls its authorizers, with
// (session details, uri, action, options), action one of "publish", "subscribe",
// "call", "register", and answers true/false or a dict {"allow": bool, "disclose":
// bool, "cache": bool}. Decisions are cached per session (CacheSize entries per action;
// "cache": false opts out), so the steady state checks a map the session owns: no lock,
// no allocation. An error, a malformed answer or no answer within Timeout denies the
// action (not cached) and logs why.
//
// While a decision is outstanding, the session's later messages wait behind the one
// being authorized, so a client's messages are processed in the order it sent them.
type Authorizer struct {
	Procedure string
	CacheSize int           // decisions kept per session and action; 0 = no cache
	Timeout   time.Duration // default 5s
}

// SetAuthorizer installs (nil: removes) the realm's dynamic authorizer; sessions that
// join afterwards use it. Safe for concurrent use.
func (rl *Realm) SetAuthorizer(a *Authorizer) {
	if a != nil && a.Timeout <= 0 {
		c := *a
		c.Timeout = 5 * time.Second
		a = &c
	}
	rl.authorizer.Store(a)
}

// authzDecision is one answer of the authorizer.
type authzDecision struct{ allow, disclose bool }

// authzState is a session's dynamic-authorization state.
type authzState struct {
	cfg *Authorizer
	// cache is touched only by whoever processes the session's messages (one at a time).
	cache [4]map[string]authzDecision
	// oneShot is an uncacheable decision for the message being drained; guarded by the
	// session's holdState.mu.
	oneShot *authzDecision
}

// holdState keeps a session's messages in order while a decision about one of them is
// outstanding: the dynamic authorizer's, or the federation's about a REGISTER. Made on
// first use (s.hold); sessions that never wait pay one atomic load per message.
type holdState struct {
	// deferred is set while a decision is outstanding; then incoming messages are
	// appended (encoded) to backlog instead of being processed.
	deferred atomic.Bool
	mu       sync.Mutex // guards backlog, draining, missed, regDecision
	backlog  [][]byte
	draining bool
	missed   bool // the message being drained needs another decision
	// regDecision is the federation's answer for the REGISTER at the head of backlog.
	regDecision *string
	// metaParts are the other routers' parts of the realm-wide meta CALL at the head of
	// backlog (metafed.go).
	metaParts *[]any
}

// holdOf returns s's holdState, making it on first use. Called by whoever processes the
// session's messages.
func (s *Session) holdOf() *holdState {
	if h := s.hold.Load(); h != nil {
		return h
	}
	s.hold.CompareAndSwap(nil, &holdState{})
	return s.hold.Load()
}

// deferMessage holds m (and everything the session sends after it) until resolveHold.
// While the backlog is being drained, m is already its head and stays there.
func (s *Session) deferMessage(m *codec.Message) {
	h := s.holdOf()
	if h.draining {
		h.missed = true // m stays at the head of the backlog
		return
	}
	raw, err := s.codec.Append(nil, m)
	if err != nil {
		s.logger().Error("cannot hold message", "session", s.id, "err", err)
		return
	}
	h.mu.Lock()
	h.backlog = append(h.backlog, raw)
	h.deferred.Store(true)
	h.mu.Unlock()
}

// undefer takes back the deferMessage just made (nothing turned out to wait for).
func (s *Session) undefer() {
	h := s.holdOf()
	if h.draining {
		h.missed = false
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if n := len(h.backlog); n > 0 {
		h.backlog[n-1] = nil
		h.backlog = h.backlog[:n-1]
	}
	if len(h.backlog) == 0 {
		h.backlog = nil
		h.deferred.Store(false)
	}
}

// useAuthorizer gives a joining session the realm's authorizer when its role has no
// static permissions.
func (s *Session) useAuthorizer() {
	a := s.realm.authorizer.Load()
	if a == nil {
		return
	}
	if roles := s.realm.roles.Load(); roles != nil {
		if _, static := (*roles)[s.auth.AuthRole]; static {
			return
		}
	}
	s.perms = nil
	s.authz = &authzState{cfg: a}
}

func actionOf(t codec.MessageType) (int, string) {
	switch t {
	case codec.PUBLISH:
		return 0, "publish"
	case codec.SUBSCRIBE:
		return 1, "subscribe"
	case codec.CALL:
		return 2, "call"
	default:
		return 3, "register"
	}
}

// authorizeDynamic is authorized for a session with an authorizer. On a cache miss it
// defers m (and everything the session sends after it) until the authorizer answers, and
// returns false without replying.
func (s *Session) authorizeDynamic(reqType codec.MessageType, m *codec.Message, sc *scratch) bool {
	st := s.authz
	a, action := actionOf(reqType)
	pattern := len(m.Details.Match) > 0 && string(m.Details.Match) != "exact"
	var d authzDecision
	var ok bool
	if h := s.hold.Load(); h != nil && h.draining && st.oneShot != nil {
		d, ok = *st.oneShot, true
		st.oneShot = nil
	} else if pattern {
		d, ok = st.cache[a][string(m.Details.Match)+"\x00"+string(m.URI)]
	} else {
		d, ok = st.cache[a][string(m.URI)]
	}
	if !ok {
		s.askAuthorizer(reqType, m, a, action, pattern)
		return false
	}
	if d.disclose && (reqType == codec.CALL || reqType == codec.PUBLISH) {
		m.Details.Has, m.Details.DiscloseMe = m.Details.Has|codec.KeyDiscloseMe, true
	}
	if !d.allow {
		s.deny(reqType, m, sc)
	}
	return d.allow
}

// askAuthorizer defers m and calls the authorizer about it.
func (s *Session) askAuthorizer(reqType codec.MessageType, m *codec.Message, a int, action string, pattern bool) {
	st := s.authz
	s.deferMessage(m)
	uri := string(m.URI)
	key := uri
	options := map[string]any{}
	if pattern {
		key = string(m.Details.Match) + "\x00" + uri
		options["match"] = string(m.Details.Match)
	}
	cfg := st.cfg
	s.realm.CallProcedure(cfg.Procedure, []any{s.metaDetails(), uri, action, options}, nil, cfg.Timeout,
		func(r CallResult) {
			d, cache, why := parseAuthorization(r)
			if why != "" {
				s.logger().Warn("authorizer: action denied", "session", s.id, "realm", s.realm.name,
					"authid", s.auth.AuthID, "uri", uri, "action", action, "reason", why)
			}
			s.resolveAuthorization(a, key, d, cache)
		})
}

// parseAuthorization reads the authorizer's answer; why is non-empty when the answer is
// a failure (then the action is denied and nothing is cached).
func parseAuthorization(r CallResult) (d authzDecision, cache bool, why string) {
	switch {
	case r.Err != nil:
		return d, false, r.Err.Error()
	case r.ErrorURI != "":
		return d, false, "authorizer returned " + r.ErrorURI
	case len(r.Args) == 0:
		return d, false, "authorizer returned nothing"
	}
	switch v := r.Args[0].(type) {
	case bool:
		return authzDecision{allow: v}, true, ""
	case map[string]any:
		allow, ok := v["allow"].(bool)
		if !ok {
			return d, false, "authorizer answer has no boolean \"allow\""
		}
		d = authzDecision{allow: allow}
		d.disclose, _ = v["disclose"].(bool)
		cache = true
		if c, ok := v["cache"].(bool); ok {
			cache = c
		}
		return d, cache, ""
	}
	return d, false, "authorizer answer is neither a boolean nor a dict"
}

// resolveAuthorization records a decision and processes the messages that waited for it.
func (s *Session) resolveAuthorization(a int, key string, d authzDecision, cache bool) {
	st := s.authz
	s.resolveHold(func(*holdState) {
		if cache && st.cfg.CacheSize > 0 {
			c := st.cache[a]
			if c == nil {
				c = map[string]authzDecision{}
				st.cache[a] = c
			}
			if len(c) >= st.cfg.CacheSize {
				for k := range c { // bounded: drop an arbitrary entry
					delete(c, k)
					break
				}
			}
			c[key] = d
		} else {
			st.oneShot = &d
		}
	})
}

// resolveHold records a decision (decide runs under the hold's lock) and processes the
// messages that waited for it in order, until the backlog is empty or another message
// needs a decision. It runs on the decision's goroutine; holding h.mu keeps the
// session's own goroutine out (it appends to the backlog or waits) while the backlog is
// processed.
// It reports whether a federation decision set by decide was left unused (the session
// left before its REGISTER could be processed).
func (s *Session) resolveHold(decide func(*holdState)) (unused bool) {
	h := s.holdOf()
	h.mu.Lock()
	defer h.mu.Unlock()
	decide(h)
	h.draining = true
	sc := getScratch()
	var m codec.Message
	for len(h.backlog) > 0 {
		if s.state.Load() != sessionOpen {
			h.backlog = nil
			break
		}
		if err := s.codec.Decode(h.backlog[0], &m); err != nil {
			s.logger().Error("held message undecodable", "session", s.id, "err", err)
		} else {
			s.dispatch(&m, sc)
		}
		if h.missed {
			h.missed = false
			break
		}
		h.backlog[0] = nil
		h.backlog = h.backlog[1:]
	}
	putScratch(sc)
	unused = h.regDecision != nil
	h.draining, h.regDecision, h.metaParts = false, nil, nil
	if s.authz != nil {
		s.authz.oneShot = nil
	}
	if len(h.backlog) == 0 {
		h.backlog = nil
		h.deferred.Store(false)
	}
	return unused
}

// holdIfDeferred appends m to the backlog when a decision is outstanding and reports
// whether it did.
func (s *Session) holdIfDeferred(h *holdState, m *codec.Message) bool {
	if !h.deferred.Load() {
		return false
	}
	raw, err := s.codec.Append(nil, m)
	if err != nil {
		s.logger().Error("cannot hold message", "session", s.id, "err", err)
		return true
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.deferred.Load() {
		return false
	}
	h.backlog = append(h.backlog, raw)
	return true
}
