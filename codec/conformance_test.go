package codec

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The WAMP conformance vectors are someone else's data: they are read in place from the
// shared folder next to the project, never copied into it.
const testsuiteDir = "../../shared/wamp-testsuite"

var serializerNames = map[string]Serializer{"json": JSON, "msgpack": MsgPack, "cbor": CBOR, "ubjson": UBJSON}

type tvFile struct {
	Type    string     `json:"wamp_message_type"`
	Code    int        `json:"wamp_message_code"`
	Samples []tvSample `json:"samples"`
}

type tvSample struct {
	Description string                           `json:"description"`
	Serializers map[string][]tvBytes             `json:"serializers"`
	Expected    map[string]any                   `json:"expected_attributes"`
	Wmsg        []any                            `json:"wmsg"`
	ExpectedErr *struct{ Type, Contains string } `json:"expected_error"`
}

type tvBytes struct {
	Bytes  *string `json:"bytes"`
	Hex    string  `json:"bytes_hex"`
	Base64 string  `json:"bytes_base64"`
	Note   string  `json:"note"`
}

func (b tvBytes) decode() ([]byte, error) {
	switch {
	case b.Hex != "":
		return hex.DecodeString(b.Hex)
	case b.Base64 != "":
		return base64.StdEncoding.DecodeString(b.Base64)
	case b.Bytes != nil:
		return []byte(*b.Bytes), nil
	}
	return nil, errors.New("sample has no bytes")
}

// loadTestsuite reads the single-message vectors for the test suite (its name in the
// summary). It skips t, saying so in the summary, only when the folder is absent; a
// folder that is present but holds no vectors fails t.
func loadTestsuite(t *testing.T, suite string) map[string]tvFile {
	t.Helper()
	files, root, err := readTestsuite()
	if errors.Is(err, fs.ErrNotExist) {
		abs, _ := filepath.Abs(root)
		reportSuite("%s: SKIPPED, vectors not found at %s (%v)", suite, abs, err)
		t.Skipf("WAMP conformance vectors not found at %s (a checkout without shared/): skipping", abs)
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		reportSuite("%s: FAILED, no vectors under %s", suite, root)
		t.Fatalf("no vectors under %s, but the folder is present", root)
	}
	return files
}

// readTestsuite reads every single-message vector file, keyed by its path under root. An
// absent folder is an error wrapping fs.ErrNotExist.
func readTestsuite() (files map[string]tvFile, root string, err error) {
	root = filepath.Join(testsuiteDir, "singlemessage")
	if _, err := os.Stat(root); err != nil {
		return nil, root, err
	}
	files = map[string]tvFile{}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".json") {
			return err
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var f tvFile
		if err := dec.Decode(&f); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		rel, _ := filepath.Rel(root, path)
		files[rel] = f
		return nil
	})
	return files, root, err
}

// vectorInputs returns the bytes of every vector sample encoded with s (the seeds of the
// fuzz targets), or nil when the vectors are absent; f logs which.
func vectorInputs(f testing.TB, s Serializer) [][]byte {
	files, root, err := readTestsuite()
	if err != nil {
		f.Logf("fuzz seeds: no WAMP vectors (%v): seeding from the built-in samples only", err)
		return nil
	}
	var out [][]byte
	for _, tf := range files {
		for _, sample := range tf.Samples {
			for sname, encs := range sample.Serializers {
				if serializerNames[sname] != s {
					continue
				}
				for _, e := range encs {
					if b, err := e.decode(); err == nil {
						out = append(out, b)
					}
				}
			}
		}
	}
	if len(out) == 0 {
		f.Fatalf("no %s vectors under %s, but the folder is present", s, root)
	}
	return out
}

