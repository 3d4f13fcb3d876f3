package codec

import (
	"math"
	"slices"
	"sync"

	fb "github.com/google/flatbuffers/go"
)

// flatbufCodec is the WAMP Flatbuffers serializer ("wamp.2.flatbuffers", RawSocket id 5)
// on the schema codec/flatbuffers/wamp.fbs: a root Message table whose union type is the
// WAMP message code, one table per message type with typed fields instead of a dict.
//
// How it maps onto the Message model:
//   - the Raw values of a Flatbuffers message (Args, Kwargs, the Details list options)
//     are CBOR, as AutobahnPython puts CBOR bytes in the args/kwargs vectors: Transcode,
//     DecodeValue, AppendValue and FirstElement treat Flatbuffers as CBOR;
//   - args/kwargs alias the input; a Payload Passthru Mode payload (the payload vector)
//     becomes Args as a CBOR byte string, in a new slice (the one allocation of Decode);
//   - the typed fields the router reads fill Details (acknowledge, exclude_me, match,
//     timeout, ...); ppt_scheme/ppt_serializer/ppt_cipher are enums whose lower-case names
//     are the Details strings; Dict stays nil. On Append a non-nil Dict or DictAny (a dict
//     in the payload serializer, CBOR) is read for the same keys; the others, like
//     fields of the schema switchyard does not map (roles, authextra, forward_for,
//     transaction_hash), are not carried.
//   - a value the schema cannot hold (a timeout beyond uint32, a ppt_scheme with no enum
//     value) is an Append error.
//
// The Go flatbuffers runtime has no verifier: Decode recovers from the out-of-range read
// a malformed buffer causes and returns an error wrapping ErrInvalid. Stateless; safe for
// concurrent use (Append takes builders from a pool).
type flatbufCodec struct{}

func (flatbufCodec) Serializer() Serializer { return Flatbuffers }

// payloadSer is the serializer of the Raw values of a message in s: CBOR for Flatbuffers.
func payloadSer(s Serializer) Serializer {
	if s == Flatbuffers {
		return CBOR
	}
	return s
}

// fbKind is what one table field carries.
type fbKind uint8

const (
	fbID      fbKind = iota + 1 // uint64 -> setID(k)
	fbErrType                   // uint16 -> ErrType
	fbURI                       // string -> URI
	fbMethod                    // AuthMethod enum -> URI (CHALLENGE)
	fbArgs                      // [ubyte] CBOR -> Args
	fbKwargs                    // [ubyte] CBOR -> Kwargs
	fbPayload                   // [ubyte] opaque -> Args as a CBOR byte string
	fbBool                      // bool -> Details bit
	fbStr                       // string -> Details bit
	fbUint                      // uint64 -> Details bit (publisher, caller)
	fbTimeout                   // uint32 -> Details.Timeout
	fbEnum                      // uint8 enum -> Details string bit (names in fbEnumNames)
	fbIDList                    // [uint64] -> Details raw list bit (CBOR)
	fbStrList                   // [string] -> Details raw list bit (CBOR)
)

// fbField is one mapped field: its position in the table (field id), kind, and element
// kind (fbID) or Details bit. Append writes every Details field whose Has bit is set,
// defaults included (exclude_me defaults to true, INTERRUPT's mode to kill): Has says
// the key was there.
type fbField struct {
	slot uint16
	kind fbKind
	elem elemKind
	bit  uint64
}

func fid(slot uint16, k elemKind) fbField          { return fbField{slot: slot, kind: fbID, elem: k} }
func fk(slot uint16, k fbKind) fbField             { return fbField{slot: slot, kind: k} }
func fd(slot uint16, k fbKind, bit uint64) fbField { return fbField{slot: slot, kind: k, bit: bit} }

