// Package config is the node configuration file of switchyard: one schema, read from YAML
// or JSON, loaded into one Go struct (Config).
//
// The struct tags of Config drive everything else:
//
//	json:"key"           the key in YAML and JSON (the same schema for both)
//	default:"value"      the value of a key the file leaves out (lists: comma separated)
//	env:"SWITCHYARD_X"   ApplyEnv overrides the field from this environment variable;
//	                     "{i}" stands for the index of the enclosing list element
//	enum:"a,b,c"         the allowed values (checked by Validate, listed in the docs)
//	secret:"true"        the value may be an environment reference "${env:NAME}",
//	                     resolved at load time
//	file:"true"          a file path; a relative path is relative to the config file
//	doc:"..."            the description in the generated reference docs/config.md
//
// A key that is absent from the file takes its default; an explicit value, even a zero
// one, is kept (and then checked by Validate). An unknown key is an error that names
// its path. With no file at all, a node runs Default(), the embedded default of
// `switchyard start`; `switchyard init` writes the same configuration as a commented
// YAML file (InitFile).
//
// Concurrency: a *Config is plain data. Load, Parse and Default return a fresh value
// owned by the caller; ApplyEnv mutates it and must not run concurrently with any other
// use of the same value. Validate, Equal-style comparisons and reads are safe from many
// goroutines at once as long as nobody mutates the value.
package config

import (
	"fmt"
	"time"
)

//go:generate go run ./internal/gendoc -o ../docs/config.md

// Config is the whole node configuration file. The zero value is not useful: use
// Default, Load or Parse. See the package comment for the tags and concurrency.
type Config struct {
	Version   int        `json:"version" default:"1" doc:"Schema version of this file. Only 1 exists."`
	Node      Node       `json:"node" doc:"Process-wide settings of the node."`
	Listeners []Listener `json:"listeners" doc:"Where the node accepts client connections. Left out: the embedded default (universal on :8080 with WebSocket at /ws, RawSocket on :8081), both offering anonymous."`
	Realms    []Realm    `json:"realms" doc:"The realms the node routes. Left out: the embedded default (realm1, anonymous with authrole anonymous allowed everything)."`
	Cluster   *Cluster   `json:"cluster" doc:"Membership of a cluster of proxy and router nodes (switchyard proxy, switchyard router); left out: a standalone node (switchyard start)."`
	Master    *Master    `json:"master" doc:"This process is a master replica (switchyard master): the cluster's control plane. Left out: not a master."`
}

