package codec

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"

	fb "github.com/google/flatbuffers/go"
	"github.com/switchyard-wamp/switchyard/codec/flatbuffers/proto"
)

// fbDictKeys are the vector attributes that hold a dict: a Flatbuffers message has typed
// fields instead, of which Details carries the mapped ones.
var fbDictKeys = map[string]bool{"options": true, "details": true, "extra": true, "roles": true}

// TestFlatbuffersConformanceVectors decodes every Flatbuffers sample of the WAMP vectors
// (AutobahnPython's serializer wrote them) and checks the attributes a Flatbuffers message
// can carry: type, ids, URI, args, kwargs, payload, and the dict keys Details maps. It then
// re-encodes, decodes again and requires the same message. Dict keys the schema mapping
// does not carry (roles, forward_for, the enc_* names of the E2EE samples) are counted.
func TestFlatbuffersConformanceVectors(t *testing.T) {
	files := loadTestsuite(t, "flatbuffers")
	checked, unsupported, same := 0, 0, 0
	notCarried := map[string]int{}
	for name, f := range files {
		for si, sample := range f.Samples {
			for ei, e := range sample.Serializers["flatbuffers"] {
				in, err := e.decode()
				if err != nil {
					t.Fatal(err)
				}
				if shapeOf(uint64(f.Code)) == nil {
					unsupported++
					var m Message
					if err := For(Flatbuffers).Decode(in, &m); err == nil {
						t.Errorf("%s: unsupported type %d decoded", name, f.Code)
					}
					continue
				}
				t.Run(name+"/"+strconv.Itoa(si)+"/"+strconv.Itoa(ei), func(t *testing.T) {
					c := For(Flatbuffers)
					var m Message
					if err := c.Decode(in, &m); err != nil {
						t.Fatalf("Decode(%x): %v", in, err)
					}
					got := attributes(t, Flatbuffers, &m)
					want := map[string]any{}
					for k, v := range sample.Expected {
						if !fbDictKeys[k] {
							want[k] = v
							continue
						}
						d, _ := v.(map[string]any)
						for dk, dv := range d {
							bit := detailKey([]byte(dk)) & shapeOf(uint64(m.Type)).keys
							if bit == 0 || bit&(boolKeys|idKeys|intKeys) == 0 {
								notCarried[k+"."+dk]++
								continue
							}
							if m.Details.Has&bit == 0 {
								t.Errorf("%s.%s: not decoded", k, dk)
							} else if g := fbDetailValue(&m.Details, bit); !reflect.DeepEqual(norm(g), norm(toModel(dv))) {
								t.Errorf("%s.%s: got %v, want %v", k, dk, g, dv)
							}
						}
					}
					checkAttributes(t, want, got)
					out, err := c.Append(nil, &m)
					if err != nil {
						t.Fatalf("Append: %v", err)
					}
					if bytes.Equal(out, in) {
						same++
					}
					var m2 Message
					if err := c.Decode(out, &m2); err != nil {
						t.Fatalf("Decode(Append) %x: %v", out, err)
					}
					if !reflect.DeepEqual(norMsg(m), norMsg(m2)) {
						t.Errorf("round trip:\n%+v\n%+v", m, m2)
					}
					checked++
				})
			}
		}
	}
	reportSuite("flatbuffers: ran, %d encodings checked (%d byte-identical after re-encoding); %d samples of unsupported message types; dict keys not carried by the mapping: %v",
		checked, same, unsupported, notCarried)
	if checked == 0 {
		t.Fatal("no Flatbuffers vector checked")
	}
}

