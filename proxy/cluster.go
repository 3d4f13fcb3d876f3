package proxy

import (
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/switchyard-wamp/switchyard/cluster/wire"
	"github.com/switchyard-wamp/switchyard/codec"
	"github.com/switchyard-wamp/switchyard/engine"
	"github.com/switchyard-wamp/switchyard/netpoll"
)

// Cluster is where a proxy node's sessions live: on the routers of a cluster, reached
// over links. The Frontend authenticates as on a standalone node, then asks the Cluster
// to open the session on its router; afterwards it hands the client's messages to the
// RemoteSession undecoded. Implemented by Links; every method is safe for concurrent use.
type Cluster interface {
	// HasRealm reports whether the cluster serves realm.
	HasRealm(realm string) bool
	// Open asks the router that owns the session's placement to join it. done runs
	// exactly once, on another goroutine, with the session or with the WAMP error URI
	// and reason to ABORT with. Messages the router sends for the session after it
	// accepted go to c only after done has returned. c is the client's connection, or
	// any other peer speaking WAMP in req.Serializer (the HTTP bridge's session).
	Open(c engine.Peer, req wire.OpenReq, done func(rs *RemoteSession, abortURI, why string))
	// CallProcedure calls procedure in realm through the cluster (the dynamic
	// authenticator); done runs once, on another goroutine.
	CallProcedure(realm, procedure string, args []any, kwargs map[string]any, timeout time.Duration,
		done func(engine.CallResult))
	// Shutdown says GOODBYE reason to every client session and ends it on its router;
	// the connections stay open so that the GOODBYE can be flushed.
	Shutdown(reason string)
	// ShareCookie tells the other proxies (through the routers) that a WAMP-Cookie now
	// authenticates a principal; SetCookieSink names where the cookies the others share
	// go (the frontend's cookie stores).
	ShareCookie(c wire.Cookie)
	SetCookieSink(func(wire.Cookie))
}

// NewClusterFrontend returns a Frontend for a proxy node: sessions are authenticated
// here and live on cl's routers. auth is as for NewFrontend.
func NewClusterFrontend(cl Cluster, log *slog.Logger, auth map[string]*RealmAuth) *Frontend {
	f := NewFrontend(nil, log, auth)
	f.cluster = cl
	cl.SetCookieSink(f.sharedCookie)
	return f
}

// sharedCookie records a cookie another proxy handed out, in the realm's store.
func (f *Frontend) sharedCookie(c wire.Cookie) {
	ra := (*f.auth.Load())[c.Realm]
	if ra == nil || ra.Cookie == nil || time.Now().After(c.Expires) {
		return
	}
	if e, ok := ra.Cookie.Store.lookup(c.Realm, c.Cookie); ok && !e.Expires.Before(c.Expires) {
		return // known already (the routers replay what a proxy shared to every proxy)
	}
	ra.Cookie.Store.remember(c)
}

// RemoteSession is a client session that lives on a router: the proxy's end of it.
// Forward and Leave are safe for concurrent use.
type RemoteSession struct {
	// ID is the session's id (chosen by the proxy, accepted by the router).
	ID uint64
	// Router is the name of the router node that holds the session.
	Router string
	conn   engine.Peer // the client's *netpoll.Conn, or the HTTP bridge's peer
	via    any         // the link the session's frames use (identity only)
	send   func(kind uint8, payload []byte) error
	left   atomic.Bool
	// onLeave runs once when the session is over on this side (unregisters it).
	onLeave func()
}

// Forward sends one message from the client to the session's router, as it is.
func (r *RemoteSession) Forward(msg []byte) error { return r.send(uint8(wire.Msg), msg) }

// Leave tells the router that the client is gone; idempotent.
func (r *RemoteSession) Leave() {
	if !r.left.CompareAndSwap(false, true) {
		return
	}
	_ = r.send(uint8(wire.Close), nil)
	if r.onLeave != nil {
		r.onLeave()
	}
}

// welcomeRemote opens the session on its router (st.mu held); WELCOME or ABORT follows
// the router's answer on another goroutine.
func (f *Frontend) welcomeRemote(c *netpoll.Conn, st *conn, realm string, info engine.AuthInfo, features engine.Features) {
	st.waiting = true
	req := wire.OpenReq{Realm: realm, AuthID: info.AuthID, AuthRole: info.AuthRole, AuthMethod: info.AuthMethod,
		AuthProvider: info.AuthProvider, AuthExtra: info.Extra, Serializer: uint8(c.Serializer()),
		Features: features, Transport: c.Transport(), Peer: c.RemoteAddr().String()}
	f.cluster.Open(c, req, func(rs *RemoteSession, abortURI, why string) {
		st.mu.Lock()
		defer st.mu.Unlock()
		st.waiting = false
		switch {
		case st.done.Load():
			if rs != nil {
				rs.Leave()
			}
		case rs == nil:
			f.abort(c, st, abortURI, why)
		default:
			st.remote.Store(rs)
			f.welcomed(c, rs.ID, realm, info, engine.WelcomeDetailsFor(c.Serializer(), realm, info))
		}
	})
}

// callProcedure calls a WAMP procedure for the frontend (dynamic authenticator): in the
// in-process engine, or through the cluster.
func (f *Frontend) callProcedure(realm, procedure string, args []any, kwargs map[string]any, timeout time.Duration,
	done func(engine.CallResult)) {
	if f.cluster != nil {
		f.cluster.CallProcedure(realm, procedure, args, kwargs, timeout, done)
		return
	}
	rl, ok := f.router.Realm(realm)
	if !ok {
		go done(engine.CallResult{ErrorURI: engine.ErrNoSuchRealm})
		return
	}
	rl.CallProcedure(procedure, args, kwargs, timeout, done)
}

// goodbyeBytes encodes GOODBYE reason in ser, for a proxy that ends a session on its own
// (its router is gone).
func goodbyeBytes(ser codec.Serializer, reason, message string) []byte {
	m := codec.Message{Type: codec.GOODBYE, URI: []byte(reason), DictAny: map[string]any{"message": message}}
	b, err := codec.For(ser).Append(nil, &m)
	if err != nil {
		return nil
	}
	return b
}
