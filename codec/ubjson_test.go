package codec

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"
)

// The generic tests (round trips of every message type, zero allocations, transcoding
// between every pair, the conformance vectors, byte-exact integers in intenc_test.go)
// run UBJSON through allSerializers; these cover what is UBJSON's own.

// TestUBJSONAppendExact pins the bytes Append and AppendValue write: unbounded
// containers, S strings (never C), keys without a marker, a byte string as [$U#n.
func TestUBJSONAppendExact(t *testing.T) {
	m := Message{Type: PUBLISH, Request: 1, URI: []byte("a"), Details: Details{Has: KeyAcknowledge, Acknowledge: true},
		Args: mustValue(t, UBJSON, []any{[]byte{1, 2}, "x", nil, false, -1.5, float32(0.5)})}
	got, err := For(UBJSON).Append(nil, &m)
	if err != nil {
		t.Fatal(err)
	}
	want := hexBytes("5b 5510 5501 7b 550b" + hex.EncodeToString([]byte("acknowledge")) + "54 7d 53550161" +
		"5b 5b24552355020102 53550178 5a 46 44bff8000000000000 643f000000 5d 5d")
	if !bytes.Equal(got, want) {
		t.Errorf("Append:\n got %x\nwant %x", got, want)
	}
	if got := mustValue(t, UBJSON, map[string]any{"k": map[string]any{}, "": []any{}}); !bytes.Equal(got, hexBytes("7b 5500 5b5d 55016b 7b7d 7d")) {
		t.Errorf("AppendValue dict: %x", got)
	}
}

// TestUBJSONInputForms decodes what other UBJSON writers may send: counted and typed
// containers, C chars, N no-ops, H numbers, wide integers.
func TestUBJSONInputForms(t *testing.T) {
	for _, tc := range []struct {
		in   string // hex
		want any
	}{
		{"5b 23 5502 5501 43 61", []any{uint64(1), "a"}},                             // [#2 counted
		{"5b 24 69 23 5503 ff 00 01", []any{int64(-1), uint64(0), uint64(1)}},        // [$i#3 typed
		{"5b 24 54 23 5502", []any{true, true}},                                      // [$T#2: no payload
		{"5b 24 55 23 5503 010203", []byte{1, 2, 3}},                                 // [$U#3: bytes
		{"7b 23 5501 5501 61 5a", map[string]any{"a": nil}},                          // {#1 counted
		{"7b 24 53 23 5501 5501 61 550162", map[string]any{"a": "b"}},                // {$S#1 typed
		{"5b 4e 5501 4e 4e 5502 4e 5d", []any{uint64(1), uint64(2)}},                 // no-ops
		{"48 5514 3138343436373434303733373039353531363136", 18446744073709551616.0}, // H beyond uint64
		{"48 5502 2d37", int64(-7)},
		{"48 5503 312e35", 1.5},
		{"4c 0000000000000005", uint64(5)},
		{"6c ffffffff", int64(-1)},
		{"49 0100", uint64(256)},
		{"64 3fc00000", 1.5},
	} {
		in := hexBytes(tc.in)
		got, err := DecodeValue(UBJSON, in)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("DecodeValue(%s) = %#v, %v; want %#v", tc.in, got, err, tc.want)
			continue
		}
		for _, to := range []Serializer{JSON, MsgPack, CBOR} {
			out, err := Transcode(nil, to, in, UBJSON)
			if err != nil {
				t.Errorf("%s -> %s: %v", tc.in, to, err)
				continue
			}
			if v, err := DecodeValue(to, out); err != nil || !reflect.DeepEqual(norm(v), norm(tc.want)) {
				t.Errorf("%s -> %s: %x = %#v, %v", tc.in, to, out, v, err)
			}
		}
	}
	// A whole message in counted form with a C URI and no-ops between elements.
	in := hexBytes("5b 23 5505 5510 5507 7b7d 4361 5b 23 5501 5501")
	var m Message
	if err := For(UBJSON).Decode(in, &m); err != nil {
		t.Fatal(err)
	}
	if m.Type != PUBLISH || m.Request != 7 || string(m.URI) != "a" || string(m.Args) != string(hexBytes("5b23550155 01")) {
		t.Errorf("counted message: %+v", m)
	}
	in = hexBytes("5b 5510 4e 5507 7b 4e 550b" + hex.EncodeToString([]byte("acknowledge")) + "54 7d 4e 53550174 5d")
	if err := For(UBJSON).Decode(in, &m); err != nil || !m.Details.Acknowledge || string(m.URI) != "t" {
		t.Errorf("no-ops: %+v %v", m, err)
	}
}