// Node holds the process-wide settings. Plain data; see Config for concurrency.
type Node struct {
	LogLevel          string   `json:"log_level" default:"info" env:"SWITCHYARD_LOG_LEVEL" enum:"debug,info,warn,error" doc:"Log level."`
	LogFormat         string   `json:"log_format" default:"auto" env:"SWITCHYARD_LOG_FORMAT" enum:"auto,json,text" doc:"Log line format on stderr: json (one JSON object per line, for log collectors), text (key=value) or auto (JSON when stderr is not a terminal, text otherwise)."`
	Loops             int      `json:"loops" default:"0" env:"SWITCHYARD_LOOPS" doc:"Event loops; 0 = one per CPU."`
	IOUring           bool     `json:"io_uring" default:"false" env:"SWITCHYARD_IO_URING" doc:"Linux: the writes an event loop or link reader makes to many client sockets at the end of a read go to the kernel in one io_uring submission (up to 64) instead of one write(2) each. Off by default (the measurements in bench/RESULTS.md say where it helps); where the kernel has no io_uring the node logs it and uses write(2)."`
	OutboundLimit     int      `json:"outbound_limit" default:"4194304" env:"SWITCHYARD_OUTBOUND_LIMIT" doc:"Soft limit of the slow-consumer policy: a connection whose backlog (bytes queued, buffered for the socket, and not yet sent by the kernel) stays over this for write_deadline is disconnected (a log line and a counter). A burst may go over it."`
	OutboundHardLimit int      `json:"outbound_hard_limit" default:"0" env:"SWITCHYARD_OUTBOUND_HARD_LIMIT" doc:"A connection whose backlog goes over this many bytes is disconnected at once as a slow consumer; bounds the memory one connection can pin. 0 = the larger of 32 MiB and twice outbound_limit."`
	WriteDeadline     Duration `json:"write_deadline" default:"5s" env:"SWITCHYARD_WRITE_DEADLINE" doc:"How long a connection's backlog may stay over outbound_limit before it is disconnected as a slow consumer."`
	MaxConnections    int      `json:"max_connections" default:"0" env:"SWITCHYARD_MAX_CONNECTIONS" doc:"Client connections held at once, all listeners together (TLS handshakes included). At the cap a new connection is closed at once, before any handshake, and counted (netpoll.refused_at_cap in /debug/stats, a log line at most every 5 s); existing sessions keep working and new connections are served again as others close. 0 = the process's file descriptor limit (soft RLIMIT_NOFILE, which Go raises to the hard limit) minus max(64, limit/16) kept for listeners, files, TLS and links: 960 under ulimit -n 1024."`
	ShutdownGrace     Duration `json:"shutdown_grace" default:"2s" env:"SWITCHYARD_SHUTDOWN_GRACE" doc:"On SIGINT/SIGTERM, time to flush GOODBYE to every session before closing."`
	DrainPeriod       Duration `json:"drain_period" default:"30s" env:"SWITCHYARD_DRAIN_PERIOD" doc:"Lame-duck drain on SIGUSR2: the node stops accepting connections, /readyz fails, and every session gets GOODBYE wamp.close.system_shutdown spread evenly over this period; then the process exits 0."`
	Admin             string   `json:"admin" default:"" env:"SWITCHYARD_ADMIN" doc:"Internal admin listener: the live status page at /, /status.json, /metrics (Prometheus), /healthz, /readyz, /debug/pprof and /debug/stats, e.g. 127.0.0.1:9090; empty disables. Never the public port."`
}

// Listener kinds (Listener.Kind).
const (
	KindUniversal = "universal" // WebSocket at Path, RawSocket and the status page on one TCP port
	KindWebSocket = "websocket" // WebSocket only, at Path
	KindRawSocket = "rawsocket" // RawSocket only
	KindUnix      = "unix"      // universal on a Unix domain socket; Address is its path
)

// Auth method names, as WAMP spells them in HELLO.Details.authmethods.
const (
	MethodAnonymous  = "anonymous"
	MethodTicket     = "ticket"
	MethodWAMPCRA    = "wampcra"
	MethodCryptosign = "cryptosign"
	MethodTLS        = "tls"
	MethodCookie     = "cookie"
)

// AuthMethods lists every auth method name in the order the docs present them.
// Read-only; do not modify.
var AuthMethods = []string{MethodAnonymous, MethodTicket, MethodWAMPCRA, MethodCryptosign, MethodTLS, MethodCookie}

