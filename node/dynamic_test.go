package node

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/client"
	"github.com/switchyard-wamp/switchyard/engine"
	"github.com/switchyard-wamp/switchyard/proxy"
)

// TestDynamicAuthenticatorAndAuthorizer: a backend client registers the authenticator
// (in realm "auth") and the authorizer (in realm1, under a statically allowed role); the
// router asks them, over real sockets, who may join realm1 and what they may do there.
func TestDynamicAuthenticatorAndAuthorizer(t *testing.T) {
	devPub, devPriv, _ := ed25519.GenerateKey(rand.Reader)
	backendRole, err := engine.NewRolePermissions([]engine.Rule{{URI: "", Match: "prefix",
		Allow: engine.Permission{Call: true, Register: true, Publish: true, Subscribe: true}}})
	if err != nil {
		t.Fatal(err)
	}
	anon := "backend"
	n := startNode(t, func(c *Config) {
		c.Realms = []string{"realm1", "auth"}
		c.Auth = map[string]*proxy.RealmAuth{
			"auth": {Anonymous: &anon},
			"realm1": {Tickets: map[string]proxy.TicketPrincipal{"backend": {Ticket: "b", Role: "backend"}},
				Authenticator: &proxy.Authenticator{Realm: "auth", Procedure: "com.authn",
					Methods: []string{"ticket", "wampcra", "cryptosign"}, Timeout: 300 * time.Millisecond}},
		}
		c.Roles = map[string]map[string]*engine.RolePermissions{"realm1": {"backend": backendRole}}
		c.Authorizers = map[string]*engine.Authorizer{"realm1": {Procedure: "com.authz", CacheSize: 10, Timeout: time.Second}}
	})

	authn, err := client.Connect(ctxT(t), client.Config{URL: n.WebSocketURL(), Realm: "auth"})
	if err != nil {
		t.Fatal(err)
	}
	defer authn.Close()
	_, err = authn.Register(ctxT(t), "com.authn", func(ctx context.Context, inv *client.Invocation) (*client.Result, error) {
		realm, authid := inv.Args[0], inv.Args[1]
		details, _ := inv.Args[2].(map[string]any)
		if realm != "realm1" {
			return nil, &client.Error{URI: "wamp.error.not_authorized"}
		}
		switch authid {
		case "joe":
			if details["ticket"] != "pw" {
				return nil, &client.Error{URI: "wamp.error.authentication_failed"}
			}
			return &client.Result{Args: []any{map[string]any{"role": "user", "extra": map[string]any{"tier": "gold"}}}}, nil
		case "ann":
			return &client.Result{Args: []any{map[string]any{"role": "user", "secret": "ann-secret"}}}, nil
		case "dev":
			x, _ := details["authextra"].(map[string]any)
			if x["pubkey"] != hex.EncodeToString(devPub) {
				return nil, &client.Error{URI: "wamp.error.not_authorized"}
			}
			return &client.Result{Args: []any{"user"}}, nil
		case "slow":
			<-ctx.Done()
		}
		return nil, &client.Error{URI: "wamp.error.not_authorized"}
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	backend, err := client.Connect(ctxT(t), client.Config{URL: n.RawSocketURL(), Realm: "realm1", AuthID: "backend",
		AuthMethods: []string{"ticket"}, OnChallenge: func(string, map[string]any) (string, error) { return "b", nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer backend.Close()
	var asked atomic.Int32
	_, err = backend.Register(ctxT(t), "com.authz", func(_ context.Context, inv *client.Invocation) (*client.Result, error) {
		asked.Add(1)
		uri, _ := inv.Args[1].(string)
		action, _ := inv.Args[2].(string)
		allow := action == "subscribe" && uri == "com.ok" || action == "call" && uri == "com.time"
		return &client.Result{Args: []any{allow}}, nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := backend.Register(ctxT(t), "com.time", func(context.Context, *client.Invocation) (*client.Result, error) {
		return &client.Result{Args: []any{"noon"}}, nil
	}, nil); err != nil {
		t.Fatal(err)
	}

	ticket := func(pw string) func(string, map[string]any) (string, error) {
		return func(string, map[string]any) (string, error) { return pw, nil }
	}
	for _, tc := range []struct {
		name, authid, method string
		answer               func(string, map[string]any) (string, error)
		extra                map[string]any
		wantErr              string
	}{
		{"ticket", "joe", "ticket", ticket("pw"), nil, ""},
		{"ticket-wrong", "joe", "ticket", ticket("nope"), nil, "wamp.error.authentication_failed"},
		{"ticket-denied", "eve", "ticket", ticket("pw"), nil, "wamp.error.not_authorized"},
		{"authenticator-timeout", "slow", "ticket", ticket("pw"), nil, "wamp.error.authentication_failed"},
		{"wampcra", "ann", "wampcra", func(_ string, x map[string]any) (string, error) { return craSign("ann-secret", x), nil }, nil, ""},
		{"wampcra-wrong", "ann", "wampcra", func(_ string, x map[string]any) (string, error) { return craSign("guess", x), nil }, nil, "wamp.error.authentication_failed"},
		{"cryptosign", "dev", "cryptosign", func(_ string, x map[string]any) (string, error) {
			ch, _ := hex.DecodeString(x["challenge"].(string))
			return hex.EncodeToString(ed25519.Sign(devPriv, ch)), nil
		}, map[string]any{"pubkey": hex.EncodeToString(devPub)}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := client.Connect(ctxT(t), client.Config{URL: n.WebSocketURL(), Realm: "realm1", AuthID: tc.authid,
				AuthMethods: []string{tc.method}, AuthExtra: tc.extra, OnChallenge: tc.answer})
			if tc.wantErr != "" {
				wampErr(t, err, tc.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			d := s.WelcomeDetails()
			if s.AuthRole() != "user" || d["authprovider"] != "dynamic" || d["authmethod"] != tc.method {
				t.Fatalf("WELCOME %v", d)
			}
			if tc.authid == "joe" {
				if x, _ := d["authextra"].(map[string]any); x["tier"] != "gold" {
					t.Fatalf("authextra %v", d["authextra"])
				}
			}
		})
	}

	// The authorizer decides what user sessions may do; its answers are cached.
	joe, err := client.Connect(ctxT(t), client.Config{URL: n.WebSocketURL(), Realm: "realm1", AuthID: "joe",
		AuthMethods: []string{"ticket"}, OnChallenge: ticket("pw")})
	if err != nil {
		t.Fatal(err)
	}
	defer joe.Close()
	noop := func(*client.Event) {}
	for i := 0; i < 2; i++ {
		if _, err := joe.Subscribe(ctxT(t), "com.ok", noop, nil); err != nil {
			t.Fatal(err)
		}
		if res, err := joe.Call(ctxT(t), "com.time", nil, nil, nil); err != nil || res.Args[0] != "noon" {
			t.Fatalf("%v %v", res, err)
		}
	}
	_, err = joe.Subscribe(ctxT(t), "com.secret", noop, nil)
	wampErr(t, err, "wamp.error.not_authorized")
	_, err = joe.Register(ctxT(t), "com.x", func(context.Context, *client.Invocation) (*client.Result, error) { return nil, nil }, nil)
	wampErr(t, err, "wamp.error.not_authorized")
	err = joe.Publish(ctxT(t), "com.ok", nil, nil, client.Acknowledge())
	wampErr(t, err, "wamp.error.not_authorized")
	if n := asked.Load(); n != 5 {
		t.Fatalf("authorizer asked %d times, want 5 (2 cached)", n)
	}
}
