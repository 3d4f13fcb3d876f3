// Package codec holds the WAMP message model and its serializers (JSON, MessagePack, CBOR,
// UBJSON, Flatbuffers).
//
// Decoding is zero-copy: a decoded Message aliases the input buffer, and the payload
// (Arguments, ArgumentsKw) stays as raw encoded bytes so that the router can forward it
// without building Go values. A payload is re-encoded only when a receiver speaks another
// serializer (Transcode), once per serializer per message.
//
// CBOR is our own code, not fxamacker/cbor (the design's library), because ours wins on
// every path that matters (cborbench_test.go, best of 3 runs on the shared 2-core dev
// machine, ns/op): decode EVENT 139 vs 394 (fxamacker into a toarray struct with
// RawMessage payload, 1 alloc; 1936 into any), decode CALL 163 vs 425, encode EVENT 105 vs
// 161, encode CALL 142 vs 186; ours allocates nothing. fxamacker stays as the test oracle:
// cbororacle_test.go requires both decoders to agree on every input (or both to refuse it).
// Rerun: go test -run '^$' -bench VsFxamacker -count 3 ./codec
package codec

import "fmt"

// MessageType is the WAMP message code, the first element of every message.
type MessageType uint8

// WAMP message codes (basic and advanced profile).
const (
	HELLO        MessageType = 1
	WELCOME      MessageType = 2
	ABORT        MessageType = 3
	CHALLENGE    MessageType = 4
	AUTHENTICATE MessageType = 5
	GOODBYE      MessageType = 6
	ERROR        MessageType = 8
	PUBLISH      MessageType = 16
	PUBLISHED    MessageType = 17
	SUBSCRIBE    MessageType = 32
	SUBSCRIBED   MessageType = 33
	UNSUBSCRIBE  MessageType = 34
	UNSUBSCRIBED MessageType = 35
	EVENT        MessageType = 36
	CALL         MessageType = 48
	CANCEL       MessageType = 49
	RESULT       MessageType = 50
	REGISTER     MessageType = 64
	REGISTERED   MessageType = 65
	UNREGISTER   MessageType = 66
	UNREGISTERED MessageType = 67
	INVOCATION   MessageType = 68
	INTERRUPT    MessageType = 69
	YIELD        MessageType = 70
)

var typeNames = [...]string{
	HELLO: "HELLO", WELCOME: "WELCOME", ABORT: "ABORT", CHALLENGE: "CHALLENGE",
	AUTHENTICATE: "AUTHENTICATE", GOODBYE: "GOODBYE", ERROR: "ERROR", PUBLISH: "PUBLISH",
	PUBLISHED: "PUBLISHED", SUBSCRIBE: "SUBSCRIBE", SUBSCRIBED: "SUBSCRIBED",
	UNSUBSCRIBE: "UNSUBSCRIBE", UNSUBSCRIBED: "UNSUBSCRIBED", EVENT: "EVENT", CALL: "CALL",
	CANCEL: "CANCEL", RESULT: "RESULT", REGISTER: "REGISTER", REGISTERED: "REGISTERED",
	UNREGISTER: "UNREGISTER", UNREGISTERED: "UNREGISTERED", INVOCATION: "INVOCATION",
	INTERRUPT: "INTERRUPT", YIELD: "YIELD",
}

// String returns the spec name of the type, or "UNKNOWN(n)".
func (t MessageType) String() string {
	if int(t) < len(typeNames) && typeNames[t] != "" {
		return typeNames[t]
	}
	return fmt.Sprintf("UNKNOWN(%d)", uint8(t))
}

// Serializer identifies a WAMP serialization. The values are the RawSocket serializer ids.
type Serializer uint8

// Supported serializers.
const (
	JSON    Serializer = 1
	MsgPack Serializer = 2
	CBOR    Serializer = 3
	UBJSON  Serializer = 4
	// Flatbuffers messages are typed tables whose Raw values are CBOR: see flatbuf.go.
	// It has no batched WebSocket variant.
	Flatbuffers Serializer = 5
)

// NumSerializers bounds the Serializer values; arrays indexed by Serializer use it.
const NumSerializers = 6

