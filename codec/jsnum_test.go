package codec

import (
	"math"
	"reflect"
	"testing"
	"unicode/utf8"
)

// The bytes in these tests are what wampy.js 8.0.2 sent to the router (msgpackr 2.1 and
// cbor-x 1.6 as it configures them), captured from a real session.

// wampy's SUBSCRIBE always carries Options {match: undefined, get_retained: undefined};
// msgpackr writes undefined as fixext 1 type 0 data 0. Before, the router answered
// ABORT protocol_violation ("option match: ... type ext"), which wampy reports as a
// WebSocket error on everything after it.
func TestDecodeMsgpackrUndefinedOptionIsAbsent(t *testing.T) {
	b := hexBytes("94 20 01 de0002 a5 6d61746368 d40000 ac 6765745f72657461696e6564 d40000 ab 636f6d2e742e746f706963")
	var m Message
	if err := For(MsgPack).Decode(b, &m); err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if m.Type != SUBSCRIBE || m.Request != 1 || string(m.URI) != "com.t.topic" || m.Details.Has != 0 {
		t.Fatalf("got %+v", m)
	}
	// The same for an option of each kind the router reads.
	for _, key := range []string{"acknowledge", "exclude_me", "match", "exclude", "eligible", "timeout", "publisher"} {
		dict := append(append([]byte{0x81}, refStr(MsgPack, key)...), 0xd4, 0, 0)
		typ := PUBLISH
		switch key {
		case "match":
			typ = SUBSCRIBE
		case "timeout":
			typ = CALL
		case "publisher":
			typ = EVENT
		}
		var msg []byte
		if typ == EVENT {
			msg = refMessage(MsgPack, refSmall(MsgPack, uint8(typ)), []byte{1}, []byte{2}, dict)
		} else {
			msg = refMessage(MsgPack, refSmall(MsgPack, uint8(typ)), []byte{1}, dict, refStr(MsgPack, "a.b"))
		}
		if err := For(MsgPack).Decode(msg, &m); err != nil || m.Details.Has != 0 {
			t.Errorf("%s: undefined: Has=%x, %v", key, m.Details.Has, err)
		}
	}
}

func TestMsgpackrUndefinedValueIsNull(t *testing.T) {
	src := hexBytes("93 01 d40000 81 a1 6b d40000") // [1, undefined, {"k": undefined}]
	v, err := DecodeValue(MsgPack, src)
	if want := []any{uint64(1), nil, map[string]any{"k": nil}}; err != nil || !reflect.DeepEqual(v, want) {
		t.Errorf("DecodeValue = %#v, %v; want %#v", v, err, want)
	}
	for to, want := range map[Serializer]string{JSON: `[1,null,{"k":null}]`, CBOR: "\x83\x01\xf6\xa1\x61k\xf6"} {
		got, err := Transcode(nil, to, src, MsgPack)
		if err != nil || string(got) != want {
			t.Errorf("-> %s: %x, %v; want %x", to, got, err, want)
		}
	}
	// Other extension types still fail.
	for _, ext := range []string{"d40001", "d40100", "d5000000"} {
		if _, err := Transcode(nil, JSON, hexBytes(ext), MsgPack); err == nil {
			t.Errorf("ext %s: no error", ext)
		}
	}
}