// TestUBJSONBinaryPayload: a Payload Passthru Mode payload (a byte string as Arguments)
// is accepted, is not a list for FirstElement, and may not be followed by ArgumentsKw.
func TestUBJSONBinaryPayload(t *testing.T) {
	var m Message
	in := hexBytes("5b 5510 5501 7b7d 53550174 5b24552355020102 5d")
	if err := For(UBJSON).Decode(in, &m); err != nil {
		t.Fatal(err)
	}
	if _, ok := FirstElement(UBJSON, m.Args); ok {
		t.Error("FirstElement of a byte string")
	}
	if j, err := Transcode(nil, JSON, m.Args, UBJSON); err != nil || string(j) != `"\u0000AQI="` {
		t.Errorf("to JSON: %s %v", j, err)
	}
	in = hexBytes("5b 5510 5501 7b7d 53550174 5b24552355020102 7b7d 5d")
	if err := For(UBJSON).Decode(in, &m); !errors.Is(err, ErrInvalid) {
		t.Errorf("kwargs after a payload: %v", err)
	}
	if e, ok := FirstElement(UBJSON, hexBytes("5b 4e 53550178 5501 5d")); !ok || string(e) != "SU\x01x" {
		t.Errorf("FirstElement: %q %v", e, ok)
	}
}

func TestUBJSONBadInput(t *testing.T) {
	for _, in := range []string{
		"", "5b", "5b5d", "7b7d", "5b 5510", "5b 5510 5501 7b7d 53550174", // truncated
		"5b 44 4030000000000000 5d",                         // float type code
		"5b 24 55 23 5502 1001",                             // typed message list
		"5b 5510 5501 7b7d 535505 74 5d",                    // string longer than the input
		"5b 5510 5501 7b7d 5369ff74 5d",                     // negative length
		"5b 5510 5501 7b7d 53550174 5b 58 5d 5d",            // unknown marker
		"5b 5510 5501 7b7d 53550174 5b 23 55ff 5d 5d",       // count beyond the input
		"5b 5510 5501 7b 55016b 5d 5d",                      // ']' closing a dict
		"5b 5510 5501 7b7d 53550174 5b 48 5501 78 5d 5d",    // H that is not a number
		"5b 5510 5501 7b7d 53550174 5b 24 5b 23 5501 5d 5d", // container as a type
		"5b 5510 5501 7b7d 53550174 5d 5a",                  // trailing data
		"5b 5524 4c0020000000000001 5501 7b7d 5d",           // id > 2^53
	} {
		var m Message
		if err := For(UBJSON).Decode(hexBytes(in), &m); !errors.Is(err, ErrInvalid) {
			t.Errorf("Decode(%s) = %v, want ErrInvalid", in, err)
		}
	}
	deep := strings.Repeat("5b", 600) + strings.Repeat("5d", 600)
	if _, err := DecodeValue(UBJSON, hexBytes(deep)); !errors.Is(err, ErrInvalid) {
		t.Errorf("deep: %v", err)
	}
	if _, err := Transcode(nil, JSON, hexBytes(deep), UBJSON); !errors.Is(err, ErrInvalid) {
		t.Errorf("deep transcode: %v", err)
	}
}

