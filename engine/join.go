package engine

import (
	"errors"

	"github.com/switchyard-wamp/switchyard/codec"
)

// ErrSessionIDTaken is returned by JoinAs when the realm already has a session with the
// requested id.
var ErrSessionIDTaken = errors.New("engine: session id already in use")

// JoinAs is JoinWith for a session whose id was chosen elsewhere: a proxy picks the id of
// a session it forwards to this router, so that it can tag the session's frames before
// the router has answered. id must be a valid WAMP id (1..2^53). Safe for concurrent use.
func (rl *Realm) JoinAs(id uint64, peer Peer, auth AuthInfo, f Features) (*Session, error) {
	if id == 0 || id > maxID {
		return nil, errors.New("engine: session id out of range")
	}
	s := rl.newSession(peer, auth, f)
	s.id = id
	if _, loaded := rl.sessions.LoadOrStore(id, s); loaded {
		return nil, ErrSessionIDTaken
	}
	rl.joined(s)
	return s, nil
}

// NewSessionID returns a random session id (global scope, 1..2^53), for a proxy that
// names the sessions it forwards. Safe for concurrent use.
func NewSessionID() uint64 { return globalID() }

// newSession builds a session of rl for peer, not yet in the realm's table (no id).
func (rl *Realm) newSession(peer Peer, auth AuthInfo, f Features) *Session {
	s := &Session{realm: rl, peer: peer, ser: peer.Serializer(), auth: auth,
		authID: []byte(auth.AuthID), authRole: []byte(auth.AuthRole), features: f,
		perms: rl.permissionsFor(auth.AuthRole)}
	s.useAuthorizer()
	s.codec = codec.For(s.ser)
	return s
}

// HasSession reports whether session id is joined to the realm on this router. Safe for
// concurrent use.
func (rl *Realm) HasSession(id uint64) bool {
	_, ok := rl.sessions.Load(id)
	return ok
}

// joined publishes wamp.session.on_join for a new session and tells the federation.
func (rl *Realm) joined(s *Session) {
	if rl.metaWanted(rl.metaPublisher, metaOnJoin) {
		rl.publishWanted(rl.metaPublisher, metaOnJoin, []any{s.metaDetails()})
	}
	if f := rl.router.federation(); f != nil {
		f.SessionChanged(rl, s, true)
	}
}

// LocalSession returns the session id joined to the realm on this router. Safe for
// concurrent use.
func (rl *Realm) LocalSession(id uint64) (*Session, bool) { return rl.sessions.Load(id) }

// LocalSessions calls f for every session joined to the realm on this router, with the
// ids of its subscriptions, until f returns false. Safe for concurrent use.
func (rl *Realm) LocalSessions(f func(s *Session, subs []uint64) bool) {
	rl.sessions.Range(func(_ uint64, s *Session) bool {
		s.mu.Lock()
		subs := make([]uint64, len(s.subs))
		for i, sub := range s.subs {
			subs[i] = sub.id
		}
		s.mu.Unlock()
		return f(s, subs)
	})
}

// Open reports whether the session is still open (it has not started leaving). Safe
// for concurrent use.
func (s *Session) Open() bool { return s.state.Load() == sessionOpen }

// PublishMetaLocal publishes a meta event (router as publisher, JSON arguments) to this
// router's subscribers only: for events about another router of the realm that cannot
// publish them itself (it died). Safe for concurrent use.
func (rl *Realm) PublishMetaLocal(topic string, args []any) {
	rl.publishMetaAs(rl.metaLocal, topic, args)
}
