package codec

import (
	"encoding/binary"
	"errors"
	"math"
)

// ubjsonCodec is the WAMP UBJSON serializer ("wamp.2.ubjson", RawSocket id 4): Universal
// Binary JSON, Draft 12, the dialect of py-ubjson that AutobahnPython uses. Numbers are
// big-endian. Output writes containers unbounded ('[' ... ']', '{' ... '}'), integers in
// the smallest of U/i/I/l/L (H, a decimal string, above 2^63-1), every string with the S
// marker, and a byte string as the strongly typed uint8 array [$U#n, which py-ubjson
// reads back as bytes. Input may also use counted (#n) and typed ($T#n) containers, the C
// char, the N no-op inside containers and H high-precision numbers (a JSON number in
// text). A typed uint8 array is a byte string, never a list of numbers. BJData (a
// little-endian variant) is not UBJSON and is not accepted where the two differ.
// Decode aliases b and never allocates on success. Stateless; safe for concurrent use.
type ubjsonCodec struct{}

func (ubjsonCodec) Serializer() Serializer { return UBJSON }

// UBJSON markers.
const (
	ubjNull    = 'Z'
	ubjNoop    = 'N'
	ubjTrue    = 'T'
	ubjFalse   = 'F'
	ubjInt8    = 'i'
	ubjUint8   = 'U'
	ubjInt16   = 'I'
	ubjInt32   = 'l'
	ubjInt64   = 'L'
	ubjFloat32 = 'd'
	ubjFloat64 = 'D'
	ubjHigh    = 'H'
	ubjChar    = 'C'
	ubjString  = 'S'
	ubjArray   = '['
	ubjArrEnd  = ']'
	ubjObject  = '{'
	ubjObjEnd  = '}'
	ubjType    = '$'
	ubjCount   = '#'
)

var (
	errUBJMarker = errors.New("bad UBJSON marker")
	errUBJType   = errors.New("wrong type")
	errUBJCount  = errors.New("bad container count or type")
	errUBJHigh   = errors.New("high-precision number is not a number")
)

// ubjFixed is the payload size of the fixed-size markers; -1 marks the others.
var ubjFixed = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	t[ubjNull], t[ubjTrue], t[ubjFalse] = 0, 0, 0
	t[ubjInt8], t[ubjUint8], t[ubjChar] = 1, 1, 1
	t[ubjInt16] = 2
	t[ubjInt32], t[ubjFloat32] = 4, 4
	t[ubjInt64], t[ubjFloat64] = 8, 8
	return t
}()

// ubjIntAt reads the payload at b[i] of an integer with marker m.
func ubjIntAt(b []byte, i int, m byte) (int64, int, error) {
	n := int(ubjFixed[m])
	switch m {
	case ubjInt8, ubjUint8, ubjInt16, ubjInt32, ubjInt64:
	default:
		return 0, 0, errUBJType
	}
	if n > len(b)-i {
		return 0, 0, errEOF
	}
	switch m {
	case ubjInt8:
		return int64(int8(b[i])), i + 1, nil
	case ubjUint8:
		return int64(b[i]), i + 1, nil
	case ubjInt16:
		return int64(int16(binary.BigEndian.Uint16(b[i:]))), i + 2, nil
	case ubjInt32:
		return int64(int32(binary.BigEndian.Uint32(b[i:]))), i + 4, nil
	}
	return int64(binary.BigEndian.Uint64(b[i:])), i + 8, nil
}

// ubjLen reads a length (a marker and a non-negative integer) at b[i].
func ubjLen(b []byte, i int) (int64, int, error) {
	if i+1 < len(b) && b[i] == ubjUint8 { // the common case: a length below 256
		return int64(b[i+1]), i + 2, nil
	}
	if i >= len(b) {
		return 0, 0, errEOF
	}
	v, next, err := ubjIntAt(b, i+1, b[i])
	if err != nil {
		return 0, 0, err
	}
	if v < 0 {
		return 0, 0, errUBJCount
	}
	return v, next, nil
}

