package codec

import "fmt"

// This file holds the one table that describes the shape of every WAMP message; the
// JSON, MessagePack and CBOR codecs all walk it, so the per-type layout lives here once.

// elemKind is the kind of one message element after the type code.
type elemKind uint8

const (
	eRequest      elemKind = iota + 1 // id -> Message.Request
	eSession                          // id -> Message.Session
	eSubscription                     // id -> Message.Subscription
	eRegistration                     // id -> Message.Registration
	ePublication                      // id -> Message.Publication
	eErrType                          // integer -> Message.ErrType
	eURI                              // string -> Message.URI
	eDict                             // dict -> Message.Dict (+ Details)
	eArgs                             // list (or payload bytes) -> Message.Args
	eKwargs                           // dict -> Message.Kwargs
)

var elemNames = [...]string{
	eRequest: "Request", eSession: "Session", eSubscription: "Subscription",
	eRegistration: "Registration", ePublication: "Publication", eErrType: "REQUEST.Type",
	eURI: "URI", eDict: "Dict", eArgs: "Arguments", eKwargs: "ArgumentsKw",
}

func (k elemKind) String() string { return elemNames[k] }

// shape is the layout of one message type: the elements after the type code, how many
// of them are required (min) and allowed (max), and which Details keys its dict feeds.
type shape struct {
	elems [6]elemKind
	min   uint8
	max   uint8
	keys  uint64
}

const maxID = 1 << 53

// idKeys are the Details keys holding ids; boolKeys booleans; strKeys strings.
const (
	boolKeys = KeyAcknowledge | KeyExcludeMe | KeyDiscloseMe | KeyReceiveProgress | KeyProgress |
		KeyRetain | KeyGetRetained | KeyRetained
	strKeys = KeyMatch | KeyInvoke | KeyTopic | KeyProcedure | KeyMessage |
		KeyPublisherAuthID | KeyPublisherAuthRole | KeyCallerAuthID | KeyCallerAuthRole |
		KeyMode | KeyReason | KeyRKey | pptKeys
	idKeys  = KeyPublisher | KeyCaller
	intKeys = KeyTimeout
	// pptKeys are the payload passthru mode options.
	pptKeys = KeyPptScheme | KeyPptSerializer | KeyPptCipher | KeyPptKeyID
	// rawKeys are kept as raw encoded values (lists).
	rawKeys = KeyExclude | KeyExcludeAuthID | KeyExcludeAuthRole | KeyEligible |
		KeyEligibleAuthID | KeyEligibleAuthRole
)

func mk(keys uint64, min int, elems ...elemKind) shape {
	s := shape{min: uint8(min), max: uint8(len(elems)), keys: keys}
	copy(s.elems[:], elems)
	return s
}

