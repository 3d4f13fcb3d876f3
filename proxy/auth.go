package proxy

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	"github.com/switchyard-wamp/switchyard/engine"
)

// RealmAuth is who may join one realm and how: static principals per authentication
// method. A realm without a RealmAuth is open to anonymous sessions (authrole
// anonymous), the embedded default. The maps are read-only once the Frontend runs.
type RealmAuth struct {
	// Anonymous, when non-nil, admits anonymous sessions with this authrole.
	Anonymous *string
	// Tickets by authid (WAMP ticket authentication).
	Tickets map[string]TicketPrincipal
	// CRA by authid (WAMP-CRA, optionally with a PBKDF2-salted secret).
	CRA map[string]CRAPrincipal
}

// TicketPrincipal is one ticket login.
type TicketPrincipal struct {
	Ticket string
	Role   string
}

// CRAPrincipal is one WAMP-CRA login. With Salt set, the HMAC key is the base64 of
// PBKDF2-SHA256(Secret, Salt, Iterations, KeyLen), as the spec and Autobahn derive it.
type CRAPrincipal struct {
	Secret     string
	Salt       string
	Iterations int
	KeyLen     int
	Role       string
}

// methods lists the methods a realm offers, in the router's order of preference.
func (a *RealmAuth) offers(method string) bool {
	switch method {
	case "anonymous":
		return a.Anonymous != nil
	case "ticket":
		return len(a.Tickets) > 0
	case "wampcra":
		return len(a.CRA) > 0
	}
	return false
}

// pendingAuth is a handshake waiting for AUTHENTICATE.
type pendingAuth struct {
	realm     *engine.Realm
	features  engine.Features
	method    string
	authid    string
	role      string
	expected  []byte // the ticket, or the WAMP-CRA signature, to compare in constant time
	challenge map[string]any
}

// challengeFor starts method for authid: the CHALLENGE extra and what AUTHENTICATE must
// prove. ok is false when authid is unknown: the caller still sends a CHALLENGE (with a
// throwaway secret) so that an attacker cannot tell unknown authids from bad secrets.
func (a *RealmAuth) challengeFor(method, authid string, session uint64) (p *pendingAuth, ok bool, err error) {
	p = &pendingAuth{method: method, authid: authid, challenge: map[string]any{}}
	switch method {
	case "ticket":
		t, known := a.Tickets[authid]
		if !known {
			t = TicketPrincipal{Ticket: randomString()}
		}
		p.role, p.expected = t.Role, []byte(t.Ticket)
		return p, known, nil
	case "wampcra":
		cra, known := a.CRA[authid]
		if !known {
			cra = CRAPrincipal{Secret: randomString()}
		}
		p.role = cra.Role
		body, err := json.Marshal(map[string]any{
			"authid": authid, "authrole": cra.Role, "authmethod": "wampcra",
			"authprovider": "static", "session": session, "nonce": randomString(),
			"timestamp": time.Now().UTC().Format("2006-01-02T15:04:05.000Z"),
		})
		if err != nil {
			return nil, false, err
		}
		p.challenge["challenge"] = string(body)
		key := []byte(cra.Secret)
		if cra.Salt != "" {
			p.challenge["salt"], p.challenge["iterations"], p.challenge["keylen"] = cra.Salt, cra.Iterations, cra.KeyLen
			dk, err := pbkdf2.Key(sha256.New, cra.Secret, []byte(cra.Salt), cra.Iterations, cra.KeyLen)
			if err != nil {
				return nil, false, fmt.Errorf("wampcra: %w", err)
			}
			key = []byte(base64.StdEncoding.EncodeToString(dk))
		}
		mac := hmac.New(sha256.New, key)
		mac.Write(body)
		p.expected = []byte(base64.StdEncoding.EncodeToString(mac.Sum(nil)))
		return p, known, nil
	}
	return nil, false, fmt.Errorf("unknown method %q", method)
}

// verify compares the AUTHENTICATE signature in constant time.
func (p *pendingAuth) verify(signature string) bool {
	return subtle.ConstantTimeCompare(p.expected, []byte(signature)) == 1
}

func randomString() string {
	var b [18]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