// ubjSpan reads a length at b[i] and returns the bytes it counts.
func ubjSpan(b []byte, i int) ([]byte, int, error) {
	n, i, err := ubjLen(b, i)
	if err != nil {
		return nil, 0, err
	}
	if n > int64(len(b)-i) {
		return nil, 0, errEOF
	}
	e := i + int(n)
	return b[i:e:e], e, nil
}

// ubjStrAt reads the payload at b[i] of a string with marker m (S, or C for one byte).
func ubjStrAt(b []byte, i int, m byte) ([]byte, int, error) {
	switch m {
	case ubjString:
		return ubjSpan(b, i)
	case ubjChar:
		if i >= len(b) {
			return nil, 0, errEOF
		}
		return b[i : i+1 : i+1], i + 1, nil
	}
	return nil, 0, errUBJType
}

// ubjCont is an open container: its element type (0 when each element has its marker),
// its count (-1 when unbounded) and whether it is an object.
type ubjCont struct {
	typ byte
	n   int64
	obj bool
}

// ubjOpen reads the optional $type and #count after the '[' or '{' that ends at b[i-1].
// A count may not exceed the bytes left (every element, or a typed element's key, takes
// at least one byte), which also bounds typed arrays of null and booleans.
func ubjOpen(b []byte, i int, obj bool) (ubjCont, int, error) {
	c := ubjCont{n: -1, obj: obj}
	if i < len(b) && b[i] == ubjType {
		if i+1 >= len(b) {
			return c, 0, errEOF
		}
		c.typ = b[i+1]
		if ubjFixed[c.typ] < 0 && c.typ != ubjString && c.typ != ubjHigh {
			return c, 0, errUBJCount
		}
		i += 2
		if i >= len(b) || b[i] != ubjCount {
			return c, 0, errUBJCount
		}
	}
	if i < len(b) && b[i] == ubjCount {
		n, next, err := ubjLen(b, i+1)
		if err != nil {
			return c, 0, err
		}
		left := len(b) - next
		if c.typ == ubjNull || c.typ == ubjTrue || c.typ == ubjFalse {
			left = len(b) // elements without payload: bounded by the input size
		}
		if n > int64(left) {
			return c, 0, errEOF
		}
		c.n, i = n, next
	}
	return c, i, nil
}

// binary reports whether c is a byte string ([$U#n).
func (c *ubjCont) binary() bool { return c.typ == ubjUint8 && !c.obj }

// more reports whether element k exists at *i, skipping no-ops before it; for unbounded
// containers it consumes the closing marker.
func (c *ubjCont) more(b []byte, i *int, k int64) (bool, error) {
	if c.n < 0 && c.typ == 0 && *i < len(b) && b[*i] != ubjNoop && b[*i] != ubjArrEnd && b[*i] != ubjObjEnd {
		return true, nil // the common case: an unbounded container with another element
	}
	if c.n >= 0 && k >= c.n {
		return false, nil
	}
	if c.typ == 0 {
		for *i < len(b) && b[*i] == ubjNoop {
			*i++
		}
	}
	if c.n >= 0 {
		return true, nil
	}
	if *i >= len(b) {
		return false, errEOF
	}
	if b[*i] == ubjArrEnd && !c.obj || b[*i] == ubjObjEnd && c.obj {
		*i++
		return false, nil
	}
	return true, nil
}

// marker returns the marker of the element at b[i]: the container's type, or the byte.
func (c *ubjCont) marker(b []byte, i int) (byte, int, error) {
	if c.typ != 0 {
		return c.typ, i, nil
	}
	if i >= len(b) {
		return 0, 0, errEOF
	}
	return b[i], i + 1, nil
}

// ubjHighAt reads a high-precision number's text at b[i] and checks it is a JSON number.
func ubjHighAt(b []byte, i int) ([]byte, bool, int, error) {
	s, next, err := ubjSpan(b, i)
	if err != nil {
		return nil, false, 0, err
	}
	end, isInt, err := jnumber(s, 0)
	if err != nil || end != len(s) {
		return nil, false, 0, errUBJHigh
	}
	return s, isInt, next, nil
}

