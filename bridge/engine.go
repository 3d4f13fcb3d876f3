package bridge

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/puzpuzpuz/xsync/v3"

	"github.com/switchyard-wamp/switchyard/codec"
	"github.com/switchyard-wamp/switchyard/engine"
)

// EngineSession is a Session on a node's own engine (a standalone node): a session
// joined to the realm with the configured authid and authrole (authmethod "http",
// authprovider "bridge"), so the role's permissions (and a dynamic authorizer) decide
// what it may do, and it is listed by the session meta API like any client. It joins on
// first use and joins again if the realm closed it (a realm removed and added back).
// Safe for concurrent use.
type EngineSession struct {
	rt     *engine.Router
	realm  string
	auth   engine.AuthInfo
	nextID atomic.Uint64
	wait   *xsync.MapOf[uint64, chan reply]

	mu   sync.Mutex // serializes Session.Receive (not safe for concurrent use); guards sess
	sess *engine.Session
}

// reply is one PUBLISHED, RESULT or ERROR, copied out of the engine's buffer.
type reply struct {
	typ         codec.MessageType
	publication uint64
	uri         string
	args        json.RawMessage
	kwargs      json.RawMessage
}

// NewEngineSession returns the bridge session of realm on rt; it joins on first use.
func NewEngineSession(rt *engine.Router, realm, authid, authrole string) *EngineSession {
	return &EngineSession{rt: rt, realm: realm, wait: xsync.NewMapOf[uint64, chan reply](),
		auth: engine.AuthInfo{AuthID: authid, AuthRole: authrole, AuthMethod: "http", AuthProvider: "bridge"}}
}

// enginePeer receives what the engine sends the bridge session.
type enginePeer struct{ s *EngineSession }

func (p enginePeer) Serializer() codec.Serializer { return codec.JSON }

// Send hands a PUBLISHED, RESULT or ERROR to the request waiting for it; it runs on
// whichever event loop produced the answer and never blocks (each waiter has room for
// one reply).
func (p enginePeer) Send(b []byte) error {
	var m codec.Message
	if err := codec.For(codec.JSON).Decode(b, &m); err != nil {
		return fmt.Errorf("bridge session: %w", err)
	}
	switch m.Type {
	case codec.PUBLISHED, codec.ERROR:
	case codec.RESULT:
		if m.Details.Progress {
			return nil // not asked for
		}
	default:
		return nil // EVENT, INVOCATION, ...: the bridge neither subscribes nor registers
	}
	ch, ok := p.s.wait.LoadAndDelete(m.Request)
	if !ok {
		return nil // the HTTP request gave up
	}
	r := reply{typ: m.Type, publication: m.Publication, uri: string(m.URI)}
	if m.Args != nil {
		r.args = json.RawMessage(append([]byte(nil), m.Args...))
	}
	if m.Kwargs != nil {
		r.kwargs = json.RawMessage(append([]byte(nil), m.Kwargs...))
	}
	ch <- r
	return nil
}

// Close is called when the engine ends the session (possibly inside Receive, with mu
// held): nothing to do, the next request sees Session.Closed and joins anew.
func (p enginePeer) Close() {}

// errNoRealm answers requests while the realm does not exist.
var errNoRealm = &Error{URI: "wamp.error.no_such_realm"}

// receive feeds one message (JSON text) to the session, joining first when needed.
func (s *EngineSession) receive(msg []byte) error {
	var m codec.Message
	if err := codec.For(codec.JSON).Decode(msg, &m); err != nil {
		return &Error{URI: "wamp.error.invalid_argument", Args: mustJSON([]any{"request not encodable: " + err.Error()})}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sess == nil || s.sess.Closed() {
		rl, ok := s.rt.Realm(s.realm)
		if !ok {
			return errNoRealm
		}
		sess, err := rl.JoinAs(engine.NewSessionID(), enginePeer{s}, s.auth, engine.Features{CallCanceling: true})
		if err != nil {
			return fmt.Errorf("bridge: join %s: %w", s.realm, err)
		}
		s.sess = sess
	}
	if !s.sess.Receive(&m) {
		s.sess = nil
	}
	return nil
}

// request sends a message built by build(requestID) and waits for its answer.
func (s *EngineSession) request(ctx context.Context, build func(id uint64) ([]byte, error), cancelable bool) (reply, error) {
	id := s.nextID.Add(1)
	msg, err := build(id)
	if err != nil {
		return reply{}, &Error{URI: "wamp.error.invalid_argument", Args: mustJSON([]any{err.Error()})}
	}
	ch := make(chan reply, 1)
	s.wait.Store(id, ch)
	if err := s.receive(msg); err != nil {
		s.wait.Delete(id)
		return reply{}, err
	}
	select {
	case r := <-ch:
		if r.typ == codec.ERROR {
			return r, &Error{URI: r.uri, Args: r.args, Kwargs: r.kwargs}
		}
		return r, nil
	case <-ctx.Done():
		if _, waiting := s.wait.LoadAndDelete(id); waiting && cancelable {
			_ = s.receive(fmt.Appendf(nil, `[49,%d,{"mode":"killnowait"}]`, id))
		}
		return reply{}, ctx.Err()
	}
}

// Publish implements Session. Safe for concurrent use.
func (s *EngineSession) Publish(ctx context.Context, topic string, args []any, kwargs, options map[string]any) (uint64, error) {
	r, err := s.request(ctx, func(id uint64) ([]byte, error) {
		opts := map[string]any{}
		for k, v := range options {
			opts[k] = v
		}
		opts["acknowledge"] = true
		return json.Marshal(wampMsg(16, id, opts, topic, args, kwargs))
	}, false)
	return r.publication, err
}

// Call implements Session. Safe for concurrent use.
func (s *EngineSession) Call(ctx context.Context, procedure string, args []any, kwargs, options map[string]any) (Result, error) {
	r, err := s.request(ctx, func(id uint64) ([]byte, error) {
		opts := map[string]any{}
		for k, v := range options {
			if k != "receive_progress" { // one HTTP answer: no progressive results
				opts[k] = v
			}
		}
		return json.Marshal(wampMsg(48, id, opts, procedure, args, kwargs))
	}, true)
	return Result{Args: r.args, Kwargs: r.kwargs}, err
}

// wampMsg is [type, id, options, uri, args?, kwargs?] with the optional tail trimmed.
func wampMsg(typ int, id uint64, opts map[string]any, uri string, args []any, kwargs map[string]any) []any {
	m := []any{typ, id, opts, uri}
	if args != nil || kwargs != nil {
		if args == nil {
			args = []any{}
		}
		m = append(m, args)
	}
	if kwargs != nil {
		m = append(m, kwargs)
	}
	return m
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	return b
}
