package engine

import (
	"bytes"
	"unsafe"

	"github.com/switchyard-wamp/switchyard/codec"
)

// Session Meta API (WAMP advanced profile): the router answers the wamp.session.*
// procedures itself and publishes wamp.session.on_join / on_leave. None of this is on the
// routing hot path: a CALL pays one prefix check for it, and meta payloads go through the
// slow-path value codec.

// Meta URIs.
const (
	ErrNoSuchSession = "wamp.error.no_such_session"
	CloseNormal      = "wamp.close.normal"

	metaOnJoin  = "wamp.session.on_join"
	metaOnLeave = "wamp.session.on_leave"
)

var metaPrefix = []byte("wamp.")

// metaCall answers CALLs to the router's own wamp.session.* procedures. It reports false
// for any other URI, which then goes to the dealer (and so to no_such_procedure).
func (s *Session) metaCall(m *codec.Message, sc *scratch) bool {
	args, kwargs, err := s.decodePayload(m)
	if err != nil {
		s.sendErrorMsg(codec.CALL, m.Request, ErrInvalidArgument, err.Error(), sc)
		return true
	}
	if realmWide[string(m.URI)] {
		s.realmMeta(m, args, kwargs, sc)
		return true
	}
	switch string(m.URI) {
	case "wamp.subscription.get_events":
		s.getEvents(m, args, kwargs, sc)
		return true
	case "wamp.session.add_testament", "wamp.session.flush_testaments":
		s.testamentCall(m, args, kwargs, sc)
		return true
	default:
		if bytes.HasPrefix(m.URI, []byte("wamp.registration.")) {
			return s.registrationMeta(m, args, sc)
		}
		return false
	}
}

// decodePayload decodes a meta CALL's arguments (slow path).
func (s *Session) decodePayload(m *codec.Message) ([]any, map[string]any, error) {
	var args []any
	var kwargs map[string]any
	if m.Args != nil {
		v, err := codec.DecodeValue(s.ser, m.Args)
		if err != nil {
			return nil, nil, err
		}
		args, _ = v.([]any)
	}
	if m.Kwargs != nil {
		v, err := codec.DecodeValue(s.ser, m.Kwargs)
		if err != nil {
			return nil, nil, err
		}
		kwargs, _ = v.(map[string]any)
	}
	return args, kwargs, nil
}

// sessionArg reads args[0] as a session id of this realm.
func (rl *Realm) sessionArg(args []any) *Session {
	if len(args) == 0 {
		return nil
	}
	id, ok := args[0].(uint64)
	if !ok {
		return nil
	}
	x, _ := rl.sessions.Load(id)
	return x
}

func (s *Session) metaDetails() map[string]any {
	return map[string]any{
		"session": s.id, "authid": s.auth.AuthID, "authrole": s.auth.AuthRole,
		"authmethod": s.auth.AuthMethod, "authprovider": s.auth.AuthProvider,
	}
}

// sendResultValues answers a CALL with RESULT carrying result as Arguments.
func (s *Session) sendResultValues(request uint64, result []any, sc *scratch) {
	sc.m = codec.Message{Type: codec.RESULT, Request: request}
	if result != nil {
		b, err := codec.AppendValue(sc.args[0][:0], s.ser, result)
		if err != nil {
			s.sendErrorMsg(codec.CALL, request, ErrInvalidArgument, err.Error(), sc)
			return
		}
		sc.args[0], sc.m.Args = b, b
	}
	s.sendMsg(&sc.m, sc)
}

// publishMeta publishes a router-originated event on topic to its subscribers in this
// realm, through the ordinary publish path (exact and pattern subscriptions, one frame
// per serializer) with the realm's meta publisher as the publisher. When nobody listens
// it costs one lookup and encodes nothing.
func (rl *Realm) publishMeta(topic string, args []any) {
	rl.publishMetaAs(rl.metaPublisher, topic, args)
}

// publishMetaAs is publishMeta from pub: rl.metaPublisher (the event also reaches the
// other routers of a federation) or rl.metaLocal (this router's subscribers only).
func (rl *Realm) publishMetaAs(pub *Session, topic string, args []any) {
	if rl.metaWanted(pub, topic) {
		rl.publishWanted(pub, topic, args)
	}
}

// publishWanted is publishMetaAs once metaWanted said yes (the join and leave paths
// check it before they build args).
func (rl *Realm) publishWanted(pub *Session, topic string, args []any) {
	uri := []byte(topic)
	raw, err := codec.AppendValue(nil, codec.JSON, args)
	if err != nil {
		return
	}
	sc := getScratch()
	defer putScratch(sc)
	pub.publish(&codec.Message{Type: codec.PUBLISH, URI: uri, Args: raw}, sc)
}

// metaWanted reports whether a meta event on topic from pub (rl.metaPublisher or
// rl.metaLocal) has anyone to reach: a subscription here (exact, or any pattern) or, for
// rl.metaPublisher, interest on another router of the federation. Callers on the join
// and leave paths check it before they build the event's arguments, so that a realm
// nobody watches pays one lookup per session and allocates nothing for it.
func (rl *Realm) metaWanted(pub *Session, topic string) bool {
	b := rl.broker
	// Get only reads the bytes: a view of the string, not a copy.
	if _, ok := b.subs.Get(unsafe.Slice(unsafe.StringData(topic), len(topic))); ok || b.patterns.Len() > 0 {
		return true
	}
	f := rl.router.federation()
	return f != nil && pub != rl.metaLocal && f.RemoteInterest(rl, []byte(topic))
}

func isMetaURI(u []byte) bool { return bytes.HasPrefix(u, metaPrefix) }
