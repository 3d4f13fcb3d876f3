package loadgen

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/switchyard-wamp/switchyard/codec"
)

// The payload of every publication and call is the args list [send time in Unix ns,
// "xxx..."], padded so that the encoded list is exactly Size bytes. The time sits at a
// fixed offset of the encoded bytes so that a sender patches it in place instead of
// re-encoding: JSON 19 decimal digits at offset 1, MessagePack uint64 (0xcf), CBOR
// uint64 (0x1b) and UBJSON int64 ('L') big-endian at offset 2.

// payload is one sender's reusable encoded args list.
type payload struct {
	ser codec.Serializer
	buf codec.Raw
	pad string // the padding string, for senders that encode Go values (rpc)
}

const jsonTimeDigits = 19 // Unix ns from 2001-09-09 to 2286-11-20

// payloadOverhead is the encoded size of [time, ""] without the string header.
func payloadOverhead(ser codec.Serializer) int {
	switch ser {
	case codec.JSON:
		return 1 + jsonTimeDigits + 1 + 2 + 1 // [ digits , "" ]
	case codec.UBJSON:
		return 1 + 9 + 1 + 1 // [ L+8 bytes S ... ]: the S marker counted here
	}
	return 1 + 9 // array head, 0xcf/0x1b + 8 bytes
}

// strHead is the size of the string header for a string of n bytes.
// strMarkers are the string header bytes per length class (fix, 1-, 2-, 4-byte length).
var strMarkers = map[codec.Serializer][4]byte{
	codec.MsgPack: {0xa0, 0xd9, 0xda, 0xdb},
	codec.CBOR:    {0x60, 0x78, 0x79, 0x7a},
	codec.UBJSON:  {0, 'U', 'I', 'l'}, // the length's integer marker (no one-byte form)
}

