// Package router is a router node's side of the cluster: it accepts links from proxies
// (and from the other routers), joins the sessions the proxies forward to the local
// engine, and carries the routers' realm-spanning protocol (package span) between the
// engine and the links.
//
// Threading: a link's frames arrive on that link's reader goroutine, in order; the
// sessions a link carries are driven only from it (engine.Session.Receive is not safe for
// concurrent use, and a proxy sends every frame of one session on the same link). The
// engine writes to a forwarded session through remotePeer.Send, from any goroutine,
// into the link's outbound queue.
package router

import (
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/puzpuzpuz/xsync/v3"
	"github.com/switchyard-wamp/switchyard/cluster/wire"
	"github.com/switchyard-wamp/switchyard/codec"
	"github.com/switchyard-wamp/switchyard/engine"
	"github.com/switchyard-wamp/switchyard/link"
)

// SpanHandler receives the router-to-router messages (link kinds from wire.SpanBase on),
// with their kind rebased to 0, and hears of every link to another router that goes
// down (dialed or accepted): the frames queued on it may be lost, so the handler must
// not trust what it holds of that router any more (the node resynchronises the pair).
// Implemented by the router node over span.Span.
type SpanHandler interface {
	OnMessage(from string, kind uint8, payload []byte)
	// RouterLinkDown is called once per link to router peer that was up and went down,
	// on that link's reader goroutine.
	RouterLinkDown(peer string)
}

// Server is a router node's link endpoint. Its methods are safe for concurrent use.
type Server struct {
	eng  *engine.Router
	log  *slog.Logger
	ln   *link.Listener
	span atomic.Pointer[spanBox]
	// links holds the per-link state of every link up.
	links *xsync.MapOf[*link.Link, *linkState]
	// forwarded counts the sessions joined over links.
	forwarded atomic.Int64
	// routers holds, by peer router name, the links to other routers that are up
	// (dialed and accepted alike; copy on write under routersMu), so that a span message
	// can go on any link between the two when the sender's own pool has none up.
	routersMu sync.Mutex
	routers   atomic.Pointer[map[string][]*link.Link]
	// cookies are the WAMP-Cookies the proxies shared (realm + "\x00" + cookie), kept
	// to replay to a proxy whose link comes up; expired ones are dropped on replay.
	cookies *xsync.MapOf[string, []byte]
}

type spanBox struct{ h SpanHandler }

// linkState is the sessions one proxy link carries; touched only by that link's reader
// goroutine (OnFrame, then OnLinkDown).
type linkState struct {
	sessions map[uint64]*forwarded
}

// forwarded is a session joined over a link.
type forwarded struct {
	sess  *engine.Session
	codec codec.Codec
	peer  *remotePeer
}

// Config configures a router node's link endpoint.
type Config struct {
	// Addr is the link listen address (host:port; port 0 picks one).
	Addr string
	// Listener, when set, is a socket bound already that the server accepts links on
	// (Addr is then ignored); the server owns it.
	Listener net.Listener
	// Link is this node's identity, secret, TLS and limits.
	Link link.Config
}

// Listen starts a router's link endpoint in front of eng.
func Listen(eng *engine.Router, cfg Config) (*Server, error) {
	log := cfg.Link.Logger
	if log == nil {
		log = slog.Default()
		cfg.Link.Logger = log
	}
	s := &Server{eng: eng, log: log, links: xsync.NewMapOf[*link.Link, *linkState](),
		cookies: xsync.NewMapOf[string, []byte]()}
	var ln *link.Listener
	var err error
	if cfg.Listener != nil {
		ln, err = link.Serve(cfg.Listener, cfg.Link, s)
	} else {
		ln, err = link.Listen(cfg.Addr, cfg.Link, s)
	}
	if err != nil {
		return nil, fmt.Errorf("router: link listener: %w", err)
	}
	s.ln = ln
	return s, nil
}

// SetSpan sets the receiver of router-to-router messages.
func (s *Server) SetSpan(h SpanHandler) { s.span.Store(&spanBox{h}) }

// Addr returns the link listener's address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Forwarded returns the number of sessions currently joined over links.
func (s *Server) Forwarded() int64 { return s.forwarded.Load() }

// LinkStats sums the counters of the links accepted by this router (from proxies and
// from other routers) that are up now.
func (s *Server) LinkStats() link.LinkStats {
	var t link.LinkStats
	s.links.Range(func(l *link.Link, _ *linkState) bool {
		t.Add(l.Stats())
		return true
	})
	return t
}

// Close stops accepting links and closes those up; their sessions leave.
func (s *Server) Close() {
	s.ln.Close()
	s.links.Range(func(l *link.Link, _ *linkState) bool {
		l.Close(fmt.Errorf("router shutting down"))
		return true
	})
}

