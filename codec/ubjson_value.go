package codec

import (
	"encoding/binary"
	"math"
	"slices"
)

// UBJSON values outside the message walk: Go values (DecodeValue), transcoding from
// UBJSON (Transcode) and FirstElement. The token writers are in ubjson.go.

// Slow path: Go values (see value.go).

func ubjValue(b []byte, i int, m byte, depth int) (any, int, error) {
	switch m {
	case ubjNull:
		return nil, i, nil
	case ubjTrue, ubjFalse:
		return m == ubjTrue, i, nil
	case ubjInt8, ubjUint8, ubjInt16, ubjInt32, ubjInt64:
		v, next, err := ubjIntAt(b, i, m)
		if err != nil {
			return nil, 0, err
		}
		if v >= 0 {
			return uint64(v), next, nil
		}
		return v, next, nil
	case ubjFloat32, ubjFloat64:
		f, next, err := ubjFloatAt(b, i, m)
		return f, next, err
	case ubjHigh:
		s, isInt, next, err := ubjHighAt(b, i)
		if err != nil {
			return nil, 0, err
		}
		num, err := parseJSONNum(s, isInt)
		if err != nil {
			return nil, 0, err
		}
		switch num.kind {
		case 'u':
			return num.u, next, nil
		case 'i':
			return num.i, next, nil
		}
		return num.f, next, nil
	case ubjChar, ubjString:
		s, next, err := ubjStrAt(b, i, m)
		return string(s), next, err
	case ubjArray, ubjObject:
		if depth >= maxDepth {
			return nil, 0, errDepth
		}
		c, i, err := ubjOpen(b, i, m == ubjObject)
		if err != nil {
			return nil, 0, err
		}
		if c.binary() {
			e := i + int(c.n)
			return slices.Clone(b[i:e]), e, nil
		}
		var list []any
		var dict map[string]any
		if c.obj {
			dict = make(map[string]any, max(c.n, 0))
		} else {
			list = make([]any, 0, max(c.n, 0))
		}
		for k := int64(0); ; k++ {
			more, err := c.more(b, &i, k)
			if err != nil {
				return nil, 0, err
			}
			if !more {
				break
			}
			var key []byte
			if c.obj {
				if key, i, err = ubjSpan(b, i); err != nil {
					return nil, 0, errKey
				}
			}
			var em byte
			if em, i, err = c.marker(b, i); err != nil {
				return nil, 0, err
			}
			var v any
			if v, i, err = ubjValue(b, i, em, depth+1); err != nil {
				return nil, 0, err
			}
			if c.obj {
				dict[string(key)] = v
			} else {
				list = append(list, v)
			}
		}
		if c.obj {
			return dict, i, nil
		}
		return list, i, nil
	}
	return nil, 0, errUBJMarker
}

// ubjFloatAt reads a float payload; float32 values widen exactly.
func ubjFloatAt(b []byte, i int, m byte) (float64, int, error) {
	n := int(ubjFixed[m])
	if n > len(b)-i {
		return 0, 0, errEOF
	}
	if m == ubjFloat32 {
		return float64(math.Float32frombits(binary.BigEndian.Uint32(b[i:]))), i + n, nil
	}
	return math.Float64frombits(binary.BigEndian.Uint64(b[i:])), i + n, nil
}

// Transcoding from UBJSON (see transcode.go).

// ubjCountElems counts the elements of an unbounded container whose first element is at
// b[i] (pairs for objects).
func ubjCountElems(b []byte, i int, c ubjCont, depth int) (int, error) {
	for k := int64(0); ; k++ {
		more, err := c.more(b, &i, k)
		if err != nil {
			return 0, err
		}
		if !more {
			return int(k), nil
		}
		if c.obj {
			if _, i, err = ubjSpan(b, i); err != nil {
				return 0, errKey
			}
		}
		if i, err = ubjSkipValue(b, i, depth+1); err != nil {
			return 0, err
		}
	}
}

func tcUBJSON(dst []byte, to Serializer, b []byte, i int, m byte, depth int) ([]byte, int, error) {
	switch m {
	case ubjNull:
		return appendNil(dst, to), i, nil
	case ubjTrue, ubjFalse:
		return appendBool(dst, to, m == ubjTrue), i, nil
	case ubjInt8, ubjUint8, ubjInt16, ubjInt32, ubjInt64:
		v, next, err := ubjIntAt(b, i, m)
		if err != nil {
			return dst, 0, err
		}
		return appendInt(dst, to, v), next, nil
	case ubjFloat32, ubjFloat64:
		f, next, err := ubjFloatAt(b, i, m)
		if err != nil {
			return dst, 0, err
		}
		bits := 64
		if m == ubjFloat32 {
			bits = 32
		}
		dst, err = appendFloat(dst, to, f, bits)
		return dst, next, err
	case ubjHigh:
		s, isInt, next, err := ubjHighAt(b, i)
		if err != nil {
			return dst, 0, err
		}
		num, err := parseJSONNum(s, isInt)
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
		return dst, next, err
	case ubjChar, ubjString:
		s, next, err := ubjStrAt(b, i, m)
		if err != nil {
			return dst, 0, err
		}
		return appendStrBytes(dst, to, s), next, nil
	case ubjArray, ubjObject:
		if depth >= maxDepth {
			return dst, 0, errDepth
		}
		c, i, err := ubjOpen(b, i, m == ubjObject)
		if err != nil {
			return dst, 0, err
		}
		if c.binary() {
			e := i + int(c.n)
			return appendBin(dst, to, b[i:e]), e, nil
		}
		n := int(c.n)
		if c.n < 0 && to != JSON {
			if n, err = ubjCountElems(b, i, c, depth); err != nil {
				return dst, 0, err
			}
		}
		if c.obj {
			dst = appendMapHead(dst, to, n)
		} else {
			dst = appendArrayHead(dst, to, n)
		}
		for k := int64(0); ; k++ {
			more, err := c.more(b, &i, k)
			if err != nil {
				return dst, 0, err
			}
			if !more {
				break
			}
			if to == JSON && k > 0 {
				dst = append(dst, ',')
			}
			if c.obj {
				var key []byte
				if key, i, err = ubjSpan(b, i); err != nil {
					return dst, 0, errKey
				}
				dst = appendKeyBytes(dst, to, key)
				if to == JSON {
					dst = append(dst, ':')
				}
			}
			var em byte
			if em, i, err = c.marker(b, i); err != nil {
				return dst, 0, err
			}
			if dst, i, err = tcUBJSON(dst, to, b, i, em, depth+1); err != nil {
				return dst, 0, err
			}
		}
		if c.obj {
			return appendEnd(dst, to, '}'), i, nil
		}
		return appendEnd(dst, to, ']'), i, nil
	}
	return dst, 0, errUBJMarker
}

// ubjFirstElement is FirstElement for UBJSON: a list with markers (a typed list's
// elements have none, and a byte string is a payload, not a list).
func ubjFirstElement(list Raw) (Raw, bool) {
	if len(list) == 0 || list[0] != ubjArray {
		return nil, false
	}
	c, i, err := ubjOpen(list, 1, false)
	if err != nil || c.typ != 0 {
		return nil, false
	}
	if more, err := c.more(list, &i, 0); err != nil || !more {
		return nil, false
	}
	e, err := ubjSkipValue(list, i, 1)
	if err != nil {
		return nil, false
	}
	return list[i:e:e], true
}
