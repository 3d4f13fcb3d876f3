// Package proxy is the client-facing side of a node: it takes WAMP transports from
// netpoll, runs the opening handshake (HELLO, authentication, WELCOME or ABORT) and hands
// each established session to the engine that owns its realm. In `switchyard start` the
// engine is in the same process; in a cluster the same handshake forwards to a router
// shard over a link.
package proxy

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-wamp/switchyard/codec"
	"github.com/switchyard-wamp/switchyard/engine"
	"github.com/switchyard-wamp/switchyard/internal/lograte"
	"github.com/switchyard-wamp/switchyard/netpoll"
)

// Frontend implements netpoll.Handler for a standalone node: every connection is decoded
// here and its messages are handed to the in-process engine. Its methods are called by
// netpoll on the connection's event loop.
type Frontend struct {
	router *engine.Router
	// cluster, when set, is where sessions live instead of router (a proxy node).
	cluster Cluster
	log     *slog.Logger
	auth    atomic.Pointer[map[string]*RealmAuth]
	limit   *failLimiter
	// logLimit rate-limits the log lines a client can cause (lograte).
	logLimit atomic.Pointer[lograte.Limiter]
	// methods are the auth methods each listener (by name) offers; absent: all.
	methods atomic.Pointer[map[string][]string]
	// counters are joins, leaves and failed logins for /metrics (stats.go).
	counters frontendCounters
}

// NewFrontend returns a Frontend that joins sessions to router's realms. A nil logger means
// slog.Default(). auth maps realm names to who may join them; a realm without an entry
// is not served to clients (ABORT wamp.error.no_such_realm), so that no realm is ever
// open to anonymous sessions by omission. auth must not change afterwards.
func NewFrontend(router *engine.Router, log *slog.Logger, auth map[string]*RealmAuth) *Frontend {
	if log == nil {
		log = slog.Default()
	}
	// 10 failed authentications per source address per minute, then a minute's rest.
	f := &Frontend{router: router, log: log, limit: newFailLimiter(10, time.Minute)}
	f.SetAuth(auth)
	f.SetLogLimit(nil)
	return f
}

// SetLogLimit sets the limiter of the log lines clients can cause (undecodable
// messages, aborted handshakes, failed and blocked logins), so that one node can share
// one limiter between its layers; nil: a limiter of its own with lograte's defaults.
// Safe for concurrent use.
func (f *Frontend) SetLogLimit(l *lograte.Limiter) {
	if l == nil {
		l = lograte.New(f.log, 0, 0, 0)
	}
	f.logLimit.Store(l)
}

// logOK reports whether a Warn line for cause, caused by c's client, may be written now
// (a suppressed one is counted for the limiter's summary line). It does not allocate.
func (f *Frontend) logOK(cause string, c *netpoll.Conn) bool {
	return f.logLimit.Load().Allow(slog.LevelWarn, cause, lograte.Addr(c.RemoteAddr()))
}

// SetAuth replaces who may join which realm (a config reload); handshakes that start
// afterwards use it, established sessions are not touched. Safe for concurrent use.
func (f *Frontend) SetAuth(auth map[string]*RealmAuth) { f.auth.Store(&auth) }

// SetListenerMethods says which auth methods each listener (netpoll.Conn.Listener)
// offers; a listener without an entry offers every method its realm configures. Safe
// for concurrent use.
func (f *Frontend) SetListenerMethods(m map[string][]string) { f.methods.Store(&m) }

// listenerOffers reports whether c's listener offers method.
func (f *Frontend) listenerOffers(c *netpoll.Conn, method string) bool {
	m := f.methods.Load()
	if m == nil {
		return true
	}
	list, ok := (*m)[c.Listener()]
	return !ok || slices.Contains(list, method)
}

// conn is the per-connection state: nil session until WELCOME. After WELCOME only sess
// and done are read, without a lock; the handshake fields are guarded by mu because a
// dynamic authenticator answers on another goroutine.
type conn struct {
	codec codec.Codec
	sess  atomic.Pointer[engine.Session]
	// remote is the session on a router (cluster proxies): messages go to it undecoded.
	remote atomic.Pointer[RemoteSession]
	done   atomic.Bool

	mu      sync.Mutex
	auth    *pendingAuth // CHALLENGE sent, AUTHENTICATE awaited
	waiting bool         // a dynamic authenticator call is outstanding
}

// msgPool holds decode targets: a Message is ~600 bytes, too much to keep per idle
// connection, and decoding happens on many loops at once.
var msgPool = sync.Pool{New: func() any { return new(codec.Message) }}

