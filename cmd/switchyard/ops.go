package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/switchyard-wamp/switchyard/metrics"
	"github.com/switchyard-wamp/switchyard/node"
	"github.com/switchyard-wamp/switchyard/profiles"
	"github.com/switchyard-wamp/switchyard/statuspage"
)

// newLogger builds the process logger on w: format json, text, or auto (JSON when w
// is not a terminal, so that log collectors get one object per line; text for a person
// at a terminal).
func newLogger(w *os.File, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "auto", "":
		if isTerminal(w) {
			return slog.New(slog.NewTextHandler(w, opts)), nil
		}
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("log format %q: want auto, json or text", format)
}

// opsNode is what the admin listener and the drain need of a running node of any role.
// Its methods are safe for concurrent use.
type opsNode struct {
	role, name string
	n          *node.Node
	// links returns the cluster links by peer (nil: standalone).
	links func() []node.PeerLink
	// clusterReady says whether the cluster side can serve (nil: always).
	clusterReady func() bool
	// memberReady says whether a node that follows the masters has registered once and
	// holds a map (nil: no masters). A master outage later does not unready it: the
	// node keeps routing on its last map.
	memberReady func() (bool, string)
	// sessions overrides the session count (a proxy holds its sessions on routers).
	sessions func() int
	// extra are more admin endpoints by path (e.g. a role's own debug page).
	extra    map[string]http.Handler
	started  time.Time
	draining atomic.Bool
	log      *slog.Logger
}

// ready is what /readyz answers: not while draining, not before the listeners are up,
// and in a cluster not before the cluster side is (a proxy: a router link is up).
func (o *opsNode) ready() (bool, string) {
	switch {
	case o.draining.Load():
		return false, "draining"
	case o.n.Server == nil && o.role != "router":
		return false, "listeners not started"
	case o.clusterReady != nil && !o.clusterReady():
		return false, "no router link up"
	}
	if o.memberReady != nil {
		if ok, why := o.memberReady(); !ok {
			return false, why
		}
	}
	return true, "ready"
}

// adminHandler is the admin listener: the live status page at /, status.json,
// /metrics, /healthz, /readyz, /debug/stats and /debug/pprof/.
func (o *opsNode) adminHandler() http.Handler {
	src := metrics.Source{Role: o.role, Router: o.n.Router, Server: o.n.Server, Frontend: o.n.FrontendStats,
		Links: o.links, Ready: func() bool { ok, _ := o.ready(); return ok }, Draining: o.draining.Load}
	handlers := map[string]http.Handler{
		"/{$}":         statuspage.NodePage(),
		"/status.json": statuspage.NodeJSON(o.status),
		"/metrics":     metrics.Handler(src),
		"/healthz": http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = w.Write([]byte("ok\n"))
		}),
		"/readyz": http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			ok, why := o.ready()
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			if !ok {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
			_, _ = w.Write([]byte(why + "\n"))
		}),
		"/debug/stats": statsHandler(o.n),
		"/drain":       drainHandler(),
	}
	for path, h := range o.extra {
		handlers[path] = h
	}
	return profiles.AdminHandler(handlers)
}

// drainHandler starts the lame-duck drain on POST (what `switchyard drain` sends, for
// a Kubernetes preStop hook or an image without kill): it hands the drain signal
// (SIGUSR2) to the node's signal loop, so the drain runs exactly as for the signal.
func drainHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "POST starts the lame-duck drain", http.StatusMethodNotAllowed)
			return
		}
		select {
		case selfSignals <- drainSignal:
		default: // one is on its way already
		}
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte("draining\n"))
	})
}