// fbCarry carries m, decoded from Flatbuffers, to serializer to (Args and Kwargs
// transcoded, Details written as a dict) and back, and requires the same message.
func fbCarry(t *testing.T, to Serializer, m *Message) {
	t.Helper()
	if to == JSON && nulAmbiguous(Flatbuffers, m) {
		return // a string starting with NUL reads back from JSON as binary (crossCheck)
	}
	tm := *m
	for _, p := range rawFields(&tm) {
		if *p != nil {
			out, err := Transcode(nil, to, *p, Flatbuffers)
			if err != nil {
				// As in crossCheck: Decode checks the payload's outer shape only, so a
				// value no serializer carries ({0: 0} inside kwargs) fails here, and
				// DecodeValue must refuse it too.
				v, derr := DecodeValue(Flatbuffers, *p)
				if derr == nil && !(to == JSON && hasNonFinite(v)) {
					t.Fatalf("%s: Transcode refuses %x that DecodeValue accepts: %v", to, []byte(*p), err)
				}
				return
			}
			*p = out
		}
	}
	enc, err := For(to).Append(nil, &tm)
	if err != nil {
		t.Fatalf("%s: Append: %v", to, err)
	}
	var there Message
	if err := For(to).Decode(enc, &there); err != nil {
		t.Fatalf("%s: Decode(%x): %v", to, enc, err)
	}
	for _, p := range rawFields(&there) {
		if *p != nil {
			out, err := Transcode(nil, Flatbuffers, *p, to)
			if err != nil {
				t.Fatalf("%s: transcode back: %v", to, err)
			}
			*p = out
		}
	}
	back, err := For(Flatbuffers).Append(nil, &there)
	if err != nil {
		t.Fatalf("%s: Append back: %v", to, err)
	}
	var got Message
	if err := For(Flatbuffers).Decode(back, &got); err != nil {
		t.Fatal(err)
	}
	// Encoded values agree by content (a non-minimal integer comes back minimal).
	want := *m
	wr, gr := rawFields(&want), rawFields(&got)
	for i := range wr {
		w, g := *wr[i], *gr[i]
		*wr[i], *gr[i] = nil, nil
		if w == nil && g == nil {
			continue
		}
		wv, werr := DecodeValue(Flatbuffers, w)
		gv, gerr := DecodeValue(Flatbuffers, g)
		switch {
		case (w == nil) != (g == nil):
		case werr != nil || gerr != nil: // no Go value (CBOR-only content): bytes must agree
			if bytes.Equal(w, g) {
				continue
			}
		case hasNaN(wv) || reflect.DeepEqual(norm(wv), norm(gv)):
			continue
		}
		t.Fatalf("via %s: raw field %d %x became %x", to, i, []byte(w), []byte(g))
	}
	if !reflect.DeepEqual(norMsg(want), norMsg(got)) {
		t.Errorf("via %s:\n%+v\n%+v", to, want, got)
	}
}

func fbDetailValue(d *Details, bit uint64) any {
	switch {
	case bit&boolKeys != 0:
		return d.getBool(bit)
	case bit&idKeys != 0:
		return d.getUint(bit)
	}
	return d.Timeout
}

// TestFlatbuffersRoundTrip carries the sample messages the schema can hold through
// Append and Decode, and across to every other serializer (Raw values are CBOR).
func TestFlatbuffersRoundTrip(t *testing.T) {
	c := For(Flatbuffers)
	for _, m := range sampleMessages(t, Flatbuffers) {
		if m.DictAny != nil || m.Type == CALL && m.Details.Has&KeyRKey != 0 || m.Details.Has&KeyDiscloseMe != 0 {
			continue // dicts and options with no Flatbuffers field
		}
		if m.Type == INVOCATION {
			m.Details.Timeout = 5 // uint32 in the schema
		}
		b, err := c.Append(nil, &m)
		if err != nil {
			t.Fatalf("%s: Append: %v", m.Type, err)
		}
		var got Message
		if err := c.Decode(b, &got); err != nil {
			t.Fatalf("%s: Decode(%x): %v", m.Type, b, err)
		}
		sameMessage(t, Flatbuffers, &m, &got)
		for _, to := range allSerializers {
			fbCarry(t, to, &got)
		}
	}
	// Payload Passthru Mode: a byte string payload goes to the payload vector.
	m := Message{Type: EVENT, Subscription: 1, Publication: 2, Args: mustValue(t, CBOR, []byte{1, 2, 3}),
		Details: Details{Has: KeyPptScheme | KeyPptSerializer, PptScheme: []byte("cryptobox"), PptSerializer: []byte("cbor")}}
	b, err := c.Append(nil, &m)
	if err != nil {
		t.Fatal(err)
	}
	ev := new(proto.Message)
	ev.Init(b, fb.GetUOffsetT(b))
	var tab fb.Table
	if !ev.Msg(&tab) || ev.MsgType() != proto.AnyMessageEvent {
		t.Fatalf("generated reader: type %v", ev.MsgType())
	}
	e := new(proto.Event)
	e.Init(tab.Bytes, tab.Pos)
	if !bytes.Equal(e.PayloadBytes(), []byte{1, 2, 3}) || e.ArgsLength() != 0 || e.PptScheme() != proto.PPTSchemeCRYPTOBOX ||
		e.PptSerializer() != proto.PPTSerializerCBOR || e.Subscription() != 1 || e.Publication() != 2 {
		t.Errorf("generated reader sees %x", b)
	}
	if _, err := c.Append(nil, &Message{Type: EVENT, Details: Details{Has: KeyPptScheme, PptScheme: []byte("x_custom")}}); err == nil {
		t.Error("ppt_scheme without an enum value accepted")
	}
}

