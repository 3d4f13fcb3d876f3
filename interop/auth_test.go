package interop

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	wampclient "github.com/switchyard-wamp/switchyard/client"
	"github.com/switchyard-wamp/switchyard/engine"
	"github.com/switchyard-wamp/switchyard/node"
	"github.com/switchyard-wamp/switchyard/proxy"
)

// authTimeout is the hard timeout of auth.js / auth.py.
const authTimeout = 15 * time.Second

// The realms of the auth node; js/auth.js and python/auth.py use the same names.
const (
	realmCryptosign = "cryptosign" // static WAMP-Cryptosign principal device-1
	realmDynamic    = "dynamic"    // every principal authenticated by the dynamic authenticator
	realmBackend    = "backend"    // anonymous; where the Go test registers the authenticator
	realmAuthz      = "authz"      // static role permissions and a dynamic authorizer

	authenticatorProc = "interop.authenticate"
	authorizerProc    = "interop.authorize"
)

// authNode is the router of one auth scenario run, with the Go-side backend sessions
// and what the dynamic authorizer was asked.
type authNode struct {
	*routerNode
	// env passes the Ed25519 test keys (hex seeds, generated per run) to the script.
	env []string

	mu    sync.Mutex
	asked []string // the authorizer's calls: "authrole action uri"
}