// runDrain is `switchyard drain`: it asks the node whose admin listener is --admin to
// start its lame-duck drain (POST /drain) and, with --wait, waits until the process has
// exited (its admin listener stops answering), for a Kubernetes preStop hook.
func runDrain(args []string) error {
	fs := flag.NewFlagSet("drain", flag.ContinueOnError)
	admin := fs.String("admin", "127.0.0.1:9090", "admin listener (node.admin) of the node to drain")
	wait := fs.Duration("wait", 0, "wait up to this long for the node to exit (0: return at once)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Post("http://"+*admin+"/drain", "text/plain", nil)
	if err != nil {
		return fmt.Errorf("drain: %w", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("drain: %s answered %s", *admin, resp.Status)
	}
	for deadline := time.Now().Add(*wait); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		resp, err := c.Get("http://" + *admin + "/healthz")
		if err != nil {
			return nil // gone: the drain is over
		}
		_ = resp.Body.Close()
	}
	if *wait > 0 {
		return fmt.Errorf("drain: %s still up after %v", *admin, *wait)
	}
	return nil
}

// status is the node's status.json.
func (o *opsNode) status() statuspage.Node {
	ready, _ := o.ready()
	s := statuspage.Node{Node: o.name, Role: o.role, Version: versionString(), Started: o.started.UnixMilli(),
		Time: time.Now().UnixMilli(), Ready: ready, Draining: o.draining.Load(), Realms: []statuspage.Realm{}, Peers: []statuspage.Peer{}}
	for _, name := range o.n.Router.RealmNames() {
		if rl, ok := o.n.Router.Realm(name); ok {
			r := statuspage.Realm{Name: name, Sessions: rl.SessionCount(), CallsInFlight: rl.CallsInFlight()}
			s.Sessions += r.Sessions
			s.Realms = append(s.Realms, r)
		}
	}
	if o.sessions != nil {
		s.Sessions = o.sessions()
	}
	if o.n.Server != nil {
		st := o.n.Server.Stats()
		s.Connections, s.MessagesIn, s.MessagesOut, s.BytesIn, s.BytesOut = st.Open, st.MessagesIn, st.MessagesOut, st.BytesIn, st.BytesOut
	}
	if o.links != nil {
		for _, pl := range o.links() {
			s.Peers = append(s.Peers, statuspage.Peer{Name: pl.Peer, Up: pl.Up, Links: pl.Links, BytesIn: pl.Stats.BytesIn, BytesOut: pl.Stats.BytesOut})
			if o.n.Server == nil { // a router without client listeners: its traffic is on links
				s.MessagesIn += pl.Stats.FramesIn
				s.MessagesOut += pl.Stats.FramesOut
				s.BytesIn += pl.Stats.BytesIn
				s.BytesOut += pl.Stats.BytesOut
			}
		}
	}
	return s
}

// serveAdmin starts the admin listener on addr ("" : none); the returned func closes it.
func (o *opsNode) serveAdmin(addr string) (func(), error) {
	if addr == "" {
		return func() {}, nil
	}
	adm, bound, err := profiles.ServeAdmin(addr, o.adminHandler())
	if err != nil {
		return nil, err
	}
	o.log.Info("admin listener", "addr", bound.String(),
		"paths", strings.Join([]string{"/", "/status.json", "/metrics", "/healthz", "/readyz", "/debug/stats", "/debug/pprof/"}, " "))
	return func() { _ = adm.Close() }, nil
}

// startDrain begins the lame-duck drain (SIGUSR2) in the background: /readyz fails at
// once, the listeners close, and every session gets GOODBYE spread over period. The
// returned channel is closed when the drain is over; the caller then stops the node.
func (o *opsNode) startDrain(period time.Duration) <-chan struct{} {
	done := make(chan struct{})
	if o.draining.Swap(true) {
		return nil // already draining: its channel is the one that counts
	}
	o.log.Info("drain started: not accepting connections, GOODBYE to every session", "period", period,
		"sessions", o.status().Sessions)
	go func() {
		defer close(done)
		n := o.n.Drain(context.Background(), period)
		o.log.Info("drain done", "sessions_told_goodbye", n)
	}()
	return done
}

// awaitEndOps is awaitEnd with the lame-duck drain: SIGUSR2 calls drain (which returns
// the channel closed when the drain is over, or nil if one runs already); when it is
// over, stopping is called with SIGUSR2 and awaitEndOps returns nil. SIGINT/SIGTERM
// during a drain stop at once.
func awaitEndOps(sig <-chan os.Signal, died <-chan error, reload func(), drain func() <-chan struct{}, stopping func(os.Signal)) error {
	var drained <-chan struct{}
	for {
		select {
		case s := <-sig:
			switch s {
			case syscall.SIGHUP:
				reload()
				continue
			case drainSignal:
				if drain != nil {
					if d := drain(); d != nil {
						drained = d
					}
					continue
				}
			}
			stopping(s)
			return nil
		case <-drained:
			stopping(drainSignal)
			return nil
		case err := <-died:
			return err
		}
	}
}