// Listener is one listening socket. Plain data; see Config for concurrency.
type Listener struct {
	Address          string       `json:"address" env:"SWITCHYARD_LISTENERS_{i}_ADDRESS" doc:"host:port to listen on (\":8080\" = every interface); for kind unix, the socket's file path. Required."`
	Kind             string       `json:"kind" default:"universal" enum:"universal,websocket,rawsocket,unix" doc:"universal: WebSocket at path, RawSocket (first byte 0x7F) and the status page on one port; websocket: WebSocket only; rawsocket: RawSocket only; unix: universal on a Unix domain socket."`
	Path             string       `json:"path" default:"/ws" doc:"WebSocket path (kinds universal, websocket and unix)."`
	TLS              *TLS         `json:"tls" doc:"Serve TLS on this listener; left out: plain TCP."`
	Serializers      []string     `json:"serializers" default:"json,msgpack,cbor,ubjson,flatbuffers" enum:"json,msgpack,cbor,ubjson,flatbuffers" doc:"Serializers a client may pick (WebSocket subprotocols wamp.2.NAME and wamp.2.NAME.batched, flatbuffers without .batched; RawSocket serializer ids json 1, msgpack 2, cbor 3, ubjson 4, flatbuffers 5)."`
	MaxMessageSize   int          `json:"max_message_size" default:"1048576" env:"SWITCHYARD_LISTENERS_{i}_MAX_MESSAGE_SIZE" doc:"Largest inbound message in bytes."`
	PingInterval     Duration     `json:"ping_interval" default:"10s" env:"SWITCHYARD_LISTENERS_{i}_PING_INTERVAL" doc:"Send a ping after a connection has been idle this long."`
	PingTimeout      Duration     `json:"ping_timeout" default:"5s" env:"SWITCHYARD_LISTENERS_{i}_PING_TIMEOUT" doc:"Close a connection whose ping is not answered within this."`
	HandshakeTimeout Duration     `json:"handshake_timeout" default:"10s" env:"SWITCHYARD_LISTENERS_{i}_HANDSHAKE_TIMEOUT" doc:"Close a connection that has not finished its handshakes this long after it was accepted: TLS, the HTTP upgrade or RawSocket handshake, HELLO and authentication up to WELCOME. Bounds what half-open connections, upgrades that never finish, a HELLO never sent or a challenge never answered can hold."`
	StatusPage       string       `json:"status_page" default:"minimal" enum:"off,minimal,full" doc:"What the universal (and unix) listener answers at /, to anyone who asks: minimal says a WAMP router runs here and gives the WebSocket path; full also lists every realm name and the session count; off answers 404. Ignored by websocket and rawsocket listeners, which serve no page. With web set, / is what the tree says, and this only selects what a nodeinfo entry shows (off: the minimal page)."`
	AllowedOrigins   []string     `json:"allowed_origins" doc:"Origin header values a WebSocket upgrade may carry: \"*\" (any), \"null\", or scheme://host[:port] patterns in which * stands for any run of characters other than / and : (https://*.example.com matches https://app.example.com, not https://example.com). A browser sends its page's origin with every WebSocket upgrade, and its cookies too: without this list, any web site its user visits can open a WAMP session here in that user's name (cross-site WebSocket hijacking), which matters with cookie or tls auth and on addresses only the user's network reaches. A mismatch gets HTTP 403 and a log line. An upgrade without an Origin header (non-browser clients) is always accepted. Left out or empty: any origin (the default, for compatibility)."`
	Compression      *Compression `json:"compression" doc:"WebSocket compression (permessage-deflate, RFC 7692) for clients that offer it. Left out: off. The router never keeps a compression context (server_no_context_takeover), so one event fanned out to many sessions is compressed once per serializer and an idle session holds no compressor; see docs/compression.md for the memory and CPU figures."`
	Auth             []string     `json:"auth" enum:"anonymous,ticket,wampcra,cryptosign,tls,cookie" doc:"Auth methods this listener offers. Left out: every method some realm configures. Each listed method must be configured in at least one realm, and each method a realm configures must be offered by at least one listener (else no client could use it)."`
	Web              []WebPath    `json:"web" doc:"The web services of this listener (kinds universal, websocket and unix): a path tree of static files, redirects, JSON values, reverse proxies, the node info page and the HTTP bridge, served by Go's net/http next to WAMP (see docs/web.md). The WebSocket endpoint stays at path. Set: every other HTTP request is served by this tree (404 where no entry matches) and status_page is not used: add a nodeinfo entry at / to keep the page. Left out: the built-in status page at / and 404 elsewhere, as without it."`
}

// Web path kinds (WebPath.Kind).
const (
	WebStatic       = "static"
	WebRedirect     = "redirect"
	WebJSON         = "json"
	WebReverseProxy = "reverseproxy"
	WebNodeInfo     = "nodeinfo"
	WebPublisher    = "publisher"
	WebCaller       = "caller"
	WebWebhook      = "webhook"
)

