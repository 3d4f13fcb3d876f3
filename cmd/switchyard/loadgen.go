package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/switchyard-wamp/switchyard/loadgen"
	"github.com/switchyard-wamp/switchyard/profiles"
)

const loadgenUsage = `Usage: switchyard loadgen <scenario> [flags]

Drives WAMP load at any router (switchyard, Crossbar.io, nexus, ...) by URL and reports
throughput, latency percentiles (HDR histograms, from send times carried in the payload),
errors and losses, loadgen's own CPU and, with --router-pid, the router's CPU and RSS.
Several --url (a cluster's proxies) share the sessions round-robin; several --router-pid
(every process of a cluster) have their CPU and RSS summed.
The warm-up is excluded from every figure. A progress line goes to stderr (live on a
terminal, every 5 s otherwise); the result goes to stdout (a table, or JSON with --json).

Scenarios:
  pubsub    publishers publish to topics, subscribers receive (delivered events/s, latency);
            --rate 0 publishes as fast as the router delivers without loss; --ack asks for
            PUBLISHED; --subscribers 0 publishes only (router ingest)
  rpc       callers keep --inflight calls each to echo procedures of callees (calls/s, round trip)
  connect   join --sessions idle sessions at --rate joins/s (at most --concurrency joins in
            flight), hold them --duration answering pings, close them (joins/s, join latency,
            loadgen CPU per join, router RSS per session with --router-pid); the joins run on
            a few epoll event loops (Linux; no goroutine per session); wss://, rss://, tcps://
            URLs (the loops do not speak TLS) and other platforms use a client session per join
  mixed     pubsub and rpc at once on the same router, each with its own sessions
            (--publishers/--subscribers/--topics and --callers/--callees/--inflight);
            --rate is split evenly; both shares are reported
  echo      rpc's baseline, against "sink --echo" (no router, no WAMP session): --callers
            connections keep --inflight messages each, every message the CALL rpc sends
            with the same --size, echoed back unchanged (msgs/s, round trip, and the echo
            server's CPU per message with --router-pid); read an rpc run's p50 against it
  sink      not a load: a no-op router (accepts ws and rs on --listen, answers HELLO with
            WELCOME, discards the rest) to measure loadgen's own ceiling; its flags:
              --listen ADDR   address to accept WebSocket (any path) and RawSocket on
                              (default 127.0.0.1:9999)
              --ticket T      require ticket authentication with this ticket
              --echo          instead a plain echo server for the echo scenario: every
                              WebSocket (or RawSocket) message written back unchanged, no
                              WAMP. A goroutine per connection on net.Conn with gobwas/ws,
                              the design most Go WebSocket servers have; replies are
                              buffered and written once per read batch (one write and
                              up to two reads per message at one in flight: a second
                              read finding the socket empty parks the goroutine)
              --epoll         with --echo (Linux): the same echo with the sockets on epoll
                              event loops after the handshake (no goroutine per connection,
                              no Go netpoller): at one message in flight one epoll_wait,
                              one read and one write per message; the floor to read a
                              router's CPU per message against
              --loops N       with --epoll: event loops, one thread each (default 1: one
                              thread is the floor)

URLs: ws://, wss:// (WebSocket); rs://, rss://, tcp://, tcps:// (RawSocket over TCP);
rs+unix:///path/to.sock (RawSocket on a Unix socket, e.g. a unix listener of switchyard).

Output: rates count publications and events (pubsub), calls (rpc) or joins (connect) per
second; rpc's sent - delivered are the calls still in flight when the window ended.
Latencies are in us, in ms past 10 ms. In --json every key names its unit (_ns, _us,
_seconds, _bytes, _per_sec, mb = 10^6 bytes).

Authentication: with --ticket, the role the router gives --authid must be allowed to
call, register, publish and subscribe on URIs under the prefix "loadgen." (each run uses
loadgen.<random>.*); in a switchyard config, a permission
  {uri: "loadgen.", match: prefix, allow: {call: true, register: true, publish: true, subscribe: true}}

Examples:
  switchyard loadgen pubsub --url ws://127.0.0.1:8080/ws --subscribers 10 --duration 10s --router-pid PID
  switchyard loadgen rpc --url ws://127.0.0.1:8080/ws,ws://127.0.0.1:8090/ws --callers 64 --router-pid P1,P2,R1,R2,R3
  switchyard loadgen pubsub --url rs://127.0.0.1:8080 --serializer msgpack --publishers 4 --topics 4 --size 256 --rate 50000
  switchyard loadgen rpc --callers 64 --callees 4 --inflight 8 --router-pid PID
  switchyard loadgen connect --sessions 10000 --rate 2000 --router-pid PID
  switchyard loadgen mixed --subscribers 10 --callers 8 --duration 30s --warmup 5s --json
  switchyard loadgen pubsub --url wss://router.example/ws --realm prod --authid bench --ticket SECRET
  switchyard loadgen sink --listen 127.0.0.1:9999 &   switchyard loadgen pubsub --url rs://127.0.0.1:9999 --subscribers 0
  switchyard loadgen sink --echo --listen 127.0.0.1:9998 &   switchyard loadgen echo --url ws://127.0.0.1:9998/ws --router-pid $!
  switchyard loadgen sink --echo --epoll --listen 127.0.0.1:9997 &   switchyard loadgen echo --url ws://127.0.0.1:9997/ws --callers 64 --router-pid $!

Flags:
`

