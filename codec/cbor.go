package codec

import (
	"encoding/binary"
	"errors"
	"math"
)

// cborCodec is the WAMP CBOR serializer ("wamp.2.cbor"), hand-rolled (RFC 8949). Output
// uses definite lengths and the smallest integer heads; input may use indefinite lengths.
// Decode aliases b; the one exception is an indefinite-length (chunked) text string used
// as a URI or Details string, which Decode concatenates into a new slice (rare).
// Stateless; safe for concurrent use.
type cborCodec struct{}

func (cborCodec) Serializer() Serializer { return CBOR }

const (
	cborIndef = 31   // additional info: indefinite length
	cborBreak = 0xff // break stop code
)

var (
	errCBORInfo  = errors.New("reserved additional information")
	errCBORChunk = errors.New("bad indefinite-length string chunk")
	errCBORBreak = errors.New("unexpected break")
	errCBORType  = errors.New("wrong type")
)

// cborHead parses the head at b[i]. For info == cborIndef, arg is 0.
func cborHead(b []byte, i int) (major, info byte, arg uint64, next int, err error) {
	if i >= len(b) {
		return 0, 0, 0, 0, errEOF
	}
	c := b[i]
	major, info = c&0xe0, c&0x1f
	i++
	switch {
	case info < 24:
		return major, info, uint64(info), i, nil
	case info == 24:
		if i+1 > len(b) {
			return 0, 0, 0, 0, errEOF
		}
		return major, info, uint64(b[i]), i + 1, nil
	case info == 25:
		if i+2 > len(b) {
			return 0, 0, 0, 0, errEOF
		}
		return major, info, uint64(binary.BigEndian.Uint16(b[i:])), i + 2, nil
	case info == 26:
		if i+4 > len(b) {
			return 0, 0, 0, 0, errEOF
		}
		return major, info, uint64(binary.BigEndian.Uint32(b[i:])), i + 4, nil
	case info == 27:
		if i+8 > len(b) {
			return 0, 0, 0, 0, errEOF
		}
		return major, info, binary.BigEndian.Uint64(b[i:]), i + 8, nil
	case info == cborIndef:
		switch major {
		case cborBytes, cborText, cborArray, cborMap, cborSimple:
			return major, info, 0, i, nil
		}
	}
	return 0, 0, 0, 0, errCBORInfo
}

// cborSpan returns b[i:i+n] checking bounds.
func cborSpan(b []byte, i int, n uint64) ([]byte, int, error) {
	if n > uint64(len(b)-i) {
		return nil, 0, errEOF
	}
	e := i + int(n)
	return b[i:e:e], e, nil
}

// cborSkip validates and skips the data item at b[i].
func cborSkip(b []byte, i, depth int) (int, error) {
	major, info, arg, i, err := cborHead(b, i)
	if err != nil {
		return 0, err
	}
	switch major {
	case cborUint, cborNeg:
		return i, nil
	case cborBytes, cborText:
		if info != cborIndef {
			_, i, err = cborSpan(b, i, arg)
			return i, err
		}
		for {
			if i < len(b) && b[i] == cborBreak {
				return i + 1, nil
			}
			m2, inf2, n, j, err := cborHead(b, i)
			if err != nil {
				return 0, err
			}
			if m2 != major || inf2 == cborIndef {
				return 0, errCBORChunk
			}
			if _, i, err = cborSpan(b, j, n); err != nil {
				return 0, err
			}
		}
	case cborArray, cborMap, cborTag:
		if depth >= maxDepth {
			return 0, errDepth
		}
		if major == cborTag {
			return cborSkip(b, i, depth+1)
		}
		per := 1
		if major == cborMap {
			per = 2
		}
		if info == cborIndef {
			for {
				if i >= len(b) {
					return 0, errEOF
				}
				if b[i] == cborBreak {
					return i + 1, nil
				}
				for k := 0; k < per; k++ {
					if i, err = cborSkip(b, i, depth+1); err != nil {
						return 0, err
					}
				}
			}
		}
		for ; arg > 0; arg-- {
			for k := 0; k < per; k++ {
				if i, err = cborSkip(b, i, depth+1); err != nil {
					return 0, err
				}
			}
		}
		return i, nil
	}
	// major 7
	switch {
	case info == 24 && arg < 32:
		return 0, errCBORInfo
	case info == cborIndef:
		return 0, errCBORBreak
	}
	return i, nil
}