// startAuthNode starts a node with the realms the auth scripts log in to:
//
//   - realm1: anonymous, ticket joe, the WAMP-CRA principals ann (plain secret) and salty
//     (PBKDF2-salted secret);
//   - cryptosign: WAMP-Cryptosign principal device-1 (role device) with one authorized
//     Ed25519 key, generated per run (INTEROP_CRYPTOSIGN_SEED); INTEROP_CRYPTOSIGN_OTHER_SEED
//     is a second key the realm does not know;
//   - dynamic: only the dynamic authenticator interop.authenticate, registered by a Go
//     client in realm backend (see authenticate);
//   - authz: ticket principals limited (role limited: static permissions), dynuser (role
//     dynuser: no static permissions, so the dynamic authorizer interop.authorize decides)
//     and authorizer (the Go client that registers interop.authorize; role with static
//     permissions for everything).
func startAuthNode(t *testing.T) *authNode {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, other, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	all := engine.Permission{Call: true, Register: true, Publish: true, Subscribe: true}
	limited, err := engine.NewRolePermissions([]engine.Rule{
		{URI: "authz.open.", Match: "prefix", Allow: all},
		{URI: "authz.open.closed", Match: "exact"}, // exact beats the prefix: nothing allowed
	})
	if err != nil {
		t.Fatal(err)
	}
	everything, err := engine.NewRolePermissions([]engine.Rule{{URI: "", Match: "prefix", Allow: all}})
	if err != nil {
		t.Fatal(err)
	}
	anon, backend := "anonymous", "backend"
	an := &authNode{env: []string{
		"INTEROP_CRYPTOSIGN_SEED=" + hex.EncodeToString(priv.Seed()),
		"INTEROP_CRYPTOSIGN_OTHER_SEED=" + hex.EncodeToString(other.Seed()),
	}}
	an.routerNode = startNodeConfig(t, func(c *node.Config) {
		c.Realms = []string{"realm1", realmCryptosign, realmDynamic, realmBackend, realmAuthz}
		c.Auth = map[string]*proxy.RealmAuth{
			"realm1": {
				Anonymous: &anon,
				Tickets:   map[string]proxy.TicketPrincipal{"joe": {Ticket: "s3cret", Role: "user"}},
				CRA: map[string]proxy.CRAPrincipal{
					"ann":   {Secret: "plain-secret", Role: "admin"},
					"salty": {Secret: "salted-secret", Salt: "NaCl", Iterations: 100, KeyLen: 32, Role: "user"},
				},
			},
			realmCryptosign: {Cryptosign: map[string]proxy.CryptosignPrincipal{
				"device-1": {AuthorizedKeys: []ed25519.PublicKey{pub}, Role: "device"},
			}},
			realmDynamic: {Authenticator: &proxy.Authenticator{Realm: realmBackend, Procedure: authenticatorProc,
				Methods: []string{"ticket", "wampcra", "cryptosign"}, Timeout: 3 * time.Second}},
			realmBackend: {Anonymous: &backend},
			realmAuthz: {Tickets: map[string]proxy.TicketPrincipal{
				"limited":    {Ticket: "limited-pw", Role: "limited"},
				"dynuser":    {Ticket: "dynuser-pw", Role: "dynuser"},
				"authorizer": {Ticket: "authorizer-pw", Role: "authorizer"},
			}},
		}
		c.Roles = map[string]map[string]*engine.RolePermissions{
			realmAuthz: {"limited": limited, "authorizer": everything},
		}
		c.Authorizers = map[string]*engine.Authorizer{
			realmAuthz: {Procedure: authorizerProc, CacheSize: 16, Timeout: 3 * time.Second},
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	authn, err := wampclient.Connect(ctx, wampclient.Config{URL: an.urls["ws"], Realm: realmBackend})
	if err != nil {
		t.Fatalf("authenticator session: %v", err)
	}
	t.Cleanup(func() { _ = authn.Close() })
	if _, err := authn.Register(ctx, authenticatorProc, authenticate(hex.EncodeToString(pub)), nil); err != nil {
		t.Fatalf("register %s: %v", authenticatorProc, err)
	}
	authz, err := wampclient.Connect(ctx, wampclient.Config{URL: an.urls["rs"], Realm: realmAuthz, AuthID: "authorizer",
		AuthMethods: []string{"ticket"},
		OnChallenge: func(string, map[string]any) (string, error) { return "authorizer-pw", nil }})
	if err != nil {
		t.Fatalf("authorizer session: %v", err)
	}
	t.Cleanup(func() { _ = authz.Close() })
	if _, err := authz.Register(ctx, authorizerProc, an.authorize, nil); err != nil {
		t.Fatalf("register %s: %v", authorizerProc, err)
	}
	return an
}

// authenticate is the dynamic authenticator of realm dynamic, called with (realm, authid,
// details):
//
//   - ticket dyn-joe with ticket dyn-ticket: role dyn-user, authid renamed to
//     joe@dynamic, authextra {"source": "interop"}; a wrong ticket fails with
//     wamp.error.authentication_failed;
//   - wampcra dyn-ann: secret dyn-cra-secret, role dyn-cra;
//   - cryptosign dyn-dev with the authorized key in authextra.pubkey: role dyn-device (a
//     plain string answer);
//   - anyone else (dyn-eve): wamp.error.not_authorized.
func authenticate(pubHex string) wampclient.InvocationHandler {
	return func(_ context.Context, inv *wampclient.Invocation) (*wampclient.Result, error) {
		if len(inv.Args) != 3 || inv.Args[0] != realmDynamic {
			return nil, &wampclient.Error{URI: "wamp.error.not_authorized"}
		}
		authid, _ := inv.Args[1].(string)
		details, _ := inv.Args[2].(map[string]any)
		switch {
		case authid == "dyn-joe" && details["authmethod"] == "ticket":
			if details["ticket"] != "dyn-ticket" {
				return nil, &wampclient.Error{URI: "wamp.error.authentication_failed"}
			}
			return &wampclient.Result{Args: []any{map[string]any{"role": "dyn-user", "authid": "joe@dynamic",
				"extra": map[string]any{"source": "interop"}}}}, nil
		case authid == "dyn-ann" && details["authmethod"] == "wampcra":
			return &wampclient.Result{Args: []any{map[string]any{"role": "dyn-cra", "secret": "dyn-cra-secret"}}}, nil
		case authid == "dyn-dev" && details["authmethod"] == "cryptosign":
			if x, _ := details["authextra"].(map[string]any); x["pubkey"] == pubHex {
				return &wampclient.Result{Args: []any{"dyn-device"}}, nil
			}
		}
		return nil, &wampclient.Error{URI: "wamp.error.not_authorized"}
	}
}

// authorize is the dynamic authorizer of realm authz, called with (session, uri,
// action, options): it allows subscribing to authz.dyn.allowed and nothing else, and
// records every question.
func (an *authNode) authorize(_ context.Context, inv *wampclient.Invocation) (*wampclient.Result, error) {
	if len(inv.Args) < 3 {
		return nil, &wampclient.Error{URI: "wamp.error.invalid_argument"}
	}
	sess, _ := inv.Args[0].(map[string]any)
	uri, _ := inv.Args[1].(string)
	action, _ := inv.Args[2].(string)
	an.mu.Lock()
	an.asked = append(an.asked, fmt.Sprintf("%v %s %s", sess["authrole"], action, uri))
	an.mu.Unlock()
	return &wampclient.Result{Args: []any{action == "subscribe" && uri == "authz.dyn.allowed"}}, nil
}

// TestAuth runs the authentication and authorization scenario (js/auth.js,
// python/auth.py) once per client and transport family (WebSocket, RawSocket), each
// against its own router (failed logins are rate-limited per address and router):
//
//   - realm1, static principals: anonymous ok; ticket ok / wrong / unknown authid;
//     WAMP-CRA ok, salted ok, wrong secret (both); a HELLO offering only an authmethod
//     the realm does not offer (wamp.error.no_auth_method);
//   - WAMP-Cryptosign with a static principal: ok with the authorized key, wrong
//     private key and unauthorized public key (wamp.error.authentication_failed);
//   - dynamic authenticator: ticket ok (authid replaced, authextra), wrong ticket
//     (authentication_failed), denied authid (not_authorized), WAMP-CRA ok, cryptosign
//     ok, each WELCOME with authprovider dynamic;
//   - authorization: static permissions allow and forbid one URI each for publish
//     (acknowledged), subscribe, call and register; the dynamic authorizer allows one
//     subscribe and denies another. Forbidden is wamp.error.not_authorized.
//
// Same skip rule as the other tests: a missing client skips, unless CI is set.
func TestAuth(t *testing.T) {
	js, py := clients()
	eachOnOwnNode(t, []scriptCase{
		{"js/ws/json", "auth.js", endpoint{c: js, transport: "ws", serializer: "json"}},
		{"js/rs/json", "auth.js", endpoint{c: js, transport: "rs", serializer: "json"}},
		{"py/ws/msgpack", "auth.py", endpoint{c: py, transport: "ws", serializer: "msgpack"}},
		{"py/rs/cbor/twisted", "auth.py", endpoint{c: py, transport: "rs", serializer: "cbor"}},
	}, startAuthNode, func(t *testing.T, an *authNode, tc scriptCase) { runAuth(t, an, tc.e, tc.script) })
}

// runAuth runs one auth script against an and fails t with its output on error, then
// checks that the dynamic authorizer was asked about the dynuser session's two
// subscriptions and never about the sessions whose roles have static permissions.
func runAuth(t *testing.T, an *authNode, e endpoint, name string) {
	runScript(t, an.routerNode, e, name, authTimeout, true, an.env...)
	an.mu.Lock()
	asked := slices.Clone(an.asked)
	an.mu.Unlock()
	t.Logf("authorizer asked: %q", asked)
	for _, want := range []string{"dynuser subscribe authz.dyn.allowed", "dynuser subscribe authz.dyn.denied"} {
		if !slices.Contains(asked, want) {
			t.Errorf("the authorizer was not asked %q; asked %q", want, asked)
		}
	}
	for _, q := range asked {
		if !strings.HasPrefix(q, "dynuser ") {
			t.Errorf("the authorizer was asked %q: only role dynuser lacks static permissions", q)
		}
	}
}
