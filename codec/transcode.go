package codec

import (
	"errors"
	"math"

	"github.com/tinylib/msgp/msgp"
)

var (
	errExt      = errors.New("MessagePack extension types are not supported")
	errKey      = errors.New("dict key is not a string")
	errBigNeg   = errors.New("negative integer below -2^63")
	errSimple   = errors.New("unsupported CBOR simple value")
	errBinary   = errors.New("bad base64 in binary string")
	errNotValid = errors.New("unknown serializer")
)

// Transcode appends src, one value (typically Arguments or ArgumentsKw) encoded with from,
// re-encoded with to, and returns the extended slice. It streams tokens from a reader of
// from to a writer of to without building Go values and does not allocate beyond growing
// dst. With to == from it appends src unchanged. Flatbuffers stands for its payload
// serializer, CBOR (see flatbuf.go), here as in DecodeValue, AppendValue and FirstElement.
//
// Value mapping: integers stay integers (non-negative ones in the smallest unsigned form),
// floats stay floats (JSON output always has a '.' or an exponent), strings, booleans and
// null map one to one. WAMP binary rule: a JSON string whose first character is NUL
// ("\u0000") holds the base64 (standard alphabet, padded or not) of a byte string; it
// becomes a MessagePack bin / CBOR byte string, and those become such JSON strings (so a
// MessagePack/CBOR text string that itself starts with NUL reads back from JSON as
// binary: the rule makes such strings ambiguous). CBOR
// tags are dropped (their content is transcoded), CBOR undefined and msgpackr's undefined
// (MessagePack fixext 1 type 0 data 0) become null; other MessagePack extension types and
// dict keys that are not strings fail. Malformed input returns an error wrapping ErrInvalid and dst
// unchanged.
//
// Safe for concurrent use.
func Transcode(dst []byte, to Serializer, src Raw, from Serializer) ([]byte, error) {
	if to < JSON || to > Flatbuffers || from < JSON || from > Flatbuffers {
		return dst, encErr(to, "transcode %s to %s: %v", from, to, errNotValid)
	}
	to, from = payloadSer(to), payloadSer(from)
	if to == from {
		return append(dst, src...), nil
	}
	orig := len(dst)
	var err error
	switch from {
	case JSON:
		var i int
		dst, i, err = tcJSON(dst, to, src, jws(src, 0), 0)
		if err == nil && jws(src, i) != len(src) {
			err = errSyntax
		}
	case MsgPack:
		var rest []byte
		dst, rest, err = tcMsgpack(dst, to, src, 0)
		if err == nil && len(rest) != 0 {
			err = errSyntax
		}
	case CBOR:
		var i int
		dst, i, err = tcCBOR(dst, to, src, 0, 0)
		if err == nil && i != len(src) {
			err = errSyntax
		}
	case UBJSON:
		var i int
		if len(src) == 0 {
			err = errEOF
		} else if dst, i, err = tcUBJSON(dst, to, src, 1, src[0], 0); err == nil && i != len(src) {
			err = errSyntax
		}
	}
	if err != nil {
		return dst[:orig], wrap(from, "transcode to "+to.String(), err)
	}
	return dst, nil
}

// moveDown drops dst[p:q] (scratch space) by moving dst[q:] down to p.
func moveDown(dst []byte, p, q int) []byte {
	n := copy(dst[p:], dst[q:])
	return dst[:p+n]
}

// tcJSONString writes the JSON string at b[i] (raw content [s, e)) to a binary target.
func tcJSONString(dst []byte, to Serializer, b []byte, s, e int, esc, isKey bool) ([]byte, error) {
	if !esc {
		if isKey {
			return appendKeyBytes(dst, to, b[s:e]), nil
		}
		return appendStrBytes(dst, to, b[s:e]), nil
	}
	p := len(dst)
	dst = junescape(dst, b[s:e])
	q := len(dst)
	content := dst[p:q]
	if isKey {
		return moveDown(appendKeyBytes(dst, to, content), p, q), nil
	}
	if len(content) == 0 || content[0] != 0 {
		return moveDown(appendStrBytes(dst, to, content), p, q), nil
	}
	var err error
	if dst, err = jdecodeBinary(dst, content[1:]); err != nil {
		return dst[:p], errBinary
	}
	r := len(dst)
	dst = appendBin(dst, to, dst[q:r])
	return moveDown(dst, p, r), nil
}