// OnLinkUp implements link.Handler.
func (s *Server) OnLinkUp(l *link.Link) {
	s.links.Store(l, &linkState{sessions: map[uint64]*forwarded{}})
	p := l.Peer()
	s.log.Info("cluster link up", "peer", p.Node, "role", p.Role)
	if p.Role == "proxy" {
		s.replayCookies(l)
	}
	if p.Role == "router" {
		s.editRouterLinks(p.Node, func(ls []*link.Link) []*link.Link { return append(ls, l) })
	}
}

// editRouterLinks replaces peer's entry in the router link index by edit's result.
func (s *Server) editRouterLinks(peer string, edit func([]*link.Link) []*link.Link) {
	s.routersMu.Lock()
	defer s.routersMu.Unlock()
	next := map[string][]*link.Link{}
	if cur := s.routers.Load(); cur != nil {
		for k, v := range *cur {
			next[k] = v
		}
	}
	ls := edit(slices.Clone(next[peer]))
	if len(ls) == 0 {
		delete(next, peer)
	} else {
		next[peer] = ls
	}
	s.routers.Store(&next)
}

// RouterLink returns a link to router peer that is up, dialed or accepted (key picks
// among them), or nil. Safe for concurrent use.
func (s *Server) RouterLink(peer string, key uint64) *link.Link {
	m := s.routers.Load()
	if m == nil {
		return nil
	}
	ls := (*m)[peer]
	if len(ls) == 0 {
		return nil
	}
	return ls[key%uint64(len(ls))]
}

// OnLinkDown implements link.Handler: every session the link carried leaves its realm
// (its client is gone with the proxy).
func (s *Server) OnLinkDown(l *link.Link, err error) {
	st, ok := s.links.LoadAndDelete(l)
	p := l.Peer()
	s.log.Warn("cluster link down", "peer", p.Node, "role", p.Role, "err", err)
	if p.Role == "router" {
		s.editRouterLinks(p.Node, func(ls []*link.Link) []*link.Link {
			return slices.DeleteFunc(ls, func(x *link.Link) bool { return x == l })
		})
		if b := s.span.Load(); b != nil {
			b.h.RouterLinkDown(p.Node)
		}
	}
	if ok {
		for id, fw := range st.sessions {
			delete(st.sessions, id)
			fw.peer.closed.Store(true)
			fw.sess.Leave()
			s.forwarded.Add(-1)
		}
	}
}

// msgPool holds decode targets (a Message is ~600 bytes; many links decode at once).
var msgPool = sync.Pool{New: func() any { return new(codec.Message) }}

// OnFrame implements link.Handler.
func (s *Server) OnFrame(l *link.Link, f *link.Frame) {
	if f.Targets != nil {
		// The link merged identical consecutive frames (any kind): one delivery per id.
		f.Each(func(one *link.Frame) { s.OnFrame(l, one) })
		return
	}
	k := uint8(f.Kind)
	if k >= wire.SpanBase {
		if b := s.span.Load(); b != nil {
			b.h.OnMessage(l.Peer().Node, k-wire.SpanBase, f.Payload)
		}
		return
	}
	st, ok := s.links.Load(l)
	if !ok {
		return
	}
	switch k {
	case wire.Msg:
		fw := st.sessions[f.Session]
		if fw == nil {
			return // the session ended here; the proxy learns it from our Close
		}
		m := msgPool.Get().(*codec.Message)
		defer msgPool.Put(m)
		if err := fw.codec.Decode(f.Payload, m); err != nil {
			s.log.Warn("undecodable message from a forwarded session", "session", f.Session,
				"proxy", l.Peer().Node, "err", err)
			fw.sess.Abort(engine.ErrProtocolViolation, err.Error())
			s.drop(st, f.Session)
			return
		}
		if !fw.sess.Receive(m) {
			s.drop(st, f.Session)
		}
	case wire.Open:
		s.open(l, st, f.Session, f.Payload)
	case wire.Close:
		if fw := st.sessions[f.Session]; fw != nil {
			fw.peer.closed.Store(true) // the proxy closed it already
			fw.sess.Leave()
			s.drop(st, f.Session)
		}
	case wire.Call:
		s.call(l, f.Session, f.Payload)
	case wire.CookieSet:
		s.shareCookie(l, f.Payload)
	default:
		s.log.Warn("cluster: unexpected frame", "peer", l.Peer().Node, "kind", f.Kind)
	}
}

func (s *Server) drop(st *linkState, id uint64) {
	if _, ok := st.sessions[id]; ok {
		delete(st.sessions, id)
		s.forwarded.Add(-1)
	}
}