// ubjSkip validates and skips the payload at b[i] of a value with marker m.
func ubjSkip(b []byte, i int, m byte, depth int) (int, error) {
	if n := int(ubjFixed[m]); n >= 0 {
		if n > len(b)-i {
			return 0, errEOF
		}
		return i + n, nil
	}
	switch m {
	case ubjString:
		_, i, err := ubjSpan(b, i)
		return i, err
	case ubjHigh:
		_, _, i, err := ubjHighAt(b, i)
		return i, err
	case ubjArray, ubjObject:
		if depth >= maxDepth {
			return 0, errDepth
		}
		c, i, err := ubjOpen(b, i, m == ubjObject)
		if err != nil {
			return 0, err
		}
		if c.binary() {
			return i + int(c.n), nil // ubjOpen checked the bytes are there
		}
		for k := int64(0); ; k++ {
			more, err := c.more(b, &i, k)
			if err != nil {
				return 0, err
			}
			if !more {
				return i, nil
			}
			if c.obj {
				if _, i, err = ubjSpan(b, i); err != nil {
					return 0, errKey
				}
			}
			var em byte
			if em, i, err = c.marker(b, i); err != nil {
				return 0, err
			}
			if i, err = ubjSkip(b, i, em, depth+1); err != nil {
				return 0, err
			}
		}
	}
	return 0, errUBJMarker
}

// ubjSkipValue validates and skips the value (marker included) at b[i].
func ubjSkipValue(b []byte, i, depth int) (int, error) {
	if i >= len(b) {
		return 0, errEOF
	}
	return ubjSkip(b, i+1, b[i], depth)
}

// ubjIDAt reads the id at b[i] (marker m at b[i-1]): an integer in [0, limit], or a float
// holding one (see jsnum.go).
func ubjIDAt(b []byte, i int, m byte, limit uint64) (uint64, int, bool) {
	switch m {
	case ubjFloat32, ubjFloat64:
		if int(ubjFixed[m]) > len(b)-i {
			return 0, 0, false
		}
		var f float64
		if m == ubjFloat32 {
			f = float64(math.Float32frombits(binary.BigEndian.Uint32(b[i:])))
		} else {
			f = math.Float64frombits(binary.BigEndian.Uint64(b[i:]))
		}
		v, ok := floatID(f, limit)
		return v, i + int(ubjFixed[m]), ok
	}
	v, next, err := ubjIntAt(b, i, m)
	if err != nil || v < 0 || uint64(v) > limit {
		return 0, 0, false
	}
	return uint64(v), next, true
}

func ubFail(m *Message, format string, args ...any) error {
	return invalid(UBJSON, "%s: "+format, append([]any{m.Type}, args...)...)
}

func ubFailErr(m *Message, what string, err error) error {
	return wrap(UBJSON, m.Type.String()+": "+what, err)
}

