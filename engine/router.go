package engine

import (
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/puzpuzpuz/xsync/v3"
	"github.com/switchyard-wamp/switchyard/codec"
)

// Router holds the realms of one engine and the router-scope ID sequences.
// All methods are safe for concurrent use.
type Router struct {
	realms *xsync.MapOf[string, *Realm]
	// Subscription and registration ids are hashes of (realm, policy, uri) so that every
	// router of a cluster agrees on them (SubscriptionID, RegistrationID).
	log *slog.Logger
	// fed is the federation (package span) when the realms span several routers.
	fed atomic.Pointer[fedBox]
}

// NewRouter returns a router with no realms. A nil logger means slog.Default().
func NewRouter(log *slog.Logger) *Router {
	if log == nil {
		log = slog.Default()
	}
	return &Router{realms: xsync.NewMapOf[string, *Realm](), log: log}
}

// AddRealm creates realm name if it does not exist and returns it. Safe for concurrent use.
func (r *Router) AddRealm(name string) *Realm {
	rl, _ := r.realms.LoadOrCompute(name, func() *Realm {
		rl := &Realm{
			name:     name,
			router:   r,
			sessions: xsync.NewMapOf[uint64, *Session](),
			ghosts:   xsync.NewMapOf[uint64, *Session](),
			broker:   newBroker(),
			dealer:   newDealer(),
		}
		// The meta publisher never joins: it only publishes meta events (JSON payloads,
		// transcoded per subscriber serializer like any publication).
		rl.metaPublisher = &Session{realm: rl, ser: codec.JSON, codec: codec.For(codec.JSON),
			auth: AuthInfo{AuthID: "router", AuthRole: "trusted"}}
		rl.metaLocal = &Session{realm: rl, ser: codec.JSON, codec: codec.For(codec.JSON),
			auth: AuthInfo{AuthID: "router", AuthRole: "trusted"}}
		return rl
	})
	if f := r.federation(); f != nil {
		f.RealmAdded(rl)
	}
	return rl
}

// Realm returns the realm called name. Safe for concurrent use.
func (r *Router) Realm(name string) (*Realm, bool) { return r.realms.Load(name) }

// RealmNames returns the realm names, sorted. Safe for concurrent use.
func (r *Router) RealmNames() []string {
	var names []string
	r.realms.Range(func(k string, _ *Realm) bool { names = append(names, k); return true })
	sort.Strings(names)
	return names
}

// SessionCount returns the number of joined sessions across realms. Safe for concurrent use.
func (r *Router) SessionCount() int {
	n := 0
	r.realms.Range(func(_ string, rl *Realm) bool { n += rl.sessions.Size(); return true })
	return n
}

// Shutdown says GOODBYE with reason (e.g. wamp.close.system_shutdown) to every session
// of every realm. The transports stay open so that the GOODBYE can be flushed; closing
// them is the caller's job. Safe for concurrent use.
func (r *Router) Shutdown(reason string) {
	r.realms.Range(func(_ string, rl *Realm) bool {
		rl.sessions.Range(func(_ uint64, s *Session) bool {
			s.Goodbye(reason)
			return true
		})
		return true
	})
}

// Realm is one routing namespace: its sessions, broker and dealer.
// All methods are safe for concurrent use.
type Realm struct {
	name     string
	router   *Router
	sessions *xsync.MapOf[uint64, *Session]
	broker   *broker
	dealer   *dealer
	roles    atomic.Pointer[map[string]*RolePermissions]
	// metaPublisher publishes the wamp.session/subscription/registration meta events.
	metaPublisher *Session
	// metaLocal publishes meta events for this router's subscribers only (not forwarded
	// to the other routers of a federation, which publish their own).
	metaLocal *Session
	// ghosts are the local stand-ins of callees on other routers (federation), by id.
	ghosts *xsync.MapOf[uint64, *Session]
	// fedState is the federation's per-realm state (FedState).
	fedState atomic.Value
	// authorizer, when set, decides the actions of roles without static permissions.
	authorizer atomic.Pointer[Authorizer]
	// internal is the router's own caller session (CallProcedure), made on first use.
	callerOnce sync.Once
	internal   *internalCaller
}

// Name returns the realm's URI.
func (rl *Realm) Name() string { return rl.name }

// SessionCount returns the number of sessions joined to the realm.
func (rl *Realm) SessionCount() int { return rl.sessions.Size() }

// Join adds a session for peer with the given identity and returns it. The caller sends
// WELCOME (see WelcomeDetails). Safe for concurrent use.
func (rl *Realm) Join(peer Peer, auth AuthInfo) *Session {
	return rl.JoinWith(peer, auth, Features{})
}

// JoinWith is Join for a client that announced advanced features in HELLO.
// Safe for concurrent use.
func (rl *Realm) JoinWith(peer Peer, auth AuthInfo, f Features) *Session {
	s := rl.newSession(peer, auth, f)
	for {
		s.id = globalID()
		if _, loaded := rl.sessions.LoadOrStore(s.id, s); !loaded {
			break
		}
	}
	rl.joined(s)
	return s
}

// RouterRoles is the WELCOME.Details.roles dict: exactly the roles and features this
// engine implements.
func RouterRoles() map[string]any {
	return map[string]any{
		"broker": map[string]any{"features": map[string]any{
			"event_history":                 true,
			"event_retention":               true,
			"publisher_exclusion":           true,
			"session_meta_api":              true,
			"publisher_identification":      true,
			"pattern_based_subscription":    true,
			"payload_passthru_mode":         true,
			"subscriber_blackwhite_listing": true,
			"subscription_meta_api":         true,
			"subscription_revocation":       true,
		}},
		"dealer": map[string]any{"features": map[string]any{
			"call_canceling":               true,
			"call_timeout":                 true,
			"caller_identification":        true,
			"pattern_based_registration":   true,
			"payload_passthru_mode":        true,
			"progressive_call_invocations": true,
			"progressive_call_results":     true,
			"registration_meta_api":        true,
			"registration_revocation":      true,
			"session_meta_api":             true,
			"shared_registration":          true,
			"testament_meta_api":           true,
		}},
	}
}

// WelcomeDetails returns WELCOME.Details for s: roles plus the authentication facts.
// Safe for concurrent use.
func (s *Session) WelcomeDetails() map[string]any { return WelcomeDetails(s.realm.name, s.auth) }

// WelcomeDetails is the WELCOME.Details dict of a session of realm with identity auth:
// what a proxy sends for a session that joined on a router. Safe for concurrent use.
func WelcomeDetails(realm string, auth AuthInfo) map[string]any {
	d := map[string]any{
		"roles":        RouterRoles(),
		"realm":        realm,
		"authid":       auth.AuthID,
		"authrole":     auth.AuthRole,
		"authmethod":   auth.AuthMethod,
		"authprovider": auth.AuthProvider,
	}
	if auth.Extra != nil {
		d["authextra"] = auth.Extra
	}
	return d
}

// String describes the session for logs.
func (s *Session) String() string {
	return fmt.Sprintf("session %d (realm %s, authid %s)", s.id, s.realm.name, s.auth.AuthID)
}
