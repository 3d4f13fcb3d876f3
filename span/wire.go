package span

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/switchyard-wamp/switchyard/codec"
	"github.com/switchyard-wamp/switchyard/engine"
	"github.com/switchyard-wamp/switchyard/engine/match"
)

// Kind is the kind of a span message between two routers. The payload of each kind is a
// sequence of fields: uvarints, strings (uvarint length + bytes), single bytes, and for
// some kinds a trailing encoded WAMP message taking the rest of the payload.
type Kind uint8

// Message kinds. The comment gives the payload's fields in order, and the key the
// sender uses (messages of one key between two routers arrive in order).
const (
	// KindInterest: add (1) or remove (0), realm, policy, topic. Key: the subscription id.
	KindInterest Kind = iota + 1
	// KindPublish: realm, publication id, publisher id, authid, authrole, serializer,
	// then the PUBLISH in that serializer. Key: the publisher's session id.
	KindPublish
	// KindClaim (to the owner): claim id, realm, policy, procedure, invoke, callee.
	// Key: the registration id.
	KindClaim
	// KindClaimAnswer (owner to claimant): claim id, error URI ("" = accepted).
	KindClaimAnswer
	// KindRegAdd (owner to every router, or a callee's router to a newly seen router):
	// ack id (0: no ack wanted), realm, policy, procedure, invoke, callee.
	KindRegAdd
	// KindRegAck (to the owner, or a barrier's sender): ack id, and for a barrier's
	// answer the number of lanes it is sent on (one answer per lane; see Laned).
	KindRegAck
	// KindUnclaim (callee's router to the owner): realm, policy, procedure, callee id.
	KindUnclaim
	// KindRegDel (owner to every router): realm, policy, procedure, callee id.
	KindRegDel
	// KindInvoke (ghost's router to the callee's router): realm, callee id, sender tag,
	// then the INVOCATION or INTERRUPT in the callee's serializer. Key: callee id.
	KindInvoke
	// KindAnswer (callee's router to the ghost's router): realm, callee id, then the
	// callee's YIELD or ERROR in its serializer. Key: callee id.
	KindAnswer
	// KindGone (callee's router to every router): realm, callee id: drop its ghost.
	// Key: callee id.
	KindGone
	// KindQuery (asking router to every live router): query id, realm, caller id,
	// procedure, arguments and keyword arguments (JSON): a realm-wide meta procedure.
	// Key: the caller's session id.
	KindQuery
	// KindReply (to the asking router): query id, then this router's part (JSON).
	// Key: the caller's session id.
	KindReply
	// KindSession (session's router to every router): realm, joined (1) or left (0),
	// session id, authid, authrole, number of subscription ids, the ids. Key: session id.
	KindSession
	// KindSubscriber (session's router to every router): realm, added (1) or removed (0),
	// session id, subscription id. Key: session id.
	KindSubscriber
	// KindBarrier: ack id, optionally a reply key. The receiver answers KindRegAck with
	// the id once it has handled what the sender sent before with the same key. Without
	// a reply key (the interest of a new subscription: AwaitInterest) it answers on every
	// lane, so that the sender has everything the receiver sent before on any key (a
	// PUBLISH it forwarded) when the last answer comes; with one (an owner's probe of a
	// conflicting callee's router: rpc.go) it answers on that key, after what it sent
	// before on it. Key: the subscription id, or the registration id.
	KindBarrier
	// KindResync (a router to one it now sees live again): a nonce (may be absent); the
	// receiver sends its whole state back (as to a newly seen router), since the sender
	// may have dropped it while it thought the receiver dead, and then, when there is a
	// nonce, KindSynced on every lane. Key: 0.
	KindResync
	// KindEvents: realm, publisher id, serializer, then for each subscription of the
	// receiver that matches a plain publication: the subscription id and its EVENT in
	// that serializer (a string). Key: the publisher's session id, as KindPublish.
	KindEvents
	// KindSynced (the answer to a KindResync with a nonce, after the state): the nonce,
	// the number of lanes it is sent on (one on each). Key: the lane.
	KindSynced
	// KindTestaments (session's router to every router): realm, session id, serializer,
	// the number of testaments, each a PUBLISH in that serializer (a string), in the
	// order they fire; the whole list, sent when it changes. Key: session id.
	KindTestaments
)

