package interop

import (
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/internal/testpki"
	"github.com/switchyard-wamp/switchyard/node"
	"github.com/switchyard-wamp/switchyard/proxy"
)

// tlsTimeout is the hard timeout of tls.js / tls.py and of the scenario runs over TLS.
const tlsTimeout = 20 * time.Second

// realmTLS is the realm of the tls auth method; js/tls.js and python/tls.py use the name.
const realmTLS = "tlsauth"

// tlsPKI is the throwaway X.509 material of one TestTLS run, written as PEM files to a
// temporary directory (nothing is committed): a CA, the router's certificate for
// 127.0.0.1 and localhost, and client certificates.
type tlsPKI struct {
	dir             string
	ca              *testpki.CA
	caFile          string
	serverCert      string
	serverKey       string
	alice, bob, eve *testpki.Cert
	env             []string // for the scripts, see newTLSPKI
}

// newTLSPKI makes a CA and writes to a temporary directory (INTEROP_TLS_DIR for the
// scripts):
//
//   - ca.crt, the CA (also INTEROP_TLS_CA: the CA the scripts trust);
//   - alice.crt/.key (CN alice): a static principal without authid, role device;
//   - bob.crt/.key (CN bob): a static principal with authid robert, role user;
//   - eve.crt/.key (CN eve): issued by the CA, but no principal;
//   - outsider.crt/.key (CN alice): issued by another CA, which the router does not trust.
func newTLSPKI(t *testing.T) *tlsPKI {
	t.Helper()
	p := &tlsPKI{dir: t.TempDir(), ca: testpki.MustCA("switchyard interop test CA")}
	var err error
	if p.caFile, err = p.ca.WriteFile(p.dir, "ca"); err != nil {
		t.Fatal(err)
	}
	if p.serverCert, p.serverKey, err = p.ca.MustServer().WriteFiles(p.dir, "server"); err != nil {
		t.Fatal(err)
	}
	p.alice, p.bob, p.eve = p.ca.MustClient("alice"), p.ca.MustClient("bob"), p.ca.MustClient("eve")
	outsider := testpki.MustCA("some other CA").MustClient("alice")
	for name, c := range map[string]*testpki.Cert{"alice": p.alice, "bob": p.bob, "eve": p.eve, "outsider": outsider} {
		if _, _, err := c.WriteFiles(p.dir, name); err != nil {
			t.Fatal(err)
		}
	}
	p.env = []string{"INTEROP_TLS_CA=" + p.caFile, "INTEROP_TLS_DIR=" + p.dir}
	return p
}

// startTLSNode starts a node whose only listener is a TLS universal listener (WebSocket
// at /ws and RawSocket on one port) serving p's server certificate and asking for client
// certificates issued by p's CA (ClientCAFile), with realm1 (anonymous) and realmTLS,
// whose principals are the client certificates alice (authid from the CN, role device)
// and bob (authid robert, role user), recognised by their SHA-256 fingerprints.
func startTLSNode(t *testing.T, p *tlsPKI) *routerNode {
	t.Helper()
	anon := "anonymous"
	return startNodeConfig(t, func(c *node.Config) {
		c.Listeners = []node.Listener{{Name: "tls", Address: "127.0.0.1:0",
			TLS: &node.TLSFiles{CertFile: p.serverCert, KeyFile: p.serverKey, ClientCAFile: p.caFile}}}
		c.Realms = []string{"realm1", realmTLS}
		c.Auth = map[string]*proxy.RealmAuth{
			"realm1": {Anonymous: &anon},
			realmTLS: {TLS: map[string]proxy.TLSPrincipal{
				p.alice.Fingerprint(): {Role: "device"},
				p.bob.Fingerprint():   {AuthID: "robert", Role: "user"},
			}},
		}
	})
}

// TestTLS runs AutobahnJS and AutobahnPython against a TLS universal listener whose
// certificate is issued by a CA generated for the run (newTLSPKI), each script against
// its own node (startTLSNode):
//
//   - scenario.js / scenario.py (solo) over wss:// and rss://, trusting the test CA: the
//     call and event round trips of the basic scenario, over TLS;
//   - tls.js / tls.py: TLS client-certificate auth (authmethods ["tls"]) in realmTLS:
//     alice joins as alice/device and bob as robert/user with authmethod tls and
//     authprovider static (no CHALLENGE); eve, whose certificate is valid but no
//     principal, gets wamp.error.authentication_failed; without a certificate, a HELLO
//     offering only tls gets wamp.error.no_auth_method. A client that does not trust the
//     test CA fails to connect (the client library reports the failed TLS handshake,
//     the session never joins), and so does a client presenting a certificate of
//     another CA.
//
// AutobahnPython runs WebSocket on asyncio (ssl.SSLContext: create_default_context with
// cafile, load_cert_chain) and on Twisted, and RawSocket on Twisted
// (optionsForClientTLS with trustRoot and clientCertificate; the asyncio RawSocket client
// of autobahn 22.7.1 crashes on WELCOME, see scenario.py). AutobahnJS runs WebSocket
// only, through an https.Agent with ca, cert and key that autobahn hands to the `ws`
// library. RawSocket over TLS is impossible with AutobahnJS 22.11.1: its Node RawSocket
// transport (lib/transport/rawsocket.js) always connects with net.connect, plain TCP,
// and has no TLS option.
func TestTLS(t *testing.T) {
	js, py := clients()
	p := newTLSPKI(t)
	runScripts(t, []scriptCase{
		{"js/wss/json/scenario", "scenario.js", endpoint{c: js, transport: "ws", serializer: "json"}},
		{"js/wss/msgpack/tls", "tls.js", endpoint{c: js, transport: "ws", serializer: "msgpack"}},
		{"py/wss/cbor/asyncio/scenario", "scenario.py", endpoint{c: py, transport: "ws", serializer: "cbor", framework: "asyncio"}},
		{"py/rss/msgpack/twisted/scenario", "scenario.py", endpoint{c: py, transport: "rs", serializer: "msgpack", framework: "twisted"}},
		{"py/wss/json/asyncio/tls", "tls.py", endpoint{c: py, transport: "ws", serializer: "json", framework: "asyncio"}},
		{"py/wss/msgpack/twisted/tls", "tls.py", endpoint{c: py, transport: "ws", serializer: "msgpack", framework: "twisted"}},
		{"py/rss/cbor/twisted/tls", "tls.py", endpoint{c: py, transport: "rs", serializer: "cbor", framework: "twisted"}},
	}, func(t *testing.T) *routerNode { return startTLSNode(t, p) }, tlsTimeout, true, p.env...)
}
