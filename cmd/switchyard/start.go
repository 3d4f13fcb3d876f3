package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"html"
	"log/slog"
	"net/http"
	"os"
	"reflect"
	"strings"
	"time"
	"unicode"

	"github.com/switchyard-wamp/switchyard/codec"
	"github.com/switchyard-wamp/switchyard/config"
	"github.com/switchyard-wamp/switchyard/node"
	"github.com/switchyard-wamp/switchyard/profiles"
)

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// startFlags are the flags of `switchyard start`; their zero config is the embedded default.
type startFlags struct {
	listen, rawsocket, wsPath string
	realms                    stringList
	maxMsg, outboundLimit     int
	outboundHardLimit         int
	writeDeadline             time.Duration
	pingInterval, pingTimeout time.Duration
	loops, maxConns           int
	logLevel, logFormat       string
	drainPeriod               time.Duration
	shutdownGrace             time.Duration
	admin                     string
	configFile                string
	prof                      profiles.Flags
	// running is the configuration in force (set at start and by each applied reload):
	// what a reload compares the file with to log the changes that need a restart.
	running *config.Config
}

func runStart(args []string) error {
	var f startFlags
	fs := flag.NewFlagSet("start", flag.ContinueOnError)
	fs.StringVar(&f.listen, "listen", ":8080", "universal listener: WebSocket at --ws-path, RawSocket, and the status page at /")
	fs.StringVar(&f.rawsocket, "rawsocket", ":8081", "RawSocket-only listener (empty to disable); not opened when --listen is given without it and\nwithout --config (the --listen port serves RawSocket too)")
	fs.StringVar(&f.wsPath, "ws-path", "/ws", "WebSocket path on the universal listener")
	fs.Var(&f.realms, "realm", "realm to serve (repeatable; default realm1)")
	fs.IntVar(&f.maxMsg, "max-message-size", 1<<20, "largest inbound message in bytes")
	fs.IntVar(&f.outboundLimit, "outbound-limit", 4<<20, "soft limit: a connection whose backlog stays over this many bytes for --write-deadline is disconnected as a slow consumer")
	fs.IntVar(&f.outboundHardLimit, "outbound-hard-limit", 0, "a connection whose backlog goes over this many bytes is disconnected at once (0: the larger of 32 MiB and twice --outbound-limit)")
	fs.DurationVar(&f.writeDeadline, "write-deadline", 5*time.Second, "how long a connection's backlog may stay over --outbound-limit")
	fs.DurationVar(&f.pingInterval, "ping-interval", 10*time.Second, "WebSocket ping after this much idle time")
	fs.DurationVar(&f.pingTimeout, "ping-timeout", 5*time.Second, "close a connection whose ping is not answered within this")
	fs.IntVar(&f.loops, "loops", 0, "event loops (default: one per CPU)")
	fs.IntVar(&f.maxConns, "max-connections", 0, "client connections held at once; more are closed at once (default 0: the file descriptor limit minus max(64, limit/16))")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&f.logFormat, "log-format", "auto", "log lines as json, text, or auto (JSON when stderr is not a terminal)")
	fs.DurationVar(&f.drainPeriod, "drain-period", 30*time.Second, "on SIGUSR2, spread the GOODBYEs of the lame-duck drain over this, then exit")
	fs.DurationVar(&f.shutdownGrace, "shutdown-grace", 2*time.Second, "time to flush GOODBYE to sessions on SIGINT/SIGTERM")
	fs.StringVar(&f.admin, "admin", "", "internal admin listener: status page at /, /metrics, /healthz, /readyz, /debug/pprof, /debug/stats;\ne.g. 127.0.0.1:9090 (off by default; never the public port)")
	fs.StringVar(&f.configFile, "config", "", "node config file (YAML or JSON; see docs/config.md and 'switchyard init'); flags given here override it")
	f.prof.Register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := loadStartConfig(&f, fs)
	if err != nil {
		return err
	}
	f.running = cfg
	nc, err := nodeConfig(cfg)
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	stopProfile, err := f.prof.Start()
	if err != nil {
		return err
	}
	defer func() {
		if err := stopProfile(); err != nil {
			fmt.Fprintln(os.Stderr, "switchyard:", err)
		}
	}()
	log, err := newLogger(os.Stderr, cfg.Node.LogFormat, cfg.Node.LogLevel)
	if err != nil {
		return err
	}

	nc.Logger = log
	nc.StatusPage = func(n *node.Node) []byte { return statusPage(n, wsPathOf(nc)) }
	n, err := node.Start(nc)
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	ops := &opsNode{role: "standalone", name: hostname(), n: n, started: time.Now(), log: log}
	closeAdmin, err := ops.serveAdmin(cfg.Node.Admin)
	if err != nil {
		_ = n.Stop(context.Background())
		return fmt.Errorf("start: %w", err)
	}
	defer closeAdmin()
	attrs := []any{"version", version, "realms", strings.Join(nc.Realms, ","), "max_connections", n.Server.MaxConnections()}
	attrs = append(attrs, listenerAttrs(n, nc.Listeners)...)
	log.Info("switchyard node started", attrs...)

	sig := notifySignals()
	drain := func() <-chan struct{} { return ops.startDrain(time.Duration(cfg.Node.DrainPeriod)) }
	died := awaitEndOps(sig, n.Server.Done(), func() { reload(n, fs, &f, log) }, drain, func(s os.Signal) {
		log.Info("shutting down", "signal", s.String(), "sessions", n.Router.SessionCount())
	})
	if died != nil {
		// The event loops are gone: the process must not linger without serving (a
		// supervisor restarts it on the non-zero exit).
		log.Error("network layer stopped, exiting", "err", died, "sessions", n.Router.SessionCount())
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(cfg.Node.ShutdownGrace))
	defer cancel()
	if err := n.Stop(ctx); err != nil {
		log.Warn("shutdown incomplete", "err", err)
	}
	if died != nil {
		return fmt.Errorf("start: %w", died)
	}
	log.Info("stopped")
	return nil
}