// String returns the WAMP name of the serializer ("json", "msgpack", "cbor", "ubjson",
// "flatbuffers").
// Safe for concurrent use.
func (s Serializer) String() string {
	switch s {
	case JSON:
		return "json"
	case MsgPack:
		return "msgpack"
	case CBOR:
		return "cbor"
	case UBJSON:
		return "ubjson"
	case Flatbuffers:
		return "flatbuffers"
	}
	return fmt.Sprintf("serializer(%d)", uint8(s))
}

// Serializers lists every serializer this build speaks, in RawSocket id order: the default
// of a listener and of tools that enumerate them. Safe for concurrent use.
func Serializers() []Serializer { return []Serializer{JSON, MsgPack, CBOR, UBJSON, Flatbuffers} }

// Valid reports whether s is a serializer this build speaks (For accepts it). Safe for
// concurrent use.
func (s Serializer) Valid() bool { return s >= JSON && s <= Flatbuffers }

// ParseSerializer returns the serializer named name ("json", "msgpack", "cbor",
// "ubjson", "flatbuffers": Serializer.String's names). Safe for concurrent use.
func ParseSerializer(name string) (Serializer, bool) {
	for _, s := range Serializers() {
		if s.String() == name {
			return s, true
		}
	}
	return 0, false
}

// Raw is one encoded value (a list or a dict) in the bytes of the serializer of the
// message that holds it. A nil Raw means the element is absent.
type Raw []byte

// Message is one WAMP message in a flat, reusable form. Which fields are used depends on
// Type (see the field comments); the rest are zero. Decode fills a Message whose byte
// slices alias the decoded buffer: copy what must outlive it.
//
// A Message is not safe for concurrent use; reuse one per goroutine to avoid allocation.
type Message struct {
	Type MessageType
	// ErrType is REQUEST.Type of an ERROR message.
	ErrType MessageType

	// Request is the request id: the id a request carries (PUBLISH, SUBSCRIBE, CALL, ...,
	// INVOCATION, CANCEL, INTERRUPT) or the id being answered (PUBLISHED, SUBSCRIBED,
	// RESULT, YIELD, ERROR, ...).
	Request uint64
	// Session is WELCOME.Session.
	Session uint64
	// Subscription is SUBSCRIBED/UNSUBSCRIBE/EVENT.Subscription.
	Subscription uint64
	// Registration is REGISTERED/UNREGISTER/INVOCATION.Registration.
	Registration uint64
	// Publication is PUBLISHED/EVENT.Publication.
	Publication uint64

	// URI is the message's string element: HELLO.Realm, ABORT/GOODBYE.Reason, ERROR.Error,
	// PUBLISH/SUBSCRIBE.Topic, CALL/REGISTER.Procedure, CHALLENGE.AuthMethod,
	// AUTHENTICATE.Signature.
	URI []byte

	// Dict is the raw Details/Options/Extra dict as decoded. On encode, a non-nil Dict is
	// written as is (it must be in the target serializer) and Details/DictAny are ignored.
	Dict Raw
	// Details holds the well-known keys of the dict, parsed on decode (zero-copy) and
	// written on encode when Dict and DictAny are nil.
	Details Details
	// DictAny is a slow-path dict for session-level messages (WELCOME, ABORT, ...): used
	// on encode when Dict is nil and DictAny is non-nil. Never set by Decode.
	DictAny map[string]any

	// Args and Kwargs are the raw Arguments list and ArgumentsKw dict; nil when absent.
	Args   Raw
	Kwargs Raw
}

// Reset clears m for reuse, keeping no references to old buffers.
func (m *Message) Reset() { *m = Message{} }

// Init prepares m for building a message of type t on a hot path: every field is cleared
// except the Details values, which Append reads only for keys whose Has bit is set, so
// clearing Has is enough. It saves zeroing the ~450-byte Details per message; the old
// values may keep their buffers reachable until overwritten.
func (m *Message) Init(t MessageType) {
	m.Type, m.ErrType = t, 0
	m.Request, m.Session, m.Subscription, m.Registration, m.Publication = 0, 0, 0, 0, 0
	m.URI, m.Dict, m.DictAny, m.Args, m.Kwargs = nil, nil, nil, nil, nil
	m.Details.Has = 0
}