// cborString reads a text (or, with major cborBytes, byte) string at b[i]. Definite
// strings alias b; chunked ones are concatenated into a new slice.
func cborString(b []byte, i int, want byte) ([]byte, int, error) {
	major, info, arg, i, err := cborHead(b, i)
	if err != nil {
		return nil, 0, err
	}
	if major != want {
		return nil, 0, errCBORType
	}
	if info != cborIndef {
		return cborSpan(b, i, arg)
	}
	out := []byte{}
	for {
		if i < len(b) && b[i] == cborBreak {
			return out, i + 1, nil
		}
		m2, inf2, n, j, err := cborHead(b, i)
		if err != nil {
			return nil, 0, err
		}
		if m2 != major || inf2 == cborIndef {
			return nil, 0, errCBORChunk
		}
		var s []byte
		if s, i, err = cborSpan(b, j, n); err != nil {
			return nil, 0, err
		}
		out = append(out, s...)
	}
}

// cborUintAt reads an unsigned integer no larger than limit.
func cborUintAt(b []byte, i int, limit uint64) (uint64, int, bool) {
	major, info, arg, next, err := cborHead(b, i)
	if err != nil || major != cborUint || info == cborIndef || arg > limit {
		return 0, 0, false
	}
	return arg, next, true
}

// cborIDAt reads an unsigned integer no larger than limit, or a float holding one (see
// jsnum.go).
func cborIDAt(b []byte, i int, limit uint64) (uint64, int, bool) {
	if v, next, ok := cborUintAt(b, i, limit); ok {
		return v, next, true
	}
	return cborFloatID(b, i, limit)
}

// cborContainer reads an array or map head: count n, or indef.
func cborContainer(b []byte, i int, want byte) (n uint64, indef bool, next int, err error) {
	major, info, arg, next, err := cborHead(b, i)
	if err != nil {
		return 0, false, 0, err
	}
	if major != want {
		return 0, false, 0, errCBORType
	}
	return arg, info == cborIndef, next, nil
}

// cborMore reports whether element idx of a container exists; for indefinite containers
// it consumes the break.
func cborMore(b []byte, i *int, idx, n uint64, indef bool) (bool, error) {
	if !indef {
		return idx < n, nil
	}
	if *i >= len(b) {
		return false, errEOF
	}
	if b[*i] == cborBreak {
		*i++
		return false, nil
	}
	return true, nil
}

func cbFail(m *Message, format string, args ...any) error {
	return invalid(CBOR, "%s: "+format, append([]any{m.Type}, args...)...)
}

func cbFailErr(m *Message, what string, err error) error {
	return wrap(CBOR, m.Type.String()+": "+what, err)
}

func (cborCodec) Decode(b []byte, m *Message) error {
	*m = Message{}
	n, indef, i, err := cborContainer(b, 0, cborArray)
	if err != nil {
		return invalid(CBOR, "message is not a list")
	}
	if more, _ := cborMore(b, &i, 0, n, indef); !more {
		return invalid(CBOR, "message is an empty list")
	}
	t, i, ok := cborUintAt(b, i, math.MaxUint64)
	if !ok {
		return invalid(CBOR, "message type is not a non-negative integer")
	}
	sh := shapeOf(t)
	if sh == nil {
		return invalid(CBOR, "unknown message type %d", t)
	}
	m.Type = MessageType(t)
	if !indef && (n-1 < uint64(sh.min) || n-1 > uint64(sh.max)) {
		return cbFail(m, "%d elements, want %d to %d", n, sh.min+1, sh.max+1)
	}
	idx := 0
	for ; ; idx++ {
		more, err := cborMore(b, &i, uint64(idx)+1, n, indef)
		if err != nil {
			return cbFailErr(m, "list", err)
		}
		if !more {
			break
		}
		if idx >= int(sh.max) {
			return cbFail(m, "too many elements, want at most %d", sh.max+1)
		}
		start := i
		switch k := sh.elems[idx]; k {
		case eURI:
			if m.URI, i, err = cborString(b, i, cborText); err != nil {
				return cbFailErr(m, "URI: want string", err)
			}
		case eDict:
			if i, err = cborDict(b, i, m, sh.keys); err != nil {
				return err
			}
			m.Dict = b[start:i:i]
		case eArgs, eKwargs:
			if i >= len(b) {
				return cbFailErr(m, k.String(), errEOF)
			}
			major := b[i] & 0xe0
			if k == eKwargs && (major != cborMap || m.Args[0]&0xe0 != cborArray) ||
				k == eArgs && major != cborArray && major != cborBytes && major != cborText {
				return cbFail(m, "element %d (%s): wrong type", idx+1, k)
			}
			if i, err = cborSkip(b, i, 0); err != nil {
				return cbFailErr(m, k.String(), err)
			}
			if k == eArgs {
				m.Args = b[start:i:i]
			} else {
				m.Kwargs = b[start:i:i]
			}
		default:
			var v uint64
			if v, i, ok = cborIDAt(b, i, idLimit(k)); !ok {
				return cbFail(m, "element %d (%s): want an integer in [0, %d]", idx+1, k, idLimit(k))
			}
			setID(m, k, v)
		}
	}
	if idx < int(sh.min) {
		return cbFail(m, "%d elements, want at least %d", idx+1, sh.min+1)
	}
	if i != len(b) {
		return cbFail(m, "trailing data after the message")
	}
	return nil
}

