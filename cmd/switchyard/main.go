// Command switchyard is the one binary of the switchyard WAMP router: `switchyard start`
// runs a complete node; later subcommands run the cluster roles and the load generator.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime/debug"
)

// version is set by `make build` and `make release` with -ldflags "-X main.version=...";
// a binary from `go install ...@vX` reports the module version instead (versionString).
var version = "dev"

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "start":
		err = runStart(os.Args[2:])
	case "router", "proxy":
		err = runRole(os.Args[1], os.Args[2:])
	case "drain":
		err = runDrain(os.Args[2:])
	case "master":
		err = runMaster(os.Args[2:])
	case "cluster":
		err = runCluster(os.Args[2:])
	case "init":
		err = runInit(os.Args[2:])
	case "check":
		err = runCheck(os.Args[2:])
	case "bench":
		err = runBench(os.Args[2:])
	case "loadgen":
		err = runLoadgen(os.Args[2:])
	case "version", "--version", "-v":
		fmt.Println(versionString())
	case "help", "-h", "--help":
		usage()
	default:
		fmt.Fprintf(os.Stderr, "switchyard: unknown command %q\n\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	if errors.Is(err, flag.ErrHelp) {
		return // -h, --help: the usage is printed, and asking for it is not a failure
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "switchyard:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `switchyard: a WAMP router

Usage:
  switchyard start [flags]   run a standalone node (realm1, anonymous, ws://127.0.0.1:8080/ws)
  switchyard router --config F   run a cluster router node (hosts realms, accepts links)
  switchyard proxy --config F    run a cluster proxy node (accepts clients, forwards sessions)
  switchyard drain [--admin ADDR] [--wait D]   lame-duck drain of the node at ADDR (as SIGUSR2)
  switchyard master --config F   run a master replica (registry, slot map, cluster config; Raft)
  switchyard cluster status [--master URL] [--json]   the cluster as the master sees it
  switchyard cluster apply FILE [--master URL]   make FILE's realms the next cluster config version
  switchyard init [DIR]      write a commented DIR/switchyard.yaml equal to the default
  switchyard init --cluster [DIR]  write a local example cluster (2 proxies, 3 routers)
  switchyard check [--role router|proxy] FILE...   validate config files (each problem with its field path)
  switchyard loadgen SCENARIO drive WAMP load at a router (pubsub, rpc, connect, mixed)
  switchyard bench run|list|report   end-to-end benchmark scenarios, results and chart
  switchyard version         print the version
Run "switchyard start -h" or "switchyard loadgen -h" for the flags.
`)
}

func versionString() string {
	v := version
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version // go install github.com/switchyard-wamp/switchyard/cmd/switchyard@vX
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " (" + s.Value[:12] + ")"
			}
		}
		return fmt.Sprintf("switchyard %s %s", v, bi.GoVersion)
	}
	return "switchyard " + v
}