func (ubjsonCodec) Decode(b []byte, m *Message) error {
	*m = Message{}
	if len(b) == 0 || b[0] != ubjArray {
		return invalid(UBJSON, "message is not a list")
	}
	c, i, err := ubjOpen(b, 1, false)
	if err != nil || c.typ != 0 {
		return invalid(UBJSON, "message is not a list of values with markers")
	}
	if more, _ := c.more(b, &i, 0); !more || i >= len(b) {
		return invalid(UBJSON, "message is an empty list")
	}
	tm := b[i]
	t, i, ok := ubjIDAt(b, i+1, tm, math.MaxUint8)
	if !ok || tm == ubjFloat32 || tm == ubjFloat64 {
		return invalid(UBJSON, "message type is not a small non-negative integer")
	}
	sh := shapeOf(t)
	if sh == nil {
		return invalid(UBJSON, "unknown message type %d", t)
	}
	m.Type = MessageType(t)
	if c.n >= 0 && (c.n-1 < int64(sh.min) || c.n-1 > int64(sh.max)) {
		return ubFail(m, "%d elements, want %d to %d", c.n, sh.min+1, sh.max+1)
	}
	idx := 0
	for ; ; idx++ {
		more, err := c.more(b, &i, int64(idx)+1)
		if err != nil {
			return ubFailErr(m, "list", err)
		}
		if !more {
			break
		}
		if idx >= int(sh.max) {
			return ubFail(m, "too many elements, want at most %d", sh.max+1)
		}
		if i >= len(b) {
			return ubFailErr(m, "list", errEOF)
		}
		start := i
		em := b[i]
		i++
		switch k := sh.elems[idx]; k {
		case eURI:
			if m.URI, i, err = ubjStrAt(b, i, em); err != nil {
				return ubFailErr(m, "URI: want string", err)
			}
		case eDict:
			if em != ubjObject {
				return ubFail(m, "Details/Options: want dict")
			}
			if i, err = ubjDict(b, i, m, sh.keys); err != nil {
				return err
			}
			m.Dict = b[start:i:i]
		case eArgs, eKwargs:
			if k == eKwargs && (em != ubjObject || ubjIsBinary(m.Args)) ||
				k == eArgs && em != ubjArray && em != ubjString {
				return ubFail(m, "element %d (%s): wrong type", idx+1, k)
			}
			if i, err = ubjSkip(b, i, em, 0); err != nil {
				return ubFailErr(m, k.String(), err)
			}
			if k == eArgs {
				m.Args = b[start:i:i]
			} else {
				m.Kwargs = b[start:i:i]
			}
		default:
			var v uint64
			if v, i, ok = ubjIDAt(b, i, em, idLimit(k)); !ok {
				return ubFail(m, "element %d (%s): want an integer in [0, %d]", idx+1, k, idLimit(k))
			}
			setID(m, k, v)
		}
	}
	if idx < int(sh.min) {
		return ubFail(m, "%d elements, want at least %d", idx+1, sh.min+1)
	}
	if i != len(b) {
		return ubFail(m, "trailing data after the message")
	}
	return nil
}

// ubjIsBinary reports whether the list raw is a byte string ([$U#n): a Payload Passthru
// Mode payload, after which no ArgumentsKw may follow.
func ubjIsBinary(raw Raw) bool {
	return len(raw) >= 3 && raw[0] == ubjArray && raw[1] == ubjType && raw[2] == ubjUint8
}

// ubjDict validates the dict whose '{' ends at b[i-1] (keys are strings by construction in
// UBJSON) and fills m.Details with the keys in mask.
func ubjDict(b []byte, i int, m *Message, mask uint64) (int, error) {
	c, i, err := ubjOpen(b, i, true)
	if err != nil {
		return 0, ubFailErr(m, "Details/Options", err)
	}
	for k := int64(0); ; k++ {
		more, err := c.more(b, &i, k)
		if err != nil {
			return 0, ubFailErr(m, "Details/Options", err)
		}
		if !more {
			return i, nil
		}
		var key []byte
		if key, i, err = ubjSpan(b, i); err != nil {
			return 0, ubFailErr(m, "Details/Options key", err)
		}
		var vm byte
		if vm, i, err = c.marker(b, i); err != nil {
			return 0, ubFailErr(m, "Details/Options", err)
		}
		bit := detailKey(key) & mask
		if vm == ubjNull {
			bit = 0
		}
		switch {
		case bit == 0:
			i, err = ubjSkip(b, i, vm, 0)
		case bit&boolKeys != 0:
			if vm == ubjTrue || vm == ubjFalse {
				m.Details.setBool(bit, vm == ubjTrue)
			} else {
				err = errUBJType
			}
		case bit&strKeys != 0:
			var v []byte
			if v, i, err = ubjStrAt(b, i, vm); err == nil && !m.Details.setStr(bit, v) {
				return 0, ubFail(m, "option %s: bad value %q", keyName(bit), v)
			}
		case bit&idKeys != 0:
			v, next, ok := ubjIDAt(b, i, vm, maxID)
			if !ok {
				return 0, ubFail(m, "option %s: want an integer in [0, %d]", keyName(bit), uint64(maxID))
			}
			i = next
			m.Details.setUint(bit, v)
		case bit&rawKeys != 0:
			start := i - 1
			if c.typ != 0 || vm != ubjArray {
				return 0, ubFail(m, "option %s: must be a list", keyName(bit))
			}
			if i, err = ubjSkip(b, i, vm, 0); err == nil {
				if msg := checkRawKey(UBJSON, bit, b[start:i]); msg != "" {
					return 0, ubFail(m, "option %s: %s", keyName(bit), msg)
				}
				m.Details.setRaw(bit, b[start:i:i])
			}
		default:
			m.Details.Has |= bit
			m.Details.Timeout, i, err = ubjIntAt(b, i, vm)
		}
		if err != nil {
			return 0, ubFailErr(m, "option "+keyName(bit), err)
		}
	}
}

