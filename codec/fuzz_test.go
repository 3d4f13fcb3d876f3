package codec

import (
	"bytes"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// seedDecode seeds a decoder's fuzz target: the WAMP spec vectors (when present), the
// built-in sample messages and the known-bad messages carried to s.
func seedDecode(f *testing.F, s Serializer) {
	for _, b := range vectorInputs(f, s) {
		f.Add(b)
	}
	for _, m := range sampleMessages(f, s) {
		b, err := For(s).Append(nil, &m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, tc := range badMessages {
		if v, err := DecodeValue(JSON, []byte(tc.json)); err == nil {
			if b, err := AppendValue(nil, s, v); err == nil {
				f.Add(b)
			}
		}
	}
}

// fuzzDecode: Decode never panics, and what it accepts re-encodes to something it accepts
// again with the same content.
func fuzzDecode(t *testing.T, s Serializer, b []byte) {
	c := For(s)
	var m Message
	if err := c.Decode(b, &m); err != nil {
		return
	}
	decoded := m
	out, err := c.Append(nil, &m)
	if err != nil {
		t.Fatalf("Append after Decode(%q): %v", b, err)
	}
	var m2 Message
	if err := c.Decode(out, &m2); err != nil {
		t.Fatalf("Decode(Append(Decode(%q))) = Decode(%q): %v", b, out, err)
	}
	m.Dict, m2.Dict = nil, nil
	if m.Kwargs != nil && m.Args == nil {
		m2.Args = nil
	}
	if !reflect.DeepEqual(norMsg(m), norMsg(m2)) {
		t.Fatalf("round trip changed the message:\n%+v\n%+v", m, m2)
	}
	// The message agrees field by field once carried to every other serializer.
	for _, to := range allSerializers {
		if to != s {
			crossCheck(t, s, to, b, &decoded)
		}
	}
}

// rawFields lists the fields of m that hold encoded values in the message's serializer.
func rawFields(m *Message) []*Raw {
	d := &m.Details
	return []*Raw{&m.Dict, &m.Args, &m.Kwargs, &d.Exclude, &d.ExcludeAuthID, &d.ExcludeAuthRole,
		&d.Eligible, &d.EligibleAuthID, &d.EligibleAuthRole}
}

// crossCheck carries m, decoded from b in serializer from, to serializer to (its encoded
// values transcoded, its dict written as transcoded), decodes the result, and requires
// every field to agree: scalars and strings exactly, encoded values by content.
func crossCheck(t *testing.T, from, to Serializer, b []byte, m *Message) {
	t.Helper()
	tm := *m
	for i, p := range rawFields(&tm) {
		if *p == nil {
			continue
		}
		out, err := Transcode(nil, to, *p, from)
		if err != nil {
			// Decode checks the payload only for its outer shape and the dict only
			// for its top-level keys (the router forwards the rest untouched), so a
			// value another serializer cannot carry ({0: 0} as ArgumentsKw, a CBOR
			// simple value inside an option) fails here, cleanly; DecodeValue must
			// refuse it too. TestDictKeysMustBeStrings covers the top-level keys.
			if v, derr := DecodeValue(from, *p); derr == nil {
				if to == JSON && hasNonFinite(v) {
					return // JSON has no NaN or infinity: refused by design (TestTranscodeErrors)
				}
				t.Fatalf("%s->%s: Transcode refuses raw field %d %x that DecodeValue accepts: %v", from, to, i, []byte(*p), err)
			}
			return
		}
		*p = out
	}
	if to == JSON && nulAmbiguous(from, m) {
		return
	}
	enc, err := For(to).Append(nil, &tm)
	if err != nil {
		t.Fatalf("%s->%s: Append(%+v) from %x: %v", from, to, tm, b, err)
	}
	var got Message
	if err := For(to).Decode(enc, &got); err != nil {
		t.Fatalf("%s->%s: Decode(%x), the carried form of %x: %v", from, to, enc, b, err)
	}
	want := *m
	wantRaw, gotRaw := rawFields(&want), rawFields(&got)
	for i := range wantRaw {
		w, g := *wantRaw[i], *gotRaw[i]
		if (w == nil) != (g == nil) {
			// An ArgumentsKw without Arguments is written with an empty Arguments list.
			if i == 1 && w == nil && m.Kwargs != nil {
				*wantRaw[i], *gotRaw[i] = nil, nil
				continue
			}
			t.Fatalf("%s->%s: raw field %d present %v, now %v (%x -> %x)", from, to, i, w != nil, g != nil, b, enc)
		}
		if w != nil {
			wv, werr := DecodeValue(from, w)
			gv, gerr := DecodeValue(to, g)
			if to == JSON && werr == nil && gerr != nil && strings.Contains(gerr.Error(), errBinary.Error()) && bytes.IndexByte(w, 0) >= 0 {
				// A string starting with NUL reads back from JSON as binary (the WAMP
				// binary rule). nulAmbiguous misses one under a duplicate dict key: it
				// sees the decoded value, which keeps the last of the duplicates.
				return
			}
			if werr != nil || gerr != nil {
				t.Fatalf("%s->%s: raw field %d does not decode: %v / %v", from, to, i, werr, gerr)
			}
			if !hasNaN(wv) && !reflect.DeepEqual(norm(wv), norm(gv)) {
				t.Fatalf("%s->%s: raw field %d %#v became %#v (%x -> %x)", from, to, i, wv, gv, b, enc)
			}
		}
		*wantRaw[i], *gotRaw[i] = nil, nil
	}
	if !reflect.DeepEqual(norMsg(want), norMsg(got)) {
		t.Fatalf("%s->%s: message changed:\n%+v\n%+v\n(%x -> %x)", from, to, want, got, b, enc)
	}
}

// nulAmbiguous reports whether m holds a string that starts with NUL (in its strings or
// encoded values): JSON reads such a string back as binary, by the WAMP binary rule; or
// one that is not UTF-8, which JSON writes with U+FFFD in place of its bad bytes.
func nulAmbiguous(from Serializer, m *Message) bool {
	d := &m.Details
	for _, s := range [][]byte{m.URI, d.Match, d.Invoke, d.Topic, d.Procedure, d.Message, d.PublisherAuthID,
		d.PublisherAuthRole, d.CallerAuthID, d.CallerAuthRole, d.Mode, d.Reason, d.PptScheme,
		d.PptSerializer, d.PptCipher, d.PptKeyID, d.RKey} {
		if len(s) > 0 && s[0] == 0 || !utf8.Valid(s) {
			return true
		}
	}
	for _, p := range rawFields(m) {
		if *p != nil {
			if v, err := DecodeValue(from, *p); err == nil && hasNULString(v) {
				return true
			}
		}
	}
	return false
}

func FuzzDecodeJSON(f *testing.F) {
	seedDecode(f, JSON)
	f.Fuzz(func(t *testing.T, b []byte) { fuzzDecode(t, JSON, b) })
}

func FuzzDecodeMsgPack(f *testing.F) {
	seedDecode(f, MsgPack)
	f.Fuzz(func(t *testing.T, b []byte) { fuzzDecode(t, MsgPack, b) })
}

func FuzzDecodeCBOR(f *testing.F) {
	seedDecode(f, CBOR)
	f.Fuzz(func(t *testing.T, b []byte) { fuzzDecode(t, CBOR, b) })
}

// FuzzTranscode: Transcode never panics; its output decodes to the same value as the
// input (checked through DecodeValue), for every serializer pair.
func FuzzTranscode(f *testing.F) {
	for _, v := range transcodeValues {
		for _, s := range allSerializers {
			b, _ := AppendValue(nil, s, v)
			f.Add(uint8(s), b)
		}
	}
	f.Fuzz(func(t *testing.T, from uint8, b []byte) {
		src := Serializer(from%uint8(len(allSerializers)) + 1)
		want, werr := DecodeValue(src, b)
		for _, to := range allSerializers {
			out, err := Transcode(nil, to, b, src)
			if err != nil || to == src {
				continue
			}
			if werr != nil {
				t.Fatalf("%s->%s: Transcode accepted %x that DecodeValue rejects (%v)", src, to, b, werr)
			}
			if to == JSON && hasNULString(want) {
				continue
			}
			got, err := DecodeValue(to, out)
			if err != nil {
				t.Fatalf("%s->%s: output %x does not decode: %v", src, to, out, err)
			}
			if !reflect.DeepEqual(norm(got), norm(want)) && !hasNaN(want) {
				t.Fatalf("%s->%s: %#v became %#v", src, to, want, got)
			}
		}
	})
}

// hasNULString reports a string that JSON does not carry as it is: one starting with
// NUL reads back as binary (the WAMP binary rule makes such strings ambiguous), and one
// that is not UTF-8 is written with U+FFFD in place of its bad bytes.
func hasNULString(v any) bool {
	switch x := v.(type) {
	case string:
		return len(x) > 0 && x[0] == 0 || !utf8.ValidString(x)
	case []any:
		for _, e := range x {
			if hasNULString(e) {
				return true
			}
		}
	case map[string]any:
		for k, e := range x {
			if hasNULString(k) || hasNULString(e) {
				return true
			}
		}
	}
	return false
}

// hasNonFinite reports a NaN or an infinity anywhere in v.
func hasNonFinite(v any) bool {
	switch x := v.(type) {
	case float64:
		return math.IsNaN(x) || math.IsInf(x, 0)
	case []any:
		return slices.ContainsFunc(x, hasNonFinite)
	case map[string]any:
		for _, e := range x {
			if hasNonFinite(e) {
				return true
			}
		}
	}
	return false
}

func hasNaN(v any) bool {
	switch x := v.(type) {
	case float64:
		return x != x
	case []any:
		for _, e := range x {
			if hasNaN(e) {
				return true
			}
		}
	case map[string]any:
		for _, e := range x {
			if hasNaN(e) {
				return true
			}
		}
	}
	return false
}
