package engine

import (
	"fmt"

	"github.com/switchyard-wamp/switchyard/codec"
	"github.com/switchyard-wamp/switchyard/engine/match"
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

// RolePermissions is a role's compiled rules: an exact map and a pattern tree. The most
// specific rule wins: exact, then the longest prefix, then the wildcard with the most
// literal components (engine/match's precedence); no rule means deny. Lookups never
// lock and do not allocate once the pattern tree's cache holds the URI.
type RolePermissions struct {
	exact    map[string]Permission
	patterns *match.Tree[*Permission]
}

// NewRolePermissions compiles rules. Safe for concurrent use of the result.
func NewRolePermissions(rules []Rule) (*RolePermissions, error) {
	p := &RolePermissions{exact: map[string]Permission{}, patterns: match.New[*Permission]()}
	for i, r := range rules {
		switch r.Match {
		case "", "exact":
			p.exact[r.URI] = r.Allow
		default:
			kind, ok := match.ParseKind(r.Match)
			if !ok {
				return nil, fmt.Errorf("rule %d: match %q", i, r.Match)
			}
			allow := r.Allow
			p.patterns.Insert(r.URI, kind, &allow)
		}
	}
	return p, nil
}

// lookup returns the permission of the most specific rule for uri.
func (p *RolePermissions) lookup(uri []byte) (Permission, bool) {
	if perm, ok := p.exact[string(uri)]; ok {
		return perm, true
	}
	if p.patterns.Len() == 0 {
		return Permission{}, false
	}
	_, _, perm, ok := p.patterns.Best(uri)
	if !ok {
		return Permission{}, false
	}
	return *perm, true
}

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
	return &RolePermissions{exact: map[string]Permission{}, patterns: match.New[*Permission]()}
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
		m.Details.DiscloseMe = m.Details.DiscloseMe || perm.DiscloseCaller
	case codec.REGISTER:
		ok = perm.Register
	case codec.PUBLISH:
		ok = perm.Publish
		m.Details.DiscloseMe = m.Details.DiscloseMe || perm.DisclosePublisher
	case codec.SUBSCRIBE:
		ok = perm.Subscribe
	}
	if !ok && (reqType != codec.PUBLISH || m.Details.Acknowledge) {
		s.sendError(reqType, m.Request, ErrNotAuthorized, sc)
	}
	return ok
}
