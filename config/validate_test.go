package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeTLSFiles writes a self-signed certificate, its key and a CA file into dir.
func writeTLSFiles(t *testing.T, dir, cert, key, ca string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, DNSNames: []string{"localhost"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	for name, data := range map[string][]byte{
		cert: certPEM, ca: certPEM,
		key: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// authRealm is a realm with one principal of every method, used by the rule cases.
func authRealm() Realm {
	return Realm{
		Name:  "realm2",
		Roles: []Role{{Name: "user", Permissions: []Permission{{URI: "com.example.", Match: "prefix", Allow: Allow{Call: true}}}}},
		Auth: Auth{
			Ticket:     []TicketPrincipal{{AuthID: "joe", Ticket: "t", Role: "user"}},
			WAMPCRA:    []WAMPCRAPrincipal{{AuthID: "pete", Secret: "s", Iterations: 1000, KeyLen: 32, Role: "user"}},
			Cryptosign: []CryptosignPrincipal{{AuthID: "alice", AuthorizedKeys: []string{strings.Repeat("ab", 32)}, Role: "user"}},
			TLS:        []TLSPrincipal{{AuthID: "dev", Fingerprint: strings.Repeat("AB:", 31) + "AB", Role: "user"}},
			Cookie:     &Cookie{Name: "cbtid", MaxAge: Duration(time.Hour)},
		},
	}
}

func TestValidateRules(t *testing.T) {
	dir := t.TempDir()
	writeTLSFiles(t, dir, "c.pem", "k.pem", "ca.pem")
	writeTLSFiles(t, filepath.Join(dir, "other"), "c.pem", "k.pem", "ca.pem")
	os.WriteFile(filepath.Join(dir, "junk.pem"), []byte("not pem"), 0o600)
	good := func(name string) string { return filepath.Join(dir, name) }
	withTLS := func(c *Config) *TLS {
		c.Listeners[0].TLS = &TLS{CertFile: good("c.pem"), KeyFile: good("k.pem"), MinVersion: "1.2"}
		return c.Listeners[0].TLS
	}
	withAuth := func(c *Config) *Realm {
		for i := range c.Listeners {
			c.Listeners[i].Auth = nil // offer every method a realm configures
		}
		r := authRealm()
		setDefaults(&r.Limits)
		c.Realms = append(c.Realms, r)
		return &c.Realms[1]
	}
	for _, tc := range []ruleCase{
		{"version", func(c *Config) { c.Version = 2 }, func(c *Config) { c.Version = 1 }, "version", "unsupported schema version 2"},
		{"log level", func(c *Config) { c.Node.LogLevel = "loud" }, func(c *Config) { c.Node.LogLevel = "warn" }, "node.log_level", `"loud" is not one of debug, info, warn, error`},
		{"loops", func(c *Config) { c.Node.Loops = -1 }, func(c *Config) { c.Node.Loops = 8 }, "node.loops", "must be 0"},
		{"outbound limit", func(c *Config) { c.Node.OutboundLimit = 0 }, func(c *Config) { c.Node.OutboundLimit = 1 }, "node.outbound_limit", "positive"},
		{"outbound hard limit", func(c *Config) { c.Node.OutboundHardLimit = 1 << 10 }, func(c *Config) { c.Node.OutboundHardLimit = 0 }, "node.outbound_hard_limit", "at least outbound_limit"},
		{"write deadline", func(c *Config) { c.Node.WriteDeadline = 0 }, func(c *Config) { c.Node.WriteDeadline = Duration(time.Second) }, "node.write_deadline", "positive"},
		{"max connections", func(c *Config) { c.Node.MaxConnections = -1 }, func(c *Config) { c.Node.MaxConnections = 0 }, "node.max_connections", "0"},
		{"shutdown grace", func(c *Config) { c.Node.ShutdownGrace = -1 }, func(c *Config) { c.Node.ShutdownGrace = 0 }, "node.shutdown_grace", "negative"},
		{"admin address", func(c *Config) { c.Node.Admin = "localhost" }, func(c *Config) { c.Node.Admin = "localhost:9090" }, "node.admin", "not host:port"},
		{"no listeners", func(c *Config) { c.Listeners = nil }, func(c *Config) { c.Listeners = c.Listeners[:1] }, "listeners", "no listeners"},
		{"address required", func(c *Config) { c.Listeners[0].Address = "" }, func(c *Config) { c.Listeners[0].Address = "0.0.0.0:80" }, "listeners[0].address", "required"},
		{"address parses", func(c *Config) { c.Listeners[0].Address = "8080" }, func(c *Config) { c.Listeners[0].Address = "[::1]:8080" }, "listeners[0].address", "not host:port"},
		{"port range", func(c *Config) { c.Listeners[1].Address = ":70000" }, func(c *Config) { c.Listeners[1].Address = ":0" }, "listeners[1].address", "port \"70000\""},
		{"duplicate address", func(c *Config) { c.Listeners[1].Address = ":8080" }, func(c *Config) { c.Listeners[1].Address = ":8082" }, "listeners[1].address", "also the address of listeners[0]"},
		{"unix address", func(c *Config) { c.Listeners[1].Kind, c.Listeners[1].Address = KindUnix, "" },
			func(c *Config) { c.Listeners[1].Kind, c.Listeners[1].Address = KindUnix, "/tmp/s.sock" }, "listeners[1].address", "required"},
		{"kind", func(c *Config) { c.Listeners[0].Kind = "tcp" }, func(c *Config) { c.Listeners[0].Kind = KindWebSocket }, "listeners[0].kind", `"tcp" is not one of universal, websocket, rawsocket, unix`},
		{"path", func(c *Config) { c.Listeners[0].Path = "ws" }, func(c *Config) { c.Listeners[0].Path = "/" }, "listeners[0].path", "must start with /"},
		{"serializer name", func(c *Config) { c.Listeners[0].Serializers = []string{"json", "xml"} },
			func(c *Config) { c.Listeners[0].Serializers = []string{"cbor"} }, "listeners[0].serializers[1]", `"xml" is not one of json, msgpack, cbor`},
		{"status page", func(c *Config) { c.Listeners[0].StatusPage = "verbose" }, func(c *Config) { c.Listeners[0].StatusPage = "off" }, "listeners[0].status_page", `"verbose" is not one of off, minimal, full`},
		{"allowed origin pattern", func(c *Config) { c.Listeners[0].AllowedOrigins = []string{"*", "example.com"} },
			func(c *Config) { c.Listeners[0].AllowedOrigins = []string{"https://*.example.com"} }, "listeners[0].allowed_origins[1]", "want \"*\", \"null\" or scheme://host[:port]"},
		{"allowed origins on rawsocket", func(c *Config) { c.Listeners[1].AllowedOrigins = []string{"*"} },
			func(c *Config) { c.Listeners[1].AllowedOrigins = nil }, "listeners[1].allowed_origins", "RawSocket has no Origin header"},
		{"compression on rawsocket", func(c *Config) { c.Listeners[1].Compression = &Compression{ClientMaxWindowBits: 15, Level: 1} },
			func(c *Config) { c.Listeners[0].Compression = &Compression{ClientMaxWindowBits: 15, Level: 1} }, "listeners[1].compression", "RawSocket has no compression"},
		{"compression level", func(c *Config) { c.Listeners[0].Compression = &Compression{ClientMaxWindowBits: 15, Level: 10} },
			func(c *Config) { c.Listeners[0].Compression = &Compression{ClientMaxWindowBits: 8, Level: 9} }, "listeners[0].compression.level", "from 1 to 9"},
		{"compression window", func(c *Config) { c.Listeners[0].Compression = &Compression{ClientMaxWindowBits: 7, Level: 1} },
			func(c *Config) {
				c.Listeners[0].Compression = &Compression{ClientMaxWindowBits: 15, Level: 1, MinSize: 0}
			}, "listeners[0].compression.client_max_window_bits", "from 8 to 15"},
		{"serializers empty", func(c *Config) { c.Listeners[0].Serializers = nil }, func(c *Config) { c.Listeners[0].Serializers = []string{"msgpack"} }, "listeners[0].serializers", "at least one"},
		{"max message size", func(c *Config) { c.Listeners[0].MaxMessageSize = -5 }, func(c *Config) { c.Listeners[0].MaxMessageSize = 5 }, "listeners[0].max_message_size", "positive"},
		{"rawsocket size", func(c *Config) { c.Listeners[1].MaxMessageSize = 1<<24 + 1 },
			func(c *Config) { c.Listeners[1].MaxMessageSize = 1 << 24 }, "listeners[1].max_message_size", "16 MiB"},
		{"ping interval", func(c *Config) { c.Listeners[0].PingInterval = 0 }, func(c *Config) { c.Listeners[0].PingInterval = Duration(time.Second) }, "listeners[0].ping_interval", "positive"},
		{"ping timeout", func(c *Config) { c.Listeners[0].PingTimeout = -1 }, func(c *Config) { c.Listeners[0].PingTimeout = 1 }, "listeners[0].ping_timeout", "positive"},
		{"handshake timeout", func(c *Config) { c.Listeners[0].HandshakeTimeout = 0 }, func(c *Config) { c.Listeners[0].HandshakeTimeout = 1 }, "listeners[0].handshake_timeout", "positive"},
		{"tls files required", func(c *Config) { withTLS(c).CertFile = "" }, func(c *Config) { withTLS(c) }, "listeners[0].tls.cert_file", "required"},
		{"tls file readable", func(c *Config) { withTLS(c).KeyFile = good("nope.pem") }, func(c *Config) { withTLS(c) }, "listeners[0].tls.key_file", "cannot read"},
		{"tls file not a directory", func(c *Config) { withTLS(c).KeyFile = dir }, func(c *Config) { withTLS(c) }, "listeners[0].tls.key_file", "not a regular file"},
		{"tls pair", func(c *Config) { withTLS(c).KeyFile = filepath.Join(dir, "other", "k.pem") }, func(c *Config) { withTLS(c) }, "listeners[0].tls.cert_file", "do not load as a pair"},
		{"tls min version", func(c *Config) { withTLS(c).MinVersion = "1.0" }, func(c *Config) { withTLS(c).MinVersion = "1.3" }, "listeners[0].tls.min_version", `"1.0" is not one of 1.2, 1.3`},
		{"tls client ca", func(c *Config) { withTLS(c).ClientCAFile = good("junk.pem") }, func(c *Config) { withTLS(c).ClientCAFile = good("ca.pem") }, "listeners[0].tls.client_ca_file", "no PEM certificate"},
		{"tls on unix", func(c *Config) {
			c.Listeners[1].Kind, c.Listeners[1].Address = KindUnix, "/tmp/s"
			c.Listeners[1].TLS = withTLS(c)
		},
			func(c *Config) { c.Listeners[1].Kind, c.Listeners[1].Address = KindUnix, "/tmp/s" }, "listeners[1].tls", "Unix domain sockets"},
		{"auth method name", func(c *Config) { c.Listeners[0].Auth = []string{"password"} }, func(c *Config) { c.Listeners[0].Auth = nil }, "listeners[0].auth[0]", `"password" is not one of`},
		{"auth method configured", func(c *Config) { c.Listeners[0].Auth = []string{"anonymous", "ticket"} },
			func(c *Config) { c.Listeners[0].Auth = []string{"anonymous", "ticket"}; withAuth(c) }, "listeners[0].auth[1]", `"ticket" is offered but no realm configures it`},
		{"auth method via authenticator", func(c *Config) { c.Listeners[0].Auth = []string{"cryptosign"} },
			func(c *Config) {
				c.Listeners[0].Auth = []string{"cryptosign"}
				c.Realms[0].Auth.Authenticator = &Authenticator{Realm: "realm1", Procedure: "com.example.auth", Methods: []string{"cryptosign"}}
			}, "listeners[0].auth[0]", "no realm configures it"},
		{"tls method needs client ca", func(c *Config) { withAuth(c); withTLS(c); c.Listeners[0].Auth = []string{"tls"} },
			func(c *Config) {
				withAuth(c)
				withTLS(c).ClientCAFile = good("ca.pem")
				c.Listeners[0].Auth = []string{"tls"}
			}, "listeners[0].auth[0]", "needs tls.client_ca_file"},
		{"cookie needs websocket", func(c *Config) { withAuth(c); c.Listeners[1].Auth = []string{"cookie"} },
			func(c *Config) { withAuth(c); c.Listeners[0].Auth = []string{"cookie"} }, "listeners[1].auth[0]", "needs WebSocket"},
		{"no realms", func(c *Config) { c.Realms = nil }, func(c *Config) {}, "realms", "no realms"},
		{"realm name", func(c *Config) { c.Realms[0].Name = "" }, func(c *Config) { c.Realms[0].Name = "com.example" }, "realms[0].name", "required"},
		{"realm name uri", func(c *Config) { c.Realms[0].Name = "my realm" }, func(c *Config) { c.Realms[0].Name = "my_realm" }, "realms[0].name", "not a WAMP URI"},
		{"duplicate realm", func(c *Config) { c.Realms = append(c.Realms, c.Realms[0]) },
			func(c *Config) { c.Realms = append(c.Realms, c.Realms[0]); c.Realms[1].Name = "realm2" }, "realms[1].name", `realm "realm1" is also realms[0]`},
		{"role name", func(c *Config) { c.Realms[0].Roles = append(c.Realms[0].Roles, Role{}) },
			func(c *Config) { c.Realms[0].Roles = append(c.Realms[0].Roles, Role{Name: "x"}) }, "realms[0].roles[1].name", "required"},
		{"duplicate role", func(c *Config) { c.Realms[0].Roles = append(c.Realms[0].Roles, Role{Name: "anonymous"}) },
			func(c *Config) { c.Realms[0].Roles = append(c.Realms[0].Roles, Role{Name: "other"}) }, "realms[0].roles[1].name", "is also roles[0]"},
		{"match", func(c *Config) { c.Realms[0].Roles[0].Permissions[0].Match = "regex" },
			func(c *Config) { c.Realms[0].Roles[0].Permissions[0].Match = "wildcard" }, "realms[0].roles[0].permissions[0].match", `"regex" is not one of exact, prefix, wildcard`},
		{"exact uri", func(c *Config) { p := &c.Realms[0].Roles[0].Permissions[0]; p.Match, p.URI = "exact", "com..x" },
			func(c *Config) { p := &c.Realms[0].Roles[0].Permissions[0]; p.Match, p.URI = "wildcard", "com..x" }, "realms[0].roles[0].permissions[0].uri", "empty component"},
		{"uri characters", func(c *Config) { c.Realms[0].Roles[0].Permissions[0].URI = "com.#" },
			func(c *Config) { c.Realms[0].Roles[0].Permissions[0].URI = "com." }, "realms[0].roles[0].permissions[0].uri", "no whitespace or '#'"},
		{"anonymous role exists", func(c *Config) { c.Realms[0].Auth.Anonymous.Role = "guest" },
			func(c *Config) { c.Realms[0].Auth.Anonymous.Role = "guest"; c.Realms[0].Roles[0].Name = "guest" }, "realms[0].auth.anonymous.role", `role "guest" is not defined in realms[0].roles`},
		{"principal role exists", func(c *Config) { withAuth(c).Auth.Ticket[0].Role = "admin" },
			func(c *Config) {
				r := withAuth(c)
				r.Auth.Ticket[0].Role = "admin"
				r.Authorizer = &Authorizer{Procedure: "com.example.authorize", CacheSize: 10}
			}, "realms[1].auth.ticket[0].role", `role "admin" is not defined`},
		{"principal role required", func(c *Config) { withAuth(c).Auth.Cryptosign[0].Role = "" }, func(c *Config) { withAuth(c) }, "realms[1].auth.cryptosign[0].role", "required"},
		{"authid required", func(c *Config) { withAuth(c).Auth.TLS[0].AuthID = "" }, func(c *Config) { withAuth(c) }, "realms[1].auth.tls[0].authid", "required"},
		{"duplicate authid", func(c *Config) { r := withAuth(c); r.Auth.Ticket = append(r.Auth.Ticket, r.Auth.Ticket[0]) },
			func(c *Config) {
				r := withAuth(c)
				r.Auth.Ticket = append(r.Auth.Ticket, r.Auth.Ticket[0])
				r.Auth.Ticket[1].AuthID = "ann"
			},
			"realms[1].auth.ticket[1].authid", `authid "joe" is listed twice for ticket`},
		{"ticket required", func(c *Config) { withAuth(c).Auth.Ticket[0].Ticket = "" }, func(c *Config) { withAuth(c) }, "realms[1].auth.ticket[0].ticket", "required"},
		{"wampcra secret", func(c *Config) { withAuth(c).Auth.WAMPCRA[0].Secret = "" }, func(c *Config) { withAuth(c) }, "realms[1].auth.wampcra[0].secret", "required"},
		{"wampcra iterations", func(c *Config) { withAuth(c).Auth.WAMPCRA[0].Iterations = 0 }, func(c *Config) { withAuth(c).Auth.WAMPCRA[0].Iterations = 1 }, "realms[1].auth.wampcra[0].iterations", "positive"},
		{"wampcra keylen", func(c *Config) { withAuth(c).Auth.WAMPCRA[0].KeyLen = -1 }, func(c *Config) { withAuth(c).Auth.WAMPCRA[0].KeyLen = 64 }, "realms[1].auth.wampcra[0].keylen", "positive"},
		{"cryptosign key hex", func(c *Config) { withAuth(c).Auth.Cryptosign[0].AuthorizedKeys[0] = "zz" }, func(c *Config) { withAuth(c) }, "realms[1].auth.cryptosign[0].authorized_keys[0]", "not hex"},
		{"cryptosign key length", func(c *Config) { withAuth(c).Auth.Cryptosign[0].AuthorizedKeys[0] = "abcd" }, func(c *Config) { withAuth(c) }, "realms[1].auth.cryptosign[0].authorized_keys[0]", "2 bytes, want 32"},
		{"cryptosign keys required", func(c *Config) { withAuth(c).Auth.Cryptosign[0].AuthorizedKeys = nil }, func(c *Config) { withAuth(c) }, "realms[1].auth.cryptosign[0].authorized_keys", "at least one"},
		{"tls fingerprint", func(c *Config) { withAuth(c).Auth.TLS[0].Fingerprint = "AB:CD" },
			func(c *Config) { withAuth(c).Auth.TLS[0].Fingerprint = strings.Repeat("0f", 32) }, "realms[1].auth.tls[0].fingerprint", "want 32"},
		{"cookie name", func(c *Config) { withAuth(c).Auth.Cookie.Name = "a b" }, func(c *Config) { withAuth(c).Auth.Cookie.Name = "sid" }, "realms[1].auth.cookie.name", "not a valid cookie name"},
		{"cookie max age", func(c *Config) { withAuth(c).Auth.Cookie.MaxAge = 0 }, func(c *Config) { withAuth(c) }, "realms[1].auth.cookie.max_age", "positive"},
		{"authenticator realm", func(c *Config) {
			withAuth(c).Auth.Authenticator = &Authenticator{Realm: "nowhere", Procedure: "a.b", Methods: []string{"ticket"}}
		},
			func(c *Config) {
				withAuth(c).Auth.Authenticator = &Authenticator{Realm: "realm1", Procedure: "a.b", Methods: []string{"ticket"}}
			},
			"realms[1].auth.authenticator.realm", `realm "nowhere" is not configured`},
		{"authenticator procedure", func(c *Config) {
			withAuth(c).Auth.Authenticator = &Authenticator{Realm: "realm2", Procedure: "a..b", Methods: []string{"ticket"}}
		},
			func(c *Config) {
				withAuth(c).Auth.Authenticator = &Authenticator{Realm: "realm2", Procedure: "a.b", Methods: []string{"ticket"}}
			},
			"realms[1].auth.authenticator.procedure", "empty component"},
		{"one cookie for all realms", func(c *Config) {
			withAuth(c)
			c.Realms[0].Auth.Cookie = &Cookie{Name: "other", MaxAge: Duration(time.Hour)}
		},
			func(c *Config) {
				withAuth(c)
				c.Realms[0].Auth.Cookie = &Cookie{Name: "cbtid", MaxAge: Duration(time.Hour)}
			},
			"realms[1].auth.cookie", "must equal realms[0]'s"},
		{"cookie file directory", func(c *Config) {
			withAuth(c).Auth.Cookie.File = filepath.Join(os.TempDir(), "no-such-dir-for-switchyard", "cookies")
		},
			func(c *Config) { withAuth(c).Auth.Cookie.File = filepath.Join(os.TempDir(), "switchyard-cookies") },
			"realms[1].auth.cookie.file", "does not exist"},
		{"authenticator methods", func(c *Config) {
			withAuth(c).Auth.Authenticator = &Authenticator{Realm: "realm2", Procedure: "a.b", Methods: []string{"cookie"}}
		},
			func(c *Config) {
				withAuth(c).Auth.Authenticator = &Authenticator{Realm: "realm2", Procedure: "a.b", Methods: []string{"tls"}}
			},
			"realms[1].auth.authenticator.methods[0]", `"cookie" is not one of ticket, wampcra, cryptosign, tls`},
		{"authorizer procedure", func(c *Config) { c.Realms[0].Authorizer = &Authorizer{} },
			func(c *Config) { c.Realms[0].Authorizer = &Authorizer{Procedure: "com.example.authorize"} }, "realms[0].authorizer.procedure", "required"},
		{"authorizer cache", func(c *Config) { c.Realms[0].Authorizer = &Authorizer{Procedure: "a.b", CacheSize: -1} },
			func(c *Config) { c.Realms[0].Authorizer = &Authorizer{Procedure: "a.b", CacheSize: 0} }, "realms[0].authorizer.cache_size", "must be 0"},
	} {
		checkRule(t, Default, tc)
	}
}

// ruleCase is one validation rule: a change that breaks it (bad), one that keeps the
// same field valid (fix), and the problem bad must produce.
type ruleCase struct {
	rule      string
	bad, fix  func(c *Config)
	path, msg string
}

// checkRule runs tc against a fresh base(): bad must report tc.path with tc.msg among
// its problems, fix must report none.
func checkRule(t *testing.T, base func() *Config, tc ruleCase) {
	t.Run(tc.rule, func(t *testing.T) {
		c := base()
		tc.bad(c)
		var got []string
		found := false
		for _, p := range c.Validate() {
			got = append(got, p.String())
			found = found || p.Path == tc.path && strings.Contains(p.Message, tc.msg)
		}
		if !found {
			t.Errorf("failing case: want %s: ...%s...; got %q", tc.path, tc.msg, got)
		}
		c = base()
		tc.fix(c)
		if p := c.Validate(); len(p) != 0 {
			t.Errorf("passing case: %v", p)
		}
	})
}

// Durations that do not parse are load problems (Validate sees only parsed values).
func TestDurationsParse(t *testing.T) {
	for _, key := range []string{"node: {shutdown_grace: %s}", "listeners: [{address: ':1', ping_interval: %s}]",
		"realms: [{name: r, auth: {cookie: {max_age: %s}}}]"} {
		if _, err := Parse([]byte(strings.Replace(key, "%s", "2 days", 1)), ParseOptions{}); err == nil || !strings.Contains(err.Error(), `invalid duration "2 days"`) {
			t.Errorf("%s: %v", key, err)
		}
		if _, err := Parse([]byte(strings.Replace(key, "%s", "48h", 1)), ParseOptions{}); err != nil {
			t.Errorf("%s: %v", key, err)
		}
	}
}

func TestValidateHistoryAndLimits(t *testing.T) {
	for _, tc := range []struct {
		name      string
		mut       func(r *Realm)
		path, msg string
	}{
		{"history uri", func(r *Realm) { r.History = []History{{URI: "a..b", Match: "exact", Limit: 1}} }, "realms[0].history[0].uri", "empty component"},
		{"history limit", func(r *Realm) { r.History = []History{{URI: "a.", Match: "prefix", Limit: 0}} }, "realms[0].history[0].limit", "at least 1"},
		{"retained topics", func(r *Realm) { r.Limits.RetainedTopics = 0 }, "realms[0].limits.retained_topics", "at least 1"},
		{"history topics", func(r *Realm) { r.Limits.HistoryTopics = -1 }, "realms[0].limits.history_topics", "at least 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.mut(&c.Realms[0])
			found := false
			for _, p := range c.Validate() {
				found = found || p.Path == tc.path && strings.Contains(p.Message, tc.msg)
			}
			if !found {
				t.Errorf("want %s: ...%s...; got %v", tc.path, tc.msg, c.Validate())
			}
		})
	}
	c := parse(t, "realms:\n  - name: r\n    history:\n      - uri: com.log.\n        match: prefix\n", FormatYAML)
	if h := c.Realms[0].History; len(h) != 1 || h[0].Limit != 100 || c.Realms[0].Limits.RetainedTopics != 10000 {
		t.Fatalf("defaults: %+v %+v", h, c.Realms[0].Limits)
	}
}
