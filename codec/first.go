package codec

import "github.com/tinylib/msgp/msgp"

// FirstElement returns the encoded bytes of the first element of list (an Arguments list
// in serializer s), aliasing list; ok is false when list is not a non-empty list (a
// payload passthru byte string included). It does not allocate and is safe for
// concurrent use. The bytes are the element's encoding in s, so the same value encoded
// by two serializers gives different bytes.
func FirstElement(s Serializer, list Raw) (elem Raw, ok bool) {
	switch payloadSer(s) {
	case JSON:
		i := jws(list, 0)
		if i >= len(list) || list[i] != '[' {
			return nil, false
		}
		i = jws(list, i+1)
		if i >= len(list) || list[i] == ']' {
			return nil, false
		}
		e, err := jskip(list, i, 1)
		if err != nil {
			return nil, false
		}
		return list[i:e:e], true
	case MsgPack:
		n, o, err := msgp.ReadArrayHeaderBytes(list)
		if err != nil || n == 0 {
			return nil, false
		}
		v, _, err := mpSkip(o)
		return v, err == nil
	case CBOR:
		n, indef, i, err := cborContainer(list, 0, cborArray)
		if err != nil {
			return nil, false
		}
		if more, err := cborMore(list, &i, 0, n, indef); err != nil || !more {
			return nil, false
		}
		e, err := cborSkip(list, i, 1)
		if err != nil {
			return nil, false
		}
		return list[i:e:e], true
	case UBJSON:
		return ubjFirstElement(list)
	}
	return nil, false
}
