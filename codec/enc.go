package codec

import (
	"encoding/binary"
	"math"
	"strconv"
	"unsafe"

	"github.com/tinylib/msgp/msgp"
)

// Token writers shared by Append, Transcode and AppendValue. For JSON the caller writes
// the separators (',' and ':') and the closers (appendEnd); for MessagePack and CBOR the
// container heads carry the element count and there is nothing to close; UBJSON needs no
// separators but is closed like JSON (its containers are written unbounded), and its dict
// keys have no marker (appendKey). The helpers of ubjson.go do the UBJSON bytes.

// CBOR major types.
const (
	cborUint   = 0 << 5
	cborNeg    = 1 << 5
	cborBytes  = 2 << 5
	cborText   = 3 << 5
	cborArray  = 4 << 5
	cborMap    = 5 << 5
	cborTag    = 6 << 5
	cborSimple = 7 << 5
)

// cborAppendHead appends a CBOR head with the smallest argument encoding.
func cborAppendHead(dst []byte, major byte, n uint64) []byte {
	switch {
	case n < 24:
		return append(dst, major|byte(n))
	case n <= math.MaxUint8:
		return append(dst, major|24, byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(dst, major|25), uint16(n))
	case n <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(dst, major|26), uint32(n))
	}
	return binary.BigEndian.AppendUint64(append(dst, major|27), n)
}

func appendArrayHead(dst []byte, s Serializer, n int) []byte {
	switch s {
	case JSON:
		return append(dst, '[')
	case MsgPack:
		return msgp.AppendArrayHeader(dst, uint32(n))
	case UBJSON:
		return append(dst, ubjArray)
	}
	return cborAppendHead(dst, cborArray, uint64(n))
}

func appendMapHead(dst []byte, s Serializer, n int) []byte {
	switch s {
	case JSON:
		return append(dst, '{')
	case MsgPack:
		return msgp.AppendMapHeader(dst, uint32(n))
	case UBJSON:
		return append(dst, ubjObject)
	}
	return cborAppendHead(dst, cborMap, uint64(n))
}

// appendEnd closes a JSON or UBJSON container (c is ']' or '}', the same byte in both); a
// no-op for the serializers whose heads carry a count.
func appendEnd(dst []byte, s Serializer, c byte) []byte {
	if s == JSON || s == UBJSON {
		return append(dst, c)
	}
	return dst
}

func appendStr(dst []byte, s Serializer, v string) []byte {
	switch s {
	case JSON:
		return jappendString(dst, unsafeBytes(v))
	case MsgPack:
		return msgp.AppendString(dst, v)
	case UBJSON:
		return ubjAppendStr(dst, unsafeBytes(v))
	}
	return append(cborAppendHead(dst, cborText, uint64(len(v))), v...)
}

func appendStrBytes(dst []byte, s Serializer, v []byte) []byte {
	switch s {
	case JSON:
		return jappendString(dst, v)
	case MsgPack:
		return msgp.AppendStringFromBytes(dst, v)
	case UBJSON:
		return ubjAppendStr(dst, v)
	}
	return append(cborAppendHead(dst, cborText, uint64(len(v))), v...)
}

// appendKey writes a dict key: a string, except in UBJSON where keys carry no marker.
func appendKey(dst []byte, s Serializer, k string) []byte {
	if s == UBJSON {
		return ubjAppendKey(dst, unsafeBytes(k))
	}
	return appendStr(dst, s, k)
}

// appendKeyBytes is appendKey for a byte slice.
func appendKeyBytes(dst []byte, s Serializer, k []byte) []byte {
	if s == UBJSON {
		return ubjAppendKey(dst, k)
	}
	return appendStrBytes(dst, s, k)
}

// ubjKeyFromStr turns the string a transcoder just wrote at dst[p:] into a UBJSON key by
// dropping its S marker (the token writers never write UBJSON's C char); a no-op for the
// other serializers.
func ubjKeyFromStr(dst []byte, s Serializer, p int) []byte {
	if s == UBJSON {
		return moveDown(dst, p, p+1)
	}
	return dst
}

func appendBin(dst []byte, s Serializer, v []byte) []byte {
	switch s {
	case JSON:
		return jappendBinary(dst, v)
	case MsgPack:
		return msgp.AppendBytes(dst, v)
	case UBJSON:
		return ubjAppendBin(dst, v)
	}
	return append(cborAppendHead(dst, cborBytes, uint64(len(v))), v...)
}

func appendBool(dst []byte, s Serializer, v bool) []byte {
	switch s {
	case JSON:
		if v {
			return append(dst, "true"...)
		}
		return append(dst, "false"...)
	case MsgPack:
		return msgp.AppendBool(dst, v)
	case UBJSON:
		if v {
			return append(dst, ubjTrue)
		}
		return append(dst, ubjFalse)
	}
	if v {
		return append(dst, 0xf5)
	}
	return append(dst, 0xf4)
}

func appendNil(dst []byte, s Serializer) []byte {
	switch s {
	case JSON:
		return append(dst, "null"...)
	case MsgPack:
		return msgp.AppendNil(dst)
	case UBJSON:
		return append(dst, ubjNull)
	}
	return append(dst, 0xf6)
}

// appendUint writes a non-negative integer in its smallest unsigned encoding.
func appendUint(dst []byte, s Serializer, v uint64) []byte {
	switch s {
	case JSON:
		return strconv.AppendUint(dst, v, 10)
	case MsgPack:
		return msgp.AppendUint64(dst, v)
	case UBJSON:
		return ubjAppendUint(dst, v)
	}
	return cborAppendHead(dst, cborUint, v)
}

// appendInt writes an integer; non-negative values use the unsigned form.
func appendInt(dst []byte, s Serializer, v int64) []byte {
	if v >= 0 {
		return appendUint(dst, s, uint64(v))
	}
	switch s {
	case JSON:
		return strconv.AppendInt(dst, v, 10)
	case MsgPack:
		return msgp.AppendInt64(dst, v)
	case UBJSON:
		return ubjAppendInt(dst, v)
	}
	return cborAppendHead(dst, cborNeg, uint64(-(v + 1)))
}

// appendFloat writes a float; bits is 32 or 64 (the source width, kept by MessagePack and
// CBOR). JSON output always keeps a '.' or an exponent. NaN and infinities fail in JSON.
func appendFloat(dst []byte, s Serializer, f float64, bits int) ([]byte, error) {
	switch s {
	case JSON: // float32 sources print their exact value, as a float64 reader sees it
		return jappendFloat(dst, f)
	case MsgPack:
		if bits == 32 {
			return msgp.AppendFloat32(dst, float32(f)), nil
		}
		return msgp.AppendFloat64(dst, f), nil
	case UBJSON:
		return ubjAppendFloat(dst, f, bits), nil
	}
	if bits == 32 {
		return binary.BigEndian.AppendUint32(append(dst, 0xfa), math.Float32bits(float32(f))), nil
	}
	return binary.BigEndian.AppendUint64(append(dst, 0xfb), math.Float64bits(f)), nil
}

// unsafeBytes views s as bytes; the result must not be written to.
func unsafeBytes(s string) []byte {
	if s == "" {
		return nil
	}
	return unsafe.Slice(unsafe.StringData(s), len(s))
}
