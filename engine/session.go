package engine

import (
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/switchyard-wamp/switchyard/codec"
)

// Peer is how the engine reaches a session's client. A local connection implements it, and
// so can a remote session forwarded over a link: the engine does not know the difference.
type Peer interface {
	// Serializer is the serialization the client speaks; the engine encodes for it.
	Serializer() codec.Serializer
	// Send queues one encoded WAMP message. It must copy msg (the engine reuses the
	// buffer), never block, and be safe for concurrent use. An error means the message
	// was not queued (closed, or the slow-consumer policy fired).
	Send(msg []byte) error
	// Close ends the transport after what is queued has been written. Safe for
	// concurrent use and idempotent.
	Close()
}

// AuthInfo is who the session is, as established at HELLO by the authenticator.
type AuthInfo struct {
	AuthID       string
	AuthRole     string
	AuthMethod   string
	AuthProvider string
	// Extra is WELCOME.Details.authextra (e.g. from a dynamic authenticator); nil: none.
	Extra map[string]any
}

// Session is one joined WAMP session. Receive must be called from one goroutine at a time
// (the one that reads the client's transport); every other method says its own rule.
type Session struct {
	id    uint64
	realm *Realm
	peer  Peer
	ser   codec.Serializer
	codec codec.Codec
	auth  AuthInfo
	// authID and authRole are auth's strings as bytes, for disclosure without a
	// per-message conversion.
	authID, authRole []byte
	features         Features
	// perms are the authrole's permissions; nil means everything is allowed.
	perms *RolePermissions
	// authz is set when a dynamic authorizer decides this session's actions.
	authz *authzState

	// state is one of the session* constants.
	state atomic.Uint32
	// leftMeta: wamp.session.on_leave was published (leaveRealm can run twice).
	leftMeta atomic.Bool

	// mu guards subs and regs: the owner goroutine adds to them, Leave (possibly from
	// another goroutine) empties them. Never taken on the publish or call path.
	mu         sync.Mutex
	subs       []*subscription
	regs       []*registration
	testaments map[string][]testament // by scope; also guarded by mu
	open       map[uint64]*openCall   // progressive calls by request id; guarded by mu
	openCount  atomic.Int64           // len(open), read without mu on every CALL

	// Callee side: INVOCATION ids (session scope) and the calls awaiting YIELD. invBase
	// is 0 for a local session and a ghost's router tag << InvocationTagShift.
	invIDs  idSeq
	invBase uint64
	pending pendingTable
	// hold, once made, holds the session's messages while a decision (dynamic
	// authorizer, federated REGISTER) is outstanding.
	hold atomic.Pointer[holdState]
	// ghost marks the stand-in of a callee on another router (federation).
	ghost bool
	// inflight counts this session's own CALLs waiting in callees' pending tables, so
	// that leaving can interrupt them without scanning when there are none.
	inflight atomic.Int64
}

const (
	sessionOpen uint32 = iota
	sessionClosing
	sessionClosed
)

// ID returns the session ID (global scope). Safe for concurrent use.
func (s *Session) ID() uint64 { return s.id }

// Realm returns the realm the session joined. Safe for concurrent use.
func (s *Session) Realm() *Realm { return s.realm }

// Auth returns the session's authentication facts. Safe for concurrent use.
func (s *Session) Auth() AuthInfo { return s.auth }

// Serializer returns the serializer of the session's client. Safe for concurrent use.
func (s *Session) Serializer() codec.Serializer { return s.ser }

// Features returns the advanced features the session's client announced. Safe for
// concurrent use.
func (s *Session) Features() Features { return s.features }

// Closed reports whether the session has left the realm. Safe for concurrent use.
func (s *Session) Closed() bool { return s.state.Load() == sessionClosed }

