package engine

import (
	"fmt"
	"log/slog"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/puzpuzpuz/xsync/v3"
	"github.com/switchyard-wamp/switchyard/codec"
	"github.com/switchyard-wamp/switchyard/internal/lograte"
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
	// logLimit rate-limits the log lines clients can cause (lograte).
	logLimit atomic.Pointer[lograte.Limiter]
}

// NewRouter returns a router with no realms. A nil logger means slog.Default().
func NewRouter(log *slog.Logger) *Router {
	if log == nil {
		log = slog.Default()
	}
	r := &Router{realms: xsync.NewMapOf[string, *Realm](), log: log}
	r.SetLogLimit(nil)
	return r
}

// SetLogLimit sets the limiter of the log lines clients can cause (sessions aborted
// for protocol violations), so that one node can share one limiter between its layers;
// nil: a limiter of its own with lograte's defaults. Safe for concurrent use.
func (r *Router) SetLogLimit(l *lograte.Limiter) {
	if l == nil {
		l = lograte.New(r.log, 0, 0, 0)
	}
	r.logLimit.Store(l)
}

// logOK reports whether a Warn line for cause, caused by peer, may be written now. The
// address is the peer's RemoteAddr when it has one.
func (r *Router) logOK(cause string, peer Peer) bool { return r.logOKAt(slog.LevelWarn, cause, peer) }

// logOKAt is logOK for a line at level.
func (r *Router) logOKAt(level slog.Level, cause string, peer Peer) bool {
	var addr net.Addr
	if p, ok := peer.(interface{ RemoteAddr() net.Addr }); ok {
		addr = p.RemoteAddr()
	}
	return r.logLimit.Load().Allow(level, cause, lograte.Addr(addr))
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

// RemoveRealm drops realm name (a config reload that no longer lists it): handshakes
// can no longer find it, a join racing with the removal is refused (JoinWelcome), and
// every session joined to it gets GOODBYE reason with message and leaves it. A client
// that has not answered GOODBYE and closed within RemovedRealmGrace has its transport
// closed: the connection has no other use. It returns the number of sessions told
// GOODBYE and false if there was no such realm. Adding the name again later makes a new,
// empty realm. Safe for concurrent use.
func (r *Router) RemoveRealm(name, reason, message string) (sessions int, ok bool) {
	rl, ok := r.realms.LoadAndDelete(name)
	if !ok {
		return 0, false
	}
	// Wait for joins in progress: each has sent its WELCOME when it releases the lock,
	// so the GOODBYE below cannot overtake it; joins after this see removed.
	rl.joinMu.Lock()
	rl.removed = true
	rl.joinMu.Unlock()
	var peers []Peer
	rl.sessions.Range(func(_ uint64, s *Session) bool {
		s.goodbye(reason, message)
		peers = append(peers, s.peer)
		return true
	})
	if len(peers) > 0 {
		time.AfterFunc(RemovedRealmGrace, func() {
			for _, p := range peers {
				p.Close() // idempotent: most closed after their GOODBYE reply
			}
		})
	}
	return len(peers), true
}

// RemovedRealmGrace is how long RemoveRealm leaves a session's transport open for the
// client's GOODBYE reply. A variable for tests; set it before any RemoveRealm.
var RemovedRealmGrace = 5 * time.Second

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
	// joinMu orders handshakes against RemoveRealm: JoinWelcome holds it shared while it
	// joins and sends WELCOME, RemoveRealm exclusively while it sets removed.
	joinMu  sync.RWMutex
	removed bool
}

// Name returns the realm's URI.
func (rl *Realm) Name() string { return rl.name }

// SessionCount returns the number of sessions joined to the realm.
func (rl *Realm) SessionCount() int { return rl.sessions.Size() }

// CallsInFlight returns the CALLs of the realm's local sessions that wait for a result
// (it reads each session's counter: a scrape-time cost, nothing on the call path).
// Safe for concurrent use.
func (rl *Realm) CallsInFlight() int64 {
	var n int64
	rl.sessions.Range(func(_ uint64, s *Session) bool {
		n += s.inflight.Load()
		return true
	})
	return n
}

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

// JoinWelcome is JoinWith for a client handshake: unless the realm has been removed
// (Router.RemoveRealm), it joins the session and calls welcome, which must send WELCOME,
// before a GOODBYE of the realm's removal can be sent to the session. It returns nil,
// without calling welcome, if the realm is gone. Safe for concurrent use.
func (rl *Realm) JoinWelcome(peer Peer, auth AuthInfo, f Features, welcome func(*Session)) *Session {
	rl.joinMu.RLock()
	defer rl.joinMu.RUnlock()
	if rl.removed {
		return nil
	}
	s := rl.JoinWith(peer, auth, f)
	welcome(s)
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

// routerRoles is RouterRoles built once: every WELCOME.Details shares it, read-only.
var routerRoles = RouterRoles()

// rolesRaw is routerRoles encoded in each serializer whose dicts can carry an encoded
// value as it is (codec.Raw); nil for the others (flatbuffers).
var rolesRaw = func() (raw [codec.NumSerializers]codec.Raw) {
	for _, s := range codec.Serializers() {
		if s == codec.Flatbuffers || int(s) >= len(raw) {
			continue
		}
		if b, err := codec.AppendValue(nil, s, routerRoles); err == nil {
			raw[s] = b
		}
	}
	return raw
}()

// WelcomeDetails returns WELCOME.Details for s: roles plus the authentication facts,
// for the session's own serializer (see WelcomeDetailsFor). Safe for concurrent use.
func (s *Session) WelcomeDetails() map[string]any {
	return WelcomeDetailsFor(s.ser, s.realm.name, s.auth)
}

// WelcomeDetails is the WELCOME.Details dict of a session of realm with identity auth:
// what a proxy sends for a session that joined on a router. The roles value is shared
// by every call: do not modify it. Safe for concurrent use.
func WelcomeDetails(realm string, auth AuthInfo) map[string]any {
	return welcomeDetails(routerRoles, realm, auth)
}

// WelcomeDetailsFor is WelcomeDetails for a client that speaks ser: where ser allows it
// the roles (most of a WELCOME) are already encoded (a codec.Raw made once), so that
// encoding the WELCOME does not walk and sort them again for every join. The result is
// only for encoding in ser. Safe for concurrent use.
func WelcomeDetailsFor(ser codec.Serializer, realm string, auth AuthInfo) map[string]any {
	var roles any = routerRoles
	if int(ser) < len(rolesRaw) && rolesRaw[ser] != nil {
		roles = rolesRaw[ser]
	}
	return welcomeDetails(roles, realm, auth)
}

func welcomeDetails(roles any, realm string, auth AuthInfo) map[string]any {
	d := map[string]any{
		"roles":        roles,
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
