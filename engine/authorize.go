package engine

import (
	"fmt"
	"log/slog"

	"github.com/switchyard-wamp/switchyard/codec"
)

// Permission is what a role may do on the URIs a rule matches, and whose identity the
// router discloses whether or not the client asked (disclose_me).
type Permission struct {
	Call, Register, Publish, Subscribe bool
	DiscloseCaller, DisclosePublisher  bool
}

// Rule grants Permission on URIs matching URI under Match ("exact", "prefix" or
// "wildcard").
type Rule struct {
	URI   string
	Match string
	Allow Permission
}

// RolePermissions is a role's compiled rules. The most specific rule wins: exact, then
// the longest prefix, then the wildcard with the most literal components; no rule means
// deny. Lookups never lock and do not allocate once the pattern tree's cache holds the
// URI.
type RolePermissions struct {
	rules uriRules[Permission]
}

// NewRolePermissions compiles rules. Safe for concurrent use of the result.
func NewRolePermissions(rules []Rule) (*RolePermissions, error) {
	p := &RolePermissions{rules: newURIRules[Permission]()}
	for i, r := range rules {
		if err := p.rules.add(r.URI, r.Match, r.Allow); err != nil {
			return nil, fmt.Errorf("rule %d: %w", i, err)
		}
	}
	return p, nil
}

// lookup returns the permission of the most specific rule for uri.
func (p *RolePermissions) lookup(uri []byte) (Permission, bool) { return p.rules.best(uri) }

// SetRoles configures authorization for the realm: each authrole's permissions. A realm
// without roles (nil) lets every session do everything (the anonymous default); with
// roles, a session whose authrole has none may do nothing. Sessions pick up the roles
// when they join. Safe for concurrent use.
func (rl *Realm) SetRoles(roles map[string]*RolePermissions) {
	if roles == nil {
		rl.roles.Store(nil)
		return
	}
	rl.roles.Store(&roles)
}

// permissionsFor returns the permissions of authrole in rl, nil for "everything".
func (rl *Realm) permissionsFor(authrole string) *RolePermissions {
	roles := rl.roles.Load()
	if roles == nil {
		return nil
	}
	if p, ok := (*roles)[authrole]; ok {
		return p
	}
	return &RolePermissions{rules: newURIRules[Permission]()}
}

// authorized checks one action of s on uri; on denial it answers the request with
// wamp.error.not_authorized (a PUBLISH only when acknowledged) and returns false.
func (s *Session) authorized(reqType codec.MessageType, m *codec.Message, sc *scratch) bool {
	if s.perms == nil {
		if s.authz != nil {
			return s.authorizeDynamic(reqType, m, sc)
		}
		return true
	}
	perm, _ := s.perms.lookup(m.URI)
	var ok bool
	switch reqType {
	case codec.CALL:
		ok = perm.Call
		// Forced disclosure: the rule discloses the caller even without disclose_me.
		if perm.DiscloseCaller {
			m.Details.Has, m.Details.DiscloseMe = m.Details.Has|codec.KeyDiscloseMe, true
		}
	case codec.REGISTER:
		ok = perm.Register
	case codec.PUBLISH:
		ok = perm.Publish
		// The Has bit too: a PUBLISH forwarded to another router is re-encoded from m.
		if perm.DisclosePublisher {
			m.Details.Has, m.Details.DiscloseMe = m.Details.Has|codec.KeyDiscloseMe, true
		}
	case codec.SUBSCRIBE:
		ok = perm.Subscribe
	}
	if !ok {
		s.deny(reqType, m, sc)
	}
	return ok
}

// deny refuses m, an action of s its authrole may not do: ERROR wamp.error.not_authorized
// (a PUBLISH only when acknowledged) with a text naming the action and the URI, and an
// Info log line with the session, authid and authrole (rate-limited per cause and peer
// address, as every line a client can cause). Not the hot path: it may allocate.
func (s *Session) deny(reqType codec.MessageType, m *codec.Message, sc *scratch) {
	action := deniedAction(reqType)
	r := s.realm.router
	if r.logOKAt(slog.LevelInfo, "not authorized", s.peer) {
		r.log.Info("not authorized", "realm", s.realm.name, "session", s.id, "authid", s.auth.AuthID,
			"authrole", s.auth.AuthRole, "action", action, "uri", string(m.URI))
	}
	if reqType != codec.PUBLISH || m.Details.Acknowledge {
		s.sendErrorMsg(reqType, m.Request, ErrNotAuthorized, NotAuthorizedText(action, string(m.URI), s.auth.AuthRole), sc)
	}
}

// NotAuthorizedText is the message of a wamp.error.not_authorized: the action (call,
// register, publish, subscribe) and URI refused, and the authrole that lacks it.
func NotAuthorizedText(action, uri, authrole string) string {
	return fmt.Sprintf("authrole %q is not authorized to %s %q", authrole, action, uri)
}

// deniedAction names the action of a request type in NotAuthorizedText.
func deniedAction(reqType codec.MessageType) string {
	switch reqType {
	case codec.CALL:
		return "call"
	case codec.REGISTER:
		return "register"
	case codec.PUBLISH:
		return "publish to"
	case codec.SUBSCRIBE:
		return "subscribe to"
	}
	return reqType.String()
}
