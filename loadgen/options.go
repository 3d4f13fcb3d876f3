// Package loadgen drives real WAMP load at a switchyard node (or any WAMP router) and
// reports throughput, latency percentiles and the router's CPU and memory cost.
//
// A Scenario is one kind of load (pubsub, rpc, connect, mixed); Run looks one up by name
// and runs it with Options, returning a Result that prints as a table (Format) or as
// JSON. The connect scenario joins on a few epoll event loops (connloop_linux.go); the
// load paths drive client.Transport by hand with batched writes (see wire.go) so that
// loadgen is not the bottleneck.
package loadgen

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/switchyard-wamp/switchyard/codec"
)

// Options configures a run. The zero value plus Defaults is a small valid run; the
// `switchyard loadgen` flags map one to one onto these fields.
type Options struct {
	// URLs are the router URLs (ws://, wss://, rs://, rss://, tcp://, tcps://, rs+unix://):
	// --url, repeated or comma-separated. With several (the proxies of a cluster, say),
	// the sessions of every role are spread over them round-robin, one counter for the
	// whole run, so that each role is balanced and even a run with one publisher and one
	// subscriber crosses between two URLs. An entry may itself hold a comma-separated list.
	URLs       []string
	Realm      string           // --realm
	Serializer codec.Serializer // --serializer: json, msgpack, cbor or ubjson
	AuthID     string           // --authid: HELLO.Details.authid
	Ticket     string           // --ticket: authmethods ["ticket"], AUTHENTICATE with it on CHALLENGE
	TLS        *tls.Config      // --tls-ca, --tls-insecure, --tls-cert, --tls-key: for wss:// and rss:// (nil: system roots)

	Publishers  int  // --publishers (pubsub, mixed)
	Subscribers int  // --subscribers (pubsub, mixed); subscriber i subscribes to topic i%Topics
	PublishOnly bool // --subscribers 0: no subscribers (router ingest; the no-op sink)
	Topics      int  // --topics (pubsub, mixed); publishers publish to the topics round-robin
	Ack         bool // --ack: publish with acknowledge=true and count the PUBLISHED replies

	Callers  int // --callers (rpc, mixed)
	Callees  int // --callees (rpc, mixed); callee i registers its own procedure, callers spread over them
	Inflight int // --inflight: calls in flight per caller (rpc, mixed)

	Sessions    int // --sessions (connect): idle sessions to join and hold
	Concurrency int // --concurrency (connect): joins in flight at most

	Size int // --size: encoded size of the args payload in bytes (carries an 8-byte send time)

	// Rate is the total send rate in messages (publications, calls) per second, or joins
	// per second for connect. 0 means as fast as possible; for pubsub without loss: the
	// publishers pause while more than Window events are undelivered. mixed splits it
	// evenly between its pubsub and rpc shares.
	Rate   float64 // --rate
	Window int     // --window (pubsub, Rate 0): undelivered events allowed in flight (at least 128 x fan-out)

	Count    int64         // --count: stop after this many sends in the measured window (0: by Duration)
	Duration time.Duration // --duration: measured window (connect: how long sessions are held idle)
	Warmup   time.Duration // --warmup: load before the measured window starts (pubsub, rpc, mixed)

	// RouterPIDs are the router's processes (--router-pid, repeated or comma-separated):
	// their CPU and RSS are read from /proc/<pid> and summed (a cluster's proxies and
	// routers, say), so CPU per message is that of all of them. None: not measured.
	RouterPIDs []int
	JSON       bool // --json: print the Result as JSON (used by the command, not by Run)

	// Progress receives a progress line during the run (nil: none): rewritten in place
	// every second when ProgressLive (a terminal), else one plain line every 5 s.
	Progress     io.Writer
	ProgressLive bool

	// transportOnly: the load connections are transports without a WAMP session (the
	// echo scenario, against an EchoServer); set by the scenario.
	transportOnly bool

	// urlNext is the round-robin cursor over URLs: the sessions are assigned URLs in
	// setup, one role after the other on one goroutine (see takeURLs).
	urlNext int
	// joined counts the sessions joined through each URL (index of URLs), for the
	// Result; made by Defaults.
	joined []atomic.Int64
}

// Scenario defaults that Defaults applies when a field is zero.
const (
	DefaultURL             = "ws://127.0.0.1:8080/ws"
	DefaultRealm           = "realm1"
	DefaultSize            = 64
	DefaultWindow          = 2048
	DefaultDuration        = 10 * time.Second
	DefaultConnectHold     = 2 * time.Second
	DefaultConcurrency     = 64
	defaultConnectSessions = 1000
)