// attributes maps a decoded message to the testsuite's attribute names.
func attributes(t *testing.T, s Serializer, m *Message) map[string]any {
	t.Helper()
	a := map[string]any{"message_type": uint64(m.Type)}
	sh := shapeOf(uint64(m.Type))
	uriName := map[MessageType]string{
		HELLO: "realm", ABORT: "reason", GOODBYE: "reason", CHALLENGE: "method",
		AUTHENTICATE: "signature", ERROR: "error", PUBLISH: "topic", SUBSCRIBE: "topic",
		CALL: "procedure", REGISTER: "procedure",
	}[m.Type]
	dictName := map[MessageType]string{
		PUBLISH: "options", SUBSCRIBE: "options", CALL: "options", REGISTER: "options",
		CANCEL: "options", INTERRUPT: "options", YIELD: "options",
		CHALLENGE: "extra", AUTHENTICATE: "extra",
	}[m.Type]
	if dictName == "" {
		dictName = "details"
	}
	a["args"], a["kwargs"], a["payload"] = nil, nil, nil
	for _, k := range sh.elems[:sh.max] {
		switch k {
		case eRequest:
			a["request_id"] = m.Request
		case eSession:
			a["session_id"] = m.Session
		case eSubscription:
			a["subscription"], a["subscription_id"] = m.Subscription, m.Subscription
		case ePublication:
			a["publication"], a["publication_id"] = m.Publication, m.Publication
		case eRegistration:
			a["registration_id"] = m.Registration
		case eErrType:
			a["request_type"] = uint64(m.ErrType)
		case eURI:
			a[uriName] = string(m.URI)
		case eDict:
			d, err := DecodeDict(s, m.Dict)
			if err != nil {
				t.Fatalf("DecodeDict: %v", err)
			}
			a[dictName] = d
			if r, ok := d["roles"]; ok {
				a["roles"] = r
			}
		case eArgs, eKwargs:
			raw := m.Args
			if k == eKwargs {
				raw = m.Kwargs
			}
			if raw == nil {
				continue
			}
			v, err := DecodeValue(s, raw)
			if err != nil {
				t.Fatalf("DecodeValue(%s): %v", k, err)
			}
			switch x := v.(type) {
			case []byte:
				a["payload"] = hex.EncodeToString(x)
			case string: // a payload that is not under the binary rule
				a["payload"] = x
			default:
				if k == eArgs {
					a["args"] = v
				} else {
					a["kwargs"] = v
				}
			}
		}
	}
	return a
}

// norm makes numbers comparable: every number becomes a float64, []byte a hex string.
func norm(v any) any {
	switch x := v.(type) {
	case json.Number:
		f, _ := strconv.ParseFloat(string(x), 64)
		return f
	case uint64:
		return float64(x)
	case int64:
		return float64(x)
	case int:
		return float64(x)
	case []byte:
		return hex.EncodeToString(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = norm(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = norm(e)
		}
		return out
	}
	return v
}

func checkAttributes(t *testing.T, want map[string]any, got map[string]any) {
	t.Helper()
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("attribute %q: not produced (want %v)", k, w)
			continue
		}
		if !reflect.DeepEqual(norm(w), norm(g)) {
			t.Errorf("attribute %q: got %#v, want %#v", k, norm(g), norm(w))
		}
	}
}

