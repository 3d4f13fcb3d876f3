// Package member is a cluster node's side of the master (package master): the node
// registers on the management realm, holds its lease by heartbeat, and follows the
// slot map and the cluster config by their versions (the master's topics are a hint;
// every heartbeat answer names the current versions, so a missed event costs at most
// one heartbeat). It tries the masters in turn, follows ErrNotLeader redirects to the
// leader, and while no master answers it keeps the last map and config it had (the
// node keeps routing by them) and retries; when a master is back it registers again,
// without a restart. It is never in the data path: it only hands new maps and configs
// to the node through callbacks.
package member

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/switchyard-wamp/switchyard/client"
	"github.com/switchyard-wamp/switchyard/master"
	"github.com/switchyard-wamp/switchyard/proxy"
)

// Config configures a Member.
type Config struct {
	// Masters are the management URLs of the master replicas, tried in turn.
	Masters []string
	// Node is this node's name (the WAMP-CRA authid); Key its key on the masters (its
	// per-node key, or the cluster secret).
	Node, Key string
	// Role is master.NodeRouter or master.NodeProxy; Link a router's link address the
	// other nodes dial; Admin its admin listener ("" if none); Version the build.
	Role, Link, Admin, Version string
	// Load reports the node's load for heartbeats (nil: zeros). Called from the
	// member's goroutine.
	Load func() Load
	// OnMap receives every map whose version differs from the last one handed over,
	// in order, on the member's goroutine (never two at once). It should return soon:
	// heartbeats wait for it.
	OnMap func(master.Map)
	// OnConfig receives every new cluster config version, as OnMap. An error means the
	// node could not apply it (it keeps running the old one and reports the old version
	// in heartbeats); that version is not offered again, a later one is.
	OnConfig func(master.ConfigVersion) error
	// Retry is the pause before trying the next master after a failure (default
	// 250 ms; it doubles while failures last, up to 8 times); CallTimeout bounds each
	// call to a master (default 2 s).
	Retry, CallTimeout time.Duration
	// Logger receives the member's log (nil: slog.Default()); the node's logger, which
	// names the node already.
	Logger *slog.Logger
}

// Member is a node's running membership. Its methods are safe for concurrent use.
type Member struct {
	cfg Config
	log *slog.Logger

	mu         sync.Mutex
	cur        master.Map // the last map handed to OnMap
	hasMap     bool
	cfgRunning int64 // the config version the node runs (0: its file's)
	cfgTried   int64 // the last config version offered to OnConfig
	url        string
	registered bool
	registers  int
	stopped    bool
	leaveCtx   context.Context // set by Stop(ctx, true)
	leaveErr   error

	firstMap chan struct{}
	stop     chan struct{}
	done     chan struct{}
}

// Status is what a Member knows right now. Plain data.
// Load is what a heartbeat reports about the node: the master's status and cluster
// page show it.
type Load struct {
	Sessions, LinksUp       int
	MessagesIn, MessagesOut uint64
}

// Status is what a Member knows now (Member.Status).
type Status struct {
	Master        string // the master it is registered with ("" while none answers)
	Registered    bool
	MapVersion    int64 // the map it routes by (0: none yet)
	ConfigVersion int64 // the cluster config version it runs (0: its own file's)
	Registrations int   // successful registrations so far (re-registrations included)
}