// OnOpen implements netpoll.Handler.
func (f *Frontend) OnOpen(c *netpoll.Conn) {
	c.SetContext(&conn{codec: codec.For(c.Serializer())})
}

// OnMessage implements netpoll.Handler: decode, then handshake or route.
func (f *Frontend) OnMessage(c *netpoll.Conn, msg []byte) {
	st, _ := c.Context().(*conn)
	if st == nil || st.done.Load() {
		return
	}
	if r := st.remote.Load(); r != nil {
		// After WELCOME a proxy does not decode: the bytes go to the router as they are.
		if err := r.Forward(msg); err != nil {
			if f.logOK("session forward failed", c) {
				f.log.Warn("session forward failed", "session", r.ID, "remote", c.RemoteAddr().String(), "err", err)
			}
			st.done.Store(true)
			c.Close()
		}
		return
	}
	m := msgPool.Get().(*codec.Message)
	// No Reset before Put: Decode clears the message itself, and zeroing it twice per
	// message is ~600 bytes of stores for nothing.
	defer msgPool.Put(m)
	if err := st.codec.Decode(msg, m); err != nil {
		// One line for the message and the ABORT it causes.
		if f.logOK("undecodable message", c) {
			f.log.Warn("undecodable message, session aborted", "remote", c.RemoteAddr().String(),
				"serializer", c.Serializer().String(), "err", err)
		}
		if sess := st.sess.Load(); sess != nil {
			sess.AbortQuiet(engine.ErrProtocolViolation, err.Error())
		} else {
			f.sendAbort(c, st, engine.ErrProtocolViolation, err.Error())
		}
		st.done.Store(true)
		return
	}
	if sess := st.sess.Load(); sess != nil {
		if !sess.Receive(m) {
			st.done.Store(true)
		}
		return
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	switch sess := st.sess.Load(); {
	case sess != nil: // joined by a dynamic authenticator's answer meanwhile
		if !sess.Receive(m) {
			st.done.Store(true)
		}
	case st.done.Load():
	case st.waiting:
		f.abort(c, st, engine.ErrProtocolViolation, m.Type.String()+" while the router is authenticating")
	case st.auth != nil:
		f.authenticate(c, st, m)
	default:
		f.hello(c, st, m)
	}
}

// OnClose implements netpoll.Handler: the session leaves its realm.
func (f *Frontend) OnClose(c *netpoll.Conn, err error) {
	st, _ := c.Context().(*conn)
	if st == nil {
		return
	}
	st.mu.Lock()
	st.done.Store(true)
	sess := st.sess.Load()
	remote := st.remote.Load()
	st.mu.Unlock()
	if sess != nil || remote != nil {
		f.countLeave(c)
	}
	if sess != nil {
		sess.Leave()
	}
	if remote != nil {
		remote.Leave()
	}
}

// hello runs the opening handshake for the first message of a connection.
func (f *Frontend) hello(c *netpoll.Conn, st *conn, m *codec.Message) {
	if m.Type != codec.HELLO {
		f.abort(c, st, engine.ErrProtocolViolation, "expected HELLO, got "+m.Type.String())
		return
	}
	realmName := string(m.URI)
	details, err := codec.DecodeDict(c.Serializer(), m.Dict)
	if err != nil {
		f.abort(c, st, engine.ErrProtocolViolation, "HELLO.Details: "+err.Error())
		return
	}
	roles, _ := details["roles"].(map[string]any)
	if !hasClientRole(roles) {
		f.abort(c, st, engine.ErrProtocolViolation, "HELLO.Details.roles must name at least one client role")
		return
	}
	if !f.hasRealm(realmName) {
		f.abort(c, st, engine.ErrNoSuchRealm, fmt.Sprintf("no realm %q on this router", realmName))
		return
	}
	realm := realmName
	// The auth map is the list of realms clients may join: a realm without an entry (one
	// a reload is removing, or one only the router uses) is not served, rather than
	// silently open to anonymous sessions.
	ra := (*f.auth.Load())[realmName]
	if ra == nil {
		f.abort(c, st, engine.ErrNoSuchRealm, fmt.Sprintf("no realm %q on this router", realmName))
		return
	}
	var methods []any
	if list, ok := details["authmethods"].([]any); ok && len(list) > 0 {
		methods = list
	} else {
		methods = []any{"anonymous"}
	}
	features := clientFeatures(roles)
	for _, mv := range methods {
		method, _ := mv.(string)
		if !ra.offers(method) || !f.listenerOffers(c, method) {
			continue
		}
		authid, _ := details["authid"].(string)
		switch method {
		case "anonymous":
			f.welcome(c, st, realm, engine.AuthInfo{AuthID: anonymousAuthID(), AuthRole: *ra.Anonymous,
				AuthMethod: "anonymous", AuthProvider: "static"}, features)
			return
		case "cookie":
			if f.cookieLogin(c, st, ra, realm, features) {
				return
			}
			continue
		case "tls":
			if f.tlsLogin(c, st, ra, realm, authid, details, features) {
				return
			}
			continue
		}
		if f.limit.blocked(c.RemoteAddr()) {
			if f.logOK("authentication: too many failures from this address", c) {
				f.log.Warn("authentication: too many failures from this address, login refused",
					"remote", c.RemoteAddr().String(), "realm", realmName, "authid", authid)
			}
			f.sendAbort(c, st, engine.ErrAuthenticationFailed, "authentication failed")
			return
		}
		if ra.dynamicFor(method) && !ra.hasStatic(method, authid) {
			f.dynamicHello(c, st, ra, realm, method, authid, details, features)
			return
		}
		authextra, _ := details["authextra"].(map[string]any)
		p, known, err := ra.challengeFor(method, authid, authextra, c.TLS())
		if err != nil {
			f.abort(c, st, engine.ErrAuthenticationFailed, "authentication failed")
			return
		}
		// The client gets a CHALLENGE either way (no user enumeration); the one log
		// line, written when the login fails, says why.
		switch {
		case !known:
			p.expected = nil // no signature matches
			p.failure = "unknown authid"
		case method == "cryptosign" && p.pubkey == nil:
			p.failure = "the key in authextra.pubkey (" + stringOf(authextra["pubkey"]) + ") is not authorized for this authid"
		}
		p.realm, p.features = realm, features
		st.auth = p
		ch := codec.Message{Type: codec.CHALLENGE, URI: []byte(method), DictAny: p.challenge}
		f.send(c, &ch)
		return
	}
	f.abort(c, st, engine.ErrNoAuthMethod, f.noAuthMethodText(c, ra, methods))
}

// noAuthMethodText is the ABORT message when none of the client's methods can be used:
// when the realm configures some of them but c's listener does not offer them, it says
// so and names what the listener offers (otherwise the realm looks misconfigured).
func (f *Frontend) noAuthMethodText(c *netpoll.Conn, ra *RealmAuth, methods []any) string {
	var held []string
	for _, mv := range methods {
		if method, _ := mv.(string); ra.offers(method) && !f.listenerOffers(c, method) {
			held = append(held, method)
		}
	}
	if len(held) == 0 {
		return "no authentication method offered by the client is available on this realm"
	}
	var offered []string
	if m := f.methods.Load(); m != nil {
		offered = (*m)[c.Listener()]
	}
	return fmt.Sprintf("the realm accepts %s but this listener does not offer it (the listener's auth offers only %s)",
		strings.Join(held, ", "), strings.Join(offered, ", "))
}

// authenticate checks AUTHENTICATE against the pending CHALLENGE.
func (f *Frontend) authenticate(c *netpoll.Conn, st *conn, m *codec.Message) {
	p := st.auth
	st.auth = nil
	if m.Type != codec.AUTHENTICATE {
		f.abort(c, st, engine.ErrProtocolViolation, "expected AUTHENTICATE, got "+m.Type.String())
		return
	}
	if p.dynamic != nil {
		f.authenticateDynamic(c, st, p, string(m.URI))
		return
	}
	if p.expected == nil || !p.verify(string(m.URI)) {
		why := p.failure
		if why == "" {
			why = "wrong signature or secret"
		}
		f.authFailed(c, st, p.realm, p.authid, p.method, engine.ErrAuthenticationFailed, why)
		return
	}
	provider := p.provider
	if provider == "" {
		provider = "static"
	}
	f.welcome(c, st, p.realm, engine.AuthInfo{AuthID: p.authid, AuthRole: p.role,
		AuthMethod: p.method, AuthProvider: provider, Extra: p.extra}, p.features)
}

// welcome joins the session and sends WELCOME (st.mu held). In a cluster the join is
// asked of the session's router over a link and WELCOME (or ABORT) follows its answer.
// A realm removed by a reload since the HELLO (or the CHALLENGE) gets ABORT
// wamp.error.no_such_realm instead.
func (f *Frontend) welcome(c *netpoll.Conn, st *conn, realm string, info engine.AuthInfo, features engine.Features) {
	if f.cluster != nil {
		f.welcomeRemote(c, st, realm, info, features)
		return
	}
	rl, ok := f.router.Realm(realm)
	if ok {
		// JoinWelcome sends the WELCOME before a GOODBYE of the realm's removal can go out.
		ok = rl.JoinWelcome(c, info, features, func(sess *engine.Session) {
			st.sess.Store(sess)
			f.welcomed(c, sess.ID(), realm, info, sess.WelcomeDetails())
		}) != nil
	}
	if !ok { // removed while the handshake ran
		f.abort(c, st, engine.ErrNoSuchRealm, fmt.Sprintf("no realm %q on this router", realm))
	}
}

// welcomed sends WELCOME for a joined session.
func (f *Frontend) welcomed(c *netpoll.Conn, id uint64, realm string, info engine.AuthInfo, details map[string]any) {
	f.counters.joins.Add(1)
	f.rememberCookie(c, realm, info)
	w := codec.Message{Type: codec.WELCOME, Session: id, DictAny: details}
	f.send(c, &w)
	c.Established() // the handshake timeout no longer applies
	if !f.log.Enabled(context.Background(), slog.LevelDebug) {
		return // the line's arguments (the address as text, a dozen boxed values) cost more than the rest of WELCOME
	}
	f.log.Debug("session joined", "session", id, "realm", realm, "authid", info.AuthID,
		"authmethod", info.AuthMethod, "remote", c.RemoteAddr().String(), "transport", c.Transport(),
		"serializer", c.Serializer().String())
}

// hasRealm reports whether realm is served: by the in-process engine, or by the cluster.
func (f *Frontend) hasRealm(realm string) bool {
	if f.cluster != nil {
		return f.cluster.HasRealm(realm)
	}
	_, ok := f.router.Realm(realm)
	return ok
}

// abort ends a connection that has no session yet with ABORT reason, and logs it
// (rate-limited per client address).
func (f *Frontend) abort(c *netpoll.Conn, st *conn, reason, message string) {
	if f.logOK("session aborted", c) {
		f.log.Warn("session aborted", "remote", c.RemoteAddr().String(), "reason", reason, "message", message)
	}
	f.sendAbort(c, st, reason, message)
}

// sendAbort is abort without the log line, for callers whose own line says more.
func (f *Frontend) sendAbort(c *netpoll.Conn, st *conn, reason, message string) {
	a := codec.Message{Type: codec.ABORT, URI: []byte(reason), DictAny: map[string]any{"message": message}}
	f.send(c, &a)
	st.done.Store(true)
	c.Close()
}

// sendBufs are encode buffers for the handshake's messages (Send copies what it queues).
var sendBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

func (f *Frontend) send(c *netpoll.Conn, m *codec.Message) {
	bp := sendBufs.Get().(*[]byte)
	b, err := codec.For(c.Serializer()).Append((*bp)[:0], m)
	if err != nil {
		f.log.Error("encode failed", "type", m.Type.String(), "err", err)
	} else {
		_ = c.Send(b)
	}
	if cap(b) <= 64<<10 {
		*bp = b[:0]
		sendBufs.Put(bp)
	}
}

func hasClientRole(roles map[string]any) bool {
	for _, r := range []string{"publisher", "subscriber", "caller", "callee"} {
		if _, ok := roles[r]; ok {
			return true
		}
	}
	return false
}

// clientFeatures reads the advanced features the router must know about from
// HELLO.Details.roles.
func clientFeatures(roles map[string]any) engine.Features {
	feature := func(role, name string) bool {
		r, _ := roles[role].(map[string]any)
		features, _ := r["features"].(map[string]any)
		on, _ := features[name].(bool)
		return on
	}
	// The spec spells it call_canceling; some clients (and the progressive call
	// invocations text) write call_cancelling.
	cc := feature("callee", "call_canceling") || feature("callee", "call_cancelling")
	pci := feature("caller", "progressive_call_invocations") || feature("callee", "progressive_call_invocations")
	return engine.Features{CallCanceling: cc, ProgressiveCallInvocations: pci,
		SubscriptionRevocation: feature("subscriber", "subscription_revocation"),
		RegistrationRevocation: feature("callee", "registration_revocation")}
}

// anonymousAuthID returns a random authid in Crossbar's XXXX-XXXX-XXXX-XXXX-XXXX-XXXX
// style, so that anonymous sessions are distinguishable in logs and meta events.
func anonymousAuthID() string {
	const alphabet = "ABCDEFGHJKLMNPQRSTUVWXY3456789"
	var b [24]byte
	_, _ = rand.Read(b[:])
	out := make([]byte, 0, 29)
	for i, x := range b {
		if i > 0 && i%4 == 0 {
			out = append(out, '-')
		}
		out = append(out, alphabet[int(x)%len(alphabet)])
	}
	return string(out)
}
