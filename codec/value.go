package codec

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"

	"github.com/tinylib/msgp/msgp"
)

// Slow path: Go values for session-level messages (HELLO details, WELCOME, ABORT, ...),
// tests and tools. These functions allocate; the routing path never calls them.

// DecodeValue decodes raw, one value encoded with s, into Go values: nil, bool, uint64
// (non-negative integers), int64 (negative integers), float64, string, []byte (MessagePack
// bin, CBOR byte strings, JSON strings under the WAMP binary rule "\u0000"+base64), []any
// and map[string]any. CBOR tags are dropped; CBOR undefined and msgpackr's undefined
// (MessagePack fixext 1 type 0 data 0) are nil. Errors wrap ErrInvalid. Safe for
// concurrent use.
func DecodeValue(s Serializer, raw Raw) (any, error) {
	s = payloadSer(s)
	var v any
	var err error
	switch s {
	case JSON:
		var i int
		v, i, err = jvalue(raw, jws(raw, 0), 0)
		if err == nil && jws(raw, i) != len(raw) {
			err = errSyntax
		}
	case MsgPack:
		var rest []byte
		v, rest, err = mpValue(raw, 0)
		if err == nil && len(rest) != 0 {
			err = errSyntax
		}
	case CBOR:
		var i int
		v, i, err = cbValue(raw, 0, 0)
		if err == nil && i != len(raw) {
			err = errSyntax
		}
	case UBJSON:
		var i int
		if len(raw) == 0 {
			err = errEOF
		} else if v, i, err = ubjValue(raw, 1, raw[0], 0); err == nil && i != len(raw) {
			err = errSyntax
		}
	default:
		return nil, encErr(s, "%v", errNotValid)
	}
	if err != nil {
		return nil, wrap(s, "decode value", err)
	}
	return v, nil
}

// DecodeDict decodes a dict (HELLO.Details, WELCOME.Details, ...) encoded with s. An empty
// or nil raw gives an empty map; a value that is not a dict is an error wrapping
// ErrInvalid. Safe for concurrent use.
func DecodeDict(s Serializer, raw Raw) (map[string]any, error) {
	if len(raw) == 0 {
		return map[string]any{}, nil
	}
	v, err := DecodeValue(s, raw)
	if err != nil {
		return nil, err
	}
	d, ok := v.(map[string]any)
	if !ok {
		return nil, invalid(s, "decode dict: value is %T, not a dict", v)
	}
	return d, nil
}

func jvalue(b []byte, i, depth int) (any, int, error) {
	if i >= len(b) {
		return nil, 0, errEOF
	}
	switch c := b[i]; c {
	case '"':
		s, e, esc, next, err := jstring(b, i)
		if err != nil {
			return nil, 0, err
		}
		str := b[s:e]
		if esc {
			str = junescape(nil, str)
			if len(str) > 0 && str[0] == 0 {
				bin, err := jdecodeBinary([]byte{}, str[1:])
				if err != nil {
					return nil, 0, errBinary
				}
				return bin, next, nil
			}
		}
		return string(str), next, nil
	case '[', '{':
		if depth >= maxDepth {
			return nil, 0, errDepth
		}
		var list []any
		var dict map[string]any
		if c == '[' {
			list = []any{}
		} else {
			dict = map[string]any{}
		}
		closer := byte(']')
		if c == '{' {
			closer = '}'
		}
		i = jws(b, i+1)
		if i < len(b) && b[i] == closer {
			if c == '[' {
				return list, i + 1, nil
			}
			return dict, i + 1, nil
		}
		for {
			var key string
			if c == '{' {
				if i >= len(b) || b[i] != '"' {
					return nil, 0, errSyntax
				}
				k, next, err := jvalue(b, i, depth+1)
				if err != nil {
					return nil, 0, err
				}
				if key, _ = k.(string); key == "" && k != "" {
					key = string(k.([]byte)) // a key under the binary rule: keep its text
				}
				i = jws(b, next)
				if i >= len(b) || b[i] != ':' {
					return nil, 0, errSyntax
				}
				i = jws(b, i+1)
			}
			v, next, err := jvalue(b, i, depth+1)
			if err != nil {
				return nil, 0, err
			}
			if c == '[' {
				list = append(list, v)
			} else {
				dict[key] = v
			}
			i = jws(b, next)
			if i >= len(b) {
				return nil, 0, errEOF
			}
			if b[i] == closer {
				if c == '[' {
					return list, i + 1, nil
				}
				return dict, i + 1, nil
			}
			if b[i] != ',' {
				return nil, 0, errSyntax
			}
			i = jws(b, i+1)
		}
	case 't':
		i, err := jliteral(b, i, "true")
		return true, i, err
	case 'f':
		i, err := jliteral(b, i, "false")
		return false, i, err
	case 'n':
		i, err := jliteral(b, i, "null")
		return nil, i, err
	}
	end, isInt, err := jnumber(b, i)
	if err != nil {
		return nil, 0, err
	}
	num, err := parseJSONNum(b[i:end], isInt)
	if err != nil {
		return nil, 0, err
	}
	switch num.kind {
	case 'u':
		return num.u, end, nil
	case 'i':
		return num.i, end, nil
	}
	return num.f, end, nil
}