func (ubjsonCodec) Append(dst []byte, m *Message) ([]byte, error) {
	sh := shapeOf(uint64(m.Type))
	if sh == nil {
		return dst, encErr(UBJSON, "unknown message type %d", uint8(m.Type))
	}
	n := appendCount(sh, m)
	dst = append(dst, ubjArray, ubjUint8, byte(m.Type))
	for i := 0; i < n; i++ {
		switch k := sh.elems[i]; k {
		case eURI:
			dst = ubjAppendStr(dst, m.URI)
		case eDict:
			var err error
			if dst, err = appendDict(dst, UBJSON, m); err != nil {
				return dst, err
			}
		case eArgs:
			if m.Args == nil {
				dst = append(dst, ubjArray, ubjArrEnd)
			} else {
				dst = append(dst, m.Args...)
			}
		case eKwargs:
			dst = append(dst, m.Kwargs...)
		default:
			dst = ubjAppendUint(dst, getID(m, k))
		}
	}
	return append(dst, ubjArrEnd), nil
}

// Token writers (see enc.go).

// ubjAppendInt writes v with the smallest of U, i, I, l, L (py-ubjson's choice).
func ubjAppendInt(dst []byte, v int64) []byte {
	switch {
	case v >= 0 && v <= math.MaxUint8:
		return append(dst, ubjUint8, byte(v))
	case v >= math.MinInt8 && v < 0:
		return append(dst, ubjInt8, byte(v))
	case v >= math.MinInt16 && v <= math.MaxInt16:
		return binary.BigEndian.AppendUint16(append(dst, ubjInt16), uint16(v))
	case v >= math.MinInt32 && v <= math.MaxInt32:
		return binary.BigEndian.AppendUint32(append(dst, ubjInt32), uint32(v))
	}
	return binary.BigEndian.AppendUint64(append(dst, ubjInt64), uint64(v))
}

// ubjAppendUint writes v; above 2^63-1 (beyond L) as a high-precision number.
func ubjAppendUint(dst []byte, v uint64) []byte {
	if v <= math.MaxInt64 {
		return ubjAppendInt(dst, int64(v))
	}
	var digits [20]byte
	d := appendUintDigits(digits[:0], v)
	return append(ubjAppendInt(append(dst, ubjHigh), int64(len(d))), d...)
}

func appendUintDigits(dst []byte, v uint64) []byte {
	var tmp [20]byte
	i := len(tmp)
	for {
		i--
		tmp[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	return append(dst, tmp[i:]...)
}

// ubjAppendStr writes a string value: S, a length, the bytes.
func ubjAppendStr(dst, s []byte) []byte {
	return append(ubjAppendInt(append(dst, ubjString), int64(len(s))), s...)
}

// ubjAppendKey writes a dict key: a length and the bytes, without a marker.
func ubjAppendKey(dst, s []byte) []byte {
	return append(ubjAppendInt(dst, int64(len(s))), s...)
}

// ubjAppendBin writes a byte string as a typed uint8 array.
func ubjAppendBin(dst, s []byte) []byte {
	return append(ubjAppendInt(append(dst, ubjArray, ubjType, ubjUint8, ubjCount), int64(len(s))), s...)
}

func ubjAppendFloat(dst []byte, f float64, bits int) []byte {
	if bits == 32 {
		return binary.BigEndian.AppendUint32(append(dst, ubjFloat32), math.Float32bits(float32(f)))
	}
	return binary.BigEndian.AppendUint64(append(dst, ubjFloat64), math.Float64bits(f))
}
