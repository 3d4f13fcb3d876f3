package codec

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

var allSerializers = []Serializer{JSON, MsgPack, CBOR, UBJSON}

func mustValue(t testing.TB, s Serializer, v any) Raw {
	t.Helper()
	b, err := AppendValue(nil, s, v)
	if err != nil {
		t.Fatalf("AppendValue(%s, %#v): %v", s, v, err)
	}
	return b
}

// sampleMessages returns one message per type, with payloads encoded with s.
func sampleMessages(t testing.TB, s Serializer) []Message {
	args := mustValue(t, s, []any{"hello", uint64(123), map[string]any{"k": 1.5}})
	kwargs := mustValue(t, s, map[string]any{"a": []any{true, nil, int64(-7)}})
	d := func(has uint64, f func(*Details)) Details {
		var x Details
		if f != nil {
			f(&x)
		}
		x.Has = has
		return x
	}
	return []Message{
		{Type: HELLO, URI: []byte("realm1"), DictAny: map[string]any{"roles": map[string]any{"caller": map[string]any{}}}},
		{Type: WELCOME, Session: 1 << 53, DictAny: map[string]any{"authid": "x"}},
		{Type: ABORT, URI: []byte("wamp.error.no_such_realm"), Details: d(KeyMessage, func(x *Details) { x.Message = []byte("no \"realm\"\n") })},
		{Type: CHALLENGE, URI: []byte("wampcra")},
		{Type: AUTHENTICATE, URI: []byte("c2lnbmF0dXJl")},
		{Type: GOODBYE, URI: []byte("wamp.close.normal")},
		{Type: ERROR, ErrType: CALL, Request: 7, URI: []byte("com.err"), Args: args, Kwargs: kwargs},
		{Type: ERROR, ErrType: SUBSCRIBE, Request: 8, URI: []byte("com.err")},
		{Type: PUBLISH, Request: 1, URI: []byte("com.topic"), Details: d(KeyAcknowledge|KeyExcludeMe|KeyDiscloseMe, func(x *Details) { x.Acknowledge = true; x.DiscloseMe = true }), Args: args},
		{Type: PUBLISH, Request: 2, URI: []byte("com.topic"), Kwargs: kwargs},
		{Type: PUBLISH, Request: 3, URI: []byte("com.topic"), Args: mustValue(t, s, []byte{0, 1, 2, 255})},
		{Type: PUBLISHED, Request: 1, Publication: 99},
		{Type: SUBSCRIBE, Request: 2, URI: []byte("com."), Details: d(KeyMatch, func(x *Details) { x.Match = []byte("prefix") })},
		{Type: SUBSCRIBED, Request: 2, Subscription: 5},
		{Type: UNSUBSCRIBE, Request: 3, Subscription: 5},
		{Type: UNSUBSCRIBED, Request: 3},
		{Type: UNSUBSCRIBED, Request: 0, Details: d(0, nil), DictAny: map[string]any{"subscription": uint64(5), "reason": "revoked"}},
		{Type: EVENT, Subscription: 5, Publication: 6, Details: d(KeyTopic|KeyPublisher, func(x *Details) { x.Topic = []byte("com.topic.x"); x.Publisher = 42 }), Args: args, Kwargs: kwargs},
		{Type: EVENT, Subscription: 5, Publication: 7},
		{Type: CALL, Request: 4, URI: []byte("com.proc"), Details: d(KeyReceiveProgress|KeyTimeout|KeyDiscloseMe, func(x *Details) { x.ReceiveProgress = true; x.Timeout = 1000 }), Args: args},
		{Type: CALL, Request: 9, URI: []byte("com.proc"), Details: d(KeyRKey, func(x *Details) { x.RKey = []byte("user-7") }), Args: args},
		{Type: CANCEL, Request: 4},
		{Type: RESULT, Request: 4, Details: d(KeyProgress, func(x *Details) { x.Progress = true }), Args: args, Kwargs: kwargs},
		{Type: REGISTER, Request: 5, URI: []byte("com.proc"), Details: d(KeyMatch|KeyInvoke, func(x *Details) { x.Match = []byte("wildcard"); x.Invoke = []byte("roundrobin") })},
		{Type: REGISTERED, Request: 5, Registration: 77},
		{Type: UNREGISTER, Request: 6, Registration: 77},
		{Type: UNREGISTERED, Request: 6},
		{Type: INVOCATION, Request: 8, Registration: 77, Details: d(KeyProcedure|KeyCaller|KeyReceiveProgress|KeyTimeout, func(x *Details) {
			x.Procedure = []byte("com.proc.é")
			x.Caller = 1234
			x.Timeout = -5
		}), Args: args},
		{Type: INTERRUPT, Request: 8},
		{Type: YIELD, Request: 8, Args: args},
	}
}