// jcountChecked counts the elements of the container at b[i], validating them.
func jcountChecked(b []byte, i, depth int) (int, error) {
	if _, err := jskip(b, i, depth); err != nil {
		return 0, err
	}
	return jcount(b, i), nil
}

func tcJSON(dst []byte, to Serializer, b []byte, i, depth int) ([]byte, int, error) {
	if i >= len(b) {
		return dst, 0, errEOF
	}
	switch c := b[i]; c {
	case '"':
		s, e, esc, next, err := jstring(b, i)
		if err != nil {
			return dst, 0, err
		}
		dst, err = tcJSONString(dst, to, b, s, e, esc, false)
		return dst, next, err
	case '[', '{':
		if depth >= maxDepth {
			return dst, 0, errDepth
		}
		n, err := jcountChecked(b, i, depth)
		if err != nil {
			return dst, 0, err
		}
		if c == '[' {
			dst = appendArrayHead(dst, to, n)
		} else {
			dst = appendMapHead(dst, to, n)
		}
		i = jws(b, i+1)
		for k := 0; k < n; k++ {
			if k > 0 {
				i = jws(b, i+1) // ','
			}
			if c == '{' {
				s, e, esc, next, _ := jstring(b, i)
				if dst, err = tcJSONString(dst, to, b, s, e, esc, true); err != nil {
					return dst, 0, err
				}
				i = jws(b, jws(b, next)+1) // ':'
			}
			if dst, i, err = tcJSON(dst, to, b, i, depth+1); err != nil {
				return dst, 0, err
			}
			i = jws(b, i)
		}
		return appendEnd(dst, to, b[i]), i + 1, nil // ']' or '}'
	case 't':
		i, err := jliteral(b, i, "true")
		return appendBool(dst, to, true), i, err
	case 'f':
		i, err := jliteral(b, i, "false")
		return appendBool(dst, to, false), i, err
	case 'n':
		i, err := jliteral(b, i, "null")
		return appendNil(dst, to), i, err
	}
	end, isInt, err := jnumber(b, i)
	if err != nil {
		return dst, 0, err
	}
	num, err := parseJSONNum(b[i:end], isInt)
	if err != nil {
		return dst, 0, err
	}
	switch num.kind {
	case 'u':
		dst = appendUint(dst, to, num.u)
	case 'i':
		dst = appendInt(dst, to, num.i)
	default:
		dst, err = appendFloat(dst, to, num.f, 64)
	}
	return dst, end, err
}

