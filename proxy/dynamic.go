package proxy

import (
	"crypto/ed25519"
	"encoding/hex"
	"slices"
	"time"

	"github.com/switchyard-wamp/switchyard/codec"
	"github.com/switchyard-wamp/switchyard/engine"
	"github.com/switchyard-wamp/switchyard/netpoll"
)

// Authenticator is a dynamic authenticator: a WAMP procedure, registered by a trusted
// client in realm Realm, that authenticates principals the static configuration does
// not list. The router calls it as Crossbar does, with (realm, authid, details), and it
// answers with the authrole (a string) or a dict with "role" and, optionally, "authid"
// (replaces the client's), "extra" (WELCOME.Details.authextra), and what the method needs
// from it: wampcra "secret" (plus "salt", "iterations", "keylen" for a salted secret),
// cryptosign optionally "pubkey" (the client's claimed key must equal it; without it the
// authenticator vouches for the claimed key, which it saw in details.authextra). An error
// ends the handshake with wamp.error.not_authorized when the authenticator said so, else
// wamp.error.authentication_failed.
//
// Per method, the call happens where its secret is needed: ticket after AUTHENTICATE
// (details.ticket carries it), wampcra and cryptosign at HELLO (the router then runs the
// challenge itself), tls at HELLO (details.transport.client_cert describes the
// certificate). Plain data; read-only once in use.
type Authenticator struct {
	Realm     string
	Procedure string
	Methods   []string
	Timeout   time.Duration // default 10s
}

// dynamicFor reports whether method goes to the dynamic authenticator for unknown
// principals.
func (a *RealmAuth) dynamicFor(method string) bool {
	return a.Authenticator != nil && slices.Contains(a.Authenticator.Methods, method)
}

// hasStatic reports whether authid is a static principal of method.
func (a *RealmAuth) hasStatic(method, authid string) bool {
	var ok bool
	switch method {
	case "ticket":
		_, ok = a.Tickets[authid]
	case "wampcra":
		_, ok = a.CRA[authid]
	case "cryptosign":
		_, ok = a.Cryptosign[authid]
	}
	return ok
}

// authResult is the authenticator's answer.
type authResult struct {
	role, authid string
	extra        map[string]any
	fields       map[string]any // the whole dict answer (nil for a plain role)
}

// callAuthenticator asks au about authid joining realm with method; done runs on another
// goroutine with the answer, or with the WAMP error URI to abort with and the reason to
// log.
func (f *Frontend) callAuthenticator(au *Authenticator, realm, authid string, details map[string]any,
	done func(r authResult, abortURI, why string)) {
	if !f.hasRealm(au.Realm) {
		go done(authResult{}, engine.ErrAuthenticationFailed, "authenticator realm "+au.Realm+" does not exist")
		return
	}
	timeout := au.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	f.callProcedure(au.Realm, au.Procedure, []any{realm, authid, details}, nil, timeout, func(r engine.CallResult) {
		switch {
		case r.Err != nil:
			done(authResult{}, engine.ErrAuthenticationFailed, r.Err.Error())
			return
		case r.ErrorURI == engine.ErrNotAuthorized:
			done(authResult{}, engine.ErrNotAuthorized, "authenticator denied")
			return
		case r.ErrorURI != "":
			done(authResult{}, engine.ErrAuthenticationFailed, "authenticator returned "+r.ErrorURI)
			return
		case len(r.Args) == 0:
			done(authResult{}, engine.ErrAuthenticationFailed, "authenticator returned nothing")
			return
		}
		res := authResult{authid: authid}
		switch v := r.Args[0].(type) {
		case string:
			res.role = v
		case map[string]any:
			res.fields = v
			res.role, _ = v["role"].(string)
			if id, ok := v["authid"].(string); ok && id != "" {
				res.authid = id
			}
			res.extra, _ = v["extra"].(map[string]any)
		}
		if res.role == "" {
			done(authResult{}, engine.ErrAuthenticationFailed, "authenticator answer names no role")
			return
		}
		done(res, "", "")
	})
}

// authDetails is the details argument of the authenticator: what the client said and
// how it is connected.
func authDetails(c *netpoll.Conn, method string, hello map[string]any) map[string]any {
	d := map[string]any{
		"authmethod": method,
		"transport": map[string]any{
			"type": c.Transport(), "peer": c.RemoteAddr().String(), "serializer": c.Serializer().String(),
		},
	}
	if x, ok := hello["authextra"].(map[string]any); ok {
		d["authextra"] = x
	}
	return d
}