// runLoadgen runs `switchyard loadgen <scenario> [flags]`.
func runLoadgen(args []string) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fs := loadgenFlags(new(loadgen.Options), new(string), new(profiles.Flags), new(tlsFlags))
		fs.SetOutput(os.Stderr)
		fs.Usage()
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
			return nil
		}
		return errors.New("loadgen: a scenario is required")
	}
	name := args[0]
	if name == "sink" {
		return runSink(args[1:])
	}
	if _, ok := loadgen.Lookup(name); !ok {
		return fmt.Errorf("loadgen: unknown scenario %q (one of %s)", name, strings.Join(append(loadgen.Scenarios(), "sink"), ", "))
	}
	var o loadgen.Options
	var ser string
	var prof profiles.Flags
	var tf tlsFlags
	fs := loadgenFlags(&o, &ser, &prof, &tf)
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("loadgen: unexpected arguments %q", fs.Args())
	}
	if o.Subscribers == 0 {
		o.PublishOnly = true // an explicit --subscribers 0: publish only
	}
	if fs.Lookup("progress").Value.(flag.Getter).Get().(bool) {
		o.Progress = os.Stderr
		if fi, err := os.Stderr.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			o.ProgressLive = true
		}
	}
	var err error
	if o.Serializer, err = loadgen.ParseSerializer(ser); err != nil {
		return err
	}
	if tf != (tlsFlags{}) {
		if o.TLS, err = loadgen.TLSConfig(tf.ca, tf.insecure, tf.cert, tf.key); err != nil {
			return err
		}
	}
	if _, err := loadgen.RaiseFileLimit(); err != nil {
		fmt.Fprintln(os.Stderr, "switchyard: loadgen: cannot raise the open file limit:", err)
	}
	stopProfile, err := prof.Start()
	if err != nil {
		return err
	}
	defer func() {
		if err := stopProfile(); err != nil {
			fmt.Fprintln(os.Stderr, "switchyard: loadgen:", err)
		}
	}()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := loadgen.Run(ctx, name, o)
	if err != nil {
		return err
	}
	if o.JSON {
		return res.WriteJSON(os.Stdout)
	}
	return res.Format(os.Stdout)
}

// tlsFlags are the --tls-* flags of loadgen.
type tlsFlags struct {
	ca, cert, key string
	insecure      bool
}

