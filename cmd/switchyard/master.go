package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/switchyard-wamp/switchyard/client"
	"github.com/switchyard-wamp/switchyard/config"
	"github.com/switchyard-wamp/switchyard/master"
	"github.com/switchyard-wamp/switchyard/profiles"
	"github.com/switchyard-wamp/switchyard/statuspage"
)

// runMaster runs `switchyard master --config FILE`: one replica of the cluster's master
// (the file's master section).
func runMaster(args []string) error {
	fs := flag.NewFlagSet("master", flag.ContinueOnError)
	configFile := fs.String("config", "", "master config file with a master section (required)")
	logLevel := fs.String("log-level", "", "debug, info, warn or error (overrides the file)")
	logFormat := fs.String("log-format", "", "json, text or auto: JSON when stderr is not a terminal (overrides the file)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *configFile == "" {
		return errors.New("master: --config FILE is required (a config file with a master section)")
	}
	cfg, err := loadMasterFile(*configFile)
	if err != nil {
		return fmt.Errorf("master: %w", err)
	}
	if *logLevel != "" {
		cfg.Node.LogLevel = *logLevel
	}
	if *logFormat != "" {
		cfg.Node.LogFormat = *logFormat
	}
	log, err := newLogger(os.Stderr, cfg.Node.LogFormat, cfg.Node.LogLevel)
	if err != nil {
		return fmt.Errorf("master: %w", err)
	}
	m := cfg.Master
	srv, err := master.Start(masterConfig(m, log))
	if err != nil {
		return err
	}
	if cfg.Node.Admin != "" {
		adm, addr, err := profiles.ServeAdmin(cfg.Node.Admin, profiles.AdminHandler(map[string]http.Handler{
			"/{$}":          statuspage.ClusterPage(),
			"/cluster.json": statuspage.ClusterJSON(func() statuspage.Cluster { return clusterView(srv.Status()) }),
			"/healthz": http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "text/plain; charset=utf-8")
				_, _ = w.Write([]byte("ok\n"))
			}),
			// Ready: this replica knows a leader (itself or another), so writes can go
			// somewhere; during an election it is not.
			"/readyz": http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "text/plain; charset=utf-8")
				if st := srv.Status(); st.Leader == "" {
					w.WriteHeader(http.StatusServiceUnavailable)
					_, _ = w.Write([]byte("no raft leader\n"))
					return
				}
				_, _ = w.Write([]byte("ready\n"))
			}),
			"/debug/stats": http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				_ = json.NewEncoder(w).Encode(map[string]any{
					"master": srv.Status(),
					"runtime": map[string]any{"heap_alloc": ms.HeapAlloc, "heap_inuse": ms.HeapInuse,
						"sys": ms.Sys, "goroutines": runtime.NumGoroutine()},
				})
			}),
		}))
		if err != nil {
			_ = srv.Stop(context.Background())
			return fmt.Errorf("master: %w", err)
		}
		defer adm.Close()
		log.Info("admin listener", "addr", addr.String())
	}
	log.Info("switchyard master started", "version", version, "replica", m.Node, "url", srv.URL(),
		"raft", srv.RaftAddr(), "data_dir", m.DataDir)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	s := <-sig
	for ; s == syscall.SIGHUP; s = <-sig {
		// A reload signal (e.g. a service manager's reload) must not kill a replica.
		log.Warn("SIGHUP ignored: a master reads its file only at start (restart it to apply changes; cluster config changes go through switchyard cluster apply)")
	}
	log.Info("shutting down", "signal", s.String())
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(cfg.Node.ShutdownGrace))
	defer cancel()
	if err := srv.Stop(ctx); err != nil {
		log.Warn("shutdown incomplete", "err", err)
	}
	log.Info("stopped")
	return nil
}

// loadMasterFile loads, overrides from the environment and validates a master file.
func loadMasterFile(name string) (*config.Config, error) {
	cfg, err := config.Load(name)
	if err != nil {
		return nil, err
	}
	if err := cfg.ApplyEnv(os.Getenv); err != nil {
		return nil, fmt.Errorf("environment: %w", err)
	}
	if problems := cfg.Validate(); len(problems) > 0 {
		var b strings.Builder
		for _, p := range problems {
			b.WriteString("\n  " + p.String())
		}
		return nil, fmt.Errorf("invalid configuration:%s", b.String())
	}
	if cfg.Master == nil {
		return nil, fmt.Errorf("%s has no master section", name)
	}
	return cfg, nil
}