// fbPPT are the payload fields at i (args, kwargs, payload) and the ppt fields after them.
func fbPPT(i uint16) []fbField {
	return []fbField{fk(i, fbArgs), fk(i+1, fbKwargs), fk(i+2, fbPayload),
		fd(i+3, fbEnum, KeyPptScheme), fd(i+4, fbEnum, KeyPptSerializer), fd(i+5, fbEnum, KeyPptCipher),
		fd(i+6, fbStr, KeyPptKeyID)}
}

func fbJoin(parts ...[]fbField) []fbField {
	var out []fbField
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// fbTables maps each WAMP message type to its table's fields and field count, following
// wamp.fbs (field ids are positions). Fields not listed are not mapped.
var fbTables = func() (t [YIELD + 1]struct {
	n      int
	fields []fbField
}) {
	set := func(mt MessageType, n int, f ...fbField) { t[mt].n, t[mt].fields = n, f }
	set(HELLO, 10, fk(2, fbURI))
	set(WELCOME, 11, fid(0, eSession))
	set(ABORT, 3, fk(1, fbURI), fd(2, fbStr, KeyMessage))
	set(CHALLENGE, 3, fk(1, fbMethod))
	set(AUTHENTICATE, 3, fk(1, fbURI))
	set(GOODBYE, 4, fk(1, fbURI), fd(2, fbStr, KeyMessage))
	set(ERROR, 12, fbJoin([]fbField{fk(1, fbErrType), fid(2, eRequest), fk(3, fbURI)}, fbPPT(4))...)
	set(PUBLISH, 21, fbJoin([]fbField{fid(1, eRequest), fk(2, fbURI)}, fbPPT(3), []fbField{
		fd(10, fbBool, KeyAcknowledge), fd(11, fbBool, KeyExcludeMe),
		fd(12, fbIDList, KeyExclude), fd(13, fbStrList, KeyExcludeAuthID), fd(14, fbStrList, KeyExcludeAuthRole),
		fd(15, fbIDList, KeyEligible), fd(16, fbStrList, KeyEligibleAuthID), fd(17, fbStrList, KeyEligibleAuthRole),
		fd(18, fbBool, KeyRetain)})...)
	set(PUBLISHED, 3, fid(1, eRequest), fid(2, ePublication))
	set(SUBSCRIBE, 5, fid(1, eRequest), fk(2, fbURI), fd(3, fbEnum, KeyMatch), fd(4, fbBool, KeyGetRetained))
	set(SUBSCRIBED, 3, fid(1, eRequest), fid(2, eSubscription))
	set(UNSUBSCRIBE, 3, fid(1, eRequest), fid(2, eSubscription))
	set(UNSUBSCRIBED, 4, fid(1, eRequest))
	set(EVENT, 18, fbJoin([]fbField{fid(1, eSubscription), fid(2, ePublication)}, fbPPT(3), []fbField{
		fd(10, fbUint, KeyPublisher), fd(11, fbStr, KeyPublisherAuthID), fd(12, fbStr, KeyPublisherAuthRole),
		fd(13, fbStr, KeyTopic), fd(14, fbBool, KeyRetained)})...)
	set(CALL, 17, fbJoin([]fbField{fid(1, eRequest), fk(2, fbURI)}, fbPPT(3), []fbField{
		fd(10, fbTimeout, KeyTimeout), fd(11, fbBool, KeyReceiveProgress)})...)
	set(CANCEL, 4, fid(1, eRequest), fd(2, fbEnum, KeyMode))
	set(RESULT, 14, fbJoin([]fbField{fid(1, eRequest)}, fbPPT(2), []fbField{fd(9, fbBool, KeyProgress)})...)
	set(REGISTER, 7, fid(1, eRequest), fk(2, fbURI), fd(3, fbEnum, KeyMatch), fd(4, fbEnum, KeyInvoke))
	set(REGISTERED, 3, fid(1, eRequest), fid(2, eRegistration))
	set(UNREGISTER, 3, fid(1, eRequest), fid(2, eRegistration))
	set(UNREGISTERED, 4, fid(1, eRequest))
	set(INVOCATION, 18, fbJoin([]fbField{fid(1, eRequest), fid(2, eRegistration)}, fbPPT(3), []fbField{
		fd(10, fbStr, KeyProcedure), fd(11, fbTimeout, KeyTimeout), fd(12, fbBool, KeyReceiveProgress),
		fd(14, fbUint, KeyCaller), fd(15, fbStr, KeyCallerAuthID), fd(16, fbStr, KeyCallerAuthRole)})...)
	set(INTERRUPT, 5, fid(1, eRequest), fd(2, fbEnum, KeyMode), fd(3, fbStr, KeyReason))
	set(YIELD, 14, fbJoin([]fbField{fid(1, eRequest)}, fbPPT(2), []fbField{fd(9, fbBool, KeyProgress)})...)
	return t
}()

// fbEnumNames are the values of the enum fields, by Details bit: the schema's enum names
// in lower case (ppt_* "none"/"transport"/"null", value 0, stand for absent).
var fbEnumNames = map[uint64][]string{
	KeyMatch:         {"exact", "prefix", "wildcard"},
	KeyInvoke:        {"single", "first", "last", "roundrobin", "random"},
	KeyMode:          {"skip", "kill", "killnowait"},
	KeyPptScheme:     {"", "cryptobox", "mqtt", "xbr", "opaque"},
	KeyPptSerializer: {"", "json", "msgpack", "cbor", "ubjson", "opaque", "flatbuffers", "flexbuffers"},
	KeyPptCipher:     {"", "xsalsa20poly1305", "aes256gcm"},
}

// fbMethods are the AuthMethod enum values as WAMP auth method names (NULL is anonymous).
var fbMethods = []string{"anonymous", "ticket", "wampcra", "wamp-scram", "cryptosign"}

func fbSlot(slot uint16) fb.VOffsetT { return fb.VOffsetT(4 + 2*slot) }

func (flatbufCodec) Decode(b []byte, m *Message) (err error) {
	*m = Message{}
	defer func() {
		if r := recover(); r != nil {
			*m = Message{}
			err = invalid(Flatbuffers, "malformed buffer (%v)", r)
		}
	}()
	if len(b) < 8 {
		return invalid(Flatbuffers, "buffer too short")
	}
	// The runtime slices with offsets read from the buffer: a full slice expression
	// keeps them within len(b), not within what cap(b) would allow (a network read
	// buffer's next bytes, say).
	b = b[:len(b):len(b)]
	root := fb.Table{Bytes: b, Pos: fb.GetUOffsetT(b)}
	t := root.GetUint8Slot(fbSlot(0), 0)
	o := root.Offset(fbSlot(1))
	if o == 0 {
		return invalid(Flatbuffers, "message has no msg")
	}
	if shapeOf(uint64(t)) == nil {
		return invalid(Flatbuffers, "unknown message type %d", t)
	}
	m.Type = MessageType(t)
	var tab fb.Table
	root.Union(&tab, fb.UOffsetT(o))
	sh := shapeOf(uint64(t))
	for _, f := range fbTables[t].fields {
		o := tab.Offset(fbSlot(f.slot))
		if o == 0 {
			continue
		}
		p := tab.Pos + fb.UOffsetT(o)
		switch f.kind {
		case fbID:
			v := tab.GetUint64(p)
			if v > idLimit(f.elem) {
				return invalid(Flatbuffers, "%s: %s %d beyond 2^53", m.Type, f.elem, v)
			}
			setID(m, f.elem, v)
		case fbErrType:
			v := tab.GetUint16(p)
			if v > math.MaxUint8 {
				return invalid(Flatbuffers, "%s: request_type %d", m.Type, v)
			}
			m.ErrType = MessageType(v)
		case fbURI:
			m.URI = fbBytes(&tab, p)
		case fbMethod:
			v := tab.GetUint8(p)
			if int(v) >= len(fbMethods) {
				return invalid(Flatbuffers, "%s: auth method %d", m.Type, v)
			}
			m.URI = unsafeBytes(fbMethods[v])
		case fbArgs:
			m.Args = fbBytes(&tab, p)
		case fbKwargs:
			m.Kwargs = fbBytes(&tab, p)
		case fbPayload:
			if m.Args != nil {
				return invalid(Flatbuffers, "%s: both args and payload", m.Type)
			}
			m.Args = appendBin(nil, CBOR, fbBytes(&tab, p))
		default:
			if f.bit&sh.keys == 0 {
				continue
			}
			if err := fbDecodeDetail(&tab, p, f, m); err != nil {
				return err
			}
		}
	}
	if m.Kwargs != nil && m.Args != nil && len(m.Args) > 0 && m.Args[0]&0xe0 == cborBytes {
		return invalid(Flatbuffers, "%s: kwargs with a payload", m.Type)
	}
	// Raw values must be CBOR of the right kind, as the other decoders check.
	if m.Args != nil && (len(m.Args) == 0 || m.Args[0]&0xe0 != cborArray && m.Args[0]&0xe0 != cborBytes) {
		return invalid(Flatbuffers, "%s: args is not a CBOR list", m.Type)
	}
	if m.Kwargs != nil && (len(m.Kwargs) == 0 || m.Kwargs[0]&0xe0 != cborMap) {
		return invalid(Flatbuffers, "%s: kwargs is not a CBOR dict", m.Type)
	}
	for _, r := range []Raw{m.Args, m.Kwargs} {
		if r != nil {
			if e, err := cborSkip(r, 0, 0); err != nil || e != len(r) {
				return invalid(Flatbuffers, "%s: payload is not one CBOR value", m.Type)
			}
		}
	}
	if m.Args == nil && m.Kwargs != nil {
		m.Args = Raw{cborArray} // an empty list, as the other codecs read [.., [], {..}]
	}
	if fbNeedsURI(sh) && m.URI == nil {
		return invalid(Flatbuffers, "%s: missing URI", m.Type)
	}
	if fbIsSession(m.Type) {
		var err error
		if m.Dict, err = fbSessionDict(&tab, m.Type); err != nil {
			return err
		}
	}
	return nil
}

// fbIsSession reports the session-level types, whose dict flatbuf_session.go maps.
func fbIsSession(t MessageType) bool {
	switch t {
	case HELLO, WELCOME, ABORT, GOODBYE, CHALLENGE, AUTHENTICATE:
		return true
	}
	return false
}

// fbNeedsURI reports whether a URI element is among the required ones.
func fbNeedsURI(sh *shape) bool {
	for _, k := range sh.elems[:sh.min] {
		if k == eURI {
			return true
		}
	}
	return false
}

// fbBytes returns the string or [ubyte] at p, aliasing the buffer (the Table call panics
// when out of range; Decode recovers).
func fbBytes(t *fb.Table, p fb.UOffsetT) []byte {
	v := t.ByteVector(p)
	if v == nil {
		return []byte{}
	}
	return v[:len(v):len(v)]
}

func fbDecodeDetail(t *fb.Table, p fb.UOffsetT, f fbField, m *Message) error {
	d := &m.Details
	switch f.kind {
	case fbBool:
		d.setBool(f.bit, t.GetBool(p))
	case fbStr:
		d.setStr(f.bit, fbBytes(t, p))
	case fbUint:
		v := t.GetUint64(p)
		if v > maxID {
			return invalid(Flatbuffers, "%s: option %s beyond 2^53", m.Type, keyName(f.bit))
		}
		d.setUint(f.bit, v)
	case fbTimeout:
		d.Has |= f.bit
		d.Timeout = int64(t.GetUint32(p))
	case fbEnum:
		v := t.GetUint8(p)
		names := fbEnumNames[f.bit]
		if int(v) >= len(names) {
			return invalid(Flatbuffers, "%s: option %s: enum value %d", m.Type, keyName(f.bit), v)
		}
		if names[v] != "" {
			d.setStr(f.bit, unsafeBytes(names[v]))
		}
	case fbIDList, fbStrList:
		vec := t.Vector(p - t.Pos)
		n := t.VectorLen(p - t.Pos)
		if n > len(t.Bytes) {
			return invalid(Flatbuffers, "%s: option %s: bad vector", m.Type, keyName(f.bit))
		}
		raw := cborAppendHead(nil, cborArray, uint64(n))
		for i := 0; i < n; i++ {
			if f.kind == fbIDList {
				raw = cborAppendHead(raw, cborUint, t.GetUint64(vec+fb.UOffsetT(i*8)))
			} else {
				raw = appendStrBytes(raw, CBOR, fbBytes(t, vec+fb.UOffsetT(i*4)))
			}
		}
		d.setRaw(f.bit, raw)
	}
	return nil
}

var fbBuilders = sync.Pool{New: func() any { return fb.NewBuilder(256) }}

func (flatbufCodec) Append(dst []byte, m *Message) ([]byte, error) {
	sh := shapeOf(uint64(m.Type))
	if sh == nil || fbTables[m.Type].n == 0 {
		return dst, encErr(Flatbuffers, "unknown message type %d", uint8(m.Type))
	}
	if fbIsSession(m.Type) {
		bld := fbBuilders.Get().(*fb.Builder)
		defer fbBuilders.Put(bld)
		bld.Reset()
		off, err := fbAppendSession(bld, m)
		if err != nil {
			return dst, err
		}
		return fbFinish(dst, bld, m.Type, off), nil
	}
	d := &m.Details
	if m.Dict != nil || m.DictAny != nil {
		var err error
		if d, err = fbDetailsOf(m, sh); err != nil {
			return dst, err
		}
	}
	bld := fbBuilders.Get().(*fb.Builder)
	defer fbBuilders.Put(bld)
	bld.Reset()
	fields := fbTables[m.Type].fields
	// Offsets of the strings and vectors, built before the table (flatbuffers order).
	var offs [24]fb.UOffsetT
	args := m.Args
	var payload []byte
	if len(args) > 0 && (args[0]&0xe0 == cborBytes || args[0]&0xe0 == cborText) {
		s, _, err := cborString(args, 0, args[0]&0xe0)
		if err != nil {
			return dst, encErr(Flatbuffers, "payload: %v", err)
		}
		payload, args = s, nil
	}
	for _, f := range fields {
		var off fb.UOffsetT
		switch f.kind {
		case fbURI:
			off = bld.CreateByteString(m.URI)
		case fbArgs:
			if args != nil && !(m.Kwargs == nil && len(args) == 1 && args[0] == cborArray) {
				off = bld.CreateByteVector(args)
			}
		case fbKwargs:
			if m.Kwargs != nil {
				off = bld.CreateByteVector(m.Kwargs)
			}
		case fbPayload:
			if payload != nil {
				off = bld.CreateByteVector(payload)
			}
		case fbStr:
			if d.Has&f.bit != 0 && f.bit&sh.keys != 0 {
				off = bld.CreateByteString(d.getStr(f.bit))
			}
		case fbIDList, fbStrList:
			if d.Has&f.bit != 0 && f.bit&sh.keys != 0 {
				var err error
				if off, err = fbList(bld, f, *d.rawField(f.bit), CBOR); err != nil {
					return dst, err
				}
			}
		}
		offs[f.slot] = off
	}
	bld.StartObject(fbTables[m.Type].n)
	for _, f := range fields {
		s := int(f.slot)
		switch f.kind {
		case fbID:
			bld.PrependUint64Slot(s, getID(m, f.elem), 0)
		case fbErrType:
			bld.PrependUint16Slot(s, uint16(m.ErrType), 0)
		case fbMethod:
			i := slices.Index(fbMethods, string(m.URI))
			if i < 0 {
				return dst, encErr(Flatbuffers, "auth method %q has no Flatbuffers value", m.URI)
			}
			bld.PrependUint8Slot(s, uint8(i), 0xff)
		case fbURI, fbArgs, fbKwargs, fbPayload, fbStr, fbIDList, fbStrList:
			if offs[s] != 0 {
				bld.PrependUOffsetTSlot(s, offs[s], 0)
			}
		default:
			if d.Has&f.bit == 0 || f.bit&sh.keys == 0 {
				continue
			}
			switch f.kind {
			case fbBool:
				bld.PrependBool(d.getBool(f.bit)) // written even when it is the default: Has says present
				bld.Slot(s)
			case fbUint:
				bld.PrependUint64(d.getUint(f.bit))
				bld.Slot(s)
			case fbTimeout:
				if d.Timeout < 0 || d.Timeout > math.MaxUint32 {
					return dst, encErr(Flatbuffers, "timeout %d does not fit uint32", d.Timeout)
				}
				bld.PrependUint32(uint32(d.Timeout))
				bld.Slot(s)
			case fbEnum:
				v := d.getStr(f.bit)
				i := -1
				for j, n := range fbEnumNames[f.bit] {
					if n == string(v) && n != "" {
						i = j
					}
				}
				if i < 0 {
					return dst, encErr(Flatbuffers, "option %s %q has no Flatbuffers value", keyName(f.bit), v)
				}
				bld.PrependUint8(uint8(i))
				bld.Slot(s)
			}
		}
	}
	return fbFinish(dst, bld, m.Type, bld.EndObject()), nil
}

// fbFinish writes the root Message table around msg and appends the buffer to dst.
func fbFinish(dst []byte, bld *fb.Builder, t MessageType, msg fb.UOffsetT) []byte {
	bld.StartObject(2)
	bld.PrependUOffsetTSlot(1, msg, 0)
	bld.PrependUint8Slot(0, uint8(t), 0)
	bld.Finish(bld.EndObject())
	return append(dst, bld.FinishedBytes()...)
}

// fbList writes a Details list option (CBOR) as a [uint64] or [string] vector.
func fbList(bld *fb.Builder, f fbField, raw Raw, s Serializer) (fb.UOffsetT, error) {
	v, err := DecodeValue(s, raw)
	if err != nil {
		return 0, encErr(Flatbuffers, "option %s: %v", keyName(f.bit), err)
	}
	list, _ := v.([]any)
	if f.kind == fbStrList {
		offs := make([]fb.UOffsetT, len(list))
		for i, e := range list {
			str, ok := e.(string)
			if !ok {
				return 0, encErr(Flatbuffers, "option %s: items must be strings", keyName(f.bit))
			}
			offs[i] = bld.CreateString(str)
		}
		bld.StartVector(4, len(offs), 4)
		for i := len(offs) - 1; i >= 0; i-- {
			bld.PrependUOffsetT(offs[i])
		}
		return bld.EndVector(len(offs)), nil
	}
	bld.StartVector(8, len(list), 8)
	for i := len(list) - 1; i >= 0; i-- {
		id, ok := IDOf(list[i])
		if !ok {
			return 0, encErr(Flatbuffers, "option %s: items must be ids", keyName(f.bit))
		}
		bld.PrependUint64(id)
	}
	return bld.EndVector(len(list)), nil
}

// fbDetailsOf reads the mapped keys of m's dict (Dict in CBOR, or DictAny) into a new
// Details (slow path: session messages and dicts carried from another serializer).
func fbDetailsOf(m *Message, sh *shape) (*Details, error) {
	raw := m.Dict
	if raw == nil {
		var err error
		if raw, err = AppendValue(nil, CBOR, m.DictAny); err != nil {
			return nil, encErr(Flatbuffers, "dict: %v", err)
		}
	}
	var tmp Message
	tmp.Type = m.Type
	if _, err := cborDict(raw, 0, &tmp, sh.keys); err != nil {
		return nil, encErr(Flatbuffers, "dict: %v", err)
	}
	return &tmp.Details, nil
}
