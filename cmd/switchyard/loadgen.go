package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/switchyard-wamp/switchyard/loadgen"
)

const loadgenUsage = `Usage: switchyard loadgen <scenario> [flags]

Scenarios:
  pubsub    publishers publish to topics, subscribers receive (delivered events/s, latency)
  rpc       callers call echo procedures of callees (calls/s, round-trip latency)
  connect   join --sessions idle sessions, hold them, close them (joins/s, router RSS per session)

Examples:
  switchyard loadgen pubsub --url ws://127.0.0.1:8080/ws --subscribers 10 --duration 10s --router-pid PID
  switchyard loadgen rpc --callers 64 --router-pid PID
  switchyard loadgen connect --sessions 10000 --concurrency 64 --router-pid PID

Flags:
`

// runLoadgen runs `switchyard loadgen <scenario> [flags]`.
func runLoadgen(args []string) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fs := loadgenFlags(new(loadgen.Options), new(string))
		fs.SetOutput(os.Stderr)
		fs.Usage()
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
			return nil
		}
		return errors.New("loadgen: a scenario is required")
	}
	name := args[0]
	if _, ok := loadgen.Lookup(name); !ok {
		return fmt.Errorf("loadgen: unknown scenario %q (one of %s)", name, strings.Join(loadgen.Scenarios(), ", "))
	}
	var o loadgen.Options
	var ser string
	fs := loadgenFlags(&o, &ser)
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("loadgen: unexpected arguments %q", fs.Args())
	}
	var err error
	if o.Serializer, err = loadgen.ParseSerializer(ser); err != nil {
		return err
	}
	if _, err := loadgen.RaiseFileLimit(); err != nil {
		fmt.Fprintln(os.Stderr, "switchyard: loadgen: cannot raise the open file limit:", err)
	}
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

func loadgenFlags(o *loadgen.Options, ser *string) *flag.FlagSet {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), loadgenUsage)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.URL, "url", loadgen.DefaultURL, "router URL (ws://, wss://, rs://, tcp://, ...)")
	fs.StringVar(&o.Realm, "realm", loadgen.DefaultRealm, "realm to join")
	fs.StringVar(ser, "serializer", "json", "json, msgpack or cbor")
	fs.IntVar(&o.Publishers, "publishers", 1, "pubsub: publishing sessions")
	fs.IntVar(&o.Subscribers, "subscribers", 1, "pubsub: subscribing sessions (subscriber i on topic i%topics)")
	fs.IntVar(&o.Topics, "topics", 1, "pubsub: topics, published to round-robin")
	fs.IntVar(&o.Callers, "callers", 1, "rpc: calling sessions")
	fs.IntVar(&o.Callees, "callees", 1, "rpc: callee sessions, one echo procedure each")
	fs.IntVar(&o.Inflight, "inflight", 1, "rpc: calls in flight per caller")
	fs.IntVar(&o.Sessions, "sessions", 1000, "connect: idle sessions to join")
	fs.IntVar(&o.Concurrency, "concurrency", loadgen.DefaultConcurrency, "connect: joining workers (also used to set up the other scenarios)")
	fs.IntVar(&o.Size, "size", loadgen.DefaultSize, "encoded args payload in bytes (carries the send time)")
	fs.Float64Var(&o.Rate, "rate", 0, "total messages (connect: joins) per second; 0 = as fast as possible without loss")
	fs.IntVar(&o.Window, "window", loadgen.DefaultWindow, "pubsub with --rate 0: undelivered events (publications x subscribers) allowed in flight; at least 128 publications")
	fs.Int64Var(&o.Count, "count", 0, "stop after this many sends in the measured window (0 = by --duration)")
	fs.DurationVar(&o.Duration, "duration", 0, "measured window (default 10s; connect: how long sessions are held idle, default 2s)")
	fs.DurationVar(&o.Warmup, "warmup", 0, "load before the measured window (pubsub, rpc)")
	fs.IntVar(&o.RouterPID, "router-pid", 0, "router process id: report its CPU and RSS from /proc")
	fs.BoolVar(&o.JSON, "json", false, "print the result as JSON")
	return fs
}
