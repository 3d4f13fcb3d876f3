package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/switchyard-wamp/switchyard/cluster/member"
	"github.com/switchyard-wamp/switchyard/config"
	"github.com/switchyard-wamp/switchyard/link"
	"github.com/switchyard-wamp/switchyard/master"
	"github.com/switchyard-wamp/switchyard/node"
)

// runRole runs `switchyard router` or `switchyard proxy`: a cluster node of that role
// from --config (its cluster section names the node and lists the routers, or names the
// masters whose map and cluster config the node follows: see follower).
func runRole(role string, args []string) error {
	fs := flag.NewFlagSet(role, flag.ContinueOnError)
	configFile := fs.String("config", "", "cluster node config file (required; see 'switchyard init --cluster DIR')")
	logLevel := fs.String("log-level", "", "debug, info, warn or error (overrides the file)")
	logFormat := fs.String("log-format", "", "json, text or auto: JSON when stderr is not a terminal (overrides the file)")
	admin := fs.String("admin", "", "internal admin listener: status page, /metrics, /healthz, /readyz, /debug/pprof (overrides the file)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if *configFile == "" {
		return fmt.Errorf("%s: --config FILE is required (write an example with `switchyard init --cluster DIR`)", role)
	}
	// loadWith reads the file, with the shared keys of the cluster config version the
	// node runs over it when it follows masters.
	loadWith := func(shared map[string]any) (*config.Config, error) {
		cfg, err := config.LoadOverlay(*configFile, shared)
		if err != nil {
			return nil, err
		}
		if err := cfg.ApplyEnv(os.Getenv); err != nil {
			return nil, fmt.Errorf("environment: %w", err)
		}
		if *logLevel != "" {
			cfg.Node.LogLevel = *logLevel
		}
		if *logFormat != "" {
			cfg.Node.LogFormat = *logFormat
		}
		if *admin != "" {
			cfg.Node.Admin = *admin
		}
		if problems := cfg.Validate(); len(problems) > 0 {
			var b strings.Builder
			for _, p := range problems {
				b.WriteString("\n  " + p.String())
			}
			return nil, fmt.Errorf("invalid configuration:%s", b.String())
		}
		if err := cfg.ClusterRole(role); err != nil {
			return nil, err
		}
		return cfg, nil
	}
	cfg, err := loadWith(nil)
	if err != nil {
		return fmt.Errorf("%s: %w", role, err)
	}
	base, err := newLogger(os.Stderr, cfg.Node.LogFormat, cfg.Node.LogLevel)
	if err != nil {
		return err
	}
	log := base.With("node", cfg.Cluster.Node)
	var fol *follower
	load := func() (*config.Config, error) { return loadWith(nil) }
	var first master.Map
	if cfg.FollowsMaster() {
		if fol, err = startFollower(cfg, role, log, loadWith); err != nil {
			return fmt.Errorf("%s: %w", role, err)
		}
		load = func() (*config.Config, error) { return loadWith(fol.sharedConfig()) }
		if first, err = fol.waitFirstMap(cfg.Cluster.Masters); err != nil {
			_ = fol.m.Stop(context.Background(), false)
			return fmt.Errorf("%s: %w", role, err)
		}
		// Start with the cluster config version of the registration.
		if cfg, err = load(); err != nil {
			_ = fol.m.Stop(context.Background(), false)
			return fmt.Errorf("%s: %w", role, err)
		}
		fol.cur.Store(cfg)
		defer fol.stop(context.Background()) // after a failed start; a clean stop leaves first
	}
	started := cfg
	nc, err := nodeConfig(cfg)
	if err != nil {
		return fmt.Errorf("%s: %w", role, err)
	}
	nc.Logger = log
	common, err := clusterCommon(cfg)
	if err != nil {
		return fmt.Errorf("%s: %w", role, err)
	}
	if fol != nil {
		common.Routers = member.Routers(first)
		if first.Slots > 0 && first.Slots != common.Slots {
			// Every node must place by the same slots: the master's map decides.
			log.Warn("cluster.slots differs from the master's map: placing by the map's", "file", common.Slots, "map", first.Slots)
			common.Slots = first.Slots
		}
	}

	var n *node.Node
	var stop func(context.Context) error
	ops := &opsNode{role: role, name: cfg.Cluster.Node, started: time.Now(), log: log}
	attrs := []any{"version", version, "role", role, "realms", strings.Join(nc.Realms, ",")}
	switch role {
	case config.RoleRouter:
		nc.NoListeners = len(cfg.Listeners) == 0
		rc := node.RouterNodeConfig{ClusterCommon: common, LinkAddr: cfg.Cluster.Link, Node: nc}
		if fol != nil {
			if rc.Tag = member.TagOf(first, cfg.Cluster.Node); rc.Tag == 0 {
				return fmt.Errorf("%s: the master's map (version %d) does not list this router", role, first.Version)
			}
		}
		r, err := node.StartRouter(rc)
		if err != nil {
			return err
		}
		n, stop = r.Node, r.Stop
		ops.links = r.PeerLinks
		attrs = append(attrs, "link", r.LinkAddr())
		if fol != nil {
			fol.attach(r, nil, reloader(r.Node), started)
		}
	default:
		spread := cfg.SpreadOf
		if fol != nil {
			spread = fol.spreadOf
		}
		p, err := node.StartProxy(node.ProxyNodeConfig{ClusterCommon: common, Node: nc, SpreadOf: spread})
		if err != nil {
			return err
		}
		n, stop = p.Node, p.Stop
		ops.links, ops.clusterReady, ops.sessions = p.PeerLinks, p.Ready, p.Links.Sessions
		if fol != nil {
			fol.attach(nil, p, reloader(p.Node), started)
		}
	}
	if fol != nil {
		attrs = append(attrs, "masters", strings.Join(cfg.Cluster.Masters, ","), "map_version", first.Version)
	}
	ops.n = n
	if !nc.NoListeners {
		nc.StatusPage = nil
		attrs = append(attrs, listenerAttrs(n, nc.Listeners)...)
	}
	if fol != nil {
		ops.extra = map[string]http.Handler{"/debug/member": memberHandler(fol.m)}
		ops.memberReady = func() (bool, string) {
			st := fol.m.Status()
			switch {
			case st.Registrations == 0:
				return false, "not registered with a master yet"
			case st.MapVersion == 0:
				return false, "no slot map from the masters yet"
			}
			return true, ""
		}
	}
	closeAdmin, err := ops.serveAdmin(cfg.Node.Admin)
	if err != nil {
		_ = stop(context.Background())
		return fmt.Errorf("%s: %w", role, err)
	}
	defer closeAdmin()
	log.Info("switchyard cluster node started", attrs...)

	sig := notifySignals()
	var died <-chan error
	if n.Server != nil {
		died = n.Server.Done()
	}
	hup := func() {
		if cfg, err := load(); err != nil {
			log.Error("SIGHUP: config reload refused, the running config stays in force", "file", *configFile, "err", err)
		} else if nc2, err := nodeConfig(cfg); err != nil {
			log.Error("SIGHUP: config reload refused, the running config stays in force", "file", *configFile, "err", err)
		} else if err := n.Reload(nc2); err != nil {
			log.Error("SIGHUP: config reload refused, the running config stays in force", "file", *configFile, "err", err)
		} else {
			if fol != nil {
				fol.cur.Store(cfg)
			}
			log.Info("SIGHUP: config reloaded (realms, roles, auth; the cluster section needs a restart)", "file", *configFile)
		}
	}
	drain := func() <-chan struct{} { return ops.startDrain(time.Duration(cfg.Node.DrainPeriod)) }
	dead := awaitEndOps(sig, died, hup, drain, func(s os.Signal) { log.Info("shutting down", "signal", s.String()) })
	if dead != nil {
		log.Error("network layer stopped, exiting", "err", dead)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(cfg.Node.ShutdownGrace))
	defer cancel()
	if fol != nil {
		fol.stop(ctx) // leave the map first: proxies stop placing sessions here
	}
	if err := stop(ctx); err != nil {
		log.Warn("shutdown incomplete", "err", err)
	}
	if dead != nil {
		return fmt.Errorf("%s: network layer stopped: %w", role, dead)
	}
	log.Info("stopped")
	return nil
}