// cborDict validates the dict at b[i] (every key a text string, as WAMP and the other
// serializers require, even when mask is 0) and fills m.Details with the keys in mask.
func cborDict(b []byte, i int, m *Message, mask uint64) (int, error) {
	n, indef, j, err := cborContainer(b, i, cborMap)
	if err != nil {
		return 0, cbFailErr(m, "Details/Options: want dict", err)
	}
	i = j
	for idx := uint64(0); ; idx++ {
		more, err := cborMore(b, &i, idx, n, indef)
		if err != nil {
			return 0, cbFailErr(m, "Details/Options", err)
		}
		if !more {
			return i, nil
		}
		var key []byte
		if key, i, err = cborString(b, i, cborText); err != nil {
			return 0, cbFailErr(m, "Details/Options key", err)
		}
		bit := detailKey(key) & mask
		if bit != 0 && i < len(b) && (b[i] == 0xf6 || b[i] == 0xf7) { // null, undefined
			bit = 0
		}
		switch {
		case bit == 0:
			i, err = cborSkip(b, i, 0)
		case bit&boolKeys != 0:
			if i < len(b) && (b[i] == 0xf4 || b[i] == 0xf5) {
				m.Details.setBool(bit, b[i] == 0xf5)
				i++
			} else {
				err = errCBORType
			}
		case bit&strKeys != 0:
			var v []byte
			if v, i, err = cborString(b, i, cborText); err == nil && !m.Details.setStr(bit, v) {
				return 0, cbFail(m, "option %s: bad value %q", keyName(bit), v)
			}
		case bit&idKeys != 0:
			v, next, ok := cborIDAt(b, i, maxID)
			if !ok {
				err = errCBORType
			}
			i = next
			m.Details.setUint(bit, v)
		case bit&rawKeys != 0:
			start := i
			if i, err = cborSkip(b, i, 0); err == nil {
				if msg := checkRawKey(CBOR, bit, b[start:i]); msg != "" {
					return 0, cbFail(m, "option %s: %s", keyName(bit), msg)
				}
				m.Details.setRaw(bit, b[start:i])
			}
		default:
			var major, info byte
			var arg uint64
			major, info, arg, i, err = cborHead(b, i)
			switch {
			case err != nil:
			case info == cborIndef || arg > math.MaxInt64 || major != cborUint && major != cborNeg:
				err = errCBORType
			case major == cborUint:
				m.Details.Timeout = int64(arg)
			default:
				m.Details.Timeout = -1 - int64(arg)
			}
			m.Details.Has |= bit
		}
		if err != nil {
			return 0, cbFailErr(m, "option "+keyName(bit), err)
		}
	}
}

func (cborCodec) Append(dst []byte, m *Message) ([]byte, error) {
	sh := shapeOf(uint64(m.Type))
	if sh == nil {
		return dst, encErr(CBOR, "unknown message type %d", uint8(m.Type))
	}
	n := appendCount(sh, m)
	dst = cborAppendHead(dst, cborArray, uint64(n+1))
	dst = cborAppendHead(dst, cborUint, uint64(m.Type))
	for i := 0; i < n; i++ {
		switch k := sh.elems[i]; k {
		case eURI:
			dst = append(cborAppendHead(dst, cborText, uint64(len(m.URI))), m.URI...)
		case eDict:
			var err error
			if dst, err = appendDict(dst, CBOR, m); err != nil {
				return dst, err
			}
		case eArgs:
			if m.Args == nil {
				dst = append(dst, cborArray)
			} else {
				dst = append(dst, m.Args...)
			}
		case eKwargs:
			dst = append(dst, m.Kwargs...)
		default:
			dst = cborAppendHead(dst, cborUint, getID(m, k))
		}
	}
	return dst, nil
}