// Receive processes one message from the session's client. It returns false when the
// session has ended (GOODBYE exchanged or a protocol violation aborted it): the caller
// then stops reading and closes the transport (the engine has already asked the peer to
// Close). Not safe for concurrent use: call it from the goroutine reading the transport.
// m may alias the read buffer; nothing in it is retained after Receive returns.
func (s *Session) Receive(m *codec.Message) bool {
	switch s.state.Load() {
	case sessionClosed:
		return false
	case sessionClosing:
		// We said GOODBYE and wait for the client's; everything else is dropped.
		if m.Type == codec.GOODBYE {
			s.Leave()
			s.peer.Close()
			return false
		}
		return true
	}
	if h := s.hold.Load(); h != nil && s.holdIfDeferred(h, m) {
		return true
	}
	sc := getScratch()
	defer putScratch(sc)
	return s.dispatch(m, sc)
}

// dispatch routes one message of an open session; it reports false when the session
// ended.
func (s *Session) dispatch(m *codec.Message, sc *scratch) bool {
	switch m.Type {
	case codec.PUBLISH:
		s.publish(m, sc)
	case codec.SUBSCRIBE:
		s.subscribe(m, sc)
	case codec.UNSUBSCRIBE:
		s.unsubscribe(m, sc)
	case codec.CALL:
		s.call(m, sc)
	case codec.CANCEL:
		s.cancel(m, sc)
	case codec.YIELD:
		s.yield(m, sc)
	case codec.REGISTER:
		s.register(m, sc)
	case codec.UNREGISTER:
		s.unregister(m, sc)
	case codec.ERROR:
		if m.ErrType != codec.INVOCATION {
			s.Abort(ErrProtocolViolation, "ERROR is only valid in reply to INVOCATION")
			return false
		}
		s.invocationError(m, sc)
	case codec.GOODBYE:
		s.sendGoodbye(CloseGoodbyeAndOut, sc)
		s.Leave()
		s.peer.Close()
		return false
	default:
		s.Abort(ErrProtocolViolation, "message type "+m.Type.String()+" is not valid in an established session")
		return false
	}
	// A handler may have aborted the session (protocol violation found late).
	return s.state.Load() != sessionClosed
}

// Goodbye starts a router-initiated close: GOODBYE with reason to the client, which
// should answer with GOODBYE; the session leaves the realm now. Safe for concurrent use.
func (s *Session) Goodbye(reason string) { s.goodbye(reason, "") }

// goodbye is Goodbye with an optional GOODBYE.Details.message.
func (s *Session) goodbye(reason, message string) {
	if !s.state.CompareAndSwap(sessionOpen, sessionClosing) {
		return
	}
	sc := getScratch()
	sc.m = codec.Message{Type: codec.GOODBYE, URI: append(sc.uri[:0], reason...)}
	if message != "" {
		sc.m.Details.Has, sc.m.Details.Message = codec.KeyMessage, append(sc.text[:0], message...)
	}
	s.sendMsg(&sc.m, sc)
	putScratch(sc)
	s.leaveRealm()
}

// Abort sends ABORT with reason and a human-readable message, leaves the realm and closes
// the transport, with a log line (rate-limited per client address, see
// Router.SetLogLimit). Safe for concurrent use.
func (s *Session) Abort(reason, message string) {
	if s.state.Load() == sessionClosed {
		return
	}
	if s.realm.router.logOK("session aborted", s.peer) {
		s.realm.router.log.Warn("session aborted", "session", s.id, "realm", s.realm.name,
			"reason", reason, "message", message)
	}
	s.AbortQuiet(reason, message)
}

// AbortQuiet is Abort without the log line, for a caller that has logged the cause
// itself. Safe for concurrent use.
func (s *Session) AbortQuiet(reason, message string) {
	if s.state.Load() == sessionClosed {
		return
	}
	sc := getScratch()
	sc.m = codec.Message{Type: codec.ABORT, URI: append(sc.uri[:0], reason...)}
	sc.m.Details.Has = codec.KeyMessage
	sc.m.Details.Message = append(sc.text[:0], message...)
	s.sendMsg(&sc.m, sc)
	putScratch(sc)
	s.Leave()
	s.peer.Close()
}

func (s *Session) sendGoodbye(reason string, sc *scratch) {
	sc.m = codec.Message{Type: codec.GOODBYE, URI: append(sc.uri[:0], reason...)}
	s.sendMsg(&sc.m, sc)
}