func loadgenFlags(o *loadgen.Options, ser *string, prof *profiles.Flags, tf *tlsFlags) *flag.FlagSet {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), loadgenUsage)
		fs.PrintDefaults()
	}
	o.URLs = []string{loadgen.DefaultURL}
	fs.Var(&urlsFlag{list: &o.URLs}, "url", "router URL: ws://, wss:// (WebSocket), rs://, rss://, tcp://, tcps://, rs+unix:// (RawSocket);\nrepeat the flag or separate URLs with commas to spread the sessions over several\n(a cluster's proxies): round-robin over the whole run, each role balanced")
	fs.StringVar(&o.Realm, "realm", loadgen.DefaultRealm, "realm to join")
	fs.StringVar(&tf.ca, "tls-ca", "", "wss://, rss://: PEM file of the CA to trust (default: the system roots)")
	fs.BoolVar(&tf.insecure, "tls-insecure", false, "wss://, rss://: do not verify the router's certificate (testing only)")
	fs.StringVar(&tf.cert, "tls-cert", "", "wss://, rss://: PEM client certificate (with --tls-key)")
	fs.StringVar(&tf.key, "tls-key", "", "wss://, rss://: PEM private key of --tls-cert")
	fs.StringVar(ser, "serializer", "json", "json, msgpack, cbor or ubjson")
	fs.StringVar(&o.AuthID, "authid", "", "authid to join with (HELLO details)")
	fs.StringVar(&o.Ticket, "ticket", "", "ticket authentication: HELLO authmethods [\"ticket\"], AUTHENTICATE with this ticket;\nthe role of --authid needs call, register, publish and subscribe on the prefix \"loadgen.\"")
	fs.IntVar(&o.Publishers, "publishers", 1, "pubsub, mixed: publishing sessions")
	fs.IntVar(&o.Subscribers, "subscribers", 1, "pubsub, mixed: subscribing sessions (subscriber i on topic i%topics); 0 = publish only")
	fs.IntVar(&o.Topics, "topics", 1, "pubsub, mixed: topics, published to round-robin")
	fs.BoolVar(&o.Ack, "ack", false, "pubsub, mixed: publish with acknowledge=true and count PUBLISHED replies")
	fs.IntVar(&o.Callers, "callers", 1, "rpc, mixed: calling sessions; echo: connections")
	fs.IntVar(&o.Callees, "callees", 1, "rpc, mixed: callee sessions, one echo procedure each")
	fs.IntVar(&o.Inflight, "inflight", 1, "rpc, mixed: calls in flight per caller; echo: messages in flight per connection")
	fs.IntVar(&o.Sessions, "sessions", 1000, "connect: idle sessions to join")
	fs.IntVar(&o.Concurrency, "concurrency", loadgen.DefaultConcurrency, "connect: joins in flight at most (also how many sessions the other scenarios join at once)")
	fs.IntVar(&o.Size, "size", loadgen.DefaultSize, "encoded args payload in bytes (carries the send time)")
	fs.Float64Var(&o.Rate, "rate", 0, "total messages (connect: joins) per second; 0 = as fast as possible (pubsub: without loss)")
	fs.IntVar(&o.Window, "window", loadgen.DefaultWindow, "pubsub with --rate 0: undelivered events (publications x subscribers) allowed in flight; at least 128 publications")
	fs.Int64Var(&o.Count, "count", 0, "stop after this many sends in the measured window (0 = by --duration)")
	fs.DurationVar(&o.Duration, "duration", 0, "measured window (default 10s; connect: how long sessions are held idle, default 2s)")
	fs.DurationVar(&o.Warmup, "warmup", 0, "load before the measured window, excluded from the figures (pubsub, rpc, mixed)")
	fs.Var(pidsFlag{list: &o.RouterPIDs}, "router-pid", "router process id: report its CPU, CPU per message and RSS (connect: RSS per session) from /proc;\nrepeat it or separate pids with commas (a cluster's proxies and routers): the figures are summed\nover the processes and each is listed")
	fs.BoolVar(&o.JSON, "json", false, "print the result as JSON on stdout")
	prof.Register(fs)
	fs.Bool("progress", true, "print a progress line to stderr (rewritten every second on a terminal, a line every 5s otherwise)")
	return fs
}