// TestFlatbuffersGeneratedWriter builds a PUBLISH with the flatc-generated builder API and
// decodes it: our table-driven field ids agree with the generated code.
func TestFlatbuffersGeneratedWriter(t *testing.T) {
	bld := fb.NewBuilder(0)
	topic := bld.CreateString("com.topic")
	args := bld.CreateByteVector(mustValue(t, CBOR, []any{"x"}))
	proto.PublishStart(bld)
	proto.PublishAddRequest(bld, 77)
	proto.PublishAddTopic(bld, topic)
	proto.PublishAddArgs(bld, args)
	proto.PublishAddAcknowledge(bld, true)
	proto.PublishAddExcludeMe(bld, false)
	proto.PublishAddRetain(bld, true)
	pub := proto.PublishEnd(bld)
	proto.MessageStart(bld)
	proto.MessageAddMsgType(bld, proto.AnyMessagePublish)
	proto.MessageAddMsg(bld, pub)
	bld.Finish(proto.MessageEnd(bld))
	var m Message
	if err := For(Flatbuffers).Decode(bld.FinishedBytes(), &m); err != nil {
		t.Fatal(err)
	}
	if m.Type != PUBLISH || m.Request != 77 || string(m.URI) != "com.topic" || !m.Details.Acknowledge ||
		m.Details.Has&KeyExcludeMe == 0 || m.Details.ExcludeMe || !m.Details.Retain {
		t.Errorf("got %+v", m)
	}
	if v, _ := DecodeValue(Flatbuffers, m.Args); !reflect.DeepEqual(v, []any{"x"}) {
		t.Errorf("args %v", v)
	}
}

// TestFlatbuffersGeneratedCodeCurrent regenerates the Go code with flatc (when on PATH)
// and requires it to equal the committed code.
func TestFlatbuffersGeneratedCodeCurrent(t *testing.T) {
	flatc, err := exec.LookPath("flatc")
	if err != nil {
		t.Skip("flatc not on PATH (Debian flatbuffers-compiler)")
	}
	dir := t.TempDir()
	out, err := exec.Command(flatc, "--go", "--go-namespace", "proto", "-o", dir, "flatbuffers/wamp.fbs").CombinedOutput()
	if err != nil {
		t.Fatalf("flatc: %v\n%s", err, out)
	}
	gen, _ := filepath.Glob(filepath.Join(dir, "proto", "*.go"))
	have, _ := filepath.Glob("flatbuffers/proto/*.go")
	if len(gen) == 0 || len(gen) != len(have) {
		t.Fatalf("flatc wrote %d files, %d committed", len(gen), len(have))
	}
	for _, g := range gen {
		a, _ := os.ReadFile(g)
		b, err := os.ReadFile(filepath.Join("flatbuffers/proto", filepath.Base(g)))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s differs from flatc's output: run go generate ./codec/flatbuffers", filepath.Base(g))
		}
	}
}

func FuzzDecodeFlatbuffers(f *testing.F) {
	for _, m := range sampleMessages(f, Flatbuffers) {
		if b, err := For(Flatbuffers).Append(nil, &m); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c := For(Flatbuffers)
		var m Message
		if err := c.Decode(b, &m); err != nil {
			return
		}
		out, err := c.Append(nil, &m)
		if err != nil {
			return // a decoded value the schema's writer refuses (e.g. a bad enum name)
		}
		var m2 Message
		if err := c.Decode(out, &m2); err != nil {
			t.Fatalf("Decode(Append(Decode(%x))) = Decode(%x): %v", b, out, err)
		}
		if !reflect.DeepEqual(norMsg(m), norMsg(m2)) {
			t.Fatalf("round trip changed the message:\n%+v\n%+v", m, m2)
		}
		// Carried to every other serializer and back, it stays the same message.
		if fbIsSession(m.Type) {
			return // their dicts are compared by TestFlatbuffersSessionDicts
		}
		m2.Dict = nil
		for _, to := range allSerializers {
			fbCarry(t, to, &m2)
		}
	})
}