// masterConfig maps the master section to master.Config.
func masterConfig(m *config.Master, log *slog.Logger) master.Config {
	mc := master.Config{Name: m.Node, Listen: m.Listen, Raft: m.Raft, DataDir: m.DataDir,
		Lease: time.Duration(m.Lease), RaftTimeout: time.Duration(m.RaftTimeout), ForgetAfter: time.Duration(m.ForgetAfter), Slots: m.Slots, Secret: m.Secret, OperatorKey: m.OperatorKey,
		Logger: log}
	for _, p := range m.Peers {
		mc.Peers = append(mc.Peers, master.Peer{Name: p.Name, Raft: p.Raft, URL: p.URL})
		if p.Name == m.Node {
			mc.URL = p.URL
		}
	}
	if len(m.NodeKeys) > 0 {
		mc.NodeKeys = map[string]string{}
		for _, k := range m.NodeKeys {
			mc.NodeKeys[k.Node] = k.Key
		}
	}
	return mc
}

// runCluster runs `switchyard cluster status|apply`.
func runCluster(args []string) error {
	const usage = `Usage:
  switchyard cluster status [--master URL] [--key KEY] [--config MASTERFILE] [--json]
  switchyard cluster apply FILE [--master URL] [--key KEY] [--config MASTERFILE]

status prints the cluster as the master sees it (replicas, nodes, leases, slots,
versions); apply checks FILE as switchyard check does and makes its realms the next
cluster config version. Run "switchyard cluster status -h" for the flags.
`
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return errors.New("cluster: want a subcommand: status or apply")
	}
	switch args[0] {
	case "-h", "--help", "help":
		fmt.Fprint(os.Stderr, usage)
		return flag.ErrHelp
	case "status":
		return runClusterStatus(os.Stdout, args[1:])
	case "apply":
		return runClusterApply(os.Stdout, args[1:])
	}
	return fmt.Errorf("cluster: unknown subcommand %q (want status or apply)", args[0])
}

// operatorFlags are the flags of `switchyard cluster` that say which master to ask
// and with which key.
type operatorFlags struct {
	url, key, configFile *string
}

func addOperatorFlags(fs *flag.FlagSet) operatorFlags {
	return operatorFlags{
		url: fs.String("master", os.Getenv("SWITCHYARD_MASTER_URL"),
			"management URL of a master replica (default $SWITCHYARD_MASTER_URL, else the --config file's, else ws://127.0.0.1:9300/ws)"),
		key:        fs.String("key", "", "operator key (default $SWITCHYARD_OPERATOR_KEY, else the --config file's operator_key or secret)"),
		configFile: fs.String("config", "", "a master config file to take the URL and key from"),
	}
}

// dial joins the management realm as the operator at url, or (url empty) at the
// default one; when that replica does not answer and --config names peers, each peer in
// turn.
func (o operatorFlags) dial(ctx context.Context, url string) (*client.Session, error) {
	key := *o.key
	if key == "" {
		key = os.Getenv("SWITCHYARD_OPERATOR_KEY")
	}
	var urls []string
	if url != "" {
		urls = append(urls, url)
	}
	if *o.configFile != "" {
		cfg, err := loadMasterFile(*o.configFile)
		if err != nil {
			return nil, err
		}
		if key == "" {
			key = cmp.Or(cfg.Master.OperatorKey, cfg.Master.Secret)
		}
		own := "ws://" + cfg.Master.Listen + "/ws"
		var others []string
		for _, p := range cfg.Master.Peers {
			if p.Name == cfg.Master.Node {
				own = p.URL
			} else {
				others = append(others, p.URL)
			}
		}
		urls = append(append(urls, own), others...)
	}
	if len(urls) == 0 {
		urls = []string{"ws://127.0.0.1:9300/ws"}
	}
	if key == "" {
		return nil, errors.New("no operator key: give --key, $SWITCHYARD_OPERATOR_KEY or --config MASTERFILE")
	}
	var errs []error
	for _, u := range urls {
		s, err := master.Dial(ctx, u, master.OperatorAuthID, key, nil)
		if err == nil {
			return s, nil
		}
		errs = append(errs, err)
		var we *client.Error
		if errors.As(err, &we) {
			break // the replica answered and refused: another would too
		}
	}
	return nil, errors.Join(errs...)
}

// callLeader calls proc as the operator at url, following ErrNotLeader redirects (a
// few times: an election may be under way).
func (o operatorFlags) callLeader(ctx context.Context, proc string, req, res any) error {
	url := *o.url
	var err error
	for try := 0; try < 5; try++ {
		var s *client.Session
		s, err = o.dial(ctx, url)
		if err != nil {
			return err
		}
		err = master.Call(ctx, s, proc, req, res)
		s.Close()
		leader, redirected := master.LeaderOf(err)
		if !redirected {
			return err
		}
		if leader != "" {
			url = leader
		} else {
			time.Sleep(500 * time.Millisecond) // an election: ask again
		}
	}
	return err
}

