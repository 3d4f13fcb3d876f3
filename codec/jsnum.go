package codec

import (
	"encoding/binary"
	"math"
)

// What JavaScript's binary encoders put on the wire, and how the decoders accept it.
//
// A JavaScript number is a float64. msgpackr (wampy.js's MessagePack) and cbor-x (its
// CBOR) write a number that is an integer as an integer only up to 32 bits; an integer in
// [2^32, 2^53], such as a session id the client echoes in PUBLISH.Options.eligible, goes
// out as a float64. WAMP ids are capped at 2^53 precisely so that JavaScript can hold
// them, so wherever the router expects an id, a float holding an integer in [0, 2^53] is
// accepted as that integer. Floats are read only after the integer read failed: plain
// integer ids cost nothing extra.
//
// msgpackr also writes JavaScript's undefined (an option left unset, e.g. wampy's
// SUBSCRIBE Options {match: undefined, get_retained: undefined}) as fixext 1 with type 0
// and data 0; the decoders treat it like nil, as they treat CBOR's undefined.

// mpUndefined reports whether b starts with msgpackr's undefined (d4 00 00).
func mpUndefined(b []byte) bool {
	return len(b) >= 3 && b[0] == 0xd4 && b[1] == 0 && b[2] == 0
}

// floatID returns f as an id if it is an integer in [0, limit].
func floatID(f float64, limit uint64) (uint64, bool) {
	if f >= 0 && f <= float64(limit) && f == math.Trunc(f) {
		return uint64(f), true
	}
	return 0, false
}

// mpFloatID reads a MessagePack float32/float64 holding an integer in [0, limit].
func mpFloatID(b []byte, limit uint64) (uint64, []byte, bool) {
	var f float64
	switch {
	case len(b) >= 9 && b[0] == 0xcb:
		f = math.Float64frombits(binary.BigEndian.Uint64(b[1:]))
		b = b[9:]
	case len(b) >= 5 && b[0] == 0xca:
		f = float64(math.Float32frombits(binary.BigEndian.Uint32(b[1:])))
		b = b[5:]
	default:
		return 0, nil, false
	}
	v, ok := floatID(f, limit)
	return v, b, ok
}

// cborFloatID reads a CBOR float (half, single or double) at b[i] holding an integer in
// [0, limit].
func cborFloatID(b []byte, i int, limit uint64) (uint64, int, bool) {
	if i >= len(b) {
		return 0, 0, false
	}
	c := b[i]
	major, _, arg, next, err := cborHead(b, i)
	if err != nil || major != cborSimple {
		return 0, 0, false
	}
	var f float64
	switch c {
	case 0xf9:
		f = halfToFloat(uint16(arg))
	case 0xfa:
		f = float64(math.Float32frombits(uint32(arg)))
	case 0xfb:
		f = math.Float64frombits(arg)
	default:
		return 0, 0, false
	}
	v, ok := floatID(f, limit)
	return v, next, ok
}

// IDOf returns v, a value from DecodeValue, as a WAMP id: a uint64 in [0, 2^53], or a
// float64 holding such an integer (how JavaScript encoders write integers above 2^32).
// The engine reads the session ids of PUBLISH.Options.exclude/eligible with it. Safe for
// concurrent use.
func IDOf(v any) (uint64, bool) {
	switch x := v.(type) {
	case uint64:
		return x, x <= maxID
	case float64:
		return floatID(x, maxID)
	}
	return 0, false
}