// WebPath is one entry of a listener's web path tree. Plain data; see Config for
// concurrency.
type WebPath struct {
	Path      string   `json:"path" doc:"Where the entry lives: / or /a/b (no trailing slash). static and reverseproxy entries also serve every path below it; the others serve exactly this path. The longest matching path wins. Required, unique in the listener, and not the listener's WebSocket path."`
	Kind      string   `json:"kind" enum:"static,redirect,json,reverseproxy,nodeinfo,publisher,caller,webhook" doc:"static: files below directory; redirect: to url; json: the fixed value; reverseproxy: forward to url (WebSocket upgrades too); nodeinfo: the node info page (what status_page would serve: minimal or full); publisher, caller, webhook: the HTTP bridge to WAMP in realm with role (see docs/web.md). Required."`
	Directory string   `json:"directory" file:"true" doc:"static: the directory served. Required for static."`
	Index     string   `json:"index" default:"index.html" doc:"static: the file served for a directory."`
	MaxAge    Duration `json:"max_age" default:"0s" doc:"static: Cache-Control max-age; 0 sends no-cache (browsers revalidate with the ETag each time)."`
	URL       string   `json:"url" doc:"redirect: the target (absolute URL or path); reverseproxy: the upstream, http://host:port[/path] or https://... Required for both."`
	Code      int      `json:"code" default:"302" doc:"redirect: the status code, 301, 302, 303, 307 or 308."`
	Value     string   `json:"value" doc:"json: the value, as JSON text (e.g. '{\"version\": 3}'). Required for json."`
	Realm     string   `json:"realm" doc:"publisher, caller, webhook: the realm the bridge acts in (one of realms). Required for them."`
	Role      string   `json:"role" doc:"publisher, caller, webhook: the authrole of the bridge's session; its permissions apply (publish, call). Required for them."`
	AuthID    string   `json:"authid" default:"http-bridge" doc:"publisher, caller, webhook: the authid of the bridge's session (seen by callees and subscribers when the role discloses it)."`
	Topic     string   `json:"topic" doc:"webhook: the topic every request is published to. Required for webhook."`
	Timeout   Duration `json:"timeout" default:"30s" doc:"caller: a call without an answer within this is canceled and answered 504."`
	MaxBody   int      `json:"max_body" default:"65536" doc:"publisher, caller, webhook: largest request body in bytes; over it: 413."`
	Rate      int      `json:"rate" default:"0" doc:"publisher, caller, webhook: requests per second taken from all clients together; past it: 429 with Retry-After. 0: no bound."`
	Burst     int      `json:"burst" default:"0" doc:"publisher, caller, webhook: requests that may come at once within rate; 0: rate."`
	HMAC      *WebHMAC `json:"hmac" doc:"publisher, caller, webhook: require requests signed with HMAC-SHA256 (see docs/web.md); left out: unsigned. Not with ticket."`
	Ticket    string   `json:"ticket" secret:"true" doc:"publisher, caller, webhook: require the header Authorization: Bearer <ticket>; empty: no ticket. Not with hmac."`
}

// WebHMAC is the request signature a bridge entry requires. Plain data.
type WebHMAC struct {
	Key    string   `json:"key" doc:"Key name the client sends in X-Switchyard-Key. Required."`
	Secret string   `json:"secret" secret:"true" doc:"The shared secret. Required."`
	Window Duration `json:"window" default:"5m" doc:"A timestamp further than this from the node's clock is refused, and a nonce is remembered this long (a replay within it is refused)."`
}

// Compression is a listener's permessage-deflate setup. Plain data; see Config for
// concurrency.
type Compression struct {
	ClientContextTakeover bool `json:"client_context_takeover" default:"false" doc:"Let clients compress each message with the context of the previous ones (better ratios for similar messages). It costs the session a 32 KiB window while it lives; false answers client_no_context_takeover, so a compressed session costs no memory between messages."`
	ClientMaxWindowBits   int  `json:"client_max_window_bits" default:"15" doc:"Largest LZ77 window (8 to 15 bits) a client may compress with, sent when its offer has client_max_window_bits."`
	Level                 int  `json:"level" default:"1" doc:"Deflate level of outbound messages: 1 (fastest) to 9 (smallest)."`
	MinSize               int  `json:"min_size" default:"128" doc:"Outbound messages shorter than this many bytes go uncompressed (each message may choose); small WAMP messages gain nothing from deflate."`
}

