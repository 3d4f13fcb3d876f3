package proxy

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"strings"
	"time"

	"github.com/switchyard-wamp/switchyard/engine"
	"github.com/switchyard-wamp/switchyard/netpoll"
)

// TLSPrincipal is a principal of the "tls" method: a client certificate, recognised by
// its SHA-256 fingerprint, joins as AuthID (empty: the certificate's common name).
type TLSPrincipal struct {
	AuthID string
	Role   string
}

// Fingerprint returns the SHA-256 fingerprint of a DER certificate as the tls method's
// principals are keyed: 64 lowercase hex digits. Safe for concurrent use.
func Fingerprint(der []byte) string {
	h := sha256.Sum256(der)
	return hex.EncodeToString(h[:])
}

// NormalizeFingerprint turns a configured fingerprint ("AB:CD:..." or "abcd...") into the
// form Fingerprint returns. Safe for concurrent use.
func NormalizeFingerprint(s string) string {
	return strings.ToLower(strings.ReplaceAll(s, ":", ""))
}

// clientCert returns the verified client certificate of c, nil without one. netpoll's TLS
// listeners verify client certificates against the listener's client CA (when one is
// configured) before the handshake completes, so a certificate here is a trusted one.
func clientCert(c *netpoll.Conn) *x509.Certificate {
	st := c.TLS()
	if st == nil || len(st.PeerCertificates) == 0 || len(st.VerifiedChains) == 0 {
		return nil
	}
	return st.PeerCertificates[0]
}

// certDetails describes a client certificate for the dynamic authenticator
// (details.transport.client_cert).
func certDetails(cert *x509.Certificate) map[string]any {
	return map[string]any{
		"fingerprint": Fingerprint(cert.Raw),
		"subject":     cert.Subject.String(),
		"issuer":      cert.Issuer.String(),
		"cn":          cert.Subject.CommonName,
		"serial":      cert.SerialNumber.String(),
		"not_after":   cert.NotAfter.UTC().Format(time.RFC3339),
	}
}

// tlsLogin runs the "tls" method (st.mu held). It reports false when the connection has
// no verified client certificate (the next offered method is tried); otherwise it has
// joined, aborted, or asked the dynamic authenticator.
func (f *Frontend) tlsLogin(c *netpoll.Conn, st *conn, ra *RealmAuth, realm string, authid string,
	hello map[string]any, features engine.Features) bool {
	cert := clientCert(c)
	if cert == nil {
		return false
	}
	fp := Fingerprint(cert.Raw)
	if p, ok := ra.TLS[fp]; ok {
		id := p.AuthID
		if id == "" {
			id = cert.Subject.CommonName
		}
		f.welcome(c, st, realm, engine.AuthInfo{AuthID: id, AuthRole: p.Role, AuthMethod: "tls",
			AuthProvider: "static"}, features)
		return true
	}
	if !ra.dynamicFor("tls") {
		f.authFailed(c, st, realm, authid, "tls", engine.ErrAuthenticationFailed,
			"client certificate "+fp+" ("+cert.Subject.String()+") is no principal")
		return true
	}
	if authid == "" {
		authid = cert.Subject.CommonName
	}
	st.waiting = true
	d := authDetails(c, "tls", hello)
	d["transport"].(map[string]any)["client_cert"] = certDetails(cert)
	f.callAuthenticator(ra.Authenticator, realm, authid, d, f.answered(c, st, realm, authid, "tls",
		func(r authResult) {
			f.welcome(c, st, realm, engine.AuthInfo{AuthID: r.authid, AuthRole: r.role, AuthMethod: "tls",
				AuthProvider: "dynamic", Extra: r.extra}, features)
		}))
	return true
}
