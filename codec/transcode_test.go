package codec

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"testing"
)

// transcodeValues cover every token kind; float values are float64 so that AppendValue
// and Transcode produce the same bytes.
var transcodeValues = []any{
	nil, true, false, uint64(0), uint64(23), uint64(24), uint64(255), uint64(65536),
	uint64(1 << 53), uint64(math.MaxUint64), int64(-1), int64(-24), int64(-25), int64(-129),
	int64(math.MinInt64), 1.5, 1.0, -0.25, 1e300, 5e-324, 1e21, 1e-7,
	"", "plain", "héllo ☃ 😀", "quote\" back\\ nl\n tab\t ctl\x01 del\x7f /slash",
	[]byte{}, []byte{0, 1, 2, 0xff, 0xfe}, []byte("binary\x00data"),
	[]any{}, map[string]any{},
	[]any{"hello", uint64(123), map[string]any{"k": 1.5}},
	map[string]any{
		"a": []any{uint64(1), int64(-2), 3.25, "x", []byte{9, 8}, nil, true,
			map[string]any{"deep": []any{[]any{[]any{"é"}}}}},
		"é\"key": map[string]any{}, "": "empty key",
	},
}

func TestTranscodeAllPairs(t *testing.T) {
	for _, v := range transcodeValues {
		for _, from := range allSerializers {
			src := mustValue(t, from, v)
			want, err := DecodeValue(from, src)
			if err != nil {
				t.Fatalf("DecodeValue(%s, %x): %v", from, src, err)
			}
			for _, to := range allSerializers {
				out, err := Transcode([]byte("prefix"), to, src, from)
				if err != nil {
					t.Errorf("%s->%s %#v: %v", from, to, v, err)
					continue
				}
				if !bytes.HasPrefix(out, []byte("prefix")) {
					t.Fatalf("%s->%s: dst prefix lost", from, to)
				}
				out = out[len("prefix"):]
				if exp := mustValue(t, to, v); !bytes.Equal(out, exp) {
					t.Errorf("%s->%s %#v:\n got %x (%q)\nwant %x (%q)", from, to, v, out, out, exp, exp)
				}
				got, err := DecodeValue(to, out)
				if err != nil || !reflect.DeepEqual(got, want) {
					t.Errorf("%s->%s: DecodeValue = %#v, %v; want %#v", from, to, got, err, want)
				}
			}
		}
	}
}

func TestTranscodeJSONInputForms(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want any
	}{
		{` [ 1 , -2 , 3.0 , 1E2 , -0 , "a\u00e9\ud83d\ude00\/" ] `, []any{uint64(1), int64(-2), 3.0, 100.0, uint64(0), "aé😀/"}},
		{`"\u0000AQID"`, []byte{1, 2, 3}},
		{`"\u0000AQI"`, []byte{1, 2}},         // unpadded
		{`"\u0000AQ\/+"`, []byte{1, 15, 254}}, // escaped '/'
		{`"\u0000"`, []byte{}},
		{`{"\u0000k":1}`, map[string]any{"\x00k": uint64(1)}}, // keys are never binary
		{`18446744073709551616`, 18446744073709551616.0},      // beyond uint64: a float
		{`"\ud800x"`, "\uFFFDx"},
	} {
		for _, to := range []Serializer{MsgPack, CBOR} {
			out, err := Transcode(nil, to, Raw(tc.in), JSON)
			if err != nil {
				t.Errorf("%s -> %s: %v", tc.in, to, err)
				continue
			}
			got, err := DecodeValue(to, out)
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("%s -> %s: %#v, %v; want %#v", tc.in, to, got, err, tc.want)
			}
		}
	}
}

func TestTranscodeJSONFloatsStayFloats(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		want string
	}{{1, "1.0"}, {-3, "-3.0"}, {0, "0.0"}, {1.5, "1.5"}, {1e21, "1e+21"}, {1e-7, "1e-07"}, {123456789, "123456789.0"}} {
		for _, from := range []Serializer{MsgPack, CBOR} {
			out, err := Transcode(nil, JSON, mustValue(t, from, tc.v), from)
			if err != nil || string(out) != tc.want {
				t.Errorf("%v from %s: %s, %v; want %s", tc.v, from, out, err, tc.want)
			}
		}
	}
	// float32 sources print their exact value (what a float64 reader sees).
	for _, from := range []Serializer{MsgPack, CBOR} {
		out, err := Transcode(nil, JSON, mustValue(t, from, float32(0.1)), from)
		if err != nil || string(out) != "0.10000000149011612" {
			t.Errorf("float32 from %s: %s %v", from, out, err)
		}
	}
	// CBOR half floats.
	out, err := Transcode(nil, JSON, Raw{0xf9, 0x3e, 0x00}, CBOR)
	if err != nil || string(out) != "1.5" {
		t.Errorf("half: %s %v", out, err)
	}
}