// parseInterspersed parses flags that may come before or after the positional
// arguments, which it returns.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func runClusterStatus(w io.Writer, args []string) error {
	fs := flag.NewFlagSet("cluster status", flag.ContinueOnError)
	of := addOperatorFlags(fs)
	asJSON := fs.Bool("json", false, "print the status as JSON")
	if _, err := parseInterspersed(fs, args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	s, err := of.dial(ctx, *of.url)
	if err != nil {
		return fmt.Errorf("cluster status: %w", err)
	}
	var st master.Status
	err = master.Call(ctx, s, master.ProcStatus, nil, &st)
	s.Close()
	if err != nil {
		return fmt.Errorf("cluster status: %w", err)
	}
	// Leases and loads are the leader's knowledge: ask it when another replica answered.
	if st.Leader != "" && st.Leader != st.Replica {
		for _, mi := range st.Masters {
			if mi.Name != st.Leader || mi.URL == "" {
				continue
			}
			if ls, err := of.dial(ctx, mi.URL); err == nil {
				var lst master.Status
				if master.Call(ctx, ls, master.ProcStatus, nil, &lst) == nil {
					st = lst
				}
				ls.Close()
			}
		}
	}
	if *asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	printStatus(w, &st)
	return nil
}

// printStatus writes st as tables.
func printStatus(w io.Writer, st *master.Status) {
	leader := st.Leader
	if leader == "" {
		leader = "(none: election)"
	}
	fmt.Fprintf(w, "raft leader: %s (answered by %s)\nmap version: %d   config version: %d   slots: %d\n\n",
		leader, st.Replica, st.MapVersion, st.ConfigVersion, st.Slots)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MASTER\tSTATE\tRAFT\tURL")
	for _, m := range st.Masters {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", m.Name, m.State, m.Raft, m.URL)
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tROLE\tSTATE\tLEASE AGE\tSLOTS\tSESSIONS\tLINKS UP\tMAP\tCONFIG\tLINK")
	for _, n := range st.Nodes {
		age := "-"
		if n.LeaseAgeMS >= 0 {
			age = (time.Duration(n.LeaseAgeMS) * time.Millisecond).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\n", n.Node, n.Role, n.State, age,
			n.Slots, n.Sessions, n.LinksUp, n.MapVersion, n.ConfigVersion, n.Link)
	}
	tw.Flush()
}

func runClusterApply(w io.Writer, args []string) error {
	fs := flag.NewFlagSet("cluster apply", flag.ContinueOnError)
	of := addOperatorFlags(fs)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("cluster apply: want one config FILE")
	}
	req, err := sharedConfig(w, pos[0])
	if err != nil {
		return fmt.Errorf("cluster apply: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var res master.ApplyRes
	if err := of.callLeader(ctx, master.ProcApply, req, &res); err != nil {
		return fmt.Errorf("cluster apply: %w", err)
	}
	fmt.Fprintf(w, "%s: config version %d\n", pos[0], res.Version)
	return nil
}

// sharedConfig loads FILE and checks its shared part (master.SharedKeys: the realms)
// with the checks of `switchyard check`, as the master will (master.ValidateShared),
// printing every problem to w; it returns that part as an apply request. The file's
// per-node keys (node, listeners, cluster) are not sent: each node keeps its own.
func sharedConfig(w io.Writer, name string) (master.ApplyReq, error) {
	cfg, err := config.Load(name)
	if err != nil {
		fmt.Fprintln(w, err)
		return master.ApplyReq{}, fmt.Errorf("%s has problems: nothing applied", name)
	}
	b, err := json.Marshal(map[string]any{"realms": cfg.Realms})
	if err != nil {
		return master.ApplyReq{}, err
	}
	var shared map[string]any
	if err := json.Unmarshal(b, &shared); err != nil {
		return master.ApplyReq{}, err
	}
	if report := master.ValidateShared(shared); report != "" {
		for _, line := range strings.Split(report, "\n") {
			fmt.Fprintf(w, "%s: %s\n", name, line)
		}
		return master.ApplyReq{}, fmt.Errorf("%s has problems: nothing applied", name)
	}
	return master.ApplyReq{Config: shared}, nil
}

// clusterView is the master's status as the cluster page shows it: every registered
// node with its state, owned slots, sessions and message counters (the page computes
// rates from two snapshots).
func clusterView(st master.Status) statuspage.Cluster {
	c := statuspage.Cluster{Master: st.Replica, Leader: st.Leader, Version: uint64(max(st.MapVersion, 0)), Slots: st.Slots}
	for _, n := range st.Nodes {
		addr := n.Link
		if addr == "" {
			addr = n.Admin
		}
		c.Nodes = append(c.Nodes, statuspage.ClusterNode{Name: n.Node, Role: n.Role, Addr: addr, Up: n.State == master.StateLive,
			Slots: n.Slots, Sessions: n.Sessions, MessagesIn: n.MessagesIn, MessagesOut: n.MessagesOut})
	}
	return c
}