func mpValue(b []byte, depth int) (any, []byte, error) {
	switch msgp.NextType(b) {
	case msgp.StrType:
		s, o, err := msgp.ReadStringZC(b)
		return string(s), o, err
	case msgp.BinType:
		s, o, err := msgp.ReadBytesZC(b)
		return slices.Clone(s), o, err
	case msgp.IntType:
		v, o, err := msgp.ReadInt64Bytes(b)
		if v >= 0 {
			return uint64(v), o, err
		}
		return v, o, err
	case msgp.UintType:
		return msgp.ReadUint64Bytes(b)
	case msgp.Float32Type:
		f, o, err := msgp.ReadFloat32Bytes(b)
		return float64(f), o, err
	case msgp.Float64Type:
		return msgp.ReadFloat64Bytes(b)
	case msgp.BoolType:
		return msgp.ReadBoolBytes(b)
	case msgp.NilType:
		o, err := msgp.ReadNilBytes(b)
		return nil, o, err
	case msgp.ArrayType:
		if depth >= maxDepth {
			return nil, nil, errDepth
		}
		n, o, err := msgp.ReadArrayHeaderBytes(b)
		if err != nil {
			return nil, nil, err
		}
		list := make([]any, 0, min(int(n), len(o)))
		for ; n > 0; n-- {
			var v any
			if v, o, err = mpValue(o, depth+1); err != nil {
				return nil, nil, err
			}
			list = append(list, v)
		}
		return list, o, nil
	case msgp.MapType:
		if depth >= maxDepth {
			return nil, nil, errDepth
		}
		n, o, err := msgp.ReadMapHeaderBytes(b)
		if err != nil {
			return nil, nil, err
		}
		dict := make(map[string]any, min(int(n), len(o)))
		for ; n > 0; n-- {
			var k []byte
			if k, o, err = msgp.ReadStringZC(o); err != nil {
				return nil, nil, errKey
			}
			var v any
			if v, o, err = mpValue(o, depth+1); err != nil {
				return nil, nil, err
			}
			dict[string(k)] = v
		}
		return dict, o, nil
	case msgp.InvalidType:
		if len(b) == 0 {
			return nil, nil, errEOF
		}
		return nil, nil, errSyntax
	}
	if mpUndefined(b) {
		return nil, b[3:], nil
	}
	return nil, nil, errExt
}

func cbValue(b []byte, i, depth int) (any, int, error) {
	start := i
	major, info, arg, i, err := cborHead(b, i)
	if err != nil {
		return nil, 0, err
	}
	switch major {
	case cborUint:
		return arg, i, nil
	case cborNeg:
		if arg > math.MaxInt64 {
			return nil, 0, errBigNeg
		}
		return -1 - int64(arg), i, nil
	case cborBytes, cborText:
		s, next, err := cborString(b, start, major)
		if err != nil {
			return nil, 0, err
		}
		if major == cborText {
			return string(s), next, nil
		}
		return slices.Clone(s), next, nil
	case cborTag:
		if depth >= maxDepth {
			return nil, 0, errDepth
		}
		return cbValue(b, i, depth+1)
	case cborArray, cborMap:
		if depth >= maxDepth {
			return nil, 0, errDepth
		}
		indef := info == cborIndef
		var list []any
		var dict map[string]any
		if major == cborArray {
			list = make([]any, 0, min(arg, uint64(len(b))))
		} else {
			dict = make(map[string]any, min(arg, uint64(len(b))))
		}
		for k := uint64(0); ; k++ {
			more, err := cborMore(b, &i, k, arg, indef)
			if err != nil {
				return nil, 0, err
			}
			if !more {
				break
			}
			var key any
			if major == cborMap {
				if key, i, err = cbValue(b, i, depth+1); err != nil {
					return nil, 0, err
				}
				if _, ok := key.(string); !ok {
					return nil, 0, errKey
				}
			}
			var v any
			if v, i, err = cbValue(b, i, depth+1); err != nil {
				return nil, 0, err
			}
			if major == cborMap {
				dict[key.(string)] = v
			} else {
				list = append(list, v)
			}
		}
		if major == cborMap {
			return dict, i, nil
		}
		return list, i, nil
	}
	switch b[start] {
	case 0xf4, 0xf5:
		return b[start] == 0xf5, i, nil
	case 0xf6, 0xf7:
		return nil, i, nil
	case 0xf9:
		return halfToFloat(uint16(arg)), i, nil
	case 0xfa:
		return float64(math.Float32frombits(uint32(arg))), i, nil
	case 0xfb:
		return math.Float64frombits(arg), i, nil
	}
	return nil, 0, errSimple
}