// sameMessage compares what Decode(Append(m)) must reproduce.
func sameMessage(t *testing.T, s Serializer, want, got *Message) {
	t.Helper()
	w, g := *want, *got
	if w.DictAny != nil {
		d, err := DecodeDict(s, g.Dict)
		if err != nil {
			t.Fatalf("DecodeDict: %v", err)
		}
		wd, _ := DecodeDict(s, mustValue(t, s, w.DictAny))
		if !reflect.DeepEqual(d, wd) {
			t.Errorf("%s dict: got %v, want %v", w.Type, d, wd)
		}
		w.DictAny = nil
	}
	w.Dict, g.Dict = nil, nil
	if w.Kwargs != nil && w.Args == nil {
		w.Args = mustValue(t, s, []any{})
	}
	if !reflect.DeepEqual(norMsg(w), norMsg(g)) {
		t.Errorf("%s: got\n%+v\nwant\n%+v", w.Type, g, w)
	}
}

// norMsg makes empty and nil slices equal.
func norMsg(m Message) Message {
	for _, p := range []*[]byte{&m.URI, &m.Details.Match, &m.Details.Invoke, &m.Details.Topic, &m.Details.Procedure, &m.Details.Message} {
		if len(*p) == 0 {
			*p = nil
		}
	}
	return m
}

func TestRoundTripAllTypes(t *testing.T) {
	for _, s := range allSerializers {
		c := For(s)
		if c.Serializer() != s {
			t.Fatalf("For(%s).Serializer() = %s", s, c.Serializer())
		}
		for _, m := range sampleMessages(t, s) {
			t.Run(s.String()+"/"+m.Type.String(), func(t *testing.T) {
				b, err := c.Append(nil, &m)
				if err != nil {
					t.Fatal(err)
				}
				var got Message
				if err := c.Decode(b, &got); err != nil {
					t.Fatalf("Decode(%q): %v", b, err)
				}
				sameMessage(t, s, &m, &got)
				// Dict is raw and re-encodes identically.
				b2, err := c.Append(nil, &got)
				if err != nil || !bytes.Equal(b, b2) {
					t.Errorf("re-Append: %q, %v; want %q", b2, err, b)
				}
			})
		}
	}
}

func TestJSONAppendCompact(t *testing.T) {
	m := Message{Type: PUBLISH, Request: 1, URI: []byte("a.b"), Details: Details{Has: KeyAcknowledge, Acknowledge: true}, Args: Raw(`[1,"x"]`)}
	b, err := For(JSON).Append(nil, &m)
	if err != nil {
		t.Fatal(err)
	}
	if want := `[16,1,{"acknowledge":true},"a.b",[1,"x"]]`; string(b) != want {
		t.Errorf("got %s, want %s", b, want)
	}
	m = Message{Type: EVENT, Subscription: 1, Publication: 2, Kwargs: Raw(`{"a":1}`)}
	b, _ = For(JSON).Append(b[:0], &m)
	if want := `[36,1,2,{},[],{"a":1}]`; string(b) != want {
		t.Errorf("got %s, want %s", b, want)
	}
}

func TestDecodeJSONWhitespaceAndEscapes(t *testing.T) {
	in := " \n[ 16 ,\t1 , { \"x\" : [1, {\"y\": null}], \"acknowledge\" : true, \"m\\u00e9\": 1 } , \"com.t\\u00e9\\\"st\" , [ \"a\" ] , { } ] \r\n"
	var m Message
	if err := For(JSON).Decode([]byte(in), &m); err != nil {
		t.Fatal(err)
	}
	if string(m.URI) != "com.té\"st" || !m.Details.Acknowledge || m.Details.Has != KeyAcknowledge ||
		string(m.Args) != `[ "a" ]` || string(m.Kwargs) != "{ }" || m.Request != 1 {
		t.Errorf("got %+v", m)
	}
}

func TestDecodeNullDetailIsAbsent(t *testing.T) {
	for _, s := range allSerializers {
		b := mustValue(t, s, []any{uint64(48), uint64(1), map[string]any{"timeout": nil}, "p"})
		var m Message
		if err := For(s).Decode(b, &m); err != nil || m.Details.Has != 0 {
			t.Errorf("%s: %v, Has=%b", s, err, m.Details.Has)
		}
	}
}

