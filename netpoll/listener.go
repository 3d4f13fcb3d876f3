package netpoll

import (
	"compress/flate"
	"crypto/tls"
	"errors"
	"fmt"
	"html"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/switchyard-wamp/switchyard/codec"
)

// Kind says which protocols a listener speaks. A plain value: safe for concurrent use.
type Kind uint8

// Listener kinds.
const (
	// KindUniversal serves WebSocket at Path, RawSocket (first byte 0x7F) and the status
	// page on one socket.
	KindUniversal Kind = iota
	// KindWebSocket serves WebSocket at Path only; other HTTP requests get 404/426.
	KindWebSocket
	// KindRawSocket serves RawSocket only.
	KindRawSocket
)

// String returns "universal", "websocket" or "rawsocket". Safe for concurrent use.
func (k Kind) String() string {
	switch k {
	case KindUniversal:
		return "universal"
	case KindWebSocket:
		return "websocket"
	case KindRawSocket:
		return "rawsocket"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// StatusMode says what a universal listener serves at "/" (other kinds serve no page).
// A plain value: safe for concurrent use.
type StatusMode uint8

// Status page modes; the zero value is StatusMinimal.
const (
	// StatusMinimal says that a WAMP router runs here and gives the WebSocket path;
	// nothing about realms or sessions. The default: "/" is public.
	StatusMinimal StatusMode = iota
	// StatusFull serves Config.StatusPage (realm names, session counts, ...) to anyone
	// who asks; without a Config.StatusPage, the minimal page.
	StatusFull
	// StatusOff answers "/" with 404, as any unknown path.
	StatusOff
)

// String returns "minimal", "full" or "off". Safe for concurrent use.
func (m StatusMode) String() string {
	switch m {
	case StatusMinimal:
		return "minimal"
	case StatusFull:
		return "full"
	case StatusOff:
		return "off"
	}
	return fmt.Sprintf("StatusMode(%d)", uint8(m))
}

// Cookie makes a listener hand out a tracking cookie on WebSocket upgrades (the basis of
// WAMP-Cookie authentication, implemented above netpoll). Plain data, read by
// NewServer: safe for concurrent reads.
type Cookie struct {
	// Name of the cookie, e.g. "cbtid". Required.
	Name string
	// MaxAge is sent as Max-Age with a new cookie; default 7 days.
	MaxAge time.Duration
}

// Listener is one listening socket. Plain data, read by NewServer; the TLS config is
// retained by reference and used concurrently by the accepting goroutines (so it must
// not be modified after NewServer; its GetCertificate / GetConfigForClient callbacks
// may change what they return at any time, which is how certificates are reloaded).
type Listener struct {
	// Name identifies the listener in logs and Conn.Listener; default "KIND@ADDRESS".
	Name string
	// Network is "tcp" (default) or "unix".
	Network string
	// Address is host:port for tcp (port 0 picks a free port, see Server.Addr) or the
	// socket file path for unix. Required.
	Address string
	// Kind selects the protocols; the zero value is KindUniversal.
	Kind Kind
	// Path is the WebSocket endpoint path (universal and websocket kinds); default "/ws".
	Path string
	// TLS, when set, serves TLS with it on this listener (see the package comment for
	// how TLS conns run). It must hold a certificate or a GetCertificate /
	// GetConfigForClient callback.
	TLS *tls.Config
	// Serializers a client may pick; nil or empty allows codec.Serializers().
	// WebSocket offers only wamp.2.X and wamp.2.X.batched of these; a RawSocket
	// handshake asking for another gets the "serializer unsupported" error reply.
	Serializers []codec.Serializer
	// MaxMessageSize bounds inbound messages; default 1 MiB. Over it the conn is closed
	// (WebSocket: close 1009). RawSocket announces the largest power of two <= it
	// (minimum 512, the protocol's smallest) in the handshake and enforces that.
	MaxMessageSize int
	// PingInterval: a conn idle (nothing received) for this long gets a ping
	// (WebSocket ping frame, RawSocket PING); default 10s.
	PingInterval time.Duration
	// PingTimeout: no pong (or any other traffic) within it after a ping closes the
	// conn; default 5s.
	PingTimeout time.Duration
	// HandshakeTimeout: a connection must finish its handshakes within it, counted from
	// accept, or it is closed (Stats.HandshakeTimeouts, a rate-limited log line): TLS,
	// the HTTP request head and WebSocket upgrade, the RawSocket handshake, and, when
	// Config.AwaitSession is set, the WAMP opening handshake up to Conn.Established (a
	// HELLO never sent, a CHALLENGE never answered). Default 10s. A flood of half-open
	// connections then costs at most this long of each one's (small) state.
	HandshakeTimeout time.Duration
	// Cookie, when set, hands out a cookie on WebSocket upgrades (see Conn.CookieID).
	Cookie *Cookie
	// StatusPage selects the page at "/" of a universal listener; the zero value is
	// StatusMinimal (no realm names).
	StatusPage StatusMode
	// AllowedOrigins are the Origin header values a WebSocket upgrade may carry
	// (patterns: "*", "null" or scheme://host[:port] where
	// '*' is any run of characters but '/' and ':', e.g. https://*.example.com); a mismatch gets HTTP 403 and a rate-limited
	// log line. Browsers send Origin on every WebSocket request, so this is what stops
	// another site's page from opening a session with its visitor's cookies
	// (cross-site WebSocket hijacking). An upgrade without an Origin header (a
	// non-browser client) is always allowed. Nil, empty or containing "*": any origin.
	AllowedOrigins []string
	// Compression, when set, offers permessage-deflate (RFC 7692) to WebSocket clients
	// that ask for it (see deflate.go); nil: no compression.
	Compression *Compression
	// Web, when set, serves every HTTP request of a universal or websocket listener
	// but the WebSocket upgrade at Path (and a plain request at Path, answered 426):
	// the conn leaves the event loops for Go's net/http (handoff.go), and StatusPage
	// is not used (the handler serves "/" or not). Called on net/http's goroutines,
	// concurrently. Nil: the built-in status page and 404 on the loop, as without it.
	Web http.Handler
}

// DefaultHandshakeTimeout is Listener.HandshakeTimeout when left zero.
const DefaultHandshakeTimeout = 10 * time.Second

// listener is a Listener with its defaults applied and the values derived from it.
// Immutable once the server has started.
type listener struct {
	Listener
	index    int
	rsNibble byte   // RawSocket max-length exponent we announce (2^(9+n))
	rsMax    int    // inbound RawSocket limit: 1<<(9+rsNibble)
	sers     uint8  // bitmask of allowed serializers (1<<codec.Serializer)
	protoErr string // reason text for a WebSocket client offering no allowed subprotocol
	origins  originPatterns
	minPage  []byte // the StatusMinimal page
	addr     net.Addr
	netLn    net.Listener // the accepting socket (accept.go)
}

func (l *listener) allows(s codec.Serializer) bool { return s < 8 && l.sers&(1<<s) != 0 }

// newListener validates l and applies its defaults.
func newListener(i int, l Listener) (*listener, error) {
	if l.Network == "" {
		l.Network = "tcp"
	}
	if l.Network != "tcp" && l.Network != "unix" {
		return nil, fmt.Errorf("listener %d: network %q (want tcp or unix)", i, l.Network)
	}
	if l.Address == "" {
		return nil, fmt.Errorf("listener %d: no address", i)
	}
	if l.Kind > KindRawSocket {
		return nil, fmt.Errorf("listener %d: unknown kind %v", i, l.Kind)
	}
	if l.Name == "" {
		l.Name = l.Kind.String() + "@" + l.Address
	}
	if l.Path == "" {
		l.Path = "/ws"
	}
	if l.MaxMessageSize <= 0 {
		l.MaxMessageSize = 1 << 20
	}
	if l.PingInterval <= 0 {
		l.PingInterval = 10 * time.Second
	}
	if l.PingTimeout <= 0 {
		l.PingTimeout = 5 * time.Second
	}
	if l.HandshakeTimeout <= 0 {
		l.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if l.TLS != nil && len(l.TLS.Certificates) == 0 && l.TLS.GetCertificate == nil && l.TLS.GetConfigForClient == nil {
		return nil, fmt.Errorf("listener %s: TLS config without a certificate", l.Name)
	}
	if l.Cookie != nil {
		if l.Cookie.Name == "" || strings.ContainsAny(l.Cookie.Name, "=;, \t\r\n\"") {
			return nil, fmt.Errorf("listener %s: bad cookie name %q", l.Name, l.Cookie.Name)
		}
		c := *l.Cookie
		if c.MaxAge <= 0 {
			c.MaxAge = 7 * 24 * time.Hour
		}
		l.Cookie = &c
	}
	if l.StatusPage > StatusOff {
		return nil, fmt.Errorf("listener %s: unknown status page mode %v", l.Name, l.StatusPage)
	}
	if c := l.Compression; c != nil {
		cc := *c
		if cc.Level == 0 {
			cc.Level = flate.BestSpeed
		}
		if cc.Level < flate.BestSpeed || cc.Level > flate.BestCompression {
			return nil, fmt.Errorf("listener %s: compression level %d (want 1 to 9)", l.Name, c.Level)
		}
		if cc.ClientMaxWindowBits != 0 && (cc.ClientMaxWindowBits < 8 || cc.ClientMaxWindowBits > 15) {
			return nil, fmt.Errorf("listener %s: compression client_max_window_bits %d (want 8 to 15)", l.Name, c.ClientMaxWindowBits)
		}
		if cc.MinSize <= 0 {
			cc.MinSize = 128
		}
		l.Compression = &cc
	}
	origins, err := compileOrigins(l.AllowedOrigins)
	if err != nil {
		return nil, fmt.Errorf("listener %s: allowed origins: %w", l.Name, err)
	}
	l.AllowedOrigins = slices.Clone(l.AllowedOrigins)
	ln := &listener{Listener: l, index: i, origins: origins}
	sers := l.Serializers
	if len(sers) == 0 {
		sers = codec.Serializers()
	}
	var names []string
	for _, s := range sers {
		if !s.Valid() {
			return nil, fmt.Errorf("listener %s: unsupported serializer %v", l.Name, s)
		}
		ln.sers |= 1 << s
	}
	for _, p := range wsProtos {
		if ln.allows(p.ser) {
			names = append(names, p.name)
		}
	}
	ln.protoErr = "no supported WAMP subprotocol (" + strings.Join(names, ", ") + ")"
	ln.minPage = minimalPage(l.Path, sers)
	// Largest n with 2^(9+n) <= MaxMessageSize, 0..15.
	for n := byte(15); ; n-- {
		if 1<<(9+int(n)) <= l.MaxMessageSize || n == 0 {
			ln.rsNibble = n
			break
		}
	}
	ln.rsMax = min(1<<(9+int(ln.rsNibble)), 1<<24-1) // a RawSocket frame length has 24 bits
	return ln, nil
}

// errNoListener is returned by NewServer for a Config without listeners.
var errNoListener = errors.New("netpoll: no listener configured")

// checkUnixPath refuses a unix listener whose path exists and is not a socket: binding
// removes what is there first (a stale socket of a previous run), and a mistyped
// address must not delete a file.
func checkUnixPath(l *listener) error {
	if l.Network != "unix" {
		return nil
	}
	fi, err := os.Lstat(l.Address)
	if err == nil && fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("netpoll: listener %s: %s exists and is not a socket", l.Name, l.Address)
	}
	return nil
}

// MinimalPage returns the StatusMinimal page of a listener whose WebSocket path is
// wsPath and whose serializers are sers (empty: every serializer of the build); the node
// info page of a web tree serves it too. Safe for concurrent use.
func MinimalPage(wsPath string, sers []codec.Serializer) []byte {
	if len(sers) == 0 {
		sers = codec.Serializers()
	}
	return minimalPage(wsPath, sers)
}

// minimalPage is the StatusMinimal page of a listener whose WebSocket path is wsPath:
// it names the WebSocket subprotocols and RawSocket serializer ids a client may pick.
func minimalPage(wsPath string, sers []codec.Serializer) []byte {
	var protos, ids []string
	for _, p := range wsProtos {
		if slices.Contains(sers, p.ser) {
			protos = append(protos, p.name)
		}
	}
	for _, s := range sers {
		ids = append(ids, fmt.Sprintf("%d (%s)", s, s))
	}
	return []byte("<!doctype html><html><head><meta charset=\"utf-8\"><title>switchyard</title></head><body>" +
		"<h1>switchyard</h1><p>A WAMP router is running on this port.</p><p>WebSocket: <code>" +
		html.EscapeString(wsPath) + "</code>, subprotocols <code>" + strings.Join(protos, "</code>, <code>") +
		"</code></p><p>RawSocket serializer ids: " + strings.Join(ids, ", ") + "</p></body></html>\n")
}
