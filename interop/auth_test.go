package interop

import (
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/proxy"
)

// authTimeout is the hard timeout of auth.js / auth.py.
const authTimeout = 15 * time.Second

// startAuthNode starts a node whose realm1 admits anonymous sessions, ticket joe and the
// WAMP-CRA principals ann (plain secret) and salty (PBKDF2-salted secret): the principals
// js/auth.js and python/auth.py log in as.
func startAuthNode(t *testing.T) *routerNode {
	t.Helper()
	anon := "anonymous"
	return startNodeWith(t, map[string]*proxy.RealmAuth{
		"realm1": {
			Anonymous: &anon,
			Tickets:   map[string]proxy.TicketPrincipal{"joe": {Ticket: "s3cret", Role: "user"}},
			CRA: map[string]proxy.CRAPrincipal{
				"ann":   {Secret: "plain-secret", Role: "admin"},
				"salty": {Secret: "salted-secret", Salt: "NaCl", Iterations: 100, KeyLen: 32, Role: "user"},
			},
		},
	})
}

// TestAuth runs the authentication scenario (js/auth.js, python/auth.py) once per client
// and transport family against a router with static ticket and WAMP-CRA principals:
// ticket ok / wrong / unknown authid, WAMP-CRA ok, salted ok, wrong secret, and a HELLO
// offering only an authmethod the realm does not offer (wamp.error.no_auth_method).
// Same skip rule as the other tests: a missing client skips, unless CI is set.
func TestAuth(t *testing.T) {
	js, py := clients()
	for _, tc := range []struct {
		name   string
		c      client
		script string
		e      endpoint
	}{
		{"js/ws/json", js, "auth.js", endpoint{c: js, transport: "ws", serializer: "json"}},
		{"js/rs/json", js, "auth.js", endpoint{c: js, transport: "rs", serializer: "json"}},
		{"py/ws/msgpack", py, "auth.py", endpoint{c: py, transport: "ws", serializer: "msgpack"}},
		{"py/rs/cbor/twisted", py, "auth.py", endpoint{c: py, transport: "rs", serializer: "cbor"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require(t, tc.c)
			t.Parallel()
			rn := startAuthNode(t)
			runAuth(t, rn, tc.e, tc.script)
		})
	}
}

// runAuth runs one auth script against rn and fails t with its output on error.
func runAuth(t *testing.T, rn *routerNode, e endpoint, name string) {
	runScript(t, rn, e, name, authTimeout, true)
}
