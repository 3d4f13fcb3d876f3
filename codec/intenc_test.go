package codec

import (
	"bytes"
	"encoding/hex"
	"math"
	"strconv"
	"strings"
	"testing"
)

// intCase is one integer with its expected encodings, written out by hand: MessagePack's
// smallest form (positive fixint, uint8/16/32 before uint64; negative fixint, int8/16/32
// before int64), CBOR's preferred serialization (the smallest argument length) and what
// py-ubjson 0.16.1 (AutobahnPython's UBJSON) writes: U, i, I, l, L, then H (decimal text).
type intCase struct {
	neg bool
	u   uint64 // the value when !neg
	i   int64  // the value when neg
	mp  string // hex
	cb  string // hex
	ub  string // hex
}

func (c intCase) json() string {
	if c.neg {
		return strconv.FormatInt(c.i, 10)
	}
	return strconv.FormatUint(c.u, 10)
}

func (c intCase) value() any {
	if c.neg {
		return c.i
	}
	return c.u
}

func (c intCase) enc(s Serializer) []byte {
	switch s {
	case MsgPack:
		return hexBytes(c.mp)
	case CBOR:
		return hexBytes(c.cb)
	case UBJSON:
		return hexBytes(c.ub)
	}
	return []byte(c.json())
}

func hexBytes(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

// uintCases are the unsigned boundaries up to 2^53 (the largest WAMP id).
var uintCases = []intCase{
	{u: 0, mp: "00", cb: "00", ub: "55 00"},
	{u: 1, mp: "01", cb: "01", ub: "55 01"},
	{u: 23, mp: "17", cb: "17", ub: "55 17"},
	{u: 24, mp: "18", cb: "18 18", ub: "55 18"},
	{u: 127, mp: "7f", cb: "18 7f", ub: "55 7f"},
	{u: 128, mp: "cc 80", cb: "18 80", ub: "55 80"},
	{u: 255, mp: "cc ff", cb: "18 ff", ub: "55 ff"},
	{u: 256, mp: "cd 0100", cb: "19 0100", ub: "49 0100"},
	{u: 65535, mp: "cd ffff", cb: "19 ffff", ub: "6c 0000ffff"},
	{u: 65536, mp: "ce 00010000", cb: "1a 00010000", ub: "6c 00010000"},
	{u: 1<<32 - 1, mp: "ce ffffffff", cb: "1a ffffffff", ub: "4c 00000000ffffffff"},
	{u: 1 << 32, mp: "cf 0000000100000000", cb: "1b 0000000100000000", ub: "4c 0000000100000000"},
	{u: 8251946555114629, mp: "cf 001d511a071f8485", cb: "1b 001d511a071f8485", ub: "4c 001d511a071f8485"},
	{u: 1<<53 - 1, mp: "cf 001fffffffffffff", cb: "1b 001fffffffffffff", ub: "4c 001fffffffffffff"},
	{u: 1 << 53, mp: "cf 0020000000000000", cb: "1b 0020000000000000", ub: "4c 0020000000000000"},
}

// payloadIntCases add what a payload may hold beyond ids: negatives and the 64-bit ends.
var payloadIntCases = append(append([]intCase{}, uintCases...), []intCase{
	{u: math.MaxUint64, mp: "cf ffffffffffffffff", cb: "1b ffffffffffffffff", ub: "48 55143138343436373434303733373039353531363135"},
	{neg: true, i: -1, mp: "ff", cb: "20", ub: "69 ff"},
	{neg: true, i: -24, mp: "e8", cb: "37", ub: "69 e8"},
	{neg: true, i: -25, mp: "e7", cb: "38 18", ub: "69 e7"},
	{neg: true, i: -32, mp: "e0", cb: "38 1f", ub: "69 e0"},
	{neg: true, i: -33, mp: "d0 df", cb: "38 20", ub: "69 df"},
	{neg: true, i: -128, mp: "d0 80", cb: "38 7f", ub: "69 80"},
	{neg: true, i: -129, mp: "d1 ff7f", cb: "38 80", ub: "49 ff7f"},
	{neg: true, i: -256, mp: "d1 ff00", cb: "38 ff", ub: "49 ff00"},
	{neg: true, i: -257, mp: "d1 feff", cb: "39 0100", ub: "49 feff"},
	{neg: true, i: -32768, mp: "d1 8000", cb: "39 7fff", ub: "49 8000"},
	{neg: true, i: -32769, mp: "d2 ffff7fff", cb: "39 8000", ub: "6c ffff7fff"},
	{neg: true, i: -65536, mp: "d2 ffff0000", cb: "39 ffff", ub: "6c ffff0000"},
	{neg: true, i: -65537, mp: "d2 fffeffff", cb: "3a 00010000", ub: "6c fffeffff"},
	{neg: true, i: math.MinInt32, mp: "d2 80000000", cb: "3a 7fffffff", ub: "6c 80000000"},
	{neg: true, i: math.MinInt32 - 1, mp: "d3 ffffffff7fffffff", cb: "3a 80000000", ub: "4c ffffffff7fffffff"},
	{neg: true, i: -1 << 32, mp: "d3 ffffffff00000000", cb: "3a ffffffff", ub: "4c ffffffff00000000"},
	{neg: true, i: -1<<32 - 1, mp: "d3 fffffffeffffffff", cb: "3b 0000000100000000", ub: "4c fffffffeffffffff"},
	{neg: true, i: -1 << 53, mp: "d3 ffe0000000000000", cb: "3b 001fffffffffffff", ub: "4c ffe0000000000000"},
	{neg: true, i: math.MinInt64, mp: "d3 8000000000000000", cb: "3b 7fffffffffffffff", ub: "4c 8000000000000000"},
}...)

// refHead writes a container head (n < 16) or a small string, independently of the codec.
func refArray(s Serializer, n int) []byte {
	switch s {
	case MsgPack:
		return []byte{0x90 | byte(n)}
	case CBOR:
		return []byte{0x80 | byte(n)}
	}
	return []byte("[") // JSON and UBJSON
}

// refClose closes a list (JSON and UBJSON write no count).
func refClose(s Serializer, b []byte) []byte {
	if s == JSON || s == UBJSON {
		return append(b, ']')
	}
	return b
}

func refStr(s Serializer, v string) []byte {
	switch s {
	case MsgPack:
		return append([]byte{0xa0 | byte(len(v))}, v...)
	case CBOR:
		return append([]byte{0x60 | byte(len(v))}, v...)
	case UBJSON:
		return append([]byte{'S', 'U', byte(len(v))}, v...)
	}
	return []byte(strconv.Quote(v))
}

func refSmall(s Serializer, v uint8) []byte { // a type code: < 128
	switch {
	case s == JSON:
		return []byte(strconv.Itoa(int(v)))
	case s == CBOR && v >= 24:
		return []byte{0x18, v}
	case s == UBJSON:
		return []byte{'U', v}
	}
	return []byte{v}
}

// refMap1 is a dict of one key.
func refMap1(s Serializer, key string, val []byte) []byte {
	switch s {
	case MsgPack:
		return append(append([]byte{0x81}, refStr(s, key)...), val...)
	case CBOR:
		return append(append([]byte{0xa1}, refStr(s, key)...), val...)
	case UBJSON:
		return append(append(append([]byte{'{', 'U', byte(len(key))}, key...), val...), '}')
	}
	return []byte("{" + strconv.Quote(key) + ":" + string(val) + "}")
}

func refEmptyMap(s Serializer) []byte {
	switch s {
	case MsgPack:
		return []byte{0x80}
	case CBOR:
		return []byte{0xa0}
	}
	return []byte("{}") // JSON and UBJSON
}

// refMessage joins the encoded elements of a message (type code first).
func refMessage(s Serializer, elems ...[]byte) []byte {
	out := refArray(s, len(elems))
	for i, e := range elems {
		if s == JSON && i > 0 {
			out = append(out, ',')
		}
		out = append(out, e...)
	}
	return refClose(s, out)
}

// TestAppendIDsSmallestForm checks the exact bytes of every integer element of every
// message type (ids, request ids, ERROR's REQUEST.Type) at each boundary, and that
// Decode reads them back.
func TestAppendIDsSmallestForm(t *testing.T) {
	for typ := range shapes {
		sh := shapeOf(uint64(typ))
		if sh == nil {
			continue
		}
		for j := 0; j < int(sh.min); j++ {
			k := sh.elems[j]
			if k == eURI || k == eDict || k == eArgs || k == eKwargs {
				continue
			}
			for _, c := range uintCases {
				if c.u > idLimit(k) {
					continue
				}
				m := Message{Type: MessageType(typ), URI: []byte("u")}
				for i := 0; i < int(sh.min); i++ { // other integer elements are 1
					if e := sh.elems[i]; e != eURI && e != eDict {
						setID(&m, e, 1)
					}
				}
				setID(&m, k, c.u)
				for _, s := range allSerializers {
					elems := [][]byte{refSmall(s, uint8(typ))}
					for i := 0; i < int(sh.min); i++ {
						switch e := sh.elems[i]; {
						case i == j:
							elems = append(elems, c.enc(s))
						case e == eURI:
							elems = append(elems, refStr(s, "u"))
						case e == eDict:
							elems = append(elems, refEmptyMap(s))
						default:
							elems = append(elems, refSmall(s, 1))
						}
					}
					want := refMessage(s, elems...)
					got, err := For(s).Append(nil, &m)
					if err != nil {
						t.Fatalf("%s %s %s=%d: %v", s, m.Type, k, c.u, err)
					}
					if !bytes.Equal(got, want) {
						t.Errorf("%s %s %s=%d:\n got %x\nwant %x", s, m.Type, k, c.u, got, want)
						continue
					}
					var back Message
					if err := For(s).Decode(got, &back); err != nil || getID(&back, k) != c.u {
						t.Errorf("%s %s %s=%d: Decode = %d, %v", s, m.Type, k, c.u, getID(&back, k), err)
					}
				}
			}
		}
	}
}

// TestAppendDetailIntsSmallestForm checks the integer Details keys the router writes:
// EVENT.Details.publisher, INVOCATION.Details.caller and the (signed) timeout.
func TestAppendDetailIntsSmallestForm(t *testing.T) {
	type keyCase struct {
		typ   MessageType
		bit   uint64
		name  string
		cases []intCase
	}
	var timeouts []intCase
	for _, c := range payloadIntCases {
		if c.neg || c.u <= math.MaxInt64 {
			timeouts = append(timeouts, c)
		}
	}
	for _, kc := range []keyCase{
		{EVENT, KeyPublisher, "publisher", uintCases},
		{INVOCATION, KeyCaller, "caller", uintCases},
		{CALL, KeyTimeout, "timeout", timeouts},
	} {
		for _, c := range kc.cases {
			m := Message{Type: kc.typ, URI: []byte("u"), Request: 1, Subscription: 1, Publication: 1, Registration: 1}
			m.Details.Has = kc.bit
			m.Details.Publisher, m.Details.Caller = c.u, c.u
			m.Details.Timeout = int64(c.u)
			if c.neg {
				m.Details.Timeout = c.i
			}
			for _, s := range allSerializers {
				dict := refMap1(s, kc.name, c.enc(s))
				one := refSmall(s, 1)
				var want []byte
				switch kc.typ {
				case EVENT:
					want = refMessage(s, refSmall(s, uint8(EVENT)), one, one, dict)
				case INVOCATION:
					want = refMessage(s, refSmall(s, uint8(INVOCATION)), one, one, dict)
				case CALL:
					want = refMessage(s, refSmall(s, uint8(CALL)), one, dict, refStr(s, "u"))
				}
				got, err := For(s).Append(nil, &m)
				if err != nil {
					t.Fatalf("%s %s %s=%s: %v", s, kc.typ, kc.name, c.json(), err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s %s %s=%s:\n got %x\nwant %x", s, kc.typ, kc.name, c.json(), got, want)
				}
			}
		}
	}
}

// TestAppendValueIntsSmallestForm checks AppendValue (WELCOME details, meta events, ...).
func TestAppendValueIntsSmallestForm(t *testing.T) {
	for _, c := range payloadIntCases {
		for _, s := range allSerializers {
			got := mustValue(t, s, c.value())
			if want := c.enc(s); !bytes.Equal(got, want) {
				t.Errorf("AppendValue %s %s: got %x, want %x", s, c.json(), got, want)
			}
		}
	}
}

// TestTranscodeIntsSmallestForm transcodes each boundary integer, alone and inside a
// list, between every pair of serializers and checks the exact bytes. Binary sources are
// also given in a wider form than needed (as some clients write them): the output must
// still be the smallest.
func TestTranscodeIntsSmallestForm(t *testing.T) {
	for _, c := range payloadIntCases {
		for _, from := range allSerializers {
			srcs := [][]byte{c.enc(from)}
			switch {
			case from == MsgPack && !c.neg:
				srcs = append(srcs, append([]byte{0xcf}, be64(c.u)...))
				if c.u <= math.MaxInt64 {
					srcs = append(srcs, append([]byte{0xd3}, be64(c.u)...))
				}
			case from == MsgPack:
				srcs = append(srcs, append([]byte{0xd3}, be64(uint64(c.i))...))
			case from == CBOR && !c.neg:
				srcs = append(srcs, append([]byte{0x1b}, be64(c.u)...))
			case from == CBOR:
				srcs = append(srcs, append([]byte{0x3b}, be64(uint64(-1-c.i))...))
			case from == UBJSON && c.neg:
				srcs = append(srcs, append([]byte{'L'}, be64(uint64(c.i))...))
			case from == UBJSON && c.u <= math.MaxInt64:
				srcs = append(srcs, append([]byte{'L'}, be64(c.u)...))
			}
			for _, src := range srcs {
				for _, to := range allSerializers {
					if to == from {
						continue
					}
					got, err := Transcode(nil, to, src, from)
					if err != nil {
						t.Errorf("%s->%s %x: %v", from, to, src, err)
						continue
					}
					if want := c.enc(to); !bytes.Equal(got, want) {
						t.Errorf("%s->%s %x (%s): got %x, want %x", from, to, src, c.json(), got, want)
					}
					list := refClose(from, append(refArray(from, 2), append(refStr(from, "x"), src...)...))
					if from == JSON {
						list = []byte(`["x",` + string(src) + `]`)
					}
					got, err = Transcode(nil, to, list, from)
					want := refClose(to, append(refArray(to, 2), append(refStr(to, "x"), c.enc(to)...)...))
					if to == JSON {
						want = []byte(`["x",` + c.json() + `]`)
					}
					if err != nil || !bytes.Equal(got, want) {
						t.Errorf("%s->%s list %x: got %x, %v; want %x", from, to, list, got, err, want)
					}
				}
			}
		}
	}
}

func be64(v uint64) []byte {
	b := make([]byte, 8)
	for i := range b {
		b[i] = byte(v >> (56 - 8*i))
	}
	return b
}