// awaitEnd blocks until the node must stop: a SIGINT/SIGTERM on sig (stopping is
// called; awaitEnd returns nil) or an error on died (the network layer stopped; it is
// returned). Each SIGHUP calls reload.
func awaitEnd(sig <-chan os.Signal, died <-chan error, reload func(), stopping func(os.Signal)) error {
	return awaitEndOps(sig, died, reload, nil, stopping)
}

// loadStartConfig builds the config start runs: the file (or the embedded default), the
// SWITCHYARD_* environment, then the flags the user set; validated.
func loadStartConfig(f *startFlags, fs *flag.FlagSet) (*config.Config, error) {
	cfg := config.Default()
	if f.configFile != "" {
		var err error
		if cfg, err = config.Load(f.configFile); err != nil {
			return nil, err
		}
	}
	if err := cfg.ApplyEnv(os.Getenv); err != nil {
		return nil, fmt.Errorf("environment: %w", err)
	}
	applyStartFlags(cfg, fs, f)
	if problems := cfg.Validate(); len(problems) > 0 {
		var b strings.Builder
		for _, p := range problems {
			b.WriteString("\n  " + p.String())
		}
		return nil, fmt.Errorf("invalid configuration:%s", b.String())
	}
	return cfg, nil
}

// serveSignals reloads the config on every SIGHUP from sig and returns the first other
// signal (nil if sig is closed first).
func serveSignals(n *node.Node, sig <-chan os.Signal, fs *flag.FlagSet, f *startFlags, log *slog.Logger) os.Signal {
	var got os.Signal
	_ = awaitEnd(sig, nil, func() { reload(n, fs, f, log) }, func(s os.Signal) { got = s })
	return got
}