// badMessages are JSON messages that every codec must reject; they are converted to the
// other serializers with AppendValue on the DecodeValue model.
var badMessages = []struct{ name, json string }{
	{"not a list", `{"a":1}`},
	{"empty list", `[]`},
	{"unknown type", `[99,1]`},
	{"type 0", `[0,1]`},
	{"type negative", `[-16,1,{},"t"]`},
	{"type float", `[16.0,1,{},"t"]`},
	{"type string", `["16",1,{},"t"]`},
	{"too few", `[16,1,{}]`},
	{"too many", `[17,1,2,3]`},
	{"too many args", `[16,1,{},"t",[],{},[]]`},
	{"id string", `[16,"1",{},"t"]`},
	{"id negative", `[16,-1,{},"t"]`},
	{"id float", `[16,1.5,{},"t"]`},
	{"id > 2^53", `[17,1,9007199254740993]`},
	{"id 2^64", `[17,1,18446744073709551616]`},
	{"uri not string", `[16,1,{},5]`},
	{"uri null", `[32,1,{},null]`},
	{"dict not dict", `[16,1,[],"t"]`},
	{"dict null", `[16,1,null,"t"]`},
	{"args not list", `[16,1,{},"t",{}]`},
	{"args number", `[16,1,{},"t",5]`},
	{"kwargs not dict", `[16,1,{},"t",[],[]]`},
	{"kwargs after payload", `[16,1,{},"t","\u0000AAE=",{}]`},
	{"errtype > 255", `[8,300,1,{},"e"]`},
	{"bool option wrong type", `[16,1,{"acknowledge":1},"t"]`},
	{"string option wrong type", `[36,1,2,{"topic":5}]`},
	{"id option negative", `[36,1,2,{"publisher":-1}]`},
	{"id option > 2^53", `[68,1,2,{"caller":9007199254740993}]`},
	{"timeout float", `[48,1,{"timeout":1.5},"p"]`},
	{"bad match", `[32,1,{"match":"regex"},"t"]`},
	{"welcome session > 2^53", `[2,9007199254740993,{}]`},
}

func TestDecodeBadShapes(t *testing.T) {
	for _, tc := range badMessages {
		for _, s := range allSerializers {
			in := []byte(tc.json)
			if s != JSON {
				v, err := DecodeValue(JSON, in)
				if err != nil {
					t.Fatalf("%s: %v", tc.name, err)
				}
				if in, err = AppendValue(nil, s, v); err != nil {
					t.Fatalf("%s: %v", tc.name, err)
				}
			}
			var m Message
			err := For(s).Decode(in, &m)
			if err == nil || !errors.Is(err, ErrInvalid) {
				t.Errorf("%s/%s: Decode(%x) = %v, want ErrInvalid", tc.name, s, in, err)
			} else if !strings.HasPrefix(err.Error(), "codec: "+s.String()+": ") {
				t.Errorf("%s/%s: error %q lacks the codec prefix", tc.name, s, err)
			}
		}
	}
}

func TestDecodeBadJSONSyntax(t *testing.T) {
	for _, in := range []string{
		``, ` `, `[`, `[16`, `[16,`, `[16,1,{},"t"`, `[16,1,{},"t",]`, `[16,1,{},"t"]x`,
		`[16,1,{},"t"] [`, `[16,1,{"a"},"t"]`, `[16,1,{"a":},"t"]`, `[16,1,{"a":1,},"t"]`,
		`[16,1,{},"t\x01"]`, `[16,1,{},"t\q"]`, `[16,1,{},"t\u12"]`, `[16,1,{},"t",[01]]`,
		`[16,1,{},"t",[1.]]`, `[16,1,{},"t",[1e]]`, `[16,1,{},"t",[tru]]`, `[16,1,{},"t",[nul]]`,
		`[16 1,{},"t"]`, `[16,1,{} "t"]`, `[16,1,{},"t",["a" "b"]]`, `[16,1,{},"t",[-]]`,
		strings.Repeat("[", 600) + strings.Repeat("]", 600),
		`[16,1,{},"t",` + strings.Repeat("[", 600) + strings.Repeat("]", 600) + `]`,
	} {
		var m Message
		if err := For(JSON).Decode([]byte(in), &m); !errors.Is(err, ErrInvalid) {
			t.Errorf("Decode(%q) = %v, want ErrInvalid", in, err)
		}
	}
}

func TestDecodeTruncatedAndTrailing(t *testing.T) {
	for _, s := range allSerializers {
		c := For(s)
		for _, m := range sampleMessages(t, s) {
			b, err := c.Append(nil, &m)
			if err != nil {
				t.Fatal(err)
			}
			var got Message
			for n := 0; n < len(b); n++ {
				if err := c.Decode(b[:n], &got); !errors.Is(err, ErrInvalid) {
					t.Errorf("%s %s: Decode(prefix %d of %x) = %v, want ErrInvalid", s, m.Type, n, b, err)
				}
			}
			for _, junk := range []string{"x", "\x00", "]", "[1]"} {
				if err := c.Decode(append(b[:len(b):len(b)], junk...), &got); !errors.Is(err, ErrInvalid) {
					t.Errorf("%s %s: trailing %q accepted: %v", s, m.Type, junk, err)
				}
			}
		}
	}
}