// shapes is indexed by MessageType; max == 0 marks an unknown type.
var shapes = [...]shape{
	HELLO:        mk(0, 2, eURI, eDict),
	WELCOME:      mk(0, 2, eSession, eDict),
	ABORT:        mk(KeyMessage, 2, eDict, eURI),
	CHALLENGE:    mk(0, 2, eURI, eDict),
	AUTHENTICATE: mk(0, 2, eURI, eDict),
	GOODBYE:      mk(KeyMessage, 2, eDict, eURI),
	ERROR:        mk(0, 4, eErrType, eRequest, eDict, eURI, eArgs, eKwargs),
	PUBLISH:      mk(pptKeys|KeyAcknowledge|KeyExcludeMe|KeyDiscloseMe|KeyRetain|rawKeys, 3, eRequest, eDict, eURI, eArgs, eKwargs),
	PUBLISHED:    mk(0, 2, eRequest, ePublication),
	SUBSCRIBE:    mk(KeyMatch|KeyGetRetained, 3, eRequest, eDict, eURI),
	SUBSCRIBED:   mk(0, 2, eRequest, eSubscription),
	UNSUBSCRIBE:  mk(0, 2, eRequest, eSubscription),
	UNSUBSCRIBED: mk(0, 1, eRequest, eDict), // advanced: revocation carries Details
	EVENT:        mk(pptKeys|KeyTopic|KeyPublisher|KeyPublisherAuthID|KeyPublisherAuthRole|KeyRetained, 3, eSubscription, ePublication, eDict, eArgs, eKwargs),
	CALL:         mk(pptKeys|KeyDiscloseMe|KeyReceiveProgress|KeyProgress|KeyTimeout|KeyRKey, 3, eRequest, eDict, eURI, eArgs, eKwargs),
	CANCEL:       mk(KeyMode, 2, eRequest, eDict),
	RESULT:       mk(pptKeys|KeyProgress, 2, eRequest, eDict, eArgs, eKwargs),
	REGISTER:     mk(KeyMatch|KeyInvoke, 3, eRequest, eDict, eURI),
	REGISTERED:   mk(0, 2, eRequest, eRegistration),
	UNREGISTER:   mk(0, 2, eRequest, eRegistration),
	UNREGISTERED: mk(0, 1, eRequest, eDict),
	INVOCATION:   mk(pptKeys|KeyProgress|KeyReceiveProgress|KeyProcedure|KeyCaller|KeyCallerAuthID|KeyCallerAuthRole|KeyTimeout, 3, eRequest, eRegistration, eDict, eArgs, eKwargs),
	INTERRUPT:    mk(KeyMode|KeyReason, 2, eRequest, eDict),
	YIELD:        mk(pptKeys|KeyProgress, 2, eRequest, eDict, eArgs, eKwargs),
}

// shapeOf returns the shape of type code t, or nil for an unknown type.
func shapeOf(t uint64) *shape {
	if t < uint64(len(shapes)) && shapes[t].max != 0 {
		return &shapes[t]
	}
	return nil
}

// setID stores an integer element of kind k into m.
func setID(m *Message, k elemKind, v uint64) {
	switch k {
	case eRequest:
		m.Request = v
	case eSession:
		m.Session = v
	case eSubscription:
		m.Subscription = v
	case eRegistration:
		m.Registration = v
	case ePublication:
		m.Publication = v
	case eErrType:
		m.ErrType = MessageType(v)
	}
}

// getID is the inverse of setID.
func getID(m *Message, k elemKind) uint64 {
	switch k {
	case eRequest:
		return m.Request
	case eSession:
		return m.Session
	case eSubscription:
		return m.Subscription
	case eRegistration:
		return m.Registration
	case ePublication:
		return m.Publication
	case eErrType:
		return uint64(m.ErrType)
	}
	return 0
}

// idLimit is the largest value allowed for an integer element of kind k.
func idLimit(k elemKind) uint64 {
	if k == eErrType {
		return 255
	}
	return maxID
}

// detailKey maps a dict key to its Details bit (0 for keys the router does not read).
// The switch on string(key) does not allocate.
func detailKey(key []byte) uint64 {
	switch string(key) {
	case "acknowledge":
		return KeyAcknowledge
	case "exclude_me":
		return KeyExcludeMe
	case "disclose_me":
		return KeyDiscloseMe
	case "receive_progress":
		return KeyReceiveProgress
	case "progress":
		return KeyProgress
	case "match":
		return KeyMatch
	case "invoke":
		return KeyInvoke
	case "timeout":
		return KeyTimeout
	case "topic":
		return KeyTopic
	case "procedure":
		return KeyProcedure
	case "publisher":
		return KeyPublisher
	case "caller":
		return KeyCaller
	case "message":
		return KeyMessage
	case "publisher_authid":
		return KeyPublisherAuthID
	case "publisher_authrole":
		return KeyPublisherAuthRole
	case "caller_authid":
		return KeyCallerAuthID
	case "caller_authrole":
		return KeyCallerAuthRole
	case "ppt_scheme":
		return KeyPptScheme
	case "ppt_serializer":
		return KeyPptSerializer
	case "ppt_cipher":
		return KeyPptCipher
	case "ppt_keyid":
		return KeyPptKeyID
	case "exclude":
		return KeyExclude
	case "exclude_authid":
		return KeyExcludeAuthID
	case "exclude_authrole":
		return KeyExcludeAuthRole
	case "eligible":
		return KeyEligible
	case "eligible_authid":
		return KeyEligibleAuthID
	case "eligible_authrole":
		return KeyEligibleAuthRole
	case "retain":
		return KeyRetain
	case "get_retained":
		return KeyGetRetained
	case "retained":
		return KeyRetained
	case "mode":
		return KeyMode
	case "reason":
		return KeyReason
	case "rkey":
		return KeyRKey
	}
	return 0
}