// AppendValue appends v encoded with s and returns the extended slice. It accepts the
// DecodeValue model (nil, bool, int64, uint64, float64, string, []byte, []any,
// map[string]any) plus the other integer and float kinds, Raw (appended as is: it must
// already be encoded with s), and, through reflection, pointers, slices, arrays and maps
// with string keys of any of these. Map keys are written sorted. Other types (structs,
// channels, ...) and NaN/infinities in JSON are errors (not wrapping ErrInvalid). Safe for
// concurrent use.
func AppendValue(dst []byte, s Serializer, v any) ([]byte, error) {
	if s < JSON || s > Flatbuffers {
		return dst, encErr(s, "%v", errNotValid)
	}
	s = payloadSer(s)
	orig := len(dst)
	dst, err := appendAny(dst, s, v, 0)
	if err != nil {
		return dst[:orig], encErr(s, "%v", err)
	}
	return dst, nil
}

func appendAny(dst []byte, s Serializer, v any, depth int) ([]byte, error) {
	if depth >= maxDepth {
		return dst, errDepth
	}
	switch x := v.(type) {
	case nil:
		return appendNil(dst, s), nil
	case bool:
		return appendBool(dst, s, x), nil
	case int:
		return appendInt(dst, s, int64(x)), nil
	case int8:
		return appendInt(dst, s, int64(x)), nil
	case int16:
		return appendInt(dst, s, int64(x)), nil
	case int32:
		return appendInt(dst, s, int64(x)), nil
	case int64:
		return appendInt(dst, s, x), nil
	case uint:
		return appendUint(dst, s, uint64(x)), nil
	case uint8:
		return appendUint(dst, s, uint64(x)), nil
	case uint16:
		return appendUint(dst, s, uint64(x)), nil
	case uint32:
		return appendUint(dst, s, uint64(x)), nil
	case uint64:
		return appendUint(dst, s, x), nil
	case float32:
		return appendFloat(dst, s, float64(x), 32)
	case float64:
		return appendFloat(dst, s, x, 64)
	case string:
		return appendStr(dst, s, x), nil
	case []byte:
		return appendBin(dst, s, x), nil
	case Raw:
		return append(dst, x...), nil
	case []any:
		dst = appendArrayHead(dst, s, len(x))
		var err error
		for i, e := range x {
			if s == JSON && i > 0 {
				dst = append(dst, ',')
			}
			if dst, err = appendAny(dst, s, e, depth+1); err != nil {
				return dst, err
			}
		}
		return appendEnd(dst, s, ']'), nil
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		dst = appendMapHead(dst, s, len(x))
		var err error
		for i, k := range keys {
			if s == JSON && i > 0 {
				dst = append(dst, ',')
			}
			dst = appendKey(dst, s, k)
			if s == JSON {
				dst = append(dst, ':')
			}
			if dst, err = appendAny(dst, s, x[k], depth+1); err != nil {
				return dst, err
			}
		}
		return appendEnd(dst, s, '}'), nil
	}
	return appendReflect(dst, s, reflect.ValueOf(v), depth)
}

var errUnsupported = errors.New("unsupported type")

func appendReflect(dst []byte, s Serializer, rv reflect.Value, depth int) ([]byte, error) {
	var err error
	switch rv.Kind() {
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			return appendNil(dst, s), nil
		}
		return appendAny(dst, s, rv.Elem().Interface(), depth+1)
	case reflect.Bool:
		return appendBool(dst, s, rv.Bool()), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return appendInt(dst, s, rv.Int()), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return appendUint(dst, s, rv.Uint()), nil
	case reflect.Float32:
		return appendFloat(dst, s, rv.Float(), 32)
	case reflect.Float64:
		return appendFloat(dst, s, rv.Float(), 64)
	case reflect.String:
		return appendStr(dst, s, rv.String()), nil
	case reflect.Slice, reflect.Array:
		if rv.Kind() == reflect.Slice && rv.IsNil() {
			return appendNil(dst, s), nil
		}
		if rv.Type().Elem().Kind() == reflect.Uint8 {
			b := make([]byte, rv.Len())
			reflect.Copy(reflect.ValueOf(b), rv)
			return appendBin(dst, s, b), nil
		}
		n := rv.Len()
		dst = appendArrayHead(dst, s, n)
		for i := 0; i < n; i++ {
			if s == JSON && i > 0 {
				dst = append(dst, ',')
			}
			if dst, err = appendAny(dst, s, rv.Index(i).Interface(), depth+1); err != nil {
				return dst, err
			}
		}
		return appendEnd(dst, s, ']'), nil
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			return dst, fmt.Errorf("%w: map key type %s", errUnsupported, rv.Type().Key())
		}
		if rv.IsNil() {
			return appendNil(dst, s), nil
		}
		keys := rv.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int {
			switch {
			case a.String() < b.String():
				return -1
			case a.String() > b.String():
				return 1
			}
			return 0
		})
		dst = appendMapHead(dst, s, len(keys))
		for i, k := range keys {
			if s == JSON && i > 0 {
				dst = append(dst, ',')
			}
			dst = appendKey(dst, s, k.String())
			if s == JSON {
				dst = append(dst, ':')
			}
			if dst, err = appendAny(dst, s, rv.MapIndex(k).Interface(), depth+1); err != nil {
				return dst, err
			}
		}
		return appendEnd(dst, s, '}'), nil
	case reflect.Invalid:
		return appendNil(dst, s), nil
	}
	return dst, fmt.Errorf("%w: %s", errUnsupported, rv.Type())
}