func TestConformanceVectors(t *testing.T) {
	files := loadTestsuite(t, "vectors")
	checked, unsupported, bjdata := 0, 0, 0
	for name, f := range files {
		for si, sample := range f.Samples {
			if sample.Expected == nil {
				continue
			}
			if shapeOf(uint64(f.Code)) == nil {
				t.Logf("%s: %s (code %d) is not a supported message type: skipped", name, f.Type, f.Code)
				unsupported++
				continue
			}
			for sname, encs := range sample.Serializers {
				s, ok := serializerNames[sname]
				if !ok {
					continue // flatbuffers
				}
				var canon [][]byte
				for _, e := range encs {
					b, err := e.decode()
					if err != nil {
						t.Fatalf("%s #%d %s: %v", name, si, sname, err)
					}
					if s == UBJSON && strings.Contains(e.Note, "BJData") && !slices.ContainsFunc(canon, func(c []byte) bool { return bytes.Equal(c, b) }) {
						bjdata++ // little-endian BJData numbers: not UBJSON (see ubjson.go)
						continue
					}
					canon = append(canon, b)
				}
				for ei, in := range canon {
					t.Run(name+"/"+strconv.Itoa(si)+"/"+sname+"/"+strconv.Itoa(ei), func(t *testing.T) {
						c := For(s)
						var m Message
						if err := c.Decode(in, &m); err != nil {
							t.Fatalf("Decode(%q): %v", in, err)
						}
						checkAttributes(t, sample.Expected, attributes(t, s, &m))
						out, err := c.Append(nil, &m)
						if err != nil {
							t.Fatalf("Append: %v", err)
						}
						// Append copies the raw dict, so a JSON input with spaces keeps them
						// there; byte equality is checked on compact inputs.
						if (s != JSON || isCompactJSON(in)) && !bytes.Equal(out, in) {
							t.Errorf("Append gives %x (%q), differs from the input", out, out)
						}
						var m2 Message
						if err := c.Decode(out, &m2); err != nil {
							t.Fatalf("Decode(Append): %v", err)
						}
						checkAttributes(t, sample.Expected, attributes(t, s, &m2))
						checked++
					})
				}
			}
		}
	}
	reportSuite("vectors: ran, %d encodings checked from %d files; %d samples of unsupported message types skipped; %d BJData encodings that differ from UBJSON skipped",
		checked, len(files), unsupported, bjdata)
	if checked == 0 {
		t.Fatal("no vectors checked")
	}
	t.Logf("%d vector encodings checked", checked)
}

// isCompactJSON reports whether b has no whitespace outside strings.
func isCompactJSON(b []byte) bool {
	inStr, esc := false, false
	for _, c := range b {
		switch {
		case esc:
			esc = false
		case inStr && c == '\\':
			esc = true
		case c == '"':
			inStr = !inStr
		case !inStr && isWS(c):
			return false
		}
	}
	return true
}

// toModel converts JSON-decoded (UseNumber) values into the codec value model.
func toModel(v any) any {
	switch x := v.(type) {
	case json.Number:
		if u, err := strconv.ParseUint(string(x), 10, 64); err == nil {
			return u
		}
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return i
		}
		f, _ := strconv.ParseFloat(string(x), 64)
		return f
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = toModel(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = toModel(e)
		}
		return out
	}
	return v
}

// TestConformanceValidation runs the testsuite's validation samples whose rule is about a
// key the codec parses (Details well-known keys). Rules on other keys (eligible, exclude,
// enc_algo, forward_for, ...) belong to the router and are only counted here.
func TestConformanceValidation(t *testing.T) {
	files := loadTestsuite(t, "validation")
	tested, skipped := 0, 0
	for name, f := range files {
		for si, sample := range f.Samples {
			if sample.Wmsg == nil {
				continue
			}
			wmsg := toModel(sample.Wmsg)
			var rule string
			if sample.ExpectedErr != nil {
				rule = sample.ExpectedErr.Contains
				sh := shapeOf(uint64(f.Code))
				if sh == nil || detailKey([]byte(rule))&sh.keys == 0 {
					skipped++
					continue
				}
			}
			tested++
			for _, s := range []Serializer{JSON, MsgPack, CBOR, UBJSON} {
				raw, err := AppendValue(nil, s, wmsg)
				if err != nil {
					t.Fatalf("%s #%d: AppendValue: %v", name, si, err)
				}
				var m Message
				err = For(s).Decode(raw, &m)
				switch {
				case rule == "" && err != nil:
					t.Errorf("%s #%d %s (%s): valid message rejected: %v", name, si, s, sample.Description, err)
				case rule != "" && err == nil:
					t.Errorf("%s #%d %s (%s): invalid message accepted", name, si, s, sample.Description)
				case rule != "" && (!errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), rule)):
					t.Errorf("%s #%d %s: error %q does not wrap ErrInvalid or name %q", name, si, s, err, rule)
				}
			}
		}
	}
	reportSuite("validation: ran, %d samples checked in JSON, MsgPack, CBOR and UBJSON; %d router-level rules not checked by the codec",
		tested, skipped)
	if tested == 0 {
		t.Fatalf("no validation sample tested (%d files read, %d router-level rules skipped)", len(files), skipped)
	}
	t.Logf("%d validation samples are router-level rules, not checked by the codec", skipped)
}