// TestUBJSONAgainstPyUBJSON is a differential test against py-ubjson 0.16.1 (Debian
// python3-ubjson, the library AutobahnPython uses): py-ubjson decodes what we encode to
// the same value, and we decode what it encodes. Skipped when /usr/bin/python3 or the
// module is absent.
func TestUBJSONAgainstPyUBJSON(t *testing.T) {
	py := "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		t.Skip("no /usr/bin/python3")
	}
	if err := exec.Command(py, "-c", "import ubjson").Run(); err != nil {
		t.Skip("python3-ubjson not installed")
	}
	// Python reads hex lines of our UBJSON, decodes each with py-ubjson, re-encodes it as
	// JSON (bytes as {"$bytes": hex}) and as UBJSON (its own encoder) for us to check.
	script := `
import sys, json, ubjson, binascii, decimal
def j(v):
    if isinstance(v, bytes): return {"$bytes": v.hex()}
    if isinstance(v, decimal.Decimal): return int(v) if v == v.to_integral_value() else float(v)
    if isinstance(v, list): return [j(x) for x in v]
    if isinstance(v, dict): return {k: j(x) for k, x in v.items()}
    return v
for line in sys.stdin:
    v = ubjson.loadb(binascii.unhexlify(line.strip()))
    print(json.dumps(j(v)) + "\t" + ubjson.dumpb(v).hex())
`
	var in bytes.Buffer
	var srcs []Raw
	for _, v := range transcodeValues {
		if f, ok := v.(float64); ok && (f == 5e-324) {
			continue // py-ubjson writes subnormals as H decimal text: checked apart
		}
		b := mustValue(t, UBJSON, v)
		srcs = append(srcs, b)
		in.WriteString(hex.EncodeToString(b) + "\n")
	}
	cmd := exec.Command(py, "-c", script)
	cmd.Stdin = &in
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(srcs) {
		t.Fatalf("%d lines for %d values:\n%s", len(lines), len(srcs), out)
	}
	for i, l := range lines {
		js, ubHex, _ := strings.Cut(l, "\t")
		want, err := DecodeValue(UBJSON, srcs[i])
		if err != nil {
			t.Fatal(err)
		}
		pv, err := DecodeValue(JSON, []byte(js))
		if err != nil {
			t.Fatalf("python JSON %s: %v", js, err)
		}
		if !reflect.DeepEqual(norm(unBytes(pv)), norm(want)) {
			t.Errorf("py-ubjson read %x as %s, want %#v", []byte(srcs[i]), js, want)
		}
		theirs, _ := hex.DecodeString(ubHex)
		got, err := DecodeValue(UBJSON, theirs)
		if err != nil || !reflect.DeepEqual(norm(got), norm(want)) {
			t.Errorf("py-ubjson wrote %x: we read %#v, %v; want %#v", theirs, got, err, want)
		}
	}
}

// unBytes turns the script's {"$bytes": hex} back into []byte.
func unBytes(v any) any {
	switch x := v.(type) {
	case map[string]any:
		if h, ok := x["$bytes"].(string); ok && len(x) == 1 {
			b, _ := hex.DecodeString(h)
			return b
		}
		out := map[string]any{}
		for k, e := range x {
			out[k] = unBytes(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = unBytes(e)
		}
		return out
	}
	return v
}

func FuzzDecodeUBJSON(f *testing.F) {
	seedDecode(f, UBJSON)
	for _, tc := range []string{
		"5b 23 5505 5510 5507 7b7d 4361 5b 23 5501 5501",
		"5b 5510 4e 5507 7b 4e 550b" + hex.EncodeToString([]byte("acknowledge")) + "54 7d 4e 53550174 5d",
		"5b 5510 5501 7b7d 53550174 5b24552355020102 5d",
		"5b 5510 5501 7b7d 53550174 5b 24 69 23 5503 ff 00 01 7b 24 53 23 5501 5501 61 550162 5d",
		"5b 5510 5501 7b7d 53550174 5b 48 5514 3138343436373434303733373039353531363136 5d 5d",
	} {
		f.Add(hexBytes(tc))
	}
	f.Fuzz(func(t *testing.T, b []byte) { fuzzDecode(t, UBJSON, b) })
}