// detailOrder lists the Details keys in encoding order with their names.
var detailOrder = [...]struct {
	bit  uint64
	name string
}{
	{KeyAcknowledge, "acknowledge"}, {KeyExcludeMe, "exclude_me"},
	{KeyDiscloseMe, "disclose_me"}, {KeyReceiveProgress, "receive_progress"},
	{KeyProgress, "progress"}, {KeyMatch, "match"}, {KeyInvoke, "invoke"},
	{KeyTimeout, "timeout"}, {KeyTopic, "topic"}, {KeyProcedure, "procedure"},
	{KeyPublisher, "publisher"}, {KeyCaller, "caller"}, {KeyMessage, "message"},
	{KeyPublisherAuthID, "publisher_authid"}, {KeyPublisherAuthRole, "publisher_authrole"},
	{KeyCallerAuthID, "caller_authid"}, {KeyCallerAuthRole, "caller_authrole"},
	{KeyMode, "mode"}, {KeyReason, "reason"},
	{KeyRetain, "retain"}, {KeyGetRetained, "get_retained"}, {KeyRetained, "retained"},
	{KeyExclude, "exclude"}, {KeyExcludeAuthID, "exclude_authid"},
	{KeyExcludeAuthRole, "exclude_authrole"}, {KeyEligible, "eligible"},
	{KeyEligibleAuthID, "eligible_authid"}, {KeyEligibleAuthRole, "eligible_authrole"},
	{KeyPptScheme, "ppt_scheme"}, {KeyPptSerializer, "ppt_serializer"},
	{KeyPptCipher, "ppt_cipher"}, {KeyPptKeyID, "ppt_keyid"}, {KeyRKey, "rkey"},
}

func keyName(bit uint64) string {
	for _, d := range detailOrder {
		if d.bit == bit {
			return d.name
		}
	}
	return "?"
}

func (d *Details) setBool(bit uint64, v bool) {
	d.Has |= bit
	switch bit {
	case KeyAcknowledge:
		d.Acknowledge = v
	case KeyExcludeMe:
		d.ExcludeMe = v
	case KeyDiscloseMe:
		d.DiscloseMe = v
	case KeyReceiveProgress:
		d.ReceiveProgress = v
	case KeyProgress:
		d.Progress = v
	case KeyRetain:
		d.Retain = v
	case KeyGetRetained:
		d.GetRetained = v
	case KeyRetained:
		d.Retained = v
	}
}

func (d *Details) getBool(bit uint64) bool {
	switch bit {
	case KeyAcknowledge:
		return d.Acknowledge
	case KeyExcludeMe:
		return d.ExcludeMe
	case KeyDiscloseMe:
		return d.DiscloseMe
	case KeyReceiveProgress:
		return d.ReceiveProgress
	case KeyProgress:
		return d.Progress
	case KeyRetain:
		return d.Retain
	case KeyGetRetained:
		return d.GetRetained
	case KeyRetained:
		return d.Retained
	}
	return false
}