// reload re-reads --config on SIGHUP and applies its realms, principals and roles and
// the TLS certificate, key and client CA files of TLS listeners. A bad file (config or
// certificate) is refused with a log line and the running config stays in force. Other
// changes (node settings, listeners) need a restart: a Warn line lists them.
func reload(n *node.Node, fs *flag.FlagSet, f *startFlags, log *slog.Logger) {
	if f.configFile == "" {
		log.Warn("SIGHUP: nothing to reload (started without --config)")
		return
	}
	cfg, err := loadStartConfig(f, fs)
	var nc node.Config
	if err == nil {
		nc, err = nodeConfig(cfg)
	}
	if err != nil {
		log.Error("SIGHUP: config reload refused, the running config stays in force", "file", f.configFile, "err", err)
		return
	}
	if err := n.Reload(nc); err != nil {
		log.Error("SIGHUP: config reload refused, the running config stays in force", "file", f.configFile, "err", err)
		return
	}
	log.Info("SIGHUP: config reloaded", "file", f.configFile, "realms", strings.Join(nc.Realms, ","))
	if f.running != nil {
		if changes := restartChanges(f.running, cfg); len(changes) > 0 {
			log.Warn("SIGHUP: these changes need a restart and were not applied", "file", f.configFile,
				"changes", strings.Join(changes, ", "))
		}
		// What runs keeps the settings of the start (compare later reloads with them),
		// and the realms of this reload.
		kept := *f.running
		kept.Realms = cfg.Realms
		f.running = &kept
	}
}

// hostname names a standalone node on its status page.
func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return "switchyard"
	}
	return h
}

// wsPathOf is the WebSocket path of the first listener that serves WebSocket.
func wsPathOf(nc node.Config) string {
	for _, l := range nc.Listeners {
		if l.Kind != node.KindRawSocket && l.Path != "" {
			return l.Path
		}
	}
	return "/ws"
}

// statsHandler serves the node's counters as JSON on the admin listener, every key in
// snake_case ({"sessions": 3, "netpoll": {"accepted": 5, "slow_consumer_closed": 0, ...}}).
func statsHandler(n *node.Node) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"sessions": n.Router.SessionCount(),
			"netpoll":  snakeFields(n.Server.Stats()),
		})
	})
}

// snakeFields maps the exported fields of struct v to snake_case keys
// (SlowConsumerClosed: slow_consumer_closed), so that the stats keep one casing as
// fields are added.
func snakeFields(v any) map[string]any {
	rv := reflect.ValueOf(v)
	out := make(map[string]any, rv.NumField())
	for i := range rv.NumField() {
		if f := rv.Type().Field(i); f.IsExported() {
			out[snakeCase(f.Name)] = rv.Field(i).Interface()
		}
	}
	return out
}

// snakeCase turns a Go field name into snake_case: BytesIn: bytes_in, TLSErrors: tls_errors.
func snakeCase(name string) string {
	var b strings.Builder
	rs := []rune(name)
	for i, r := range rs {
		if unicode.IsUpper(r) {
			if i > 0 && (unicode.IsLower(rs[i-1]) || (i+1 < len(rs) && unicode.IsLower(rs[i+1]) && unicode.IsUpper(rs[i-1]))) {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// statusPage is the small HTML page served at "/" of the universal listener.
func statusPage(n *node.Node, wsPath string) []byte {
	router := n.Router
	var b strings.Builder
	b.WriteString("<!doctype html><html><head><meta charset=\"utf-8\"><title>switchyard</title></head><body>")
	fmt.Fprintf(&b, "<h1>switchyard</h1><p>%s: a WAMP router is running on this port.</p>", html.EscapeString(versionString()))
	fmt.Fprintf(&b, "<p>WebSocket: <code>%s</code> (wamp.2.json, wamp.2.msgpack, wamp.2.cbor and .batched); RawSocket on the same port.</p>", html.EscapeString(wsPath))
	b.WriteString("<p>Realms: ")
	for i, r := range router.RealmNames() {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "<code>%s</code>", html.EscapeString(r))
	}
	fmt.Fprintf(&b, "</p><p>Sessions: %d</p></body></html>\n", router.SessionCount())
	return []byte(b.String())
}

// listenerAttrs are the log attributes of a started node's listeners: listenerN = kind
// and URLs, listenerN_serializers = the serializers a client may pick there (the
// WebSocket subprotocols wamp.2.NAME, the RawSocket ids).
func listenerAttrs(n *node.Node, ls []node.Listener) []any {
	var attrs []any
	for i, l := range ls {
		sers := l.Serializers
		if len(sers) == 0 {
			sers = codec.Serializers()
		}
		names := make([]string, len(sers))
		for j, s := range sers {
			names[j] = s.String()
		}
		attrs = append(attrs, fmt.Sprintf("listener%d", i), l.Kind+" "+strings.Join(n.URLs(i), " "),
			fmt.Sprintf("listener%d_serializers", i), strings.Join(names, ","))
	}
	return attrs
}
