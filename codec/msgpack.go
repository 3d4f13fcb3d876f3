package codec

import (
	"github.com/tinylib/msgp/msgp"
)

// msgpackCodec is the WAMP MessagePack serializer ("wamp.2.msgpack"), built on
// tinylib/msgp's allocation-free byte-slice readers and writers. Decode aliases b
// (MessagePack strings need no unescaping), so it never allocates on success.
// Stateless; safe for concurrent use.
type msgpackCodec struct{}

func (msgpackCodec) Serializer() Serializer { return MsgPack }

func mpFail(m *Message, format string, args ...any) error {
	return invalid(MsgPack, "%s: "+format, append([]any{m.Type}, args...)...)
}

func mpFailErr(m *Message, what string, err error) error {
	return wrap(MsgPack, m.Type.String()+": "+what, err)
}

// mpSkip skips one value and returns it and the rest.
func mpSkip(b []byte) (v, rest []byte, err error) {
	rest, err = msgp.Skip(b)
	if err != nil {
		return nil, nil, err
	}
	n := len(b) - len(rest)
	return b[:n:n], rest, nil
}

// mpID reads an integer in [0, limit], or a float holding one (see jsnum.go).
func mpID(b []byte, limit uint64) (uint64, []byte, bool) {
	v, o, err := msgp.ReadUint64Bytes(b)
	if err == nil {
		return v, o, v <= limit
	}
	return mpFloatID(b, limit)
}

func (msgpackCodec) Decode(b []byte, m *Message) error {
	*m = Message{}
	n, o, err := msgp.ReadArrayHeaderBytes(b)
	if err != nil || n == 0 {
		return invalid(MsgPack, "message is not a non-empty list")
	}
	t, o, err := msgp.ReadUint64Bytes(o)
	if err != nil {
		return invalid(MsgPack, "message type is not a non-negative integer")
	}
	sh := shapeOf(t)
	if sh == nil {
		return invalid(MsgPack, "unknown message type %d", t)
	}
	m.Type = MessageType(t)
	cnt := int(n) - 1
	if cnt < int(sh.min) || cnt > int(sh.max) {
		return mpFail(m, "%d elements, want %d to %d", n, sh.min+1, sh.max+1)
	}
	for i := 0; i < cnt; i++ {
		switch k := sh.elems[i]; k {
		case eURI:
			if m.URI, o, err = msgp.ReadStringZC(o); err != nil {
				return mpFailErr(m, "URI: want string", err)
			}
		case eDict:
			start := o
			if o, err = mpDict(o, m, sh.keys); err != nil {
				return err
			}
			l := len(start) - len(o)
			m.Dict = start[:l:l]
		case eArgs:
			switch msgp.NextType(o) {
			case msgp.ArrayType, msgp.BinType, msgp.StrType:
			default:
				return mpFail(m, "Arguments: want list or binary payload")
			}
			if m.Args, o, err = mpSkip(o); err != nil {
				return mpFailErr(m, "Arguments", err)
			}
		case eKwargs:
			if msgp.NextType(o) != msgp.MapType || msgp.NextType(m.Args) != msgp.ArrayType {
				return mpFail(m, "ArgumentsKw: want dict after a list")
			}
			if m.Kwargs, o, err = mpSkip(o); err != nil {
				return mpFailErr(m, "ArgumentsKw", err)
			}
		default:
			v, rest, ok := mpID(o, idLimit(k))
			if !ok {
				return mpFail(m, "element %d (%s): want an integer in [0, %d]", i+1, k, idLimit(k))
			}
			o = rest
			setID(m, k, v)
		}
	}
	if len(o) != 0 {
		return mpFail(m, "trailing data after the message")
	}
	return nil
}

// mpDict validates the dict at b (every key a string, as WAMP and the other serializers
// require, even when mask is 0) and fills m.Details with the keys in mask.
func mpDict(b []byte, m *Message, mask uint64) ([]byte, error) {
	if msgp.NextType(b) != msgp.MapType {
		return nil, mpFail(m, "Details/Options: want dict")
	}
	n, o, err := msgp.ReadMapHeaderBytes(b)
	if err != nil {
		return nil, mpFailErr(m, "Details/Options", err)
	}
	for ; n > 0; n-- {
		var key []byte
		if key, o, err = msgp.ReadStringZC(o); err != nil {
			return nil, mpFailErr(m, "Details/Options key", err)
		}
		bit := detailKey(key) & mask
		if bit != 0 && (msgp.IsNil(o) || mpUndefined(o)) {
			bit = 0
		}
		switch {
		case bit == 0:
			o, err = msgp.Skip(o)
		case bit&boolKeys != 0:
			var v bool
			v, o, err = msgp.ReadBoolBytes(o)
			m.Details.setBool(bit, v)
		case bit&strKeys != 0:
			var v []byte
			if v, o, err = msgp.ReadStringZC(o); err == nil && !m.Details.setStr(bit, v) {
				return nil, mpFail(m, "option %s: bad value %q", keyName(bit), v)
			}
		case bit&idKeys != 0:
			v, rest, ok := mpID(o, maxID)
			if !ok {
				return nil, mpFail(m, "option %s: want an integer in [0, %d]", keyName(bit), uint64(maxID))
			}
			o = rest
			m.Details.setUint(bit, v)
		case bit&rawKeys != 0:
			start := o
			if o, err = msgp.Skip(o); err == nil {
				v := start[:len(start)-len(o)]
				if msg := checkRawKey(MsgPack, bit, v); msg != "" {
					return nil, mpFail(m, "option %s: %s", keyName(bit), msg)
				}
				m.Details.setRaw(bit, v)
			}
		default:
			m.Details.Has |= bit
			m.Details.Timeout, o, err = msgp.ReadInt64Bytes(o)
		}
		if err != nil {
			return nil, mpFailErr(m, "option "+keyName(bit), err)
		}
	}
	return o, nil
}

func (msgpackCodec) Append(dst []byte, m *Message) ([]byte, error) {
	sh := shapeOf(uint64(m.Type))
	if sh == nil {
		return dst, encErr(MsgPack, "unknown message type %d", uint8(m.Type))
	}
	n := appendCount(sh, m)
	dst = msgp.AppendArrayHeader(dst, uint32(n+1))
	dst = msgp.AppendUint64(dst, uint64(m.Type))
	for i := 0; i < n; i++ {
		switch k := sh.elems[i]; k {
		case eURI:
			dst = msgp.AppendStringFromBytes(dst, m.URI)
		case eDict:
			var err error
			if dst, err = appendDict(dst, MsgPack, m); err != nil {
				return dst, err
			}
		case eArgs:
			if m.Args == nil {
				dst = msgp.AppendArrayHeader(dst, 0)
			} else {
				dst = append(dst, m.Args...)
			}
		case eKwargs:
			dst = append(dst, m.Kwargs...)
		default:
			dst = msgp.AppendUint64(dst, getID(m, k))
		}
	}
	return dst, nil
}