// setStr stores a string detail; it reports false when the value is not allowed
// (match must be exact, prefix or wildcard).
func (d *Details) setStr(bit uint64, v []byte) bool {
	d.Has |= bit
	switch bit {
	case KeyMatch:
		switch string(v) {
		case "exact", "prefix", "wildcard":
		default:
			return false
		}
		d.Match = v
	case KeyInvoke:
		d.Invoke = v
	case KeyTopic:
		d.Topic = v
	case KeyProcedure:
		d.Procedure = v
	case KeyMessage:
		d.Message = v
	case KeyPublisherAuthID:
		d.PublisherAuthID = v
	case KeyPublisherAuthRole:
		d.PublisherAuthRole = v
	case KeyCallerAuthID:
		d.CallerAuthID = v
	case KeyCallerAuthRole:
		d.CallerAuthRole = v
	case KeyPptScheme:
		d.PptScheme = v
	case KeyPptSerializer:
		d.PptSerializer = v
	case KeyPptCipher:
		d.PptCipher = v
	case KeyPptKeyID:
		d.PptKeyID = v
	case KeyMode:
		switch string(v) {
		case "skip", "kill", "killnowait":
		default:
			return false
		}
		d.Mode = v
	case KeyReason:
		d.Reason = v
	case KeyRKey:
		d.RKey = v
	}
	return true
}

func (d *Details) getStr(bit uint64) []byte {
	switch bit {
	case KeyMatch:
		return d.Match
	case KeyInvoke:
		return d.Invoke
	case KeyTopic:
		return d.Topic
	case KeyProcedure:
		return d.Procedure
	case KeyMessage:
		return d.Message
	case KeyPublisherAuthID:
		return d.PublisherAuthID
	case KeyPublisherAuthRole:
		return d.PublisherAuthRole
	case KeyCallerAuthID:
		return d.CallerAuthID
	case KeyCallerAuthRole:
		return d.CallerAuthRole
	case KeyPptScheme:
		return d.PptScheme
	case KeyPptSerializer:
		return d.PptSerializer
	case KeyPptCipher:
		return d.PptCipher
	case KeyPptKeyID:
		return d.PptKeyID
	case KeyMode:
		return d.Mode
	case KeyReason:
		return d.Reason
	case KeyRKey:
		return d.RKey
	}
	return nil
}

// rawField returns the Details field of a raw (list) key.
func (d *Details) rawField(bit uint64) *Raw {
	switch bit {
	case KeyExclude:
		return &d.Exclude
	case KeyExcludeAuthID:
		return &d.ExcludeAuthID
	case KeyExcludeAuthRole:
		return &d.ExcludeAuthRole
	case KeyEligible:
		return &d.Eligible
	case KeyEligibleAuthID:
		return &d.EligibleAuthID
	case KeyEligibleAuthRole:
		return &d.EligibleAuthRole
	}
	return nil
}

// checkRawKey validates a list-valued option: exclude and eligible hold session ids,
// the *_authid and *_authrole keys strings. It decodes the list (these options are
// opt-in, so the allocation stays off the plain publish path) and returns a message
// naming the problem, or "".
func checkRawKey(s Serializer, bit uint64, raw []byte) string {
	v, err := DecodeValue(s, raw)
	if err != nil {
		return err.Error()
	}
	list, ok := v.([]any)
	if !ok {
		return "must be a list"
	}
	ids := bit == KeyExclude || bit == KeyEligible
	for _, it := range list {
		if ids {
			if _, ok := IDOf(it); !ok {
				return "items must be session ids"
			}
		} else if _, ok := it.(string); !ok {
			return "items must be strings"
		}
	}
	return ""
}

func (d *Details) setRaw(bit uint64, v []byte) {
	if f := d.rawField(bit); f != nil {
		d.Has |= bit
		*f = v
	}
}

func (d *Details) setUint(bit uint64, v uint64) {
	d.Has |= bit
	switch bit {
	case KeyPublisher:
		d.Publisher = v
	case KeyCaller:
		d.Caller = v
	}
}

