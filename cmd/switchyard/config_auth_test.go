package main

import (
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/client"
	"github.com/switchyard-wamp/switchyard/internal/testpki"
	"github.com/switchyard-wamp/switchyard/node"
)

// authConfig is a node configuration with every authentication method the file can
// configure for a standalone node except ticket and cookie (covered elsewhere): WAMP-CRA
// plain and salted, cryptosign, TLS client certificates and a dynamic authenticator. The
// %s are the cryptosign public key and the TLS client certificate fingerprint; TLS files
// are relative to the config file, as an operator writes them.
const authConfig = `
listeners:
  - address: "127.0.0.1:0"
    tls:
      cert_file: pki/server.crt
      key_file: pki/server.key
      client_ca_file: pki/ca.crt
    auth: [anonymous, ticket, wampcra, cryptosign, tls]
realms:
  - name: auth
    roles:
      - name: authenticator
        permissions:
          - {uri: "", match: prefix, allow: {call: true, register: true, publish: true, subscribe: true}}
    auth:
      anonymous: {role: authenticator}
  - name: realm1
    roles:
      - {name: admin, permissions: [{uri: "", match: prefix, allow: {call: true, register: true, publish: true, subscribe: true}}]}
      - {name: user, permissions: [{uri: "", match: prefix, allow: {call: true, register: true, publish: true, subscribe: true}}]}
      - {name: device, permissions: [{uri: "", match: prefix, allow: {call: true, register: true, publish: true, subscribe: true}}]}
      - {name: guest, permissions: [{uri: "com.", match: prefix, allow: {call: true}}]}
    auth:
      wampcra:
        - {authid: ann, secret: plain-secret, role: admin}
        - {authid: salty, secret: salted-secret, salt: NaCl, iterations: 100, keylen: 24, role: user}
      cryptosign:
        - {authid: dev, authorized_keys: ["%s"], role: device}
      tls:
        - {authid: alice-device, fingerprint: "%s", role: device}
      authenticator:
        realm: auth
        procedure: com.authn
        methods: [ticket, wampcra]
        timeout: 300ms
`

// craAnswer is the client side of WAMP-CRA, written from the spec: with a salt, the key
// is the base64 of PBKDF2-SHA256(secret, salt, iterations, keylen).
func craAnswer(secret string) func(string, map[string]any) (string, error) {
	return func(_ string, extra map[string]any) (string, error) {
		key := []byte(secret)
		if salt, ok := extra["salt"].(string); ok {
			it, _ := extra["iterations"].(uint64)
			kl, _ := extra["keylen"].(uint64)
			dk, err := pbkdf2.Key(sha256.New, secret, []byte(salt), int(it), int(kl))
			if err != nil {
				return "", err
			}
			key = []byte(base64.StdEncoding.EncodeToString(dk))
		}
		ch, _ := extra["challenge"].(string)
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(ch))
		return base64.StdEncoding.EncodeToString(mac.Sum(nil)), nil
	}
}

// craSalted answers a salted WAMP-CRA challenge only if it announces the salt,
// iterations and key length the file gives the principal.
func craSalted(secret, salt string, iterations, keylen uint64) func(string, map[string]any) (string, error) {
	return func(method string, extra map[string]any) (string, error) {
		if extra["salt"] != salt || extra["iterations"] != iterations || extra["keylen"] != keylen {
			return "", fmt.Errorf("CHALLENGE %v, want salt %q, iterations %d, keylen %d", extra, salt, iterations, keylen)
		}
		return craAnswer(secret)(method, extra)
	}
}

// colonFingerprint writes a fingerprint the way openssl prints it (upper case, colons),
// which the config accepts and NormalizeFingerprint must map to the wire form.
func colonFingerprint(fp string) string {
	var b strings.Builder
	for i := 0; i < len(fp); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(strings.ToUpper(fp[i : i+2]))
	}
	return b.String()
}