// open joins a session a proxy forwards.
func (s *Server) open(l *link.Link, st *linkState, id uint64, payload []byte) {
	refuse := func(reason, msg string) {
		_ = l.Send(link.Kind(wire.Refused), id, wire.Encode(wire.Refusal{Reason: reason, Message: msg}))
	}
	var req wire.OpenReq
	if err := wire.Decode(payload, &req); err != nil {
		refuse(engine.ErrProtocolViolation, err.Error())
		return
	}
	if !wire.ValidSerializer(req.Serializer) {
		refuse(engine.ErrProtocolViolation, fmt.Sprintf("serializer %d unknown to this router", req.Serializer))
		return
	}
	rl, ok := s.eng.Realm(req.Realm)
	if !ok {
		refuse(engine.ErrNoSuchRealm, fmt.Sprintf("no realm %q on router", req.Realm))
		return
	}
	if _, dup := st.sessions[id]; dup {
		refuse(engine.ErrProtocolViolation, "session id already open on this link")
		return
	}
	ser := codec.Serializer(req.Serializer)
	peer := &remotePeer{l: l, id: id, ser: ser}
	sess, err := rl.JoinAs(id, peer, engine.AuthInfo{AuthID: req.AuthID, AuthRole: req.AuthRole,
		AuthMethod: req.AuthMethod, AuthProvider: req.AuthProvider, Extra: req.AuthExtra}, req.Features)
	if err != nil {
		refuse(engine.ErrProtocolViolation, err.Error())
		return
	}
	st.sessions[id] = &forwarded{sess: sess, codec: codec.For(ser), peer: peer}
	s.forwarded.Add(1)
	if err := l.Send(link.Kind(wire.Opened), id, nil); err != nil {
		sess.Leave()
		s.drop(st, id)
	}
}

// maxCookies bounds the cookies a router keeps for replay.
const maxCookies = 1 << 20

// shareCookie keeps a cookie a proxy shared and passes it to every other proxy link.
func (s *Server) shareCookie(from *link.Link, payload []byte) {
	var c wire.Cookie
	if err := wire.Decode(payload, &c); err != nil || c.Cookie == "" {
		s.log.Warn("cluster: bad cookie frame", "proxy", from.Peer().Node, "err", err)
		return
	}
	if s.cookies.Size() < maxCookies {
		s.cookies.Store(c.Realm+"\x00"+c.Cookie, slices.Clone(payload))
	}
	s.links.Range(func(l *link.Link, _ *linkState) bool {
		if l != from && l.Peer().Role == "proxy" {
			_ = l.Send(link.Kind(wire.CookieSet), 0, payload)
		}
		return true
	})
}

// replayCookies sends a proxy whose link came up every live cookie this router keeps.
func (s *Server) replayCookies(l *link.Link) {
	now := time.Now()
	s.cookies.Range(func(k string, b []byte) bool {
		var c wire.Cookie
		if wire.Decode(b, &c) != nil || now.After(c.Expires) {
			s.cookies.Delete(k)
			return true
		}
		_ = l.Send(link.Kind(wire.CookieSet), 0, b)
		return true
	})
}

// call runs a procedure call a proxy asks for (its dynamic authenticator).
func (s *Server) call(l *link.Link, id uint64, payload []byte) {
	answer := func(r wire.CallRes) { _ = l.Send(link.Kind(wire.CallResult), id, wire.Encode(r)) }
	var req wire.CallReq
	if err := wire.Decode(payload, &req); err != nil {
		answer(wire.CallRes{Failure: err.Error()})
		return
	}
	rl, ok := s.eng.Realm(req.Realm)
	if !ok {
		answer(wire.CallRes{ErrorURI: engine.ErrNoSuchRealm})
		return
	}
	rl.CallProcedure(req.Procedure, req.Args, req.Kwargs, time.Duration(req.TimeoutMS)*time.Millisecond,
		func(r engine.CallResult) {
			res := wire.CallRes{Args: r.Args, Kwargs: r.Kwargs, ErrorURI: r.ErrorURI}
			if r.Err != nil {
				res.Failure = r.Err.Error()
			}
			answer(res)
		})
}

// remotePeer is the engine's view of a client behind a proxy link.
type remotePeer struct {
	l      *link.Link
	id     uint64
	ser    codec.Serializer
	closed atomic.Bool
}

// Serializer implements engine.Peer.
func (p *remotePeer) Serializer() codec.Serializer { return p.ser }

// Send implements engine.Peer: one Msg frame (the link copies msg, and merges identical
// consecutive frames for several sessions into one multi-target frame).
func (p *remotePeer) Send(msg []byte) error {
	if p.closed.Load() {
		return fmt.Errorf("router: session %d is closed", p.id)
	}
	return p.l.Send(link.Kind(wire.Msg), p.id, msg)
}

// Close implements engine.Peer: the proxy flushes and closes the client connection.
func (p *remotePeer) Close() {
	if p.closed.CompareAndSwap(false, true) {
		_ = p.l.Send(link.Kind(wire.Close), p.id, nil)
	}
}