// dynamicHello starts method for authid with the dynamic authenticator (st.mu held).
func (f *Frontend) dynamicHello(c *netpoll.Conn, st *conn, ra *RealmAuth, realm string, method, authid string,
	hello map[string]any, features engine.Features) {
	if method == "ticket" {
		// The ticket comes with AUTHENTICATE; the authenticator is asked then.
		st.auth = &pendingAuth{method: method, authid: authid, realm: realm, features: features,
			dynamic: ra.Authenticator, hello: hello, challenge: map[string]any{}}
		f.send(c, &codec.Message{Type: codec.CHALLENGE, URI: []byte(method), DictAny: st.auth.challenge})
		return
	}
	st.waiting = true
	authextra, _ := hello["authextra"].(map[string]any)
	f.callAuthenticator(ra.Authenticator, realm, authid, authDetails(c, method, hello),
		f.answered(c, st, realm, authid, method, func(r authResult) {
			var p *pendingAuth
			switch method {
			case "wampcra":
				secret, _ := r.fields["secret"].(string)
				if secret == "" {
					f.authFailed(c, st, realm, authid, method, engine.ErrAuthenticationFailed, "authenticator answer has no secret")
					return
				}
				salt, _ := r.fields["salt"].(string)
				var err error
				p, err = challengeCRA(r.authid, CRAPrincipal{Secret: secret, Salt: salt, Role: r.role,
					Iterations: intOf(r.fields["iterations"], 1000), KeyLen: intOf(r.fields["keylen"], 32)}, "dynamic")
				if err != nil {
					f.authFailed(c, st, realm, authid, method, engine.ErrAuthenticationFailed, err.Error())
					return
				}
			case "cryptosign":
				claimed := stringOf(authextra["pubkey"])
				if want, ok := r.fields["pubkey"].(string); ok && want != claimed {
					f.authFailed(c, st, realm, authid, method, engine.ErrAuthenticationFailed,
						"the claimed key is not the one the authenticator names")
					return
				}
				key, err := hex.DecodeString(claimed)
				if err != nil || len(key) != ed25519.PublicKeySize {
					f.authFailed(c, st, realm, authid, method, engine.ErrAuthenticationFailed, "no valid authextra.pubkey")
					return
				}
				p = challengeCryptosign(r.authid, CryptosignPrincipal{AuthorizedKeys: []ed25519.PublicKey{key}, Role: r.role}, authextra, c.TLS())
			default:
				f.authFailed(c, st, realm, authid, method, engine.ErrAuthenticationFailed, "method "+method+" has no dynamic flow")
				return
			}
			p.realm, p.features, p.provider, p.extra = realm, features, "dynamic", r.extra
			st.auth = p
			f.send(c, &codec.Message{Type: codec.CHALLENGE, URI: []byte(method), DictAny: p.challenge})
		}))
}

// authenticateDynamic hands a ticket to the dynamic authenticator (st.mu held).
func (f *Frontend) authenticateDynamic(c *netpoll.Conn, st *conn, p *pendingAuth, ticket string) {
	st.waiting = true
	d := authDetails(c, p.method, p.hello)
	d["ticket"] = ticket
	f.callAuthenticator(p.dynamic, p.realm, p.authid, d, f.answered(c, st, p.realm, p.authid, p.method,
		func(r authResult) {
			f.welcome(c, st, p.realm, engine.AuthInfo{AuthID: r.authid, AuthRole: r.role,
				AuthMethod: p.method, AuthProvider: "dynamic", Extra: r.extra}, p.features)
		}))
}

// answered wraps what to do with an authenticator's answer: on the answer's goroutine it
// takes st.mu, ends the wait, drops the answer for a connection that is gone, and aborts
// (counted, logged) on failure; ok runs, st.mu held, with a good answer.
func (f *Frontend) answered(c *netpoll.Conn, st *conn, realm, authid, method string,
	ok func(authResult)) func(authResult, string, string) {
	return func(r authResult, abortURI, why string) {
		st.mu.Lock()
		defer st.mu.Unlock()
		st.waiting = false
		if st.done.Load() {
			return
		}
		if abortURI != "" {
			f.authFailed(c, st, realm, authid, method, abortURI, why)
			return
		}
		ok(r)
	}
}

// authFailed counts a failed authentication against the client's address, logs why in
// one line and aborts with uri; the client learns nothing more.
func (f *Frontend) authFailed(c *netpoll.Conn, st *conn, realm, authid, method, uri, why string) {
	f.limit.failed(c.RemoteAddr())
	f.counters.failed(method)
	if f.logOK("authentication failed", c) {
		f.log.Warn("authentication failed", "realm", realm, "authid", authid, "method", method,
			"remote", c.RemoteAddr().String(), "reason", why)
	}
	msg := "authentication failed"
	if uri == engine.ErrNotAuthorized {
		msg = "not authorized"
	}
	f.sendAbort(c, st, uri, msg)
}

func intOf(v any, def int) int {
	switch x := v.(type) {
	case uint64:
		return int(x)
	case int64:
		return int(x)
	case float64:
		return int(x)
	}
	return def
}