// Start starts following the masters in the background and returns at once. Safe for
// concurrent use.
func Start(cfg Config) (*Member, error) {
	if len(cfg.Masters) == 0 {
		return nil, errors.New("member: no master URL")
	}
	if cfg.Node == "" || (cfg.Role != master.NodeRouter && cfg.Role != master.NodeProxy) {
		return nil, fmt.Errorf("member: node %q with role %q (want %s or %s)", cfg.Node, cfg.Role, master.NodeRouter, master.NodeProxy)
	}
	if cfg.Retry <= 0 {
		cfg.Retry = 250 * time.Millisecond
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = 2 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	m := &Member{cfg: cfg, log: cfg.Logger, firstMap: make(chan struct{}),
		stop: make(chan struct{}), done: make(chan struct{})}
	go m.run()
	return m, nil
}

// Map returns the last map handed over, and whether there is one. Safe for concurrent
// use.
func (m *Member) Map() (master.Map, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cur, m.hasMap
}

// WaitMap waits for the first map (a router needs it, and its tag in it, before it
// starts). Safe for concurrent use.
func (m *Member) WaitMap(ctx context.Context) (master.Map, error) {
	select {
	case <-m.firstMap:
		mp, _ := m.Map()
		return mp, nil
	case <-ctx.Done():
		return master.Map{}, fmt.Errorf("member %s: no map from the masters %v: %w", m.cfg.Node, m.cfg.Masters, ctx.Err())
	case <-m.done:
		return master.Map{}, fmt.Errorf("member %s: stopped", m.cfg.Node)
	}
}

// Status returns what the member knows now. Safe for concurrent use.
func (m *Member) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	return Status{Master: m.url, Registered: m.registered, MapVersion: m.cur.Version,
		ConfigVersion: m.cfgRunning, Registrations: m.registers}
}

// Stop stops following the masters. With leave, a registered node first tells the
// master it leaves (ProcLeave: a router leaves the map at once instead of at lease
// expiry), within ctx. The last map and config stay as they are. Safe for concurrent
// use; idempotent.
func (m *Member) Stop(ctx context.Context, leave bool) error {
	m.mu.Lock()
	if m.stopped {
		m.mu.Unlock()
		<-m.done
		return nil
	}
	m.stopped = true
	if leave {
		m.leaveCtx = ctx
	}
	m.mu.Unlock()
	// The member's goroutine leaves (it owns the session: no heartbeat of its own can
	// answer not_registered after the leave and register the node again).
	close(m.stop)
	<-m.done
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.leaveErr
}

// leave tells the master the node leaves, when Stop asked for it; s is registered.
func (m *Member) leave(s *client.Session) {
	m.mu.Lock()
	ctx := m.leaveCtx
	m.mu.Unlock()
	if ctx == nil {
		return
	}
	err := master.Call(ctx, s, master.ProcLeave, master.LeaveReq{Node: m.cfg.Node}, nil)
	if err != nil {
		err = fmt.Errorf("member %s: leave: %w", m.cfg.Node, err)
	} else {
		m.log.Info("master: left the cluster")
	}
	m.mu.Lock()
	m.leaveErr = err
	m.mu.Unlock()
}

// run connects to one master after the other until stopped.
func (m *Member) run() {
	defer close(m.done)
	next, redirect, failures := 0, "", 0
	for {
		url := redirect
		redirect = ""
		if url == "" {
			url = m.cfg.Masters[next%len(m.cfg.Masters)]
			next++
		}
		ctx, cancel := context.WithTimeout(context.Background(), m.cfg.CallTimeout)
		s, err := master.Dial(ctx, url, m.cfg.Node, m.cfg.Key, nil)
		cancel()
		if err == nil {
			var leader string
			before := m.Status().Registrations
			leader, err = m.session(s, url)
			_ = s.Close()
			m.mu.Lock()
			m.registered, m.url = false, ""
			if m.registers > before {
				failures = 0 // it was registered: a new outage starts here
			}
			m.mu.Unlock()
			if leader != "" && leader != url {
				redirect = leader
				m.log.Info("master: following the leader", "from", url, "leader", leader)
			}
		}
		if m.isStopped() {
			return
		}
		var nl errNotLeader
		if errors.As(err, &nl) {
			// A redirect, or an election (no leader named yet): ask again soon, without
			// backing off or calling the master unreachable.
			failures = min(failures, 1)
		}
		if err != nil && redirect == "" {
			failures++
			lvl := slog.LevelDebug
			if failures == 1 || failures%len(m.cfg.Masters) == 0 && failures/len(m.cfg.Masters)%20 == 1 {
				lvl = slog.LevelWarn // once per outage, then now and then
			}
			m.log.Log(context.Background(), lvl, "master: unreachable, keeping the last map and config",
				"master", url, "err", err, "map_version", m.Status().MapVersion)
		}
		// Back off while failures last (a wrong key must not hammer the master into
		// its per-address lockout): Retry twice, then doubling up to 8 times Retry.
		pause := m.cfg.Retry << min(max(failures-2, 0), 3)
		if redirect != "" {
			pause = 20 * time.Millisecond
		}
		select {
		case <-m.stop:
			return
		case <-time.After(pause):
		}
		if err == nil && redirect == "" {
			failures = 0
		}
	}
}