func tcMsgpack(dst []byte, to Serializer, b []byte, depth int) ([]byte, []byte, error) {
	var err error
	switch msgp.NextType(b) {
	case msgp.StrType:
		var s []byte
		if s, b, err = msgp.ReadStringZC(b); err == nil {
			dst = appendStrBytes(dst, to, s)
		}
	case msgp.BinType:
		var s []byte
		if s, b, err = msgp.ReadBytesZC(b); err == nil {
			dst = appendBin(dst, to, s)
		}
	case msgp.IntType:
		var v int64
		if v, b, err = msgp.ReadInt64Bytes(b); err == nil {
			dst = appendInt(dst, to, v)
		}
	case msgp.UintType:
		var v uint64
		if v, b, err = msgp.ReadUint64Bytes(b); err == nil {
			dst = appendUint(dst, to, v)
		}
	case msgp.Float32Type:
		var f float32
		if f, b, err = msgp.ReadFloat32Bytes(b); err == nil {
			dst, err = appendFloat(dst, to, float64(f), 32)
		}
	case msgp.Float64Type:
		var f float64
		if f, b, err = msgp.ReadFloat64Bytes(b); err == nil {
			dst, err = appendFloat(dst, to, f, 64)
		}
	case msgp.BoolType:
		var v bool
		if v, b, err = msgp.ReadBoolBytes(b); err == nil {
			dst = appendBool(dst, to, v)
		}
	case msgp.NilType:
		if b, err = msgp.ReadNilBytes(b); err == nil {
			dst = appendNil(dst, to)
		}
	case msgp.ArrayType, msgp.MapType:
		if depth >= maxDepth {
			return dst, nil, errDepth
		}
		isMap := msgp.NextType(b) == msgp.MapType
		var n uint32
		if isMap {
			n, b, err = msgp.ReadMapHeaderBytes(b)
			dst = appendMapHead(dst, to, int(n))
		} else {
			n, b, err = msgp.ReadArrayHeaderBytes(b)
			dst = appendArrayHead(dst, to, int(n))
		}
		if err != nil {
			return dst, nil, err
		}
		for k := uint32(0); k < n; k++ {
			if to == JSON && k > 0 {
				dst = append(dst, ',')
			}
			if isMap {
				if msgp.NextType(b) != msgp.StrType {
					return dst, nil, errKey
				}
				p := len(dst)
				if dst, b, err = tcMsgpack(dst, to, b, depth+1); err != nil {
					return dst, nil, err
				}
				dst = ubjKeyFromStr(dst, to, p)
				if to == JSON {
					dst = append(dst, ':')
				}
			}
			if dst, b, err = tcMsgpack(dst, to, b, depth+1); err != nil {
				return dst, nil, err
			}
		}
		if isMap {
			dst = appendEnd(dst, to, '}')
		} else {
			dst = appendEnd(dst, to, ']')
		}
	case msgp.InvalidType:
		if len(b) == 0 {
			return dst, nil, errEOF
		}
		return dst, nil, errSyntax
	default:
		if !mpUndefined(b) {
			return dst, nil, errExt
		}
		dst, b = appendNil(dst, to), b[3:]
	}
	return dst, b, err
}

// cborCount counts the elements (pairs for maps) of an indefinite-length container whose
// first element is at b[i].
func cborCount(b []byte, i, per, depth int) (int, error) {
	n := 0
	for {
		if i >= len(b) {
			return 0, errEOF
		}
		if b[i] == cborBreak {
			return n, nil
		}
		for k := 0; k < per; k++ {
			var err error
			if i, err = cborSkip(b, i, depth+1); err != nil {
				return 0, err
			}
		}
		n++
	}
}

// tcCBORString writes a (possibly chunked) CBOR text or byte string.
func tcCBORString(dst []byte, to Serializer, b []byte, major, info byte, arg uint64, i int) ([]byte, int, error) {
	emit := func(dst, s []byte) []byte {
		if major == cborText {
			return appendStrBytes(dst, to, s)
		}
		return appendBin(dst, to, s)
	}
	if info != cborIndef {
		s, i, err := cborSpan(b, i, arg)
		if err != nil {
			return dst, 0, err
		}
		return emit(dst, s), i, nil
	}
	p := len(dst) // gather the chunks in scratch space at the end of dst
	for {
		if i < len(b) && b[i] == cborBreak {
			i++
			break
		}
		m2, inf2, n, j, err := cborHead(b, i)
		if err != nil {
			return dst[:p], 0, err
		}
		if m2 != major || inf2 == cborIndef {
			return dst[:p], 0, errCBORChunk
		}
		var s []byte
		if s, i, err = cborSpan(b, j, n); err != nil {
			return dst[:p], 0, err
		}
		dst = append(dst, s...)
	}
	q := len(dst)
	return moveDown(emit(dst, dst[p:q]), p, q), i, nil
}