// TLS is the TLS setup of a listener. Plain data; see Config for concurrency.
type TLS struct {
	CertFile     string `json:"cert_file" file:"true" env:"SWITCHYARD_LISTENERS_{i}_TLS_CERT_FILE" doc:"PEM certificate chain. Required."`
	KeyFile      string `json:"key_file" file:"true" env:"SWITCHYARD_LISTENERS_{i}_TLS_KEY_FILE" doc:"PEM private key of the certificate. Required."`
	MinVersion   string `json:"min_version" default:"1.2" enum:"1.2,1.3" doc:"Lowest TLS version accepted."`
	ClientCAFile string `json:"client_ca_file" file:"true" doc:"PEM CA certificates that sign client certificates. Set: clients are asked for a certificate (needed by the tls auth method); empty: no client certificates."`
}

// Realm is one routing realm with its roles and authentication. Plain data; see Config
// for concurrency.
type Realm struct {
	Name       string      `json:"name" doc:"Realm URI, e.g. realm1. Required and unique."`
	Roles      []Role      `json:"roles" doc:"The roles (authroles) of this realm and what each may do."`
	Auth       Auth        `json:"auth" doc:"Who may join this realm and with which role."`
	Authorizer *Authorizer `json:"authorizer" doc:"Dynamic authorizer: a WAMP procedure that decides each action of the roles not listed in roles; left out: the static role permissions decide."`
	History    []History   `json:"history" doc:"Topics whose events the router keeps for wamp.subscription.get_events (Event History), and how many per topic. Left out: no history."`
	Limits     RealmLimits `json:"limits" doc:"Bounds on what clients can make the router store in this realm."`
	Spread     int         `json:"spread" default:"1" doc:"In a cluster: the number of hash slots (so up to that many routers) the sessions of one authrole of this realm are spread over; the session id picks the slot. 1 (or 0): every session of a (realm, authrole) lands on one router. A role's own spread wins. At most 1024 and at most cluster.slots; ignored by a standalone node."`
}

// History is one event history rule: topics matching URI keep their last Limit events.
// When several rules match a topic, the most specific wins (exact, then the longest
// prefix, then wildcard). Plain data; see Config for concurrency.
type History struct {
	URI   string `json:"uri" doc:"Topic URI, prefix or wildcard pattern (as in permissions). Required."`
	Match string `json:"match" default:"exact" enum:"exact,prefix,wildcard" doc:"How uri matches topics."`
	Limit int    `json:"limit" default:"100" doc:"Events kept per topic (the oldest is dropped when a new one comes). At least 1."`
}

// RealmLimits bounds the router state that clients create in a realm. Plain data; see
// Config for concurrency.
type RealmLimits struct {
	RetainedTopics int `json:"retained_topics" default:"10000" doc:"Topics with a retained event (publish with retain=true). When full, the oldest-stored retained event is dropped to make room. At least 1."`
	HistoryTopics  int `json:"history_topics" default:"10000" doc:"Topics with an event history (see history). When full, the history of the topic whose history was created first is dropped to make room. At least 1."`
}

// Role is an authrole and its permissions. Plain data; see Config for concurrency.
type Role struct {
	Name        string       `json:"name" doc:"authrole name. Required and unique in the realm."`
	Permissions []Permission `json:"permissions" doc:"What a session with this role may do. The most specific match wins: exact, then the longest prefix, then wildcard. Nothing matches: denied."`
	Spread      int          `json:"spread" default:"0" doc:"In a cluster: the number of hash slots the sessions of this authrole are spread over (see the realm's spread); 0: the realm's spread."`
}

// Permission grants actions on the URIs that match. Plain data; see Config for
// concurrency.
type Permission struct {
	URI      string   `json:"uri" doc:"URI, prefix or wildcard pattern (empty components match any, e.g. com..update). The prefix \"\" matches every URI."`
	Match    string   `json:"match" default:"exact" enum:"exact,prefix,wildcard" doc:"How uri matches."`
	Allow    Allow    `json:"allow" doc:"Allowed actions; left out: none."`
	Disclose Disclose `json:"disclose" doc:"Identity disclosed to the other side."`
}