// TestFlatbuffersSessionDicts: the session-level dicts survive Append and Decode as far as
// the schema's typed fields hold them (roles and their boolean features, authmethods,
// authid, authrole, authmethod, authprovider, realm, one authextra/extra string pair).
func TestFlatbuffersSessionDicts(t *testing.T) {
	c := For(Flatbuffers)
	for _, tc := range []struct {
		m    Message
		want map[string]any
	}{
		{Message{Type: HELLO, URI: []byte("realm1"), DictAny: map[string]any{
			"roles": map[string]any{
				"caller":     map[string]any{"features": map[string]any{"progressive_call_results": true, "call_canceling": true, "x_unknown": true}},
				"subscriber": map[string]any{},
			},
			"authmethods": []any{"ticket", "cryptosign", "x-custom"}, "authid": "joe", "authrole": "user",
			"authextra": map[string]any{"pubkey": "abcd", "n": uint64(1)}, "other": "dropped",
		}}, map[string]any{
			"roles": map[string]any{
				"caller":     map[string]any{"features": map[string]any{"progressive_call_results": true, "call_canceling": true}},
				"subscriber": map[string]any{"features": map[string]any{}},
			},
			"authmethods": []any{"ticket", "cryptosign"}, "authid": "joe", "authrole": "user",
			"authextra": map[string]any{"pubkey": "abcd"},
		}},
		{Message{Type: WELCOME, Session: 42, DictAny: map[string]any{
			"roles": map[string]any{"broker": map[string]any{"features": map[string]any{"publisher_exclusion": true}}, "dealer": map[string]any{"features": map[string]any{}}},
			"realm": "realm1", "authid": "a", "authrole": "anonymous", "authmethod": "anonymous", "authprovider": "static",
		}}, map[string]any{
			"roles": map[string]any{"broker": map[string]any{"features": map[string]any{"publisher_exclusion": true}}, "dealer": map[string]any{"features": map[string]any{}}},
			"realm": "realm1", "authid": "a", "authrole": "anonymous", "authmethod": "anonymous", "authprovider": "static",
		}},
		{Message{Type: CHALLENGE, URI: []byte("wampcra"), DictAny: map[string]any{"challenge": "{}"}},
			map[string]any{"challenge": "{}"}},
		{Message{Type: ABORT, URI: []byte("wamp.error.no_such_realm"), DictAny: map[string]any{"message": "no"}},
			map[string]any{"message": "no"}},
		{Message{Type: GOODBYE, URI: []byte("wamp.close.normal"), Details: Details{Has: KeyMessage, Message: []byte("bye")}},
			map[string]any{"message": "bye"}},
	} {
		b, err := c.Append(nil, &tc.m)
		if err != nil {
			t.Fatalf("%s: %v", tc.m.Type, err)
		}
		var got Message
		if err := c.Decode(b, &got); err != nil {
			t.Fatalf("%s: Decode(%x): %v", tc.m.Type, b, err)
		}
		d, err := DecodeDict(Flatbuffers, got.Dict)
		if err != nil || !reflect.DeepEqual(d, tc.want) {
			t.Errorf("%s: dict %#v, %v\nwant %#v", tc.m.Type, d, err, tc.want)
		}
		if got.Type != tc.m.Type || string(got.URI) != string(tc.m.URI) || got.Session != tc.m.Session {
			t.Errorf("%s: got %+v", tc.m.Type, got)
		}
		// The Dict (CBOR) form appends like DictAny.
		again, err := c.Append(nil, &got)
		if err != nil || !bytes.Equal(again, b) {
			t.Errorf("%s: Append(Decode) = %x, %v; want %x", tc.m.Type, again, err, b)
		}
	}
}

// TestFlatbuffersZeroAllocs: routing messages decode and encode without allocating
// (builders come from a pool; Decode aliases the buffer).
func TestFlatbuffersZeroAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("alloc counts are checked in the full run")
	}
	c := For(Flatbuffers)
	for _, typ := range []MessageType{PUBLISH, EVENT, CALL} {
		b := typical(t, Flatbuffers, typ)
		var m Message
		if n := testing.AllocsPerRun(100, func() {
			if err := c.Decode(b, &m); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("Decode %s: %v allocs", typ, n)
		}
		dst := make([]byte, 0, 1024)
		if n := testing.AllocsPerRun(100, func() {
			if _, err := c.Append(dst[:0], &m); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("Append %s: %v allocs", typ, n)
		}
	}
}

func BenchmarkFlatbuffers(b *testing.B) {
	c := For(Flatbuffers)
	for _, typ := range []MessageType{PUBLISH, EVENT, CALL} {
		in := typical(b, Flatbuffers, typ)
		var m Message
		b.Run("decode/"+typ.String(), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				if err := c.Decode(in, &m); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("encode/"+typ.String(), func(b *testing.B) {
			dst := make([]byte, 0, 1024)
			b.ReportAllocs()
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				var err error
				if dst, err = c.Append(dst[:0], &m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestFlatbuffersDecodeStaysWithinLen: offsets in a buffer must not reach the bytes after
// it that its capacity holds (found by the fuzzer: a vector that ends past len(b) but
// within cap(b) read the stale bytes there).
func TestFlatbuffersDecodeStaysWithinLen(t *testing.T) {
	msg, err := For(Flatbuffers).Append(nil, &Message{Type: PUBLISH, Request: 1, URI: []byte("com.topic")})
	if err != nil {
		t.Fatal(err)
	}
	// The topic's length field (the uint32 before "com.topic") now claims 4 more bytes,
	// which exist only in the capacity after the message.
	i := bytes.Index(msg, []byte("com.topic"))
	msg[i-4] += 4
	buf := append(msg, "XXXX"...)
	var m Message
	if err := For(Flatbuffers).Decode(buf[:len(msg)], &m); err == nil {
		t.Fatalf("decoded past the end of the buffer: URI %q", m.URI)
	}
}
