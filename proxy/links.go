package proxy

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/puzpuzpuz/xsync/v3"
	"github.com/switchyard-wamp/switchyard/cluster/placement"
	"github.com/switchyard-wamp/switchyard/cluster/wire"
	"github.com/switchyard-wamp/switchyard/engine"
	"github.com/switchyard-wamp/switchyard/link"
)

// Close reasons a proxy gives its clients when their router is gone or refuses.
const (
	// CloseRouterLost is the GOODBYE reason for sessions whose router link broke: the
	// client should reconnect (it lands on the slot's next owner).
	CloseRouterLost = "switchyard.close.router_lost"
	// ErrRouterUnavailable is the ABORT reason when no router can take a new session.
	ErrRouterUnavailable = "switchyard.error.router_unavailable"
)

// RouterAddr names a router node and its link address. Plain data.
type RouterAddr struct {
	Name string
	Addr string
	// Tag is the router's stable tag from the master's map (master.MapRouter.Tag), 0 in
	// static mode. Proxies ignore it; a router takes its own as its span tag.
	Tag int
}

// LinksConfig configures a proxy's links to the routers of a cluster.
type LinksConfig struct {
	// Link is this node's link identity, secret and TLS (Node and Role are required).
	Link link.Config
	// Routers are the router nodes; sessions are placed over those whose links are up.
	// SetRouters replaces them as the master's map changes; may be empty at start
	// then (every Open is refused until a map names a router).
	Routers []RouterAddr
	// Slots is the number of hash slots (placement); PerPeer the links per router.
	Slots, PerPeer int
	// Realms are the realms the cluster serves; SpreadOf(realm, authrole) is how many
	// slots that role's sessions spread over (nil, or less than 2: one slot).
	Realms   []string
	SpreadOf func(realm, authrole string) int
	// Place, when set, names the router of a new session before the placement map is
	// asked (tests and benchmarks pin sessions to routers with it, e.g. to put the
	// sessions of one realm on different routers deterministically). It returns "" to
	// leave the choice to the map; a router that is unknown or whose links are down is
	// ignored the same way. It must be safe for concurrent use.
	Place func(realm, authrole string, session uint64) string
	// OpenTimeout bounds the wait for a router's answer to Open (default 10 s).
	OpenTimeout time.Duration
	Logger      *slog.Logger
}

// Links is a proxy node's side of the cluster: a link pool to every router, the
// placement of new sessions, and the table of the sessions it forwards. It implements
// Cluster and link.Handler. Its methods are safe for concurrent use.
type Links struct {
	cfg LinksConfig
	log *slog.Logger
	// set is the router membership (pools and placement map), swapped whole by
	// SetRouters under setMu and read lock-free: a new session is placed by the set it
	// loads, and a session keeps the link it got for life.
	set      atomic.Pointer[routerSet]
	setMu    sync.Mutex
	realms   atomic.Pointer[map[string]bool] // replaced whole by SetRealms
	sessions *xsync.MapOf[uint64, *RemoteSession]
	opening  *xsync.MapOf[uint64, *opening]
	calls    *xsync.MapOf[uint64, func(engine.CallResult)]
	callID   atomic.Uint64
	closed   atomic.Bool
	// cookieSink receives the cookies other proxies share (the frontend's stores).
	cookieSink atomic.Pointer[func(wire.Cookie)]
}

// routerSet is one membership: a link pool per router and the placement map over
// their names. Never changed once stored.
type routerSet struct {
	pools map[string]*link.Pool // by router name
	place *placement.Map
}

// down reports whether router name is unknown or has no link up (placement skips it).
func (rs *routerSet) down(name string) bool {
	p := rs.pools[name]
	return p == nil || !p.Up()
}

// opening is a session whose Open awaits the router's answer.
type opening struct {
	rs   *RemoteSession
	once sync.Once
	done func(rs *RemoteSession, abortURI, why string)
	// timer is set after o is visible in Links.opening, where OnLinkDown may finish it
	// first: an atomic, so that finish reads it safely (nil: not set yet; the timer
	// then finds nothing to end when it fires).
	timer atomic.Pointer[time.Timer]
}

func (o *opening) finish(rs *RemoteSession, abortURI, why string) {
	o.once.Do(func() {
		if t := o.timer.Load(); t != nil {
			t.Stop()
		}
		o.done(rs, abortURI, why)
	})
}

