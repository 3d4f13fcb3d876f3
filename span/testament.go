package span

import (
	"fmt"

	"github.com/switchyard-wamp/switchyard/codec"
	"github.com/switchyard-wamp/switchyard/engine"
	"github.com/switchyard-wamp/switchyard/internal/hashmix"
)

// Testaments realm-wide. A session's router publishes its testaments when it leaves; if
// the router dies with it, nobody would. So every router keeps a copy of the other
// routers' sessions' testaments (KindTestaments, sent whenever a session adds or
// flushes one, and in a resync), and when a router dies each of the others publishes
// the dead sessions' testaments to its own subscribers, as it publishes their on_leave:
// every subscriber of the realm gets each once.

// TestamentsChanged implements engine.Federation: tell every other live router.
func (s *Span) TestamentsChanged(rl *engine.Realm, cs *engine.Session) {
	b := appendTestaments(nil, rl.Name(), cs.ID(), cs.Serializer(), cs.Testaments())
	s.others(func(to string) { s.send(to, cs.ID(), KindTestaments, b) })
}

func appendTestaments(b []byte, realm string, id uint64, ser codec.Serializer, ts [][]byte) []byte {
	b = appendString(b, realm)
	b = appendUvarint(b, id)
	b = append(b, byte(ser))
	b = appendUvarint(b, uint64(len(ts)))
	for _, t := range ts {
		b = appendBytes(b, t)
	}
	return b
}

// resyncTestaments sends router `to` the testaments of local session cs, if it has any
// (after cs's KindSession, on the same key).
func (s *Span) resyncTestaments(to string, rl *engine.Realm, cs *engine.Session) {
	if ts := cs.Testaments(); len(ts) > 0 {
		s.send(to, cs.ID(), KindTestaments, appendTestaments(nil, rl.Name(), cs.ID(), cs.Serializer(), ts))
	}
}

func (s *Span) onTestaments(from string, r *reader) error {
	realm := r.bytes()
	id := r.uvarint()
	ser := codec.Serializer(r.byte1())
	n := r.uvarint()
	if r.err != nil {
		return r.err
	}
	if n > uint64(len(r.b)) {
		return errShort
	}
	ts := make([][]byte, 0, n)
	for range n {
		ts = append(ts, append([]byte(nil), r.bytes()...)) // the payload is the link's buffer
	}
	if r.err != nil {
		return r.err
	}
	if _, err := codecOf(ser); err != nil {
		return fmt.Errorf("testaments: %w", err)
	}
	st := s.stateBytes(realm)
	st.sessMu.Lock()
	defer st.sessMu.Unlock()
	if rs := st.sessions[id]; rs != nil && rs.router == from {
		rs.ser, rs.testaments = ser, ts
	}
	return nil
}

// publishTestaments publishes dead session id's testaments to this router's
// subscribers (PublishRemote: the rules of a publication from another router), with
// the session as publisher. Their publication ids are derived from the session id so
// that every router gives the same one.
func (s *Span) publishTestaments(rl *engine.Realm, id uint64, rs *remoteSession) {
	if len(rs.testaments) == 0 {
		return
	}
	c, err := codecOf(rs.ser)
	if err != nil {
		return // checked on arrival
	}
	for i, raw := range rs.testaments {
		var m codec.Message
		if err := c.Decode(raw, &m); err != nil || m.Type != codec.PUBLISH {
			s.log.Warn("span: testament not decodable", "session", id, "err", err)
			continue
		}
		rl.PublishRemote(&engine.Publication{ID: testamentPubID(id, i), Publisher: id,
			AuthID: []byte(rs.authID), AuthRole: []byte(rs.authRole), Serializer: rs.ser, Message: &m})
	}
}

// testamentPubID is the publication id of session id's i-th testament: in [1, 2^53],
// the same on every router.
func testamentPubID(id uint64, i int) uint64 {
	return hashmix.Mix64(id^uint64(i+1)*0x9e3779b97f4a7c15)&(1<<53-1) + 1
}