func (m *Member) isStopped() bool {
	select {
	case <-m.stop:
		return true
	default:
		return false
	}
}

// errNotLeader carries the leader an ErrNotLeader named.
type errNotLeader struct{ leader string }

func (e errNotLeader) Error() string { return "not the leader (leader: " + e.leader + ")" }

// session serves one management session: subscribe to the version topics, register,
// heartbeat until the session fails or the member stops. It returns the leader to go
// to when the master said it is not the leader.
func (m *Member) session(s *client.Session, url string) (string, error) {
	poke := make(chan struct{}, 1)
	hint := func(*client.Event) {
		select {
		case poke <- struct{}{}:
		default:
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), m.cfg.CallTimeout)
	defer cancel()
	for _, topic := range []string{master.TopicMap, master.TopicConfig} {
		if _, err := s.Subscribe(ctx, topic, hint, nil); err != nil {
			return "", fmt.Errorf("subscribe %s: %w", topic, err)
		}
	}
	lease, err := m.register(s, url)
	if err != nil {
		var nl errNotLeader
		if errors.As(err, &nl) {
			return nl.leader, err
		}
		return "", err
	}
	m.mu.Lock()
	m.registers++
	m.mu.Unlock()
	m.log.Info("master: registered", "master", url, "lease_ms", lease.Milliseconds(), "map_version", m.Status().MapVersion)
	every := max(lease/3, 20*time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			m.leave(s)
			return "", nil
		case <-s.Done():
			return "", fmt.Errorf("session ended: %w", s.Err())
		case <-t.C:
		case <-poke:
		}
		res, err := m.heartbeat(s)
		var ce *client.Error
		switch {
		case errors.As(err, &ce) && ce.URI == master.ErrNotRegistered:
			m.log.Info("master: lease lost, registering again", "master", url)
			if lease, err = m.register(s, url); err != nil {
				var nl errNotLeader
				if errors.As(err, &nl) {
					return nl.leader, err
				}
				return "", err
			}
			t.Reset(max(lease/3, 20*time.Millisecond))
			continue
		case err != nil:
			if leader, ok := master.LeaderOf(err); ok {
				return leader, errNotLeader{leader}
			}
			return "", err
		}
		if err := m.follow(s, res.MapVersion, res.ConfigVersion); err != nil {
			return "", err
		}
	}
}

// register registers the node with the master at url and takes the map and config
// versions of the answer. The node counts as registered before the map is handed on, so
// that whoever WaitMap wakes sees a registered Status.
func (m *Member) register(s *client.Session, url string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), m.cfg.CallTimeout)
	defer cancel()
	var res master.RegisterRes
	err := master.Call(ctx, s, master.ProcRegister, master.RegisterReq{Node: m.cfg.Node, Role: m.cfg.Role,
		Link: m.cfg.Link, Admin: m.cfg.Admin, Version: m.cfg.Version}, &res)
	if err != nil {
		if leader, ok := master.LeaderOf(err); ok {
			return 0, errNotLeader{leader}
		}
		return 0, err
	}
	// The config first: a node waiting for its first map (WaitMap) starts with both.
	if err := m.followConfig(s, res.ConfigVersion); err != nil {
		return 0, err
	}
	m.mu.Lock()
	m.registered, m.url = true, url
	m.mu.Unlock()
	m.setMap(res.Map, true)
	return time.Duration(res.LeaseMS) * time.Millisecond, nil
}

