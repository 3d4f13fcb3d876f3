package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/switchyard-wamp/switchyard/bench"
	"github.com/switchyard-wamp/switchyard/loadgen"
	"github.com/switchyard-wamp/switchyard/profiles"
)

const benchUsage = `Usage:
  switchyard bench run [SCENARIO ...|all] [flags]   run scenarios against a fresh router each
  switchyard bench list                             list the scenarios
  switchyard bench report DIR                       re-render DIR/results.md and chart.svg from DIR/results.json
  switchyard bench floor DIR                        issue #15's table from DIR/base/*/ and DIR/head/*/results.json
  switchyard bench floor --runs                     the bench run invocations of one round of that table

bench run starts "switchyard start" as a separate process on a free loopback port for each
scenario (so that router CPU and RSS are its own), drives it with loadgen, stops it with
SIGTERM, and writes results.json, results.md and chart.svg into --out. With --target, every
scenario also runs against that router and the report shows switchyard/target ratios.
The echo scenarios (echo-1) are rpc's baseline: they start this binary's plain echo server
("switchyard loadgen sink --echo", whatever --router-bin is) instead of a router, and run
on it alone (not on --target or --cluster); "bench run rpc-1 echo-1" reads a call round
trip against one WebSocket round trip, same client, same minutes. floor-64 and floor-1 do
the same on the epoll echo server ("loadgen sink --echo --epoll": one read and one write
per message, the syscall floor): "bench run rpc-64 floor-64" reads the router's CPU per
call against the least a server spends per message.

With --cluster, every scenario also runs, right after the single node, on a fresh local
cluster: "switchyard init --cluster" files (2 proxies, 3 routers) moved to free loopback
ports, each node its own "switchyard router" or "switchyard proxy" process. loadgen
spreads its sessions over both proxies and sums the CPU and RSS of all five processes;
the report adds a cluster table with cluster/single ratios (CPU per message, msgs/s).

bench floor prints issue #15's table (router CPU per operation, ops/s, p50, p99: base →
head and head/base of the medians over rounds; rpc-1's p50 / echo-1's p50 of the same
run) from the rounds bench/ab-floor.sh runs: per round, row and side, "bench run NAMES
--router-bin BASE|HEAD --out DIR/base|head/ROUND-ROW".

Flags of bench run:
`

// runBench runs `switchyard bench run|list|report`.
func runBench(args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, benchUsage)
		benchRunFlags(new(benchRunOpts)).PrintDefaults()
		return errors.New("bench: run, list, report or floor")
	}
	switch args[0] {
	case "run":
		return benchRun(args[1:])
	case "list":
		for _, s := range bench.Scenarios() {
			fmt.Printf("%-15s %-8s %s\n", s.Name, s.Kind, s.About())
		}
		return nil
	case "report":
		if len(args) != 2 {
			return errors.New("bench report: want one results directory")
		}
		res, err := bench.ReadJSON(filepath.Join(args[1], "results.json"))
		if err != nil {
			return err
		}
		if err := bench.WriteReport(args[1], res); err != nil {
			return err
		}
		fmt.Printf("wrote %s and %s\n", filepath.Join(args[1], "results.md"), filepath.Join(args[1], "chart.svg"))
		return nil
	case "floor":
		return benchFloor(args[1:])
	case "-h", "-help", "--help", "help":
		fmt.Fprint(os.Stderr, benchUsage)
		benchRunFlags(new(benchRunOpts)).PrintDefaults()
		return nil
	}
	return fmt.Errorf("bench: unknown subcommand %q (run, list, report, floor)", args[0])
}

// benchFloor runs `switchyard bench floor DIR|--runs`.
func benchFloor(args []string) error {
	if len(args) != 1 {
		return errors.New("bench floor: want a directory (DIR/base/*/results.json, DIR/head/*/results.json) or --runs")
	}
	if args[0] == "--runs" {
		for _, names := range bench.FloorRuns() {
			fmt.Println(strings.Join(names, " "))
		}
		return nil
	}
	base, head, err := bench.ReadFloorDir(args[0])
	if err != nil {
		return err
	}
	if len(base) == 0 && len(head) == 0 {
		return fmt.Errorf("bench floor: no results.json under %s/base or %s/head", args[0], args[0])
	}
	fmt.Printf("issue #15 table: %d base and %d head bench runs; medians over the rounds, head/base of the medians\n"+
		"(router CPU per op: below 1 is better; p50 / echo p50 of the same round: the goal is at most 3)\n\n", len(base), len(head))
	bench.WriteFloorTable(os.Stdout, base, head)
	return nil
}

type benchRunOpts struct {
	duration, warmup time.Duration
	out              string
	target           string
	targetPID        int
	routerBin        string
	inProcess        bool
	ports            string
	serializer       string
	cluster          bool
	clusterSpread    int
	prof             profiles.Flags
}