var kindNames = [...]string{KindInterest: "interest", KindPublish: "publish", KindClaim: "claim",
	KindClaimAnswer: "claim-answer", KindRegAdd: "reg-add", KindRegAck: "reg-ack", KindUnclaim: "unclaim",
	KindRegDel: "reg-del", KindInvoke: "invoke", KindAnswer: "answer", KindGone: "gone",
	KindQuery: "query", KindReply: "reply", KindSession: "session", KindSubscriber: "subscriber",
	KindBarrier: "barrier", KindResync: "resync", KindEvents: "events",
	KindSynced: "synced", KindTestaments: "testaments"}

// String names the kind for logs.
func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

func appendUvarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBytes(b []byte, s []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

var errShort = errors.New("truncated span message")

// reader reads a payload's fields; the first failure sticks in err.
type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errShort
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) byte1() byte {
	if r.err != nil || len(r.b) == 0 {
		r.err = errShort
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

// bytes returns a length-prefixed field, aliasing the payload.
func (r *reader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil || uint64(len(r.b)) < n {
		r.err = errShort
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) string() string { return string(r.bytes()) }

// rest returns what is left of the payload.
func (r *reader) rest() []byte {
	v := r.b
	r.b = nil
	return v
}

// Match policies on the wire.
const (
	polExact byte = iota
	polPrefix
	polWildcard
)

func policyByte(pattern bool, kind match.Kind) byte {
	switch {
	case !pattern:
		return polExact
	case kind == match.Prefix:
		return polPrefix
	default:
		return polWildcard
	}
}

func policyOf(b byte) (pattern bool, kind match.Kind) {
	switch b {
	case polPrefix:
		return true, match.Prefix
	case polWildcard:
		return true, match.Wildcard
	}
	return false, 0
}

func policyName(b byte) string {
	p, k := policyOf(b)
	return engine.PolicyName(p, k)
}

// callee is a callee's identity as registrations carry it.
type callee struct {
	id               uint64
	router           string
	authID, authRole string
	ser              codec.Serializer
	feat             engine.Features
}

const (
	featCancel byte = 1 << iota
	featProgressive
)

func calleeOf(s *engine.Session, router string) callee {
	a := s.Auth()
	return callee{id: s.ID(), router: router, authID: a.AuthID, authRole: a.AuthRole,
		ser: s.Serializer(), feat: s.Features()}
}

func appendCallee(b []byte, c *callee) []byte {
	b = appendUvarint(b, c.id)
	b = appendString(b, c.router)
	b = appendString(b, c.authID)
	b = appendString(b, c.authRole)
	var f byte
	if c.feat.CallCanceling {
		f |= featCancel
	}
	if c.feat.ProgressiveCallInvocations {
		f |= featProgressive
	}
	return append(b, byte(c.ser), f)
}

func (r *reader) callee() callee {
	c := callee{id: r.uvarint(), router: r.string(), authID: r.string(), authRole: r.string()}
	c.ser = codec.Serializer(r.byte1())
	if _, err := codecOf(c.ser); err != nil && r.err == nil {
		r.err = err
	}
	f := r.byte1()
	c.feat.CallCanceling, c.feat.ProgressiveCallInvocations = f&featCancel != 0, f&featProgressive != 0
	return c
}

// bufPool holds payload buffers for the hot paths (publish, invoke, answer); the
// transport copies what it is given.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// msgPool holds decoded WAMP messages for inbound publishes and answers.
var msgPool = sync.Pool{New: func() any { return new(codec.Message) }}

// codecOf returns the codec of ser, or an error for a serializer this build lacks.
func codecOf(ser codec.Serializer) (codec.Codec, error) {
	if ser.Valid() {
		return codec.For(ser), nil
	}
	return nil, fmt.Errorf("unknown serializer %d", uint8(ser))
}