// Leave removes the session from its realm: its subscriptions and registrations go away
// and calls in flight to it fail with wamp.error.canceled. Call it when the transport is
// gone. Safe for concurrent use and idempotent.
func (s *Session) Leave() {
	if s.state.Swap(sessionClosed) == sessionClosed {
		return
	}
	s.leaveRealm()
}

// leaveRealm drops the session's routing state. Idempotent thanks to the mu-guarded lists.
func (s *Session) leaveRealm() {
	r := s.realm
	r.sessions.Delete(s.id)
	s.mu.Lock()
	subs, regs := s.subs, s.regs
	s.subs, s.regs = nil, nil
	s.mu.Unlock()
	for _, sub := range subs {
		r.unsubscribed(s, sub)
	}
	for _, reg := range regs {
		r.unregistered(s, reg)
	}
	s.failPending()
	s.interruptOpenCalls()
	s.interruptCalls()
	if f := r.router.federation(); f != nil && s.pending.slots.Load() != nil {
		f.CalleeLeft(r, s)
	}
	if f := r.router.federation(); f != nil {
		f.SessionChanged(r, s, false)
	}
	if !s.leftMeta.Swap(true) {
		s.publishTestaments()
		if r.metaWanted(r.metaPublisher, metaOnLeave) {
			r.publishWanted(r.metaPublisher, metaOnLeave, []any{s.id, s.auth.AuthID, s.auth.AuthRole})
		}
	}
}

// sendMsg encodes m in the session's serializer and queues it. m's raw parts must already
// be in the session's serializer.
func (s *Session) sendMsg(m *codec.Message, sc *scratch) {
	var err error
	sc.out, err = s.codec.Append(sc.out[:0], m)
	if err != nil {
		s.realm.router.log.Error("encode failed", "session", s.id, "type", m.Type.String(), "err", err)
		return
	}
	_ = s.peer.Send(sc.out)
}

// sendError answers request reqType/reqID with ERROR uri and no payload.
func (s *Session) sendError(reqType codec.MessageType, reqID uint64, uri string, sc *scratch) {
	sc.m = codec.Message{Type: codec.ERROR, ErrType: reqType, Request: reqID,
		URI: append(sc.uri[:0], uri...)}
	s.sendMsg(&sc.m, sc)
}

// sendErrorMsg is sendError with a human-readable message as the only argument.
func (s *Session) sendErrorMsg(reqType codec.MessageType, reqID uint64, uri, text string, sc *scratch) {
	var err error
	sc.args[0], err = codec.AppendValue(sc.args[0][:0], s.ser, []any{text})
	if err != nil {
		s.sendError(reqType, reqID, uri, sc)
		return
	}
	sc.m = codec.Message{Type: codec.ERROR, ErrType: reqType, Request: reqID,
		URI: append(sc.uri[:0], uri...), Args: sc.args[0]}
	s.sendMsg(&sc.m, sc)
}

// sendAck sends a reply carrying a request id and one more id (SUBSCRIBED, PUBLISHED...).
func (s *Session) sendAck(m *codec.Message, sc *scratch) { s.sendMsg(m, sc) }

// track runs add under s.mu unless the session has left (leaveRealm changes the state
// before it takes s.mu, so nothing added here can be missed by it). It reports whether
// add ran.
func (s *Session) track(add func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state.Load() != sessionOpen {
		return false
	}
	add()
	return true
}

// HoldsRegistration reports whether the session holds registration id: it registered
// it and has neither unregistered nor left since. The cluster asks it before it settles
// a conflict over a registration (span). Safe for concurrent use.
func (s *Session) HoldsRegistration(id uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, reg := range s.regs {
		if reg.id == id {
			return true
		}
	}
	return false
}

// untrack removes and returns the first element of *list (s.subs or s.regs) that match
// accepts, under s.mu; nil when there is none.
func untrack[T any](s *Session, list *[]*T, match func(*T) bool) *T {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, x := range *list {
		if match(x) {
			*list = append((*list)[:i], (*list)[i+1:]...)
			return x
		}
	}
	return nil
}

func (s *Session) logger() *slog.Logger { return s.realm.router.log }