// TestAuthFromConfigFile: the authentication a config file describes is what a started
// node enforces. The file is loaded as `switchyard start --config` loads it
// (loadStartConfig, nodeConfig), the node is started, and the Go client logs in over a
// real TLS socket with each method; a field dropped between the file and the node (a
// salt, an authorized key, a fingerprint, the authenticator's methods) fails a login.
func TestAuthFromConfigFile(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.MustCA("config auth CA")
	if err := os.Mkdir(filepath.Join(dir, "pki"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := ca.ServerFiles(filepath.Join(dir, "pki")); err != nil {
		t.Fatal(err)
	}
	alice, mallory := ca.MustClient("alice"), ca.MustClient("mallory")
	devPub, devPriv, _ := ed25519.GenerateKey(rand.Reader)
	_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	file := filepath.Join(dir, "switchyard.yaml")
	src := fmt.Sprintf(authConfig, hex.EncodeToString(devPub), colonFingerprint(alice.Fingerprint()))
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, nc := startConfigOf(t, file)
	nc.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	n, err := node.Start(nc)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop(context.Background())
	url := n.WebSocketURL()
	if !strings.HasPrefix(url, "wss://") {
		t.Fatalf("the listener with tls serves %s", url)
	}
	ctx := func() context.Context {
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		t.Cleanup(cancel)
		return c
	}

	// The dynamic authenticator, registered in realm "auth" as the file says.
	authn, err := client.Connect(ctx(), client.Config{URL: url, Realm: "auth", TLSConfig: ca.ClientConfig()})
	if err != nil {
		t.Fatal(err)
	}
	defer authn.Close()
	if _, err := authn.Register(ctx(), "com.authn", func(c context.Context, inv *client.Invocation) (*client.Result, error) {
		details, _ := inv.Args[2].(map[string]any)
		switch inv.Args[1] {
		case "slow": // answers after the file's timeout (300ms) and before the client gives up (5s)
			select {
			case <-c.Done():
			case <-time.After(2 * time.Second):
			}
			return &client.Result{Args: []any{"guest"}}, nil
		case "joe":
			if details["ticket"] == "dyn-ticket" {
				return &client.Result{Args: []any{"guest"}}, nil
			}
			return nil, &client.Error{URI: "wamp.error.authentication_failed"}
		case "dyncra":
			return &client.Result{Args: []any{map[string]any{"role": "user", "secret": "dyn-secret"}}}, nil
		}
		return nil, &client.Error{URI: "wamp.error.not_authorized"}
	}, nil); err != nil {
		t.Fatal(err)
	}

	sign := func(key ed25519.PrivateKey) func(string, map[string]any) (string, error) {
		return func(_ string, extra map[string]any) (string, error) {
			ch, err := hex.DecodeString(fmt.Sprint(extra["challenge"]))
			if err != nil {
				return "", err
			}
			return hex.EncodeToString(ed25519.Sign(key, ch)), nil
		}
	}
	ticket := func(s string) func(string, map[string]any) (string, error) {
		return func(string, map[string]any) (string, error) { return s, nil }
	}
	for _, tc := range []struct {
		name     string
		cfg      client.Config
		wantErr  string
		wantID   string
		wantRole string
		wantMeth string
		provider string
	}{
		{name: "wampcra plain", cfg: client.Config{AuthID: "ann", AuthMethods: []string{"wampcra"}, OnChallenge: craAnswer("plain-secret")},
			wantID: "ann", wantRole: "admin", wantMeth: "wampcra", provider: "static"},
		{name: "wampcra plain, wrong secret", cfg: client.Config{AuthID: "ann", AuthMethods: []string{"wampcra"}, OnChallenge: craAnswer("guess")},
			wantErr: "wamp.error.authentication_failed"},
		{name: "wampcra salted", cfg: client.Config{AuthID: "salty", AuthMethods: []string{"wampcra"}, OnChallenge: craSalted("salted-secret", "NaCl", 100, 24)},
			wantID: "salty", wantRole: "user", wantMeth: "wampcra", provider: "static"},
		{name: "wampcra salted, wrong secret", cfg: client.Config{AuthID: "salty", AuthMethods: []string{"wampcra"}, OnChallenge: craAnswer("plain-secret")},
			wantErr: "wamp.error.authentication_failed"},
		{name: "cryptosign", cfg: client.Config{AuthID: "dev", AuthMethods: []string{"cryptosign"},
			AuthExtra: map[string]any{"pubkey": hex.EncodeToString(devPub)}, OnChallenge: sign(devPriv)},
			wantID: "dev", wantRole: "device", wantMeth: "cryptosign", provider: "static"},
		{name: "cryptosign, key not authorized", cfg: client.Config{AuthID: "dev", AuthMethods: []string{"cryptosign"},
			AuthExtra: map[string]any{"pubkey": hex.EncodeToString(otherPriv.Public().(ed25519.PublicKey))}, OnChallenge: sign(otherPriv)},
			wantErr: "wamp.error.authentication_failed"},
		{name: "tls client certificate", cfg: client.Config{AuthMethods: []string{"tls"}, TLSConfig: ca.ClientConfig(alice)},
			wantID: "alice-device", wantRole: "device", wantMeth: "tls", provider: "static"},
		{name: "tls client certificate, unknown fingerprint", cfg: client.Config{AuthMethods: []string{"tls"}, TLSConfig: ca.ClientConfig(mallory)},
			wantErr: "wamp.error.authentication_failed"},
		{name: "dynamic ticket", cfg: client.Config{AuthID: "joe", AuthMethods: []string{"ticket"}, OnChallenge: ticket("dyn-ticket")},
			wantID: "joe", wantRole: "guest", wantMeth: "ticket", provider: "dynamic"},
		{name: "dynamic ticket, refused", cfg: client.Config{AuthID: "joe", AuthMethods: []string{"ticket"}, OnChallenge: ticket("guess")},
			wantErr: "wamp.error.authentication_failed"},
		{name: "dynamic wampcra", cfg: client.Config{AuthID: "dyncra", AuthMethods: []string{"wampcra"}, OnChallenge: craAnswer("dyn-secret")},
			wantID: "dyncra", wantRole: "user", wantMeth: "wampcra", provider: "dynamic"},
		{name: "dynamic, authenticator slower than the file's timeout", cfg: client.Config{AuthID: "slow", AuthMethods: []string{"ticket"}, OnChallenge: ticket("x")},
			wantErr: "wamp.error.authentication_failed"},
		// cryptosign is not among the authenticator's methods in the file.
		{name: "dynamic, method not handed to the authenticator", cfg: client.Config{AuthID: "dev2", AuthMethods: []string{"cryptosign"},
			AuthExtra: map[string]any{"pubkey": hex.EncodeToString(devPub)}, OnChallenge: sign(devPriv)},
			wantErr: "wamp.error.authentication_failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.URL, cfg.Realm = url, "realm1"
			if cfg.TLSConfig == nil {
				cfg.TLSConfig = ca.ClientConfig()
			}
			s, err := client.Connect(ctx(), cfg)
			if tc.wantErr != "" {
				if err == nil {
					s.Close()
					t.Fatalf("joined as %q/%q (%v), want %s", s.AuthID(), s.AuthRole(), s.WelcomeDetails()["authmethod"], tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			d := s.WelcomeDetails()
			if s.AuthID() != tc.wantID || s.AuthRole() != tc.wantRole || d["authmethod"] != tc.wantMeth || d["authprovider"] != tc.provider {
				t.Fatalf("WELCOME authid %q authrole %q, details %v", s.AuthID(), s.AuthRole(), d)
			}
		})
	}
}
