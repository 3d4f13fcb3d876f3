package proxy

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
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
	// Cryptosign by authid (WAMP-Cryptosign, Ed25519).
	Cryptosign map[string]CryptosignPrincipal
	// TLS client-certificate principals by Fingerprint (method "tls").
	TLS map[string]TLSPrincipal
	// Cookie, when set, enables WAMP-Cookie (method "cookie") on the realm.
	Cookie *CookieAuth
	// Authenticator, when set, authenticates principals of its methods that the maps
	// above do not list.
	Authenticator *Authenticator
}

// CryptosignPrincipal is one WAMP-Cryptosign login: the Ed25519 public keys it may
// sign with.
type CryptosignPrincipal struct {
	AuthorizedKeys []ed25519.PublicKey
	Role           string
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
	if a.dynamicFor(method) {
		return true
	}
	switch method {
	case "anonymous":
		return a.Anonymous != nil
	case "ticket":
		return len(a.Tickets) > 0
	case "wampcra":
		return len(a.CRA) > 0
	case "cryptosign":
		return len(a.Cryptosign) > 0
	case "tls":
		return len(a.TLS) > 0
	case "cookie":
		return a.Cookie != nil
	}
	return false
}

// pendingAuth is a handshake waiting for AUTHENTICATE.
type pendingAuth struct {
	realm     string // the realm's name
	features  engine.Features
	method    string
	authid    string
	role      string
	expected  []byte // the ticket, or the WAMP-CRA signature, to compare in constant time
	challenge map[string]any
	// cryptosign: the message the client must sign (the challenge, XOR the channel id
	// with channel binding) and the key the client claimed in authextra.
	signed []byte
	pubkey ed25519.PublicKey
	// provider is WELCOME's authprovider ("static" when empty); extra its authextra.
	provider string
	extra    map[string]any
	// dynamic: a ticket handshake whose AUTHENTICATE goes to this authenticator, with
	// the HELLO details it was started with.
	dynamic *Authenticator
	hello   map[string]any
	// failure, when set, is why AUTHENTICATE will fail whatever it says (an unknown
	// authid, an unauthorized key): the reason the operator's log line gives.
	failure string
}

// challengeFor starts method for authid with a static principal: the CHALLENGE extra and
// what AUTHENTICATE must prove. ok is false when authid is unknown: the caller still
// sends a CHALLENGE (with a throwaway secret) so that an attacker cannot tell unknown
// authids from bad secrets. authextra is HELLO.Details.authextra (cryptosign: the
// client's pubkey).
func (a *RealmAuth) challengeFor(method, authid string, authextra map[string]any, tlsState *tls.ConnectionState) (p *pendingAuth, ok bool, err error) {
	switch method {
	case "cryptosign":
		cs, known := a.Cryptosign[authid]
		p = challengeCryptosign(authid, cs, authextra, tlsState)
		return p, known, nil // an unauthorized key leaves p.pubkey nil: verify fails
	case "ticket":
		t, known := a.Tickets[authid]
		if !known {
			t = TicketPrincipal{Ticket: randomString()}
		}
		p = &pendingAuth{method: method, authid: authid, challenge: map[string]any{}}
		p.role, p.expected = t.Role, []byte(t.Ticket)
		return p, known, nil
	case "wampcra":
		cra, known := a.CRA[authid]
		if !known {
			cra = CRAPrincipal{Secret: randomString()}
		}
		p, err = challengeCRA(authid, cra, "static")
		return p, known, err
	}
	return nil, false, fmt.Errorf("unknown method %q", method)
}

// challengeCryptosign starts WAMP-Cryptosign for authid: a random 32-byte challenge;
// the key the client claims in authextra.pubkey must be one of cs's authorized keys.
// With authextra.channel_binding on a TLS connection that provides it, the client must
// sign challenge XOR channel id (the spec's TLS channel binding).
func challengeCryptosign(authid string, cs CryptosignPrincipal, authextra map[string]any, tlsState *tls.ConnectionState) *pendingAuth {
	p := &pendingAuth{method: "cryptosign", authid: authid, role: cs.Role, challenge: map[string]any{}}
	nonce := make([]byte, 32)
	_, _ = rand.Read(nonce)
	p.challenge["challenge"] = hex.EncodeToString(nonce)
	p.signed = nonce
	if kind := stringOf(authextra["channel_binding"]); kind != "" {
		if cid := channelID(tlsState, kind); cid != nil {
			p.signed = xor32(nonce, cid)
			p.challenge["channel_binding"] = kind
		}
	}
	if pk, err := hex.DecodeString(stringOf(authextra["pubkey"])); err == nil && len(pk) == ed25519.PublicKeySize {
		for _, k := range cs.AuthorizedKeys {
			if subtle.ConstantTimeCompare(k, pk) == 1 {
				p.pubkey = ed25519.PublicKey(pk)
			}
		}
	}
	p.expected = []byte{1} // checked by verify with the key, not compared
	return p
}

// challengeCRA starts WAMP-CRA for authid with cra's secret: the signed challenge string
// (naming provider as authprovider) and the signature AUTHENTICATE must carry.
func challengeCRA(authid string, cra CRAPrincipal, provider string) (*pendingAuth, error) {
	p := &pendingAuth{method: "wampcra", authid: authid, role: cra.Role, challenge: map[string]any{}}
	body, err := json.Marshal(map[string]any{
		"authid": authid, "authrole": cra.Role, "authmethod": "wampcra",
		"authprovider": provider, "nonce": randomString(),
		"timestamp": time.Now().UTC().Format("2006-01-02T15:04:05.000Z"),
	})
	if err != nil {
		return nil, err
	}
	p.challenge["challenge"] = string(body)
	key := []byte(cra.Secret)
	if cra.Salt != "" {
		p.challenge["salt"], p.challenge["iterations"], p.challenge["keylen"] = cra.Salt, cra.Iterations, cra.KeyLen
		dk, err := pbkdf2.Key(sha256.New, cra.Secret, []byte(cra.Salt), cra.Iterations, cra.KeyLen)
		if err != nil {
			return nil, fmt.Errorf("wampcra: %w", err)
		}
		key = []byte(base64.StdEncoding.EncodeToString(dk))
	}
	mac := hmac.New(sha256.New, key)
	mac.Write(body)
	p.expected = []byte(base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	return p, nil
}

// verify checks the AUTHENTICATE signature: constant-time comparison for ticket and
// WAMP-CRA; for cryptosign, an Ed25519 signature of the challenge by the claimed key,
// sent as hex of the 64-byte signature (optionally followed by the 32-byte challenge,
// as Autobahn sends it).
func (p *pendingAuth) verify(signature string) bool {
	if p.method != "cryptosign" {
		return subtle.ConstantTimeCompare(p.expected, []byte(signature)) == 1
	}
	sig, err := hex.DecodeString(signature)
	if err != nil || p.pubkey == nil || (len(sig) != 64 && len(sig) != 96) {
		return false
	}
	if len(sig) == 96 && subtle.ConstantTimeCompare(sig[64:], p.signed) != 1 {
		return false
	}
	return ed25519.Verify(p.pubkey, p.signed, sig[:64])
}

func stringOf(v any) string { s, _ := v.(string); return s }

func randomString() string {
	var b [18]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