// appendStrHead appends the MessagePack or CBOR header of an n-byte text string.
func appendStrHead(b []byte, ser codec.Serializer, n int) []byte {
	m := strMarkers[ser]
	if ser == codec.UBJSON {
		switch strHead(ser, n) {
		case 2:
			return append(b, m[1], byte(n))
		case 3:
			return append(b, m[2], byte(n>>8), byte(n))
		}
		return append(b, m[3], byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	switch strHead(ser, n) {
	case 1:
		return append(b, m[0]|byte(n))
	case 2:
		return append(b, m[1], byte(n))
	case 3:
		return append(b, m[2], byte(n>>8), byte(n))
	}
	return append(b, m[3], byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

func strHead(ser codec.Serializer, n int) int {
	switch ser {
	case codec.MsgPack:
		switch {
		case n < 32:
			return 1
		case n < 1<<8:
			return 2
		case n < 1<<16:
			return 3
		}
		return 5
	case codec.CBOR:
		switch {
		case n < 24:
			return 1
		case n < 1<<8:
			return 2
		case n < 1<<16:
			return 3
		}
		return 5
	case codec.UBJSON: // the length after S: U n, I n16, l n32 (signed, as py-ubjson writes)
		switch {
		case n < 1<<8:
			return 2
		case n < 1<<15:
			return 3
		}
		return 5
	}
	return 0
}

// minSize is the smallest payload size for ser.
func minSize(ser codec.Serializer) int { return payloadOverhead(ser) + strHead(ser, 0) }

// newPayload builds a payload of exactly size bytes (size >= minSize(ser)).
func newPayload(ser codec.Serializer, size int) (*payload, error) {
	// The largest padding whose encoding fits; a header size step may leave the payload
	// a byte or two short, which is then padded with JSON whitespace or not at all.
	n := size - payloadOverhead(ser)
	for n > 0 && payloadOverhead(ser)+strHead(ser, n)+n > size {
		n--
	}
	if n < 0 {
		return nil, fmt.Errorf("loadgen: size %d too small for %v", size, ser)
	}
	pad := strings.Repeat("x", n)
	var b []byte
	switch ser {
	case codec.JSON:
		b = append(b, '[')
		b = append(b, strings.Repeat("1", jsonTimeDigits)...)
		b = append(b, ',', '"')
		b = append(b, pad...)
		b = append(b, '"', ']')
	case codec.MsgPack:
		b = append(b, 0x92, 0xcf, 0, 0, 0, 0, 0, 0, 0, 0)
		b = appendStrHead(b, ser, n)
		b = append(b, pad...)
	case codec.CBOR:
		b = append(b, 0x82, 0x1b, 0, 0, 0, 0, 0, 0, 0, 0)
		b = appendStrHead(b, ser, n)
		b = append(b, pad...)
	case codec.UBJSON:
		b = append(b, '[', 'L', 0, 0, 0, 0, 0, 0, 0, 0, 'S')
		b = appendStrHead(b, ser, n)
		b = append(b, pad...)
		b = append(b, ']')
	default:
		return nil, fmt.Errorf("loadgen: unknown serializer %v", ser)
	}
	return &payload{ser: ser, buf: b, pad: pad}, nil
}

// stamp writes the send time ns into the payload and returns its bytes.
func (p *payload) stamp(ns int64) codec.Raw {
	if p.ser == codec.JSON {
		v := uint64(ns)
		for i := jsonTimeDigits; i >= 1; i-- {
			p.buf[i] = byte('0' + v%10)
			v /= 10
		}
		return p.buf
	}
	binary.BigEndian.PutUint64(p.buf[2:10], uint64(ns))
	return p.buf
}

// payloadTime reads the send time from the first element of an encoded args list in
// any integer encoding (a router may re-encode it). ok is false when raw does not start
// with a list whose first element is a non-negative integer.
func payloadTime(ser codec.Serializer, raw []byte) (ns int64, ok bool) {
	switch ser {
	case codec.JSON:
		i := skipWS(raw, 0)
		if i >= len(raw) || raw[i] != '[' {
			return 0, false
		}
		i = skipWS(raw, i+1)
		var v uint64
		start := i
		for ; i < len(raw) && raw[i] >= '0' && raw[i] <= '9'; i++ {
			v = v*10 + uint64(raw[i]-'0')
		}
		return int64(v), i > start && i-start <= 19
	case codec.MsgPack:
		if len(raw) < 2 {
			return 0, false
		}
		i := 1
		switch b := raw[0]; {
		case b >= 0x91 && b <= 0x9f:
		case b == 0xdc:
			i = 3
		case b == 0xdd:
			i = 5
		default:
			return 0, false
		}
		if i >= len(raw) {
			return 0, false
		}
		b, rest := raw[i], raw[i+1:]
		switch {
		case b <= 0x7f:
			return int64(b), true
		case (b == 0xcc || b == 0xd0) && len(rest) >= 1:
			return int64(rest[0]), b == 0xcc || rest[0] < 0x80
		case (b == 0xcd || b == 0xd1) && len(rest) >= 2:
			return int64(binary.BigEndian.Uint16(rest)), true
		case (b == 0xce || b == 0xd2) && len(rest) >= 4:
			return int64(binary.BigEndian.Uint32(rest)), true
		case (b == 0xcf || b == 0xd3) && len(rest) >= 8:
			v := binary.BigEndian.Uint64(rest)
			return int64(v), v < 1<<63
		}
		return 0, false
	case codec.CBOR:
		if len(raw) < 2 || raw[0]>>5 != 4 {
			return 0, false
		}
		i := 1
		switch info := raw[0] & 0x1f; {
		case info < 24:
		case info == 24:
			i = 2
		case info == 25:
			i = 3
		case info == 26:
			i = 5
		case info == 27:
			i = 9
		case info == 31: // indefinite length
		default:
			return 0, false
		}
		if i >= len(raw) || raw[i]>>5 != 0 {
			return 0, false
		}
		info, rest := raw[i]&0x1f, raw[i+1:]
		switch {
		case info < 24:
			return int64(info), true
		case info == 24 && len(rest) >= 1:
			return int64(rest[0]), true
		case info == 25 && len(rest) >= 2:
			return int64(binary.BigEndian.Uint16(rest)), true
		case info == 26 && len(rest) >= 4:
			return int64(binary.BigEndian.Uint32(rest)), true
		case info == 27 && len(rest) >= 8:
			v := binary.BigEndian.Uint64(rest)
			return int64(v), v < 1<<63
		}
	case codec.UBJSON: // an unbounded list, as switchyard writes it
		if len(raw) < 3 || raw[0] != '[' {
			return 0, false
		}
		rest := raw[2:]
		switch b := raw[1]; {
		case b == 'U':
			return int64(rest[0]), true
		case b == 'i':
			v := int8(rest[0])
			return int64(v), v >= 0
		case b == 'I' && len(rest) >= 2:
			v := int16(binary.BigEndian.Uint16(rest))
			return int64(v), v >= 0
		case b == 'l' && len(rest) >= 4:
			v := int32(binary.BigEndian.Uint32(rest))
			return int64(v), v >= 0
		case b == 'L' && len(rest) >= 8:
			v := int64(binary.BigEndian.Uint64(rest))
			return v, v >= 0
		}
	}
	return 0, false
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}