// heartbeat renews the lease.
func (m *Member) heartbeat(s *client.Session) (master.HeartbeatRes, error) {
	req := master.HeartbeatReq{Node: m.cfg.Node}
	if m.cfg.Load != nil {
		ld := m.cfg.Load()
		req.Sessions, req.LinksUp, req.MessagesIn, req.MessagesOut = ld.Sessions, ld.LinksUp, ld.MessagesIn, ld.MessagesOut
	}
	st := m.Status()
	req.MapVersion, req.ConfigVersion = st.MapVersion, st.ConfigVersion
	ctx, cancel := context.WithTimeout(context.Background(), m.cfg.CallTimeout)
	defer cancel()
	var res master.HeartbeatRes
	err := master.Call(ctx, s, master.ProcHeartbeat, req, &res)
	return res, err
}

// follow fetches what a heartbeat says changed.
func (m *Member) follow(s *client.Session, mapVersion, cfgVersion int64) error {
	if mp, _ := m.Map(); mp.Version != mapVersion {
		ctx, cancel := context.WithTimeout(context.Background(), m.cfg.CallTimeout)
		var got master.Map
		err := master.Call(ctx, s, master.ProcGetMap, nil, &got)
		cancel()
		if err != nil {
			return err
		}
		m.setMap(got, false)
	}
	return m.followConfig(s, cfgVersion)
}

// setMap hands mp over when it is new. From the leader (register) any other version
// counts (a master rebuilt from scratch starts again low); from get_map only a newer
// one (a lagging replica must not take the node back).
func (m *Member) setMap(mp master.Map, fromLeader bool) {
	m.mu.Lock()
	first := !m.hasMap
	if !first && (mp.Version == m.cur.Version || !fromLeader && mp.Version < m.cur.Version) {
		m.mu.Unlock()
		return
	}
	m.cur, m.hasMap = mp, true
	m.mu.Unlock()
	names := make([]string, 0, len(mp.Routers))
	for _, r := range mp.Routers {
		names = append(names, r.Name)
	}
	m.log.Info("master: new map", "version", mp.Version, "routers", names)
	if m.cfg.OnMap != nil {
		m.cfg.OnMap(mp)
	}
	if first {
		close(m.firstMap)
	}
}

// followConfig fetches and offers config version v when it is one not offered yet.
func (m *Member) followConfig(s *client.Session, v int64) error {
	m.mu.Lock()
	skip := v == 0 || v == m.cfgRunning || v == m.cfgTried
	m.mu.Unlock()
	if skip {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), m.cfg.CallTimeout)
	var cv master.ConfigVersion
	err := master.Call(ctx, s, master.ProcGetConfig, nil, &cv)
	cancel()
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.cfgTried = cv.Version
	m.mu.Unlock()
	if m.cfg.OnConfig != nil {
		err = m.cfg.OnConfig(cv)
	}
	if err != nil {
		m.log.Error("master: cluster config version not applied, the running config stays in force",
			"version", cv.Version, "err", err)
		return nil
	}
	m.mu.Lock()
	m.cfgRunning = cv.Version
	m.mu.Unlock()
	m.log.Info("master: cluster config applied", "version", cv.Version)
	return nil
}

// Routers is the membership of mp as the nodes take it (node.RouterNode.SetRouters,
// proxy.Links.SetRouters): name, link address and tag of every router. Safe for
// concurrent use.
func Routers(mp master.Map) []proxy.RouterAddr {
	out := make([]proxy.RouterAddr, 0, len(mp.Routers))
	for _, r := range mp.Routers {
		out = append(out, proxy.RouterAddr{Name: r.Name, Addr: r.Link, Tag: r.Tag})
	}
	return out
}

// TagOf returns router name's tag in mp (0: it is not in the map). Safe for concurrent
// use.
func TagOf(mp master.Map, name string) int {
	for _, r := range mp.Routers {
		if r.Name == name {
			return r.Tag
		}
	}
	return 0
}