// NewLinks dials every router (links come up in the background) and returns the proxy's
// cluster backend. With no routers, every new session is refused until SetRouters
// names some (a proxy following a master's map).
func NewLinks(cfg LinksConfig) (*Links, error) {
	if cfg.Slots <= 0 {
		cfg.Slots = 4096
	}
	if cfg.PerPeer <= 0 {
		cfg.PerPeer = 2
	}
	if cfg.OpenTimeout <= 0 {
		cfg.OpenTimeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Link.Logger == nil {
		cfg.Link.Logger = cfg.Logger
	}
	ls := &Links{cfg: cfg, log: cfg.Logger,
		sessions: xsync.NewMapOf[uint64, *RemoteSession](), opening: xsync.NewMapOf[uint64, *opening](),
		calls: xsync.NewMapOf[uint64, func(engine.CallResult)]()}
	ls.SetRealms(cfg.Realms)
	ls.set.Store(&routerSet{pools: map[string]*link.Pool{}, place: placement.New(cfg.Slots, nil)})
	ls.SetRouters(cfg.Routers)
	return ls, nil
}

// SetRouters makes routers the membership: new sessions are placed by the new map at
// once (over its routers whose links are up); links to a router new to the set start
// dialing; a router that left the set has its links closed, and the sessions it held
// end as when its links break (GOODBYE CloseRouterLost, the client reconnects). No
// session of a router that stays moves. A router whose address changed is redialed.
// Safe for concurrent use; the membership of the last call wins. After Close it does
// nothing.
func (ls *Links) SetRouters(routers []RouterAddr) {
	ls.setMu.Lock()
	if ls.closed.Load() {
		ls.setMu.Unlock()
		return
	}
	cur := ls.set.Load()
	next := &routerSet{pools: make(map[string]*link.Pool, len(routers))}
	names := make([]string, 0, len(routers))
	for _, r := range routers {
		if _, dup := next.pools[r.Name]; dup || r.Name == "" {
			continue
		}
		names = append(names, r.Name)
		if p, ok := cur.pools[r.Name]; ok && p.Addr() == r.Addr {
			next.pools[r.Name] = p
			continue
		}
		next.pools[r.Name] = link.Dial(r.Addr, ls.cfg.PerPeer, ls.cfg.Link, ls)
		if len(cur.pools) > 0 {
			ls.log.Info("cluster: router added", "router", r.Name, "link", r.Addr)
		}
	}
	next.place = placement.New(ls.cfg.Slots, names)
	var closing []*link.Pool
	for name, p := range cur.pools {
		if next.pools[name] != p {
			closing = append(closing, p)
			ls.log.Info("cluster: router removed", "router", name)
		}
	}
	ls.set.Store(next)
	ls.setMu.Unlock()
	for _, p := range closing {
		p.Close()
	}
}

// Routers returns the names of the routers of the current membership, sorted. Safe for
// concurrent use.
func (ls *Links) Routers() []string { return ls.set.Load().place.Routers() }

// LinksUp returns how many links to the routers are up. Safe for concurrent use.
func (ls *Links) LinksUp() int {
	n := 0
	for _, p := range ls.set.Load().pools {
		n += p.Stats().Links
	}
	return n
}

// Close closes every link; the sessions they carried are closed by OnLinkDown.
func (ls *Links) Close() {
	ls.setMu.Lock()
	ls.closed.Store(true)
	ls.setMu.Unlock()
	for _, p := range ls.set.Load().pools {
		p.Close()
	}
}

// Ready reports whether at least one router link is up.
func (ls *Links) Ready() bool {
	for _, p := range ls.set.Load().pools {
		if p.Up() {
			return true
		}
	}
	return false
}

// WaitReady waits until every link to every router is up (PerPeer each), or until
// timeout; it reports whether they all are. One link up per router would do for
// placement, but a session whose id picks a link still dialing could not open.
func (ls *Links) WaitReady(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		all := true
		for _, p := range ls.set.Load().pools {
			all = all && p.Stats().Links >= ls.cfg.PerPeer
		}
		if all {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Shutdown implements Cluster.
func (ls *Links) Shutdown(reason string) {
	ls.sessions.Range(func(id uint64, rs *RemoteSession) bool {
		if _, opening := ls.opening.Load(id); opening {
			return true
		}
		if b := goodbyeBytes(rs.conn.Serializer(), reason, "the proxy is shutting down"); b != nil {
			_ = rs.conn.Send(b)
		}
		rs.Leave()
		return true
	})
}

// CutForTest closes every link to router (fault tests): the link's sessions end with
// GOODBYE CloseRouterLost and the pool reconnects.
func (ls *Links) CutForTest(router string) {
	p := ls.set.Load().pools[router]
	if p == nil {
		return
	}
	for k := range uint64(ls.cfg.PerPeer) {
		if l := p.Pick(k); l != nil {
			l.Close(fmt.Errorf("cut by test"))
		}
	}
}

// Pool returns the link pool to router (nil for an unknown name), for counters.
func (ls *Links) Pool(router string) *link.Pool { return ls.set.Load().pools[router] }

// ShareCookie implements Cluster: the cookie goes to every router that is up, which
// keep it and pass it on to the other proxies.
func (ls *Links) ShareCookie(c wire.Cookie) {
	b := wire.Encode(c)
	for _, p := range ls.set.Load().pools {
		if l := p.PickUp(0); l != nil {
			_ = l.Send(link.Kind(wire.CookieSet), 0, b)
		}
	}
}

// SetCookieSink implements Cluster.
func (ls *Links) SetCookieSink(f func(wire.Cookie)) { ls.cookieSink.Store(&f) }

// Sessions returns the number of sessions this proxy forwards.
func (ls *Links) Sessions() int { return ls.sessions.Size() }

// HasRealm implements Cluster.
func (ls *Links) HasRealm(realm string) bool { return (*ls.realms.Load())[realm] }

// SetRealms makes realms the realms the cluster serves (a reload, or a new cluster config
// version from the master): handshakes for a realm no longer listed are refused; the
// sessions of the others go on. Safe for concurrent use.
func (ls *Links) SetRealms(realms []string) {
	m := make(map[string]bool, len(realms))
	for _, r := range realms {
		m[r] = true
	}
	ls.realms.Store(&m)
}

// routerFor places a new session by membership set: the owner of its slot among the
// routers whose links are up.
func (ls *Links) routerFor(set *routerSet, realm, authrole string, id uint64) string {
	spread := 1
	if ls.cfg.SpreadOf != nil {
		spread = max(ls.cfg.SpreadOf(realm, authrole), 1)
	}
	return set.place.PlaceExcept(realm, authrole, spread, id, set.down)
}

// pinned is the router cfg.Place names for a new session, if it is in set and up; "".
func (ls *Links) pinned(set *routerSet, realm, authrole string, id uint64) string {
	if ls.cfg.Place == nil {
		return ""
	}
	r := ls.cfg.Place(realm, authrole, id)
	if set.down(r) {
		return ""
	}
	return r
}

// Open implements Cluster.
func (ls *Links) Open(c engine.Peer, req wire.OpenReq, done func(rs *RemoteSession, abortURI, why string)) {
	id := engine.NewSessionID()
	for _, taken := ls.sessions.Load(id); taken; _, taken = ls.sessions.Load(id) {
		id = engine.NewSessionID()
	}
	set := ls.set.Load()
	router := ls.pinned(set, req.Realm, req.AuthRole, id)
	if router == "" {
		router = ls.routerFor(set, req.Realm, req.AuthRole, id)
	}
	if router == "" {
		go done(nil, ErrRouterUnavailable, "no router is reachable for this realm and role; try again later")
		return
	}
	l := set.pools[router].PickUp(id)
	if l == nil {
		go done(nil, ErrRouterUnavailable, "router "+router+" is not reachable; try again later")
		return
	}
	rs := &RemoteSession{ID: id, Router: router, conn: c, via: l}
	rs.send = func(kind uint8, payload []byte) error { return l.Send(link.Kind(kind), id, payload) }
	rs.onLeave = func() { ls.sessions.Delete(id) }
	o := &opening{rs: rs, done: done}
	ls.sessions.Store(id, rs)
	ls.opening.Store(id, o)
	o.timer.Store(time.AfterFunc(ls.cfg.OpenTimeout, func() {
		if _, ok := ls.opening.LoadAndDelete(id); ok {
			ls.sessions.Delete(id)
			_ = l.Send(link.Kind(wire.Close), id, nil)
			o.finish(nil, ErrRouterUnavailable, "router "+router+" did not answer in time")
		}
	}))
	if err := l.Send(link.Kind(wire.Open), id, wire.Encode(req)); err != nil {
		ls.opening.Delete(id)
		ls.sessions.Delete(id)
		go o.finish(nil, ErrRouterUnavailable, "router "+router+": "+err.Error())
	}
}

// CallProcedure implements Cluster: the call runs on the router that the realm's
// "trusted" placement picks (any router reaches every callee of the realm).
func (ls *Links) CallProcedure(realm, procedure string, args []any, kwargs map[string]any, timeout time.Duration,
	done func(engine.CallResult)) {
	id := ls.callID.Add(1)
	set := ls.set.Load()
	router := ls.routerFor(set, realm, "", id)
	var l *link.Link
	if router != "" {
		l = set.pools[router].PickUp(id)
	}
	if l == nil {
		go done(engine.CallResult{Err: fmt.Errorf("no router reachable for realm %q", realm)})
		return
	}
	ls.calls.Store(id, done)
	time.AfterFunc(timeout+time.Second, func() {
		if d, ok := ls.calls.LoadAndDelete(id); ok {
			d(engine.CallResult{Err: fmt.Errorf("call %s: router %s did not answer", procedure, router)})
		}
	})
	req := wire.CallReq{Realm: realm, Procedure: procedure, Args: args, Kwargs: kwargs, TimeoutMS: timeout.Milliseconds()}
	if err := l.Send(link.Kind(wire.Call), id, wire.Encode(req)); err != nil {
		if d, ok := ls.calls.LoadAndDelete(id); ok {
			go d(engine.CallResult{Err: fmt.Errorf("call %s: %w", procedure, err)})
		}
	}
}

// OnLinkUp implements link.Handler.
func (ls *Links) OnLinkUp(l *link.Link) {
	ls.log.Info("cluster link up", "router", l.Peer().Node)
}

// OnFrame implements link.Handler: the routers' answers and their messages for clients.
func (ls *Links) OnFrame(l *link.Link, f *link.Frame) {
	if f.Targets != nil {
		// One payload for several sessions (typically an EVENT, also e.g. Close):
		// one delivery per id, the same bytes to each connection. An EVENT is the
		// hot case: a plain loop, no closure per frame.
		if uint8(f.Kind) == wire.Msg {
			for _, id := range f.Targets {
				ls.deliver(id, f.Payload)
			}
			return
		}
		f.Each(func(one *link.Frame) { ls.OnFrame(l, one) })
		return
	}
	switch uint8(f.Kind) {
	case wire.Msg:
		ls.deliver(f.Session, f.Payload)
	case wire.Opened:
		if o, ok := ls.opening.LoadAndDelete(f.Session); ok {
			o.finish(o.rs, "", "")
		}
	case wire.Refused:
		var r wire.Refusal
		if err := wire.Decode(f.Payload, &r); err != nil {
			r = wire.Refusal{Reason: ErrRouterUnavailable, Message: err.Error()}
		}
		if o, ok := ls.opening.LoadAndDelete(f.Session); ok {
			ls.sessions.Delete(f.Session)
			o.finish(nil, r.Reason, r.Message)
		}
	case wire.Close:
		if rs, ok := ls.sessions.LoadAndDelete(f.Session); ok {
			rs.left.Store(true) // the router knows
			rs.conn.Close()
		}
	case wire.CookieSet:
		var c wire.Cookie
		if err := wire.Decode(f.Payload, &c); err != nil {
			ls.log.Warn("cluster: bad cookie frame", "router", l.Peer().Node, "err", err)
			return
		}
		if sink := ls.cookieSink.Load(); sink != nil {
			(*sink)(c)
		}
	case wire.CallResult:
		done, ok := ls.calls.LoadAndDelete(f.Session)
		if !ok {
			return
		}
		var r wire.CallRes
		res := engine.CallResult{}
		if err := wire.Decode(f.Payload, &r); err != nil {
			res.Err = err
		} else {
			res.Args, res.Kwargs, res.ErrorURI = r.Args, r.Kwargs, r.ErrorURI
			if r.Failure != "" {
				res.Err = fmt.Errorf("%s", r.Failure)
			}
		}
		go done(res)
	default:
		ls.log.Warn("cluster: unexpected frame from router", "router", l.Peer().Node, "kind", f.Kind)
	}
}

// deliver queues one message from a router to a client connection.
func (ls *Links) deliver(id uint64, msg []byte) {
	if rs, ok := ls.sessions.Load(id); ok {
		_ = rs.conn.Send(msg)
	}
}

// OnLinkDown implements link.Handler: the sessions that lived behind l are over. Their
// clients get GOODBYE CloseRouterLost and their connections close, so that they
// reconnect and land on a router that is up.
func (ls *Links) OnLinkDown(l *link.Link, err error) {
	router := l.Peer().Node
	if !ls.closed.Load() {
		ls.log.Warn("cluster link down", "router", router, "err", err)
	}
	var lost []*RemoteSession
	ls.sessions.Range(func(_ uint64, rs *RemoteSession) bool {
		if rs.via == l {
			lost = append(lost, rs)
		}
		return true
	})
	for _, rs := range lost {
		ls.sessions.Delete(rs.ID)
		rs.left.Store(true)
		if o, ok := ls.opening.LoadAndDelete(rs.ID); ok {
			o.finish(nil, ErrRouterUnavailable, "router "+router+" went away")
			continue
		}
		if b := goodbyeBytes(rs.conn.Serializer(), CloseRouterLost, "router "+router+" is gone; reconnect"); b != nil {
			_ = rs.conn.Send(b)
		}
		rs.conn.Close()
	}
}
