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
	rl.publishMeta(metaOnJoin, []any{s.metaDetails()})
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