func TestCBORIndefiniteInput(t *testing.T) {
	// [16, 1, {_ "acknowledge": true}, (_ "com." "topic"), [_ 1, 2]]  (indefinite forms)
	in := []byte{0x9f, 0x10, 0x01, 0xbf, 0x6b}
	in = append(in, "acknowledge"...)
	in = append(in, 0xf5, 0xff, 0x7f, 0x64)
	in = append(in, "com."...)
	in = append(in, 0x65)
	in = append(in, "topic"...)
	in = append(in, 0xff, 0x9f, 0x01, 0x02, 0xff, 0xff)
	var m Message
	if err := For(CBOR).Decode(in, &m); err != nil {
		t.Fatal(err)
	}
	if string(m.URI) != "com.topic" || !m.Details.Acknowledge || m.Request != 1 {
		t.Fatalf("got %+v", m)
	}
	v, err := DecodeValue(CBOR, m.Args)
	if err != nil || !reflect.DeepEqual(v, []any{uint64(1), uint64(2)}) {
		t.Fatalf("args %v %v", v, err)
	}
	out, err := For(CBOR).Append(nil, &m)
	if err != nil {
		t.Fatal(err)
	}
	j, err := Transcode(nil, JSON, m.Args, CBOR)
	if err != nil || string(j) != "[1,2]" {
		t.Fatalf("transcode: %s %v", j, err)
	}
	if err := For(CBOR).Decode(out, &m); err != nil {
		t.Fatal(err)
	}
}

func TestAppendErrors(t *testing.T) {
	for _, s := range allSerializers {
		if _, err := For(s).Append(nil, &Message{Type: 99}); err == nil {
			t.Errorf("%s: unknown type accepted", s)
		}
		if _, err := For(s).Append(nil, &Message{Type: HELLO, DictAny: map[string]any{"x": struct{}{}}}); err == nil {
			t.Errorf("%s: unsupported DictAny value accepted", s)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("For(9) did not panic")
		}
	}()
	For(9)
}

func TestMessageTypeString(t *testing.T) {
	if PUBLISH.String() != "PUBLISH" || MessageType(99).String() != "UNKNOWN(99)" {
		t.Error(PUBLISH.String(), MessageType(99).String())
	}
	if fmt.Sprint(JSON, MsgPack, CBOR) != "json msgpack cbor" {
		t.Error(fmt.Sprint(JSON, MsgPack, CBOR))
	}
}

func TestFirstElement(t *testing.T) {
	for _, s := range []Serializer{JSON, MsgPack, CBOR} {
		list, err := AppendValue(nil, s, []any{"key-1", int64(2)})
		if err != nil {
			t.Fatal(err)
		}
		one, _ := AppendValue(nil, s, "key-1")
		got, ok := FirstElement(s, list)
		if !ok || string(got) != string(one) {
			t.Errorf("%s: FirstElement = %q, %v; want %q", s, got, ok, one)
		}
		empty, _ := AppendValue(nil, s, []any{})
		if _, ok := FirstElement(s, empty); ok {
			t.Errorf("%s: FirstElement of [] ok", s)
		}
		if _, ok := FirstElement(s, nil); ok {
			t.Errorf("%s: FirstElement of nil ok", s)
		}
		if n := testing.AllocsPerRun(100, func() { FirstElement(s, list) }); n != 0 {
			t.Errorf("%s: FirstElement allocates %v", s, n)
		}
	}
}

// TestDictKeysMustBeStrings: a Details/Options dict whose top-level key is not a string is
// malformed in every serializer, also for message types whose dict has no key the router
// reads (HELLO, WELCOME, ERROR): JSON cannot express it, so accepting it in MessagePack or
// CBOR would let a message through that no other serializer can carry. Found by the
// cross-serializer property of the Decode fuzz targets (testdata/fuzz seeds).
func TestDictKeysMustBeStrings(t *testing.T) {
	for _, tc := range []struct {
		s Serializer
		b string
	}{
		{MsgPack, "\x93\x01\xa6000000\x81\x30\x30"},      // [1, "000000", {48: 48}]
		{CBOR, "\x83\x02\x00\xa1\x30\x30"},               // [2, 0, {-17: -17}]
		{MsgPack, "\x95\x08\x30\x07\x81\x01\xc0\xa3a.b"}, // ERROR [8, 48, 7, {1: nil}, "a.b"]
		{CBOR, "\x85\x08\x18\x30\x07\xa1\x01\xf6\x63a.b"},
	} {
		var m Message
		if err := For(tc.s).Decode([]byte(tc.b), &m); err == nil {
			t.Errorf("%s: Decode(%x) accepted a dict with a non-string key: %+v", tc.s, tc.b, m)
		} else if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Decode(%x): %v, want ErrInvalid", tc.s, tc.b, err)
		}
	}
}