// Details is the set of well-known Options/Details keys the router reads or writes on the
// routing path. Byte slices alias the decoded buffer. Has records which keys were present
// (decode) or are to be written (encode); see the Key* bits.
type Details struct {
	Has uint64

	Acknowledge     bool   // PUBLISH.Options.acknowledge
	ExcludeMe       bool   // PUBLISH.Options.exclude_me
	DiscloseMe      bool   // PUBLISH/CALL.Options.disclose_me
	ReceiveProgress bool   // CALL.Options/INVOCATION.Details.receive_progress
	Progress        bool   // RESULT.Details/YIELD.Options.progress
	Match           []byte // SUBSCRIBE/REGISTER.Options.match
	Invoke          []byte // REGISTER.Options.invoke
	Timeout         int64  // CALL.Options.timeout (ms)
	Topic           []byte // EVENT.Details.topic
	Procedure       []byte // INVOCATION.Details.procedure
	Publisher       uint64 // EVENT.Details.publisher
	Caller          uint64 // INVOCATION.Details.caller
	Message         []byte // ABORT/GOODBYE.Details.message

	PublisherAuthID   []byte // EVENT.Details.publisher_authid
	PublisherAuthRole []byte // EVENT.Details.publisher_authrole
	CallerAuthID      []byte // INVOCATION.Details.caller_authid
	CallerAuthRole    []byte // INVOCATION.Details.caller_authrole
	Mode              []byte // CANCEL/INTERRUPT.Options.mode: skip, kill, killnowait
	Reason            []byte // INTERRUPT.Options.reason
	Retain            bool   // PUBLISH.Options.retain
	GetRetained       bool   // SUBSCRIBE.Options.get_retained
	Retained          bool   // EVENT.Details.retained

	// Subscriber black- and whitelisting (PUBLISH.Options): the raw encoded lists, in
	// the message's serializer; decode them with DecodeValue when present.
	Exclude, ExcludeAuthID, ExcludeAuthRole    Raw
	Eligible, EligibleAuthID, EligibleAuthRole Raw

	// Payload passthru mode (PUBLISH/EVENT, CALL/INVOCATION, YIELD/RESULT): forwarded
	// untouched by the router.
	PptScheme, PptSerializer, PptCipher, PptKeyID []byte

	RKey []byte // CALL.Options.rkey: the routing key of the consistent-hash invocation policy
}

// Bits of Details.Has, one per key (32 of the 64 bits are free).
const (
	KeyAcknowledge uint64 = 1 << iota
	KeyExcludeMe
	KeyDiscloseMe
	KeyReceiveProgress
	KeyProgress
	KeyMatch
	KeyInvoke
	KeyTimeout
	KeyTopic
	KeyProcedure
	KeyPublisher
	KeyCaller
	KeyMessage
	KeyPublisherAuthID
	KeyPublisherAuthRole
	KeyCallerAuthID
	KeyCallerAuthRole
	KeyMode
	KeyReason
	KeyRetain
	KeyGetRetained
	KeyRetained
	KeyExclude
	KeyExcludeAuthID
	KeyExcludeAuthRole
	KeyEligible
	KeyEligibleAuthID
	KeyEligibleAuthRole
	KeyPptScheme
	KeyPptSerializer
	KeyPptCipher
	KeyPptKeyID
	KeyRKey
)

// Codec decodes and encodes WAMP messages in one serializer.
//
// Implementations are stateless and safe for concurrent use.
type Codec interface {
	// Serializer says which serialization this codec speaks.
	Serializer() Serializer
	// Decode parses exactly one message from b into m (m is reset first). m's slices
	// alias b. It validates the message shape for m.Type (element count and types) and
	// returns an error wrapping ErrInvalid on any malformed input. It does not allocate.
	Decode(b []byte, m *Message) error
	// Append appends the encoding of m to dst and returns the extended slice. It does not
	// allocate beyond growing dst (except for DictAny).
	Append(dst []byte, m *Message) ([]byte, error)
}
