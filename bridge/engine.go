package bridge

import (
	"fmt"
	"sync"

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
	session
	rt    *engine.Router
	realm string
	auth  engine.AuthInfo

	mu   sync.Mutex // serializes Session.Receive (not safe for concurrent use); guards sess
	sess *engine.Session
}

// NewEngineSession returns the bridge session of realm on rt; it joins on first use.
// Safe for concurrent use.
func NewEngineSession(rt *engine.Router, realm, authid, authrole string) *EngineSession {
	s := &EngineSession{rt: rt, realm: realm,
		auth: engine.AuthInfo{AuthID: authid, AuthRole: authrole, AuthMethod: "http", AuthProvider: "bridge"}}
	s.session = newSession(s)
	return s
}

// enginePeer receives what the engine sends the bridge session.
type enginePeer struct{ s *EngineSession }

func (p enginePeer) Serializer() codec.Serializer { return codec.JSON }

// Send hands an answer to its request (session.answer); never blocks.
func (p enginePeer) Send(b []byte) error {
	_, err := p.s.answer(b)
	return err
}

// Close is called when the engine ends the session (possibly inside Receive, with mu
// held): nothing to do, the next request sees Session.Closed and joins anew.
func (p enginePeer) Close() {}

// errNoRealm answers requests while the realm does not exist.
var errNoRealm = &Error{URI: "wamp.error.no_such_realm"}

// deliver feeds one message to the engine session, joining first when needed.
func (s *EngineSession) deliver(msg []byte) error {
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
