package node

import (
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"testing"

	"github.com/switchyard-wamp/switchyard/client"
	"github.com/switchyard-wamp/switchyard/codec"
	"github.com/switchyard-wamp/switchyard/engine"
	"github.com/switchyard-wamp/switchyard/proxy"
)

// craSign is the client side of WAMP-CRA, written from the spec (not from our router).
func craSign(secret string, extra map[string]any) string {
	key := []byte(secret)
	if salt, ok := extra["salt"].(string); ok {
		it, kl := toInt(extra["iterations"]), toInt(extra["keylen"])
		dk, _ := pbkdf2.Key(sha256.New, secret, []byte(salt), it, kl)
		key = []byte(base64.StdEncoding.EncodeToString(dk))
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(extra["challenge"].(string)))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

func toInt(v any) int {
	switch x := v.(type) {
	case uint64:
		return int(x)
	case int64:
		return int(x)
	}
	return 0
}

func TestAuthentication(t *testing.T) {
	anon := "guest"
	n := startNode(t, func(c *Config) {
		c.Realms = []string{"realm1", "closed"}
		c.Auth = map[string]*proxy.RealmAuth{
			"realm1": {Anonymous: &anon,
				Tickets: map[string]proxy.TicketPrincipal{"joe": {Ticket: "s3cret", Role: "user"}},
				CRA: map[string]proxy.CRAPrincipal{
					"ann":  {Secret: "plain-secret", Role: "admin"},
					"salt": {Secret: "salted-secret", Salt: "NaCl", Iterations: 100, KeyLen: 32, Role: "user"},
				}},
			"closed": {Tickets: map[string]proxy.TicketPrincipal{"joe": {Ticket: "s3cret", Role: "user"}}},
		}
	})
	for _, tc := range []struct {
		name, realm, authid string
		methods             []string
		answer              func(method string, extra map[string]any) (string, error)
		wantErr             string
		wantRole, wantMeth  string
	}{
		{name: "anonymous", realm: "realm1", wantRole: "guest", wantMeth: "anonymous"},
		{name: "ticket", realm: "realm1", authid: "joe", methods: []string{"ticket"},
			answer: func(string, map[string]any) (string, error) { return "s3cret", nil }, wantRole: "user", wantMeth: "ticket"},
		{name: "ticket-wrong", realm: "realm1", authid: "joe", methods: []string{"ticket"},
			answer: func(string, map[string]any) (string, error) { return "guess", nil }, wantErr: "wamp.error.authentication_failed"},
		{name: "ticket-unknown-authid", realm: "realm1", authid: "nobody", methods: []string{"ticket"},
			answer: func(string, map[string]any) (string, error) { return "s3cret", nil }, wantErr: "wamp.error.authentication_failed"},
		{name: "wampcra", realm: "realm1", authid: "ann", methods: []string{"wampcra"},
			answer: func(_ string, x map[string]any) (string, error) { return craSign("plain-secret", x), nil }, wantRole: "admin", wantMeth: "wampcra"},
		{name: "wampcra-salted", realm: "realm1", authid: "salt", methods: []string{"wampcra"},
			answer: func(_ string, x map[string]any) (string, error) { return craSign("salted-secret", x), nil }, wantRole: "user", wantMeth: "wampcra"},
		{name: "wampcra-wrong", realm: "realm1", authid: "ann", methods: []string{"wampcra"},
			answer: func(_ string, x map[string]any) (string, error) { return craSign("not-it", x), nil }, wantErr: "wamp.error.authentication_failed"},
		{name: "first-offered-method-wins", realm: "realm1", authid: "joe", methods: []string{"cryptosign", "ticket", "anonymous"},
			answer: func(string, map[string]any) (string, error) { return "s3cret", nil }, wantRole: "user", wantMeth: "ticket"},
		{name: "no-anonymous-on-closed-realm", realm: "closed", wantErr: "wamp.error.no_auth_method"},
		{name: "no-matching-method", realm: "realm1", authid: "x", methods: []string{"cryptosign"}, wantErr: "wamp.error.no_auth_method"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, ep := range endpoints(n)[:3] {
				s, err := client.Connect(ctxT(t), client.Config{URL: ep.url, Batched: ep.batched, Realm: tc.realm,
					Serializer: codec.CBOR, AuthID: tc.authid, AuthMethods: tc.methods, OnChallenge: tc.answer})
				if tc.wantErr != "" {
					wampErr(t, err, tc.wantErr)
					continue
				}
				if err != nil {
					t.Fatalf("%s: %v", ep.name, err)
				}
				d := s.WelcomeDetails()
				if s.AuthRole() != tc.wantRole || d["authmethod"] != tc.wantMeth || (tc.authid != "" && s.AuthID() != tc.authid) {
					t.Fatalf("%s: WELCOME %v", ep.name, d)
				}
				s.Close()
			}
		})
	}
	// An authenticated session routes like any other.
	joe, err := client.Connect(ctxT(t), client.Config{URL: n.WebSocketURL(), Realm: "closed", AuthID: "joe",
		AuthMethods: []string{"ticket"}, OnChallenge: func(string, map[string]any) (string, error) { return "s3cret", nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer joe.Close()
	if _, err := joe.Register(ctxT(t), "com.who", func(context.Context, *client.Invocation) (*client.Result, error) {
		return &client.Result{Args: []any{"joe"}}, nil
	}, nil); err != nil {
		t.Fatal(err)
	}
	res, err := joe.Call(ctxT(t), "com.who", nil, nil, nil)
	if err != nil || fmt.Sprint(res.Args) != "[joe]" {
		t.Fatalf("%v %v", res, err)
	}
}

// TestAuthFailuresAreRateLimited: after 10 failures from one address within a minute the
// router stops sending CHALLENGEs to it.
func TestAuthFailuresAreRateLimited(t *testing.T) {
	n := startNode(t, func(c *Config) {
		c.Auth = map[string]*proxy.RealmAuth{"realm1": {Tickets: map[string]proxy.TicketPrincipal{"joe": {Ticket: "s3cret", Role: "user"}}}}
	})
	challenges := 0
	try := func(ticket string) error {
		_, err := client.Connect(ctxT(t), client.Config{URL: n.RawSocketURL(), Realm: "realm1", AuthID: "joe",
			AuthMethods: []string{"ticket"}, OnChallenge: func(string, map[string]any) (string, error) {
				challenges++
				return ticket, nil
			}})
		return err
	}
	for i := 0; i < 10; i++ {
		wampErr(t, try("wrong"), "wamp.error.authentication_failed")
	}
	if challenges != 10 {
		t.Fatalf("%d challenges for 10 attempts", challenges)
	}
	// Now even the right ticket is refused, without a CHALLENGE.
	wampErr(t, try("s3cret"), "wamp.error.authentication_failed")
	if challenges != 10 {
		t.Fatal("a CHALLENGE was sent to a rate-limited address")
	}
}

// TestAuthorizationOverSockets: a role's permissions decide every action.
func TestAuthorizationOverSockets(t *testing.T) {
	viewer, err := engine.NewRolePermissions([]engine.Rule{
		{URI: "com.public.", Match: "prefix", Allow: engine.Permission{Subscribe: true, Call: true}},
	})
	if err != nil {
		t.Fatal(err)
	}
	n := startNode(t, func(c *Config) {
		c.Roles = map[string]map[string]*engine.RolePermissions{"realm1": {"anonymous": viewer}}
	})
	s := connect(t, endpoints(n)[0], codec.JSON)
	ctx := ctxT(t)
	if _, err := s.Subscribe(ctx, "com.public.news", func(*client.Event) {}, nil); err != nil {
		t.Fatal(err)
	}
	_, err = s.Subscribe(ctx, "com.private.news", func(*client.Event) {}, nil)
	wampErr(t, err, "wamp.error.not_authorized")
	wampErr(t, s.Publish(ctx, "com.public.news", nil, nil, client.Acknowledge()), "wamp.error.not_authorized")
	_, err = s.Register(ctx, "com.public.proc", func(context.Context, *client.Invocation) (*client.Result, error) { return nil, nil }, nil)
	wampErr(t, err, "wamp.error.not_authorized")
	_, err = s.Call(ctx, "com.public.nothing", nil, nil, nil)
	wampErr(t, err, "wamp.error.no_such_procedure") // allowed, just not there
	_, err = s.Call(ctx, "com.private.proc", nil, nil, nil)
	wampErr(t, err, "wamp.error.not_authorized")
}

func TestCryptosign(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(nil) // generated per run: no key material in the repo
	otherPub, otherPriv, _ := ed25519.GenerateKey(nil)
	_ = otherPub
	n := startNode(t, func(c *Config) {
		c.Auth = map[string]*proxy.RealmAuth{"realm1": {Cryptosign: map[string]proxy.CryptosignPrincipal{
			"device-1": {AuthorizedKeys: []ed25519.PublicKey{pub}, Role: "device"}}}}
	})
	sign := func(key ed25519.PrivateKey, withChallenge bool) func(string, map[string]any) (string, error) {
		return func(_ string, extra map[string]any) (string, error) {
			ch, err := hex.DecodeString(extra["challenge"].(string))
			if err != nil {
				return "", err
			}
			sig := ed25519.Sign(key, ch)
			if withChallenge {
				sig = append(sig, ch...) // Autobahn sends signature || challenge
			}
			return hex.EncodeToString(sig), nil
		}
	}
	for _, tc := range []struct {
		name    string
		claimed ed25519.PublicKey
		key     ed25519.PrivateKey
		full    bool
		wantErr string
	}{
		{"signature", pub, priv, false, ""},
		{"signature-and-challenge", pub, priv, true, ""},
		{"wrong-private-key", pub, otherPriv, false, "wamp.error.authentication_failed"},
		{"unauthorized-public-key", otherPub, otherPriv, false, "wamp.error.authentication_failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := client.Connect(ctxT(t), client.Config{URL: n.WebSocketURL(), Realm: "realm1", Serializer: codec.MsgPack,
				AuthID: "device-1", AuthMethods: []string{"cryptosign"},
				AuthExtra:   map[string]any{"pubkey": hex.EncodeToString(tc.claimed)},
				OnChallenge: sign(tc.key, tc.full)})
			if tc.wantErr != "" {
				wampErr(t, err, tc.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if s.AuthRole() != "device" || s.WelcomeDetails()["authmethod"] != "cryptosign" {
				t.Fatalf("%v", s.WelcomeDetails())
			}
		})
	}
}