// Defaults fills the zero fields of o for scenario kind ("pubsub", "rpc", "connect",
// "mixed"). Subscribers stays 0 with PublishOnly.
func (o *Options) Defaults(kind string) {
	o.URLs = SplitURLs(o.URLs)
	if len(o.URLs) == 0 {
		o.URLs = []string{DefaultURL}
	}
	if len(o.joined) != len(o.URLs) {
		o.joined = make([]atomic.Int64, len(o.URLs))
	}
	if o.Realm == "" {
		o.Realm = DefaultRealm
	}
	if o.Serializer == 0 {
		o.Serializer = codec.JSON
	}
	if o.Size == 0 {
		o.Size = DefaultSize
	}
	if o.Window == 0 {
		o.Window = DefaultWindow
	}
	if o.Publishers == 0 {
		o.Publishers = 1
	}
	if o.Subscribers == 0 && !o.PublishOnly {
		o.Subscribers = 1
	}
	if o.Topics == 0 {
		o.Topics = 1
	}
	if o.Callers == 0 {
		o.Callers = 1
	}
	if o.Callees == 0 {
		o.Callees = 1
	}
	if o.Inflight == 0 {
		o.Inflight = 1
	}
	if o.Concurrency == 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.Sessions == 0 {
		o.Sessions = defaultConnectSessions
	}
	if o.Duration == 0 && (o.Count == 0 || kind == "connect") {
		if kind == "connect" {
			o.Duration = DefaultConnectHold
		} else {
			o.Duration = DefaultDuration
		}
	}
}

// Validate reports the first invalid field.
func (o *Options) Validate() error {
	switch {
	case o.Serializer == codec.Flatbuffers:
		return fmt.Errorf("loadgen: flatbuffers is not supported (messages are sent from byte templates; a Flatbuffers table has no fixed place for the request id)")
	case !o.Serializer.Valid():
		return fmt.Errorf("loadgen: unknown serializer %v", o.Serializer)
	case o.Publishers < 0, o.Subscribers < 0, o.Topics < 0, o.Callers < 0, o.Callees < 0,
		o.Inflight < 0, o.Sessions < 0, o.Concurrency < 0, o.Window < 0:
		return fmt.Errorf("loadgen: counts must not be negative")
	case o.PublishOnly && o.Subscribers > 0:
		return fmt.Errorf("loadgen: PublishOnly with %d subscribers", o.Subscribers)
	case o.Rate < 0:
		return fmt.Errorf("loadgen: --rate must not be negative")
	case o.Count < 0:
		return fmt.Errorf("loadgen: --count must not be negative")
	case o.Duration < 0, o.Warmup < 0:
		return fmt.Errorf("loadgen: durations must not be negative")
	case o.Size < minSize(o.Serializer):
		return fmt.Errorf("loadgen: --size %d is below the smallest payload for %v (%d bytes)", o.Size, o.Serializer, minSize(o.Serializer))
	case o.Size > 16<<20:
		return fmt.Errorf("loadgen: --size %d is above 16 MiB", o.Size)
	}
	for _, u := range o.URLs {
		if _, err := isWebSocket(u); err != nil {
			return fmt.Errorf("%w (--url %q)", err, u)
		}
	}
	for _, pid := range o.RouterPIDs {
		if pid <= 0 {
			return fmt.Errorf("loadgen: --router-pid %d is not a process id", pid)
		}
	}
	return nil
}

// SplitURLs returns the URLs of urls with every comma-separated entry split, blanks
// trimmed and empty entries dropped, in order (duplicates kept: a URL given twice gets
// twice the sessions). Safe for concurrent use.
func SplitURLs(urls []string) []string {
	var out []string
	for _, u := range urls {
		for part := range strings.SplitSeq(u, ",") {
			if part = strings.TrimSpace(part); part != "" {
				out = append(out, part)
			}
		}
	}
	return out
}

// takeURLs assigns the next n sessions their URLs round-robin: session i of the n gets
// o.URLs[(base+i) % len(o.URLs)]; the cursor moves on by n so that the next role goes on
// where this one stopped. Not safe for concurrent use: the parts' setups call it one
// after the other.
func (o *Options) takeURLs(n int) (base int) {
	base = o.urlNext
	o.urlNext += n
	return base
}

// urlAt is the index in URLs of session i counted from base (see takeURLs).
func (o *Options) urlAt(base, i int) int { return (base + i) % len(o.URLs) }

// joinedAt counts a session joined through URLs[k]. Safe for concurrent use.
func (o *Options) joinedAt(k int) {
	if k < len(o.joined) {
		o.joined[k].Add(1)
	}
}

// ParseSerializer parses "json", "msgpack", "cbor" or "ubjson" (and "flatbuffers", which
// Validate refuses).
func ParseSerializer(s string) (codec.Serializer, error) {
	switch strings.ToLower(s) {
	case "json", "":
		return codec.JSON, nil
	case "msgpack", "messagepack":
		return codec.MsgPack, nil
	case "cbor":
		return codec.CBOR, nil
	case "ubjson":
		return codec.UBJSON, nil
	case "flatbuffers":
		return codec.Flatbuffers, nil
	}
	return 0, fmt.Errorf("loadgen: unknown serializer %q (json, msgpack, cbor, ubjson)", s)
}

// TLSConfig builds the client TLS configuration of the --tls-* flags: caFile (PEM) is
// the only trusted root when set, insecure skips verifying the router's certificate,
// certFile and keyFile (both or neither) are the client certificate. Safe for
// concurrent use.
func TLSConfig(caFile string, insecure bool, certFile, keyFile string) (*tls.Config, error) {
	cfg := &tls.Config{InsecureSkipVerify: insecure, MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("loadgen: --tls-ca: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("loadgen: --tls-ca %s: no PEM certificate in it", caFile)
		}
	}
	if (certFile == "") != (keyFile == "") {
		return nil, fmt.Errorf("loadgen: --tls-cert and --tls-key go together")
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("loadgen: client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}