// urlsFlag is --url: repeatable, each value one URL or several comma-separated; the
// first use replaces the default.
type urlsFlag struct {
	list *[]string
	set  bool
}

func (f *urlsFlag) String() string {
	if f == nil || f.list == nil {
		return ""
	}
	return strings.Join(*f.list, ",")
}

func (f *urlsFlag) Set(v string) error {
	urls := loadgen.SplitURLs([]string{v})
	if len(urls) == 0 {
		return errors.New("empty URL")
	}
	if !f.set {
		*f.list, f.set = nil, true
	}
	*f.list = append(*f.list, urls...)
	return nil
}

// pidsFlag is --router-pid: repeatable, each value one pid or several comma-separated.
type pidsFlag struct{ list *[]int }

func (f pidsFlag) String() string {
	if f.list == nil {
		return ""
	}
	s := make([]string, len(*f.list))
	for i, p := range *f.list {
		s[i] = strconv.Itoa(p)
	}
	return strings.Join(s, ",")
}

func (f pidsFlag) Set(v string) error {
	for part := range strings.SplitSeq(v, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		pid, err := strconv.Atoi(part)
		if err != nil || pid <= 0 {
			return fmt.Errorf("%q is not a process id", part)
		}
		*f.list = append(*f.list, pid)
	}
	return nil
}

// runSink runs `switchyard loadgen sink`: a no-op router (--echo: an echo server) until
// SIGINT/SIGTERM.
func runSink(args []string) error {
	fs := flag.NewFlagSet("loadgen sink", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:9999", "address to accept WebSocket (any path) and RawSocket on")
	ticket := fs.String("ticket", "", "require ticket authentication with this ticket")
	echo := fs.Bool("echo", false, "a plain echo server (every message written back, no WAMP) for the echo scenario")
	epoll := fs.Bool("epoll", false, "with --echo (Linux): the echo on epoll event loops, no goroutine per connection (the syscall floor)")
	loops := fs.Int("loops", 1, "with --epoll: event loops, one thread each")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if *echo {
		if *ticket != "" {
			return errors.New("loadgen sink: --echo has no WAMP session to authenticate (no --ticket)")
		}
		return runEchoServer(*listen, *epoll, *loops)
	}
	if *epoll {
		return errors.New("loadgen sink: --epoll is an option of --echo")
	}
	s, err := loadgen.StartSink(*listen, *ticket)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "switchyard: loadgen sink on %s and %s (pid %d)\n", s.WebSocketURL(), s.RawSocketURL(), os.Getpid())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	fmt.Fprintf(os.Stderr, "switchyard: loadgen sink: %d sessions, %d bytes discarded\n", s.Joined(), s.Bytes())
	return s.Close()
}

// runEchoServer runs `switchyard loadgen sink --echo [--epoll [--loops N]]` until
// SIGINT/SIGTERM.
func runEchoServer(listen string, epoll bool, loops int) error {
	type echoServer interface {
		WebSocketURL() string
		RawSocketURL() string
		Conns() int64
		Messages() int64
		Close() error
	}
	var s echoServer
	kind := "echo server"
	if epoll {
		if loops < 1 {
			return fmt.Errorf("loadgen sink: --loops %d (at least 1)", loops)
		}
		es, err := loadgen.StartEpollEchoServer(listen, loops)
		if err != nil {
			return err
		}
		s, kind = es, fmt.Sprintf("echo server (epoll, %d loops)", loops)
	} else {
		es, err := loadgen.StartEchoServer(listen)
		if err != nil {
			return err
		}
		s = es
	}
	// Scripts grep this line ("loadgen echo server on ws://... and rs://... (pid N)").
	fmt.Fprintf(os.Stderr, "switchyard: loadgen echo server on %s and %s (pid %d)\n", s.WebSocketURL(), s.RawSocketURL(), os.Getpid())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	fmt.Fprintf(os.Stderr, "switchyard: loadgen %s: %d connections, %d messages echoed\n", kind, s.Conns(), s.Messages())
	return s.Close()
}
