package node

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/client"
	"github.com/switchyard-wamp/switchyard/codec"
	"github.com/switchyard-wamp/switchyard/internal/testpki"
	"github.com/switchyard-wamp/switchyard/netpoll"
	"github.com/switchyard-wamp/switchyard/proxy"
)

// tlsNode starts a node with one TLS universal listener that asks for client
// certificates signed by ca; configure sets auth.
func tlsNode(t *testing.T, ca *testpki.CA, configure func(*Config)) *Node {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile, caFile, err := ca.ServerFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	return startNode(t, func(c *Config) {
		c.Listeners = []Listener{{Address: "127.0.0.1:0", TLS: &TLSFiles{CertFile: certFile, KeyFile: keyFile, ClientCAFile: caFile}}}
		configure(c)
	})
}

func TestTLSClientCertificateAuth(t *testing.T) {
	ca := testpki.MustCA("auth test CA")
	alice, bob, eve := ca.MustClient("alice"), ca.MustClient("bob"), ca.MustClient("eve")
	outsider := testpki.MustCA("other CA").MustClient("alice")
	n := tlsNode(t, ca, func(c *Config) {
		c.Realms = []string{"realm1", "auth"}
		anon := "authenticator"
		c.Auth = map[string]*proxy.RealmAuth{
			"auth": {Anonymous: &anon},
			"realm1": {TLS: map[string]proxy.TLSPrincipal{alice.Fingerprint(): {Role: "device"}},
				Authenticator: &proxy.Authenticator{Realm: "auth", Procedure: "com.authn", Methods: []string{"tls"}}},
		}
	})
	authn, err := client.Connect(ctxT(t), client.Config{URL: n.WebSocketURL(), Realm: "auth", TLSConfig: ca.ClientConfig()})
	if err != nil {
		t.Fatal(err)
	}
	defer authn.Close()
	if _, err := authn.Register(ctxT(t), "com.authn", func(_ context.Context, inv *client.Invocation) (*client.Result, error) {
		details, _ := inv.Args[2].(map[string]any)
		tr, _ := details["transport"].(map[string]any)
		cert, _ := tr["client_cert"].(map[string]any)
		if inv.Args[1] == "bob" && cert["cn"] == "bob" && cert["fingerprint"] == bob.Fingerprint() {
			return &client.Result{Args: []any{"guest"}}, nil
		}
		return nil, &client.Error{URI: "wamp.error.not_authorized"}
	}, nil); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		certs    []*testpki.Cert
		methods  []string
		wantErr  string
		wantID   string
		wantRole string
		provider string
	}{
		{"static principal by fingerprint, authid from CN", []*testpki.Cert{alice}, []string{"tls"}, "", "alice", "device", "static"},
		{"dynamic authenticator sees the certificate", []*testpki.Cert{bob}, []string{"tls"}, "", "bob", "guest", "dynamic"},
		{"authenticator denies", []*testpki.Cert{eve}, []string{"tls"}, "wamp.error.not_authorized", "", "", ""},
		{"no certificate: next method, none left", nil, []string{"tls"}, "wamp.error.no_auth_method", "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, url := range []string{n.WebSocketURL(), n.RawSocketURL()} {
				s, err := client.Connect(ctxT(t), client.Config{URL: url, Realm: "realm1", AuthMethods: tc.methods,
					Serializer: codec.MsgPack, TLSConfig: ca.ClientConfig(tc.certs...)})
				if tc.wantErr != "" {
					wampErr(t, err, tc.wantErr)
					continue
				}
				if err != nil {
					t.Fatalf("%s: %v", url, err)
				}
				d := s.WelcomeDetails()
				if s.AuthID() != tc.wantID || s.AuthRole() != tc.wantRole || d["authmethod"] != "tls" || d["authprovider"] != tc.provider {
					t.Fatalf("%s: WELCOME %v", url, d)
				}
				s.Close()
			}
		})
	}
	// A certificate from a CA the listener does not trust fails the TLS handshake.
	if _, err := client.Connect(ctxT(t), client.Config{URL: n.WebSocketURL(), Realm: "realm1",
		AuthMethods: []string{"tls"}, TLSConfig: ca.ClientConfig(outsider)}); err == nil {
		t.Fatal("joined with a certificate from an untrusted CA")
	}
}