// reloader applies a config to a running node through the SIGHUP path.
func reloader(n *node.Node) func(*config.Config) error {
	return func(cfg *config.Config) error {
		nc, err := nodeConfig(cfg)
		if err != nil {
			return err
		}
		return n.Reload(nc)
	}
}

// memberHandler serves /debug/member: the node's view of the masters (JSON).
func memberHandler(m *member.Member) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(snakeFields(m.Status()))
	})
}

// clusterCommon maps the cluster section to the settings every role shares.
func clusterCommon(cfg *config.Config) (node.ClusterCommon, error) {
	cl := cfg.Cluster
	c := node.ClusterCommon{Name: cl.Node, Secret: []byte(cl.Secret), Slots: cl.Slots, LinksPerPeer: cl.LinksPerPeer,
		LinkGoroutines: cl.LinkReads == "goroutines"}
	for _, r := range cl.Routers {
		c.Routers = append(c.Routers, node.ClusterMember{Name: r.Name, Addr: r.Link})
	}
	if cl.TLS != nil {
		tc, err := linkTLS(cl.TLS)
		if err != nil {
			return c, fmt.Errorf("cluster.tls: %w", err)
		}
		c.Link = link.Config{TLS: tc}
	}
	return c, nil
}

// linkTLS builds the mutual-TLS config of links: this node's certificate as server and
// client, peers verified against the cluster CA.
func linkTLS(t *config.LinkTLS) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, err
	}
	pem, err := os.ReadFile(t.CAFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificate", t.CAFile)
	}
	minV := uint16(tls.VersionTLS13)
	if t.MinVersion == "1.2" {
		minV = tls.VersionTLS12
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, ClientCAs: pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: minV}, nil
}