// Allow lists the actions a permission allows. Plain data.
type Allow struct {
	Call      bool `json:"call" default:"false" doc:"CALL matching procedures."`
	Register  bool `json:"register" default:"false" doc:"REGISTER matching procedures."`
	Publish   bool `json:"publish" default:"false" doc:"PUBLISH to matching topics."`
	Subscribe bool `json:"subscribe" default:"false" doc:"SUBSCRIBE to matching topics."`
}

// Disclose says whose identity a permission discloses. Plain data.
type Disclose struct {
	Caller    bool `json:"caller" default:"false" doc:"Disclose the caller's session id, authid and authrole to the callee."`
	Publisher bool `json:"publisher" default:"false" doc:"Disclose the publisher's session id, authid and authrole to subscribers."`
}

// Auth configures the authentication methods of a realm: static principals per method
// and an optional dynamic authenticator. Plain data; see Config for concurrency.
type Auth struct {
	Anonymous     *Anonymous            `json:"anonymous" doc:"Allow anonymous sessions; left out: no anonymous access."`
	Ticket        []TicketPrincipal     `json:"ticket" doc:"Principals that log in with a ticket (a shared secret, sent in the clear: use TLS)."`
	WAMPCRA       []WAMPCRAPrincipal    `json:"wampcra" doc:"Principals that log in with WAMP-CRA (challenge-response on a shared secret)."`
	Cryptosign    []CryptosignPrincipal `json:"cryptosign" doc:"Principals that log in with WAMP-Cryptosign (Ed25519 keys)."`
	TLS           []TLSPrincipal        `json:"tls" doc:"Principals identified by their TLS client certificate (listener needs tls.client_ca_file)."`
	Cookie        *Cookie               `json:"cookie" doc:"WAMP-Cookie: a WebSocket client that authenticated once gets a cookie and rejoins with it; left out: off."`
	Authenticator *Authenticator        `json:"authenticator" doc:"Dynamic authenticator: a WAMP procedure that authenticates principals not listed here."`
}

// Anonymous enables anonymous access to a realm. Plain data.
type Anonymous struct {
	Role string `json:"role" default:"anonymous" doc:"authrole of anonymous sessions."`
}

// TicketPrincipal is a principal of the ticket method. Plain data.
type TicketPrincipal struct {
	AuthID string `json:"authid" doc:"authid the client sends. Required."`
	Ticket string `json:"ticket" secret:"true" doc:"The ticket (password). Required."`
	Role   string `json:"role" doc:"authrole given on success. Required."`
}

// WAMPCRAPrincipal is a principal of the wampcra method. Plain data.
type WAMPCRAPrincipal struct {
	AuthID     string `json:"authid" doc:"authid the client sends. Required."`
	Secret     string `json:"secret" secret:"true" doc:"Shared secret. With salt: the secret the client derives with PBKDF2. Required."`
	Salt       string `json:"salt" doc:"PBKDF2 salt; empty: the secret is used as is."`
	Iterations int    `json:"iterations" default:"1000" doc:"PBKDF2 iterations (used with salt)."`
	KeyLen     int    `json:"keylen" default:"32" doc:"PBKDF2 derived key length in bytes (used with salt)."`
	Role       string `json:"role" doc:"authrole given on success. Required."`
}

// CryptosignPrincipal is a principal of the cryptosign method. Plain data.
type CryptosignPrincipal struct {
	AuthID         string   `json:"authid" doc:"authid the client sends. Required."`
	AuthorizedKeys []string `json:"authorized_keys" doc:"Ed25519 public keys (64 hex digits each) this principal may sign with. At least one."`
	Role           string   `json:"role" doc:"authrole given on success. Required."`
}