func TestCryptosignChannelBinding(t *testing.T) {
	ca := testpki.MustCA("binding CA")
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	n := tlsNode(t, ca, func(c *Config) {
		c.Auth = map[string]*proxy.RealmAuth{"realm1": {Cryptosign: map[string]proxy.CryptosignPrincipal{
			"dev": {AuthorizedKeys: []ed25519.PublicKey{pub}, Role: "device"}}}}
	})
	for _, tc := range []struct {
		kind    string
		maxTLS  uint16
		bind    bool // sign challenge XOR channel id (else the bare challenge)
		wantErr string
	}{
		{"tls-exporter", tls.VersionTLS13, true, ""},
		{"tls-unique", tls.VersionTLS12, true, ""},
		{"tls-exporter", tls.VersionTLS13, false, "wamp.error.authentication_failed"},
		{"tls-unique", tls.VersionTLS12, false, "wamp.error.authentication_failed"},
	} {
		for _, url := range []string{n.WebSocketURL(), n.RawSocketURL()} {
			cfg := ca.ClientConfig()
			cfg.MaxVersion = tc.maxTLS
			var boundTo any
			s, err := client.Connect(ctxT(t), client.Config{URL: url, Realm: "realm1", AuthID: "dev",
				AuthMethods: []string{"cryptosign"}, TLSConfig: cfg,
				AuthExtra: map[string]any{"pubkey": hex.EncodeToString(pub), "channel_binding": tc.kind},
				OnChallenge: func(_ string, extra map[string]any) (string, error) {
					boundTo = extra["channel_binding"]
					msg, _ := hex.DecodeString(extra["challenge"].(string))
					if id, _ := hex.DecodeString(stringOr(extra["channel_id"])); tc.bind && len(id) == 32 {
						for i := range msg {
							msg[i] ^= id[i]
						}
					}
					return hex.EncodeToString(append(ed25519.Sign(priv, msg), msg...)), nil
				}})
			if boundTo != tc.kind {
				t.Fatalf("%s %s: CHALLENGE channel_binding %v", tc.kind, url, boundTo)
			}
			if tc.wantErr != "" {
				wampErr(t, err, tc.wantErr)
				continue
			}
			if err != nil {
				t.Fatalf("%s %s: %v", tc.kind, url, err)
			}
			s.Close()
		}
	}
}

func stringOr(v any) string { s, _ := v.(string); return s }

func TestCookieAuth(t *testing.T) {
	file := filepath.Join(t.TempDir(), "cookies")
	store, err := proxy.NewCookieStore(file)
	if err != nil {
		t.Fatal(err)
	}
	n := startNode(t, func(c *Config) {
		c.Listeners = []Listener{{Name: "web", Address: "127.0.0.1:0", Cookie: &netpoll.Cookie{Name: "cbtid", MaxAge: time.Hour}}}
		c.Auth = map[string]*proxy.RealmAuth{"realm1": {
			Tickets: map[string]proxy.TicketPrincipal{"joe": {Ticket: "s3cret", Role: "user"}},
			Cookie:  &proxy.CookieAuth{MaxAge: time.Hour, Store: store}}}
	})
	var cookie string
	joe, err := client.Connect(ctxT(t), client.Config{URL: n.WebSocketURL(), Realm: "realm1", AuthID: "joe",
		AuthMethods: []string{"cookie", "ticket"}, OnChallenge: func(string, map[string]any) (string, error) { return "s3cret", nil },
		OnResponseHeader: func(k, v string) {
			if strings.EqualFold(k, "Set-Cookie") && strings.HasPrefix(v, "cbtid=") {
				cookie = strings.SplitN(strings.TrimPrefix(v, "cbtid="), ";", 2)[0]
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	joe.Close()
	if cookie == "" || joe.WelcomeDetails()["authmethod"] != "ticket" {
		t.Fatalf("cookie %q, first WELCOME %v", cookie, joe.WelcomeDetails())
	}
	rejoin := func(value string) (*client.Session, error) {
		return client.Connect(ctxT(t), client.Config{URL: n.WebSocketURL(), Realm: "realm1",
			AuthMethods: []string{"cookie"}, Header: http.Header{"Cookie": {"cbtid=" + value}}})
	}
	s, err := rejoin(cookie)
	if err != nil {
		t.Fatal(err)
	}
	d := s.WelcomeDetails()
	if s.AuthID() != "joe" || s.AuthRole() != "user" || d["authmethod"] != "cookie" || d["authprovider"] != "static" {
		t.Fatalf("WELCOME %v", d)
	}
	s.Close()
	_, err = rejoin("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	wampErr(t, err, "wamp.error.no_auth_method")
	// The store's file keeps the cookie across a restart.
	store.Close()
	reopened, err := proxy.NewCookieStore(file)
	if err != nil {
		t.Fatal(err)
	}
	n.front.SetAuth(map[string]*proxy.RealmAuth{"realm1": {Cookie: &proxy.CookieAuth{MaxAge: time.Hour, Store: reopened}}})
	if s, err = rejoin(cookie); err != nil || s.AuthID() != "joe" {
		t.Fatalf("after reopening the store: %v", err)
	}
	s.Close()
}