// JavaScript encoders write integers in [2^32, 2^53] as float64; wampy's publish with
// eligible: [sessionId] sent these, and the router answered ABORT "items must be session
// ids".
func TestDecodeFloatIDsFromJavaScript(t *testing.T) {
	for _, tc := range []struct {
		s    Serializer
		hex  string
		want uint64
	}{
		{MsgPack, "95 10 01 de0002 ab 61636b6e6f776c65646765 c3 a8 656c696769626c65 91 cb 4326c62052026004 ab 636f6d2e742e746f706963 91 a1 78", 3205145802387458},
		{CBOR, "85 10 01 b90002 6b 61636b6e6f776c65646765 f5 68 656c696769626c65 81 fb 432bc10d866b40f0 6b 636f6d2e742e746f706963 81 61 78", 3906044102549624},
	} {
		var m Message
		if err := For(tc.s).Decode(hexBytes(tc.hex), &m); err != nil {
			t.Fatalf("%s: Decode: %v", tc.s, err)
		}
		v, err := DecodeValue(tc.s, m.Details.Eligible)
		l, _ := v.([]any)
		if err != nil || len(l) != 1 {
			t.Fatalf("%s: eligible = %#v, %v", tc.s, v, err)
		}
		if id, ok := IDOf(l[0]); !ok || id != tc.want {
			t.Errorf("%s: IDOf(%v) = %d, %v; want %d", tc.s, l[0], id, ok, tc.want)
		}
	}
	// Id elements and id Details keys, as float64 and float32 (and CBOR half).
	f64mp := func(f float64) []byte { return append([]byte{0xcb}, be64(math.Float64bits(f))...) }
	f64cb := func(f float64) []byte { return append([]byte{0xfb}, be64(math.Float64bits(f))...) }
	for _, f := range []float64{0, 1, 1 << 32, 1<<53 - 1, 1 << 53} {
		for s, enc := range map[Serializer][]byte{MsgPack: f64mp(f), CBOR: f64cb(f)} {
			var m Message
			msg := refMessage(s, refSmall(s, uint8(UNSUBSCRIBE)), refSmall(s, 3), enc)
			if err := For(s).Decode(msg, &m); err != nil || m.Subscription != uint64(f) {
				t.Errorf("%s UNSUBSCRIBE sub %v: %d, %v", s, f, m.Subscription, err)
			}
			msg = refMessage(s, refSmall(s, uint8(EVENT)), refSmall(s, 1), enc, refMap1(s, "publisher", enc))
			if err := For(s).Decode(msg, &m); err != nil || m.Publication != uint64(f) || m.Details.Publisher != uint64(f) {
				t.Errorf("%s EVENT %v: %d %d, %v", s, f, m.Publication, m.Details.Publisher, err)
			}
		}
	}
	for s, enc := range map[Serializer][]byte{MsgPack: {0xca, 0x47, 0x80, 0, 0}, CBOR: {0xf9, 0x3c, 0x00}} { // 65536f32, 1.0f16
		var m Message
		msg := refMessage(s, refSmall(s, uint8(UNREGISTER)), refSmall(s, 3), enc)
		if err := For(s).Decode(msg, &m); err != nil || m.Registration == 0 {
			t.Errorf("%s UNREGISTER small float: %d, %v", s, m.Registration, err)
		}
	}
	// Not ids: fractions, negatives, above 2^53, NaN, infinities; ERROR's type above 255.
	for _, f := range []float64{0.5, -1, 1<<53 + 2, math.NaN(), math.Inf(1), math.Inf(-1)} {
		for s, enc := range map[Serializer][]byte{MsgPack: f64mp(f), CBOR: f64cb(f)} {
			var m Message
			msg := refMessage(s, refSmall(s, uint8(UNSUBSCRIBE)), refSmall(s, 3), enc)
			if err := For(s).Decode(msg, &m); err == nil {
				t.Errorf("%s UNSUBSCRIBE sub %v: no error", s, f)
			}
			if _, ok := IDOf(f); ok {
				t.Errorf("IDOf(%v) ok", f)
			}
		}
	}
	for s, enc := range map[Serializer][]byte{MsgPack: f64mp(256), CBOR: f64cb(256)} {
		var m Message
		msg := refMessage(s, refSmall(s, uint8(ERROR)), enc, refSmall(s, 1), refEmptyMap(s), refStr(s, "e.x"))
		if err := For(s).Decode(msg, &m); err == nil {
			t.Errorf("%s ERROR type 256.0: no error", s)
		}
	}
}

// TestJSONStringsAreValidUTF8: a string that reaches JSON from a binary serializer with
// bytes that are not UTF-8 is written with U+FFFD in their place, so that the text
// frame a JSON WebSocket subscriber gets is valid UTF-8 (a browser closes on anything
// else); valid UTF-8, escapes and U+FFFD itself pass unchanged.
func TestJSONStringsAreValidUTF8(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain", `"plain"`},
		{"caf\u00e9 \u2603 \U0001F600", "\"caf\u00e9 \u2603 \U0001F600\""},
		{"\xc3(", "\"\ufffd(\""},
		{"a\xffb\xfe", "\"a\ufffdb\ufffd\""},
		{"\xe2\x82", "\"\ufffd\ufffd\""},           // a truncated 3-byte sequence
		{"\xed\xa0\x80", "\"\ufffd\ufffd\ufffd\""}, // a UTF-16 surrogate, not UTF-8
		{"\ufffd", "\"\ufffd\""},
		{"q\"\\\n\x01", `"q\"\\\n\u0001"`},
	} {
		got := string(jappendString(nil, []byte(tc.in)))
		if got != tc.want || !utf8.ValidString(got) {
			t.Errorf("jappendString(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
	// End to end: a MessagePack EVENT with an invalid string, transcoded for a JSON peer.
	src, err := For(MsgPack).Append(nil, &Message{Type: EVENT, Subscription: 1, Publication: 2,
		Args: mustValue(t, MsgPack, []any{"\xc3("})})
	if err != nil {
		t.Fatal(err)
	}
	var m Message
	if err := For(MsgPack).Decode(src, &m); err != nil {
		t.Fatal(err)
	}
	out, err := Transcode(nil, JSON, m.Args, MsgPack)
	if err != nil {
		t.Fatal(err)
	}
	if !utf8.Valid(out) || string(out) != "[\"\ufffd(\"]" {
		t.Fatalf("transcoded args %q", out)
	}
}