func TestTranscodeErrors(t *testing.T) {
	for _, tc := range []struct {
		from Serializer
		in   []byte
	}{
		{JSON, []byte(`[1,`)}, {JSON, []byte(`[1] x`)}, {JSON, []byte(`"\u0000!!"`)}, {JSON, []byte(`NaN`)},
		{JSON, []byte(``)},
		{MsgPack, []byte{0xd4, 0x01, 0x02}}, // fixext 1
		{MsgPack, []byte{0x92, 0x01}},       // short array
		{MsgPack, []byte{0xc1}},             // never used
		{MsgPack, []byte{0x01, 0x02}},       // trailing
		{CBOR, []byte{0x82, 0x01}},          // short array
		{CBOR, []byte{0x1c}},                // reserved info
		{CBOR, []byte{0xff}},                // stray break
		{CBOR, []byte{0x3b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}, // below -2^64
		{CBOR, []byte{0xf0}},                                                 // simple(16)
		{CBOR, []byte{0x7f, 0x41, 0x61, 0xff}},                               // bytes chunk in a text string
		{CBOR, []byte{0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}, // huge count
	} {
		for _, to := range allSerializers {
			if to == tc.from {
				continue
			}
			out, err := Transcode([]byte("keep"), to, tc.in, tc.from)
			if !errors.Is(err, ErrInvalid) || string(out) != "keep" {
				t.Errorf("%s->%s %x: %q, %v; want ErrInvalid and dst unchanged", tc.from, to, tc.in, out, err)
			}
		}
	}
	// Non-string keys cannot become JSON.
	if _, err := Transcode(nil, JSON, []byte{0x81, 0x01, 0x02}, MsgPack); !errors.Is(err, ErrInvalid) {
		t.Errorf("msgpack int key: %v", err)
	}
	if _, err := Transcode(nil, JSON, []byte{0xa1, 0x01, 0x02}, CBOR); !errors.Is(err, ErrInvalid) {
		t.Errorf("cbor int key: %v", err)
	}
	// NaN has no JSON form.
	if _, err := Transcode(nil, JSON, mustValue(t, CBOR, math.NaN()), CBOR); err == nil {
		t.Error("NaN to JSON accepted")
	}
	// CBOR tags are dropped; the content is transcoded.
	out, err := Transcode(nil, JSON, []byte{0xc1, 0x1a, 0x00, 0x01, 0x00, 0x00}, CBOR)
	if err != nil || string(out) != "65536" {
		t.Errorf("tag: %s %v", out, err)
	}
	// On dict keys too ({22("k"): 1}), as DecodeValue drops them.
	out, err = Transcode(nil, JSON, []byte{0xa1, 0xd6, 0x61, 'k', 0x01}, CBOR)
	if err != nil || string(out) != `{"k":1}` {
		t.Errorf("tagged key: %s %v", out, err)
	}
}

func TestValueModel(t *testing.T) {
	type named string
	in := map[string]any{
		"ints":   []any{int8(-1), int16(-2), int32(-3), 4, uint8(5), uint16(6), uint32(7), uint(8)},
		"f32":    float32(0.5),
		"strs":   []string{"a", "b"},
		"sm":     map[string]string{"x": "y"},
		"lm":     []map[string]any{{"k": true}},
		"named":  named("n"),
		"ptr":    new(int),
		"arr":    [2]int{1, 2},
		"nilmap": map[string]int(nil),
	}
	want := map[string]any{
		"ints":   []any{int64(-1), int64(-2), int64(-3), uint64(4), uint64(5), uint64(6), uint64(7), uint64(8)},
		"f32":    0.5,
		"strs":   []any{"a", "b"},
		"sm":     map[string]any{"x": "y"},
		"lm":     []any{map[string]any{"k": true}},
		"named":  "n",
		"ptr":    uint64(0),
		"arr":    []any{uint64(1), uint64(2)},
		"nilmap": nil,
	}
	for _, s := range allSerializers {
		b, err := AppendValue(nil, s, in)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeValue(s, b)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %#v %v", s, got, err)
		}
		if _, err := AppendValue(nil, s, struct{}{}); err == nil {
			t.Errorf("%s: struct accepted", s)
		}
		if _, err := AppendValue(nil, s, map[int]int{1: 1}); err == nil {
			t.Errorf("%s: int-keyed map accepted", s)
		}
		d, err := DecodeDict(s, nil)
		if err != nil || d == nil || len(d) != 0 {
			t.Errorf("%s: DecodeDict(nil) = %v, %v", s, d, err)
		}
		if _, err := DecodeDict(s, mustValue(t, s, []any{})); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: DecodeDict(list) = %v", s, err)
		}
	}
	if b, _ := AppendValue(nil, JSON, map[string]any{"b": 1, "a": Raw(`[1]`)}); string(b) != `{"a":[1],"b":1}` {
		t.Errorf("sorted keys / Raw: %s", b)
	}
}