// TLSPrincipal is a principal of the tls (client certificate) method. Plain data.
type TLSPrincipal struct {
	AuthID      string `json:"authid" doc:"authid given to the session. Required."`
	Fingerprint string `json:"fingerprint" doc:"SHA-256 fingerprint of the client certificate: 64 hex digits, colons allowed. Required."`
	Role        string `json:"role" doc:"authrole given on success. Required."`
}

// Cookie configures WAMP-Cookie authentication. Plain data.
type Cookie struct {
	Name   string   `json:"name" default:"cbtid" doc:"Cookie name. Every realm with cookies must use the same name and max_age: a listener hands out one cookie before the realm is known."`
	MaxAge Duration `json:"max_age" default:"168h" doc:"Cookie lifetime."`
	File   string   `json:"file" file:"true" doc:"File that keeps cookies across restarts; empty: in memory only."`
}

// Authenticator is a dynamic authenticator: a WAMP procedure called with (realm, authid,
// details) that returns the authrole. Plain data.
type Authenticator struct {
	Realm     string   `json:"realm" doc:"Realm where the procedure is registered. Required."`
	Procedure string   `json:"procedure" doc:"URI of the procedure. Required."`
	Methods   []string `json:"methods" default:"ticket,wampcra,cryptosign" enum:"ticket,wampcra,cryptosign,tls" doc:"Auth methods handed to the authenticator when no static principal matches."`
	Timeout   Duration `json:"timeout" default:"10s" doc:"A handshake whose authenticator has not answered within this fails with wamp.error.authentication_failed."`
}

// Authorizer is a dynamic authorizer: a WAMP procedure called with (session details,
// uri, action, options) that answers true/false or {"allow", "disclose", "cache"}.
// Plain data.
type Authorizer struct {
	Procedure string   `json:"procedure" doc:"URI of the procedure (registered in this realm by a session whose role is listed in roles). It decides every action of sessions whose authrole is not listed in roles. Required."`
	CacheSize int      `json:"cache_size" default:"1000" doc:"Decisions cached per session and action (by uri); 0 disables the cache. An answer with \"cache\": false is never cached."`
	Timeout   Duration `json:"timeout" default:"5s" doc:"An authorizer that has not answered within this denies the action."`
}

// Duration is a time.Duration written as a Go duration string ("10s", "1m30s") in YAML,
// JSON and environment variables. Convert with time.Duration(d).
type Duration time.Duration

// String returns the Go duration string, e.g. "10s".
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText encodes d as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("invalid duration %q (use e.g. \"10s\", \"500ms\", \"1m30s\")", b)
	}
	*d = Duration(v)
	return nil
}

// Default returns the embedded default configuration of `switchyard start`: realm1 with
// anonymous access (authrole anonymous, allowed everything), a universal listener on
// :8080 (WebSocket at /ws, RawSocket, status page) and a RawSocket listener on :8081.
// Every other field takes its default tag. Each call returns a new value.
func Default() *Config {
	c := &Config{}
	setDefaults(c)
	c.Listeners = DefaultListeners()
	c.Realms = DefaultRealms()
	return c
}

// DefaultListeners returns the default listener list (see Default). Each call returns a
// new slice.
func DefaultListeners() []Listener {
	u := Listener{Address: ":8080", Kind: KindUniversal}
	r := Listener{Address: ":8081", Kind: KindRawSocket}
	setDefaults(&u)
	setDefaults(&r)
	u.Auth = []string{MethodAnonymous}
	r.Auth = []string{MethodAnonymous}
	return []Listener{u, r}
}

// DefaultRealms returns the default realm list (see Default). Each call returns a new
// slice.
func DefaultRealms() []Realm {
	p := Permission{URI: "", Match: "prefix",
		Allow: Allow{Call: true, Register: true, Publish: true, Subscribe: true}}
	r := Realm{
		Name:  "realm1",
		Roles: []Role{{Name: "anonymous", Permissions: []Permission{p}}},
		Auth:  Auth{Anonymous: &Anonymous{Role: "anonymous"}},
	}
	setDefaults(&r) // limits, spread
	return []Realm{r}
}