func benchRunFlags(o *benchRunOpts) *flag.FlagSet {
	fs := flag.NewFlagSet("bench run", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), benchUsage)
		fs.PrintDefaults()
	}
	fs.DurationVar(&o.duration, "duration", 0, "measured window of every scenario (default 10s; idle-10k: hold time, default 3s)")
	fs.DurationVar(&o.warmup, "warmup", 0, "warm-up before the window (default 2s; negative: none)")
	fs.StringVar(&o.out, "out", "", "output directory (default bench/out/<date>-<commit>)")
	fs.StringVar(&o.target, "target", "", "URL of a second router (e.g. ws://127.0.0.1:8080/ws) to run the same scenarios against")
	fs.IntVar(&o.targetPID, "target-pid", 0, "process id of the --target router, for its CPU and RSS")
	fs.StringVar(&o.routerBin, "router-bin", "", "switchyard binary to start as the router (default: this binary)")
	fs.BoolVar(&o.inProcess, "in-process", false, "run the router inside this process (no router CPU/RSS figures)")
	fs.StringVar(&o.ports, "ports", "", "loopback port range for the routers, LO-HI (default: ports the kernel picks)")
	fs.StringVar(&o.serializer, "serializer", "json", "json, msgpack, cbor or ubjson")
	fs.BoolVar(&o.cluster, "cluster", false, "also run every scenario on a local cluster (2 proxies, 3 routers) and report cluster/single ratios")
	fs.IntVar(&o.clusterSpread, "cluster-spread", 0, "--cluster: the spread of realm1's roles in the cluster files (0, the default: as init --cluster writes it, realm1 over all three routers;\n1: one router per realm and role)")
	o.prof.Register(fs)
	return fs
}

func benchRun(args []string) error {
	var o benchRunOpts
	fs := benchRunFlags(&o)
	// Scenario names and flags may come in any order.
	var names []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil
			}
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		names = append(names, fs.Arg(0))
		args = fs.Args()[1:]
	}
	scs, err := bench.Select(names)
	if err != nil {
		return err
	}
	stopProfile, err := o.prof.Start()
	if err != nil {
		return err
	}
	defer func() {
		if err := stopProfile(); err != nil {
			fmt.Fprintln(os.Stderr, "switchyard: bench:", err)
		}
	}()
	ser, err := loadgen.ParseSerializer(o.serializer)
	if err != nil {
		return err
	}
	ports, err := bench.ParsePorts(o.ports)
	if err != nil {
		return err
	}
	cfg := bench.Config{Scenarios: scs, Duration: o.duration, Warmup: o.warmup, Serializer: ser,
		Target: o.target, TargetPID: o.targetPID, OutDir: o.out, Log: os.Stderr}
	if o.inProcess {
		cfg.Router, cfg.RouterName = &bench.InProcess{Ports: ports}, "in-process (node.Start)"
		cfg.Echo = &bench.InProcessEcho{Ports: ports}
	} else {
		// The echo baseline is this binary's echo server whatever --router-bin is.
		self, err := os.Executable()
		if err != nil {
			return fmt.Errorf("bench: this binary's path: %w", err)
		}
		cfg.Echo = &bench.EchoSubprocess{Bin: self, Ports: ports}
		bin := o.routerBin
		if bin == "" {
			bin = self
		}
		cfg.Router, cfg.RouterName = &bench.Subprocess{Bin: bin, Ports: ports}, "subprocess `switchyard start`"
		if o.cluster {
			cfg.Cluster = &bench.ClusterSubprocess{Bin: bin, Ports: ports, Spread: o.clusterSpread}
			cfg.ClusterName = "2 proxies + 3 routers (`switchyard init --cluster` files on free ports), subprocesses `switchyard proxy|router`"
			if o.clusterSpread > 0 {
				cfg.ClusterName += fmt.Sprintf(", spread %d", o.clusterSpread)
			}
		}
	}
	if o.inProcess && o.cluster {
		cfg.Cluster, cfg.ClusterName = &bench.InProcessCluster{}, "2 proxies + 3 routers in-process (node.StartProxy, node.StartRouter), spread 1"
	}
	if cfg.OutDir == "" {
		cfg.OutDir = filepath.Join("bench", "out", time.Now().Format("2006-01-02T1504")+"-"+bench.Commit())
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := bench.RunAll(ctx, cfg)
	if res != nil {
		fmt.Println()
		bench.WriteTable(os.Stdout, res)
		if res.Cluster != "" {
			fmt.Printf("\ncluster: %s\n\n", res.Cluster)
			bench.WriteClusterTable(os.Stdout, res)
		}
		fmt.Printf("\nresults: %s\n", cfg.OutDir)
	}
	return err
}
