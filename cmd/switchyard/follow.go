package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/switchyard-wamp/switchyard/cluster/member"
	"github.com/switchyard-wamp/switchyard/config"
	"github.com/switchyard-wamp/switchyard/master"
	"github.com/switchyard-wamp/switchyard/node"
)

// follower ties a cluster node to the masters (cluster.masters): the member registers
// and follows the map and the cluster config versions; each new map changes the node's
// membership (RouterNode.SetRouters, proxy Links.SetRouters), each new config version is
// applied over the node's own file through the SIGHUP path (node.Reload), so no session
// drops. Its methods are safe for concurrent use.
type follower struct {
	m   *member.Member
	log *slog.Logger
	// load reads the node's file with the cluster config's shared keys over it.
	load func(shared map[string]any) (*config.Config, error)
	// shared is the cluster config version's shared part the node runs (nil: the file's).
	shared atomic.Pointer[map[string]any]
	// cur is the config in force (the proxy places sessions by its spreads).
	cur atomic.Pointer[config.Config]

	mu     sync.Mutex
	router *node.RouterNode
	proxy  *node.ProxyNode
	reload func(*config.Config) error
}

// startFollower starts the node's membership with the masters of cfg.
func startFollower(cfg *config.Config, role string, log *slog.Logger,
	load func(shared map[string]any) (*config.Config, error)) (*follower, error) {
	f := &follower{log: log, load: load}
	f.cur.Store(cfg)
	cl := cfg.Cluster
	mc := member.Config{Masters: cl.Masters, Node: cl.Node, Key: cfg.MasterKey(), Role: master.NodeProxy,
		Admin: cfg.Node.Admin, Version: version, Logger: log, OnMap: f.onMap, OnConfig: f.onConfig, Load: f.loadReport}
	if role == config.RoleRouter {
		mc.Role, mc.Link = master.NodeRouter, cl.Link
	}
	m, err := member.Start(mc)
	if err != nil {
		return nil, err
	}
	f.m = m
	return f, nil
}

// waitFirstMap waits until a master answered (the first map, and the config version
// of the same registration), or a SIGINT/SIGTERM gives up.
func (f *follower) waitFirstMap(masters []string) (master.Map, error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	f.log.Info("waiting for a master", "masters", masters)
	return f.m.WaitMap(ctx)
}

// attach hands the follower the node it drives (started with config started), and
// gives the node the map and the config version that may have come while it started.
func (f *follower) attach(r *node.RouterNode, p *node.ProxyNode, reload func(*config.Config) error, started *config.Config) {
	f.mu.Lock()
	f.router, f.proxy, f.reload = r, p, reload
	f.mu.Unlock()
	if mp, ok := f.m.Map(); ok {
		f.onMap(mp)
	}
	if cur := f.cur.Load(); cur != started {
		if err := reload(cur); err != nil {
			f.log.Error("cluster config not applied, the running config stays in force", "err", err)
		}
	}
}

// onMap changes the node's membership.
func (f *follower) onMap(mp master.Map) {
	f.mu.Lock()
	r, p := f.router, f.proxy
	f.mu.Unlock()
	switch {
	case r != nil:
		r.SetRouters(member.Routers(mp))
	case p != nil:
		p.Links.SetRouters(member.Routers(mp))
	}
}

// onConfig applies a cluster config version over the node's file: validated like a
// SIGHUP reload, and refused (the running config stays) when it does not suit the node.
func (f *follower) onConfig(cv master.ConfigVersion) error {
	cfg, err := f.load(cv.Config)
	if err != nil {
		return fmt.Errorf("cluster config version %d: %w", cv.Version, err)
	}
	f.mu.Lock()
	reload := f.reload
	f.mu.Unlock()
	if reload != nil {
		if err := reload(cfg); err != nil {
			return fmt.Errorf("cluster config version %d: %w", cv.Version, err)
		}
	}
	shared := cv.Config
	f.shared.Store(&shared)
	f.cur.Store(cfg)
	return nil
}

// sharedConfig is the shared part the node runs (nil: its file's own).
func (f *follower) sharedConfig() map[string]any {
	if p := f.shared.Load(); p != nil {
		return *p
	}
	return nil
}

// spreadOf places by the config in force.
func (f *follower) spreadOf(realm, authrole string) int {
	return f.cur.Load().SpreadOf(realm, authrole)
}

// loadReport is the load a heartbeat reports.
func (f *follower) loadReport() member.Load {
	f.mu.Lock()
	r, p := f.router, f.proxy
	f.mu.Unlock()
	switch {
	case r != nil:
		ls := r.LinkStats()
		return member.Load{Sessions: r.Node.Router.SessionCount(), LinksUp: r.LinksUp(),
			MessagesIn: ls.FramesIn, MessagesOut: ls.FramesOut}
	case p != nil:
		ld := member.Load{Sessions: p.Links.Sessions(), LinksUp: p.Links.LinksUp()}
		if p.Node.Server != nil {
			st := p.Node.Server.Stats()
			ld.MessagesIn, ld.MessagesOut = st.MessagesIn, st.MessagesOut
		}
		return ld
	}
	return member.Load{}
}

// stop leaves the cluster (a router leaves the map at once) within ctx.
func (f *follower) stop(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := f.m.Stop(ctx, true); err != nil {
		f.log.Warn("leaving the cluster", "err", err)
	}
}