// cborTextAt reports whether the item at b[i] is a text string once its tags are dropped
// (as DecodeValue drops them, on dict keys too).
func cborTextAt(b []byte, i int) bool {
	for i < len(b) && b[i]&0xe0 == cborTag {
		var err error
		if _, _, _, i, err = cborHead(b, i); err != nil {
			return false
		}
	}
	return i < len(b) && b[i]&0xe0 == cborText
}

func tcCBOR(dst []byte, to Serializer, b []byte, i, depth int) ([]byte, int, error) {
	start := i
	major, info, arg, i, err := cborHead(b, i)
	if err != nil {
		return dst, 0, err
	}
	switch major {
	case cborUint:
		return appendUint(dst, to, arg), i, nil
	case cborNeg:
		if arg > math.MaxInt64 {
			return dst, 0, errBigNeg
		}
		return appendInt(dst, to, -1-int64(arg)), i, nil
	case cborBytes, cborText:
		return tcCBORString(dst, to, b, major, info, arg, i)
	case cborTag:
		if depth >= maxDepth {
			return dst, 0, errDepth
		}
		return tcCBOR(dst, to, b, i, depth+1)
	case cborArray, cborMap:
		if depth >= maxDepth {
			return dst, 0, errDepth
		}
		per := 1
		if major == cborMap {
			per = 2
		}
		n := arg
		if info == cborIndef && to != JSON && to != UBJSON { // these two need no count
			c, err := cborCount(b, i, per, depth)
			if err != nil {
				return dst, 0, err
			}
			n = uint64(c)
		}
		if n > uint64(len(b)) { // every element takes at least one byte
			return dst, 0, errEOF
		}
		if major == cborMap {
			dst = appendMapHead(dst, to, int(n))
		} else {
			dst = appendArrayHead(dst, to, int(n))
		}
		for k := uint64(0); ; k++ {
			more, err := cborMore(b, &i, k, n, info == cborIndef)
			if err != nil {
				return dst, 0, err
			}
			if !more {
				break
			}
			if to == JSON && k > 0 {
				dst = append(dst, ',')
			}
			if major == cborMap {
				if !cborTextAt(b, i) {
					return dst, 0, errKey
				}
				p := len(dst)
				if dst, i, err = tcCBOR(dst, to, b, i, depth+1); err != nil {
					return dst, 0, err
				}
				dst = ubjKeyFromStr(dst, to, p)
				if to == JSON {
					dst = append(dst, ':')
				}
			}
			if dst, i, err = tcCBOR(dst, to, b, i, depth+1); err != nil {
				return dst, 0, err
			}
		}
		if major == cborMap {
			dst = appendEnd(dst, to, '}')
		} else {
			dst = appendEnd(dst, to, ']')
		}
		return dst, i, nil
	}
	// major 7
	switch b[start] {
	case 0xf4, 0xf5:
		return appendBool(dst, to, b[start] == 0xf5), i, nil
	case 0xf6, 0xf7:
		return appendNil(dst, to), i, nil
	case 0xf9:
		dst, err = appendFloat(dst, to, halfToFloat(uint16(arg)), 32)
		return dst, i, err
	case 0xfa:
		dst, err = appendFloat(dst, to, float64(math.Float32frombits(uint32(arg))), 32)
		return dst, i, err
	case 0xfb:
		dst, err = appendFloat(dst, to, math.Float64frombits(arg), 64)
		return dst, i, err
	}
	if info == cborIndef {
		return dst, 0, errCBORBreak
	}
	return dst, 0, errSimple
}

// halfToFloat converts an IEEE 754 half-precision value.
func halfToFloat(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	exp := int(h>>10) & 0x1f
	mant := float64(h & 0x3ff)
	switch exp {
	case 0:
		return sign * math.Ldexp(mant, -24)
	case 31:
		if mant == 0 {
			return math.Inf(int(sign))
		}
		return math.NaN()
	}
	return sign * math.Ldexp(mant+1024, exp-25)
}