func (d *Details) getUint(bit uint64) uint64 {
	switch bit {
	case KeyPublisher:
		return d.Publisher
	case KeyCaller:
		return d.Caller
	}
	return 0
}

// numDetails counts the keys Append writes for d.
func numDetails(d *Details) int {
	n := 0
	for _, k := range detailOrder {
		if d.Has&k.bit != 0 {
			n++
		}
	}
	return n
}

// appendCount returns how many elements after the type code Append writes for m.
func appendCount(sh *shape, m *Message) int {
	n := int(sh.min)
	for i := n; i < int(sh.max); i++ {
		switch sh.elems[i] {
		case eDict:
			if m.Dict != nil || m.DictAny != nil || m.Details.Has != 0 {
				n = i + 1
			}
		case eArgs:
			if m.Args != nil || m.Kwargs != nil {
				n = i + 1
			}
		case eKwargs:
			if m.Kwargs != nil {
				n = i + 1
			}
		}
	}
	return n
}

// invalid builds an error wrapping ErrInvalid: "codec: <serializer>: <msg>: invalid ...".
func invalid(s Serializer, format string, args ...any) error {
	return fmt.Errorf("codec: %s: %s: %w", s, fmt.Sprintf(format, args...), ErrInvalid)
}

// wrap turns a lower-level error into one wrapping ErrInvalid.
func wrap(s Serializer, what string, err error) error {
	return fmt.Errorf("codec: %s: %s: %v: %w", s, what, err, ErrInvalid)
}

// Append-side errors (bad Message, not bad input) do not wrap ErrInvalid.
func encErr(s Serializer, format string, args ...any) error {
	return fmt.Errorf("codec: %s: encode: %s", s, fmt.Sprintf(format, args...))
}

// For returns the codec for s (JSON, MsgPack, CBOR, UBJSON or Flatbuffers; the decode
// rules below are those of the first four, Flatbuffers' are in flatbuf.go). It panics on an unknown
// serializer. The returned codecs are stateless and safe for concurrent use.
//
// Decode rules common to all the codecs:
//   - the message is one list whose first element is a known type code; element count and
//     element types follow the WAMP spec for that type (ids are integers in [0, 2^53],
//     ERROR's REQUEST.Type an integer in [0, 255], URIs strings, Details/Options dicts,
//     Arguments a list, ArgumentsKw a dict). UNSUBSCRIBED and UNREGISTERED accept the
//     advanced-profile trailing Details dict. Arguments may also be a byte string (or, in
//     JSON, a string) carrying a Payload Passthru Mode payload; ArgumentsKw must then be
//     absent. Anything else, trailing bytes included, is an error wrapping ErrInvalid.
//   - the dict's well-known keys that the message type uses (see Details) are parsed and
//     type-checked: a wrong type, or a match other than exact/prefix/wildcard, is an
//     error naming the key; a null value counts as absent; other keys are skipped.
//   - Decode aliases b and does not allocate, except for a URI, dict key or Details string
//     written with JSON escapes or as a CBOR indefinite-length (chunked) string: those are
//     unescaped/joined into a new slice. Strings are not checked for valid UTF-8.
//
// Append writes ids as unsigned integers in their smallest encoding, JSON without spaces,
// CBOR with definite lengths. An optional trailing dict (UNSUBSCRIBED, UNREGISTERED) is
// written only when Dict, DictAny or Details.Has is set.
func For(s Serializer) Codec {
	switch s {
	case JSON:
		return jsonCodec{}
	case MsgPack:
		return msgpackCodec{}
	case CBOR:
		return cborCodec{}
	case UBJSON:
		return ubjsonCodec{}
	case Flatbuffers:
		return flatbufCodec{}
	}
	panic(fmt.Sprintf("codec: unknown serializer %d", uint8(s)))
}
