package codec

import (
	"encoding/hex"
	"errors"
	"math"
	"math/big"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
)

// The CBOR oracle: fxamacker/cbor, an independent RFC 8949 decoder, must agree with ours on
// every input: both decode it to the same value, or both refuse it. The oracle is set to
// the limits and choices our codec documents, so that what is left is a real disagreement:
//   - nesting up to maxDepth containers and tags (ours counts a tag as a level, like it);
//   - any number of elements (the input length bounds them in both);
//   - duplicate map keys: the oracle refuses them, so that we know the input has one (ours
//     keeps the last: then only the refusal side is compared);
//   - text strings are not checked for UTF-8 by ours (the router forwards payloads
//     untouched; no decoder of ours checks it, and Transcode to JSON copies the bytes as
//     they are), so the oracle does not check either.
//
// Differences by design, told apart by what the oracle returns:
//   - ours refuses simple values other than false/true/null/undefined and maps with non-
//     string keys (WAMP has neither); the oracle returns cbor.SimpleValue / map[any]any;
//   - ours refuses negative integers below -2^63 (the oracle gives a big.Int);
//   - ours ignores every tag (WAMP defines none): the oracle gives tags 0 and 1 time
//     semantics and 2 and 3 bignum semantics and refuses them on content of the wrong
//     type, so inputs holding those four tags are not compared.
var oracleDM = func() cbor.DecMode {
	dm, err := cbor.DecOptions{
		MaxNestedLevels:      maxDepth,
		MaxArrayElements:     math.MaxInt32,
		MaxMapPairs:          math.MaxInt32,
		DupMapKey:            cbor.DupMapKeyEnforcedAPF,
		UTF8:                 cbor.UTF8DecodeInvalid,
		UnrecognizedTagToAny: cbor.UnrecognizedTagContentToAny,
		IntDec:               cbor.IntDecConvertNone,
		BigIntDec:            cbor.BigIntDecodeValue,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	return dm
}()

// oracleKind says what the oracle's result requires of ours.
type oracleKind int

const (
	oracleSame   oracleKind = iota // ours must decode to the same value
	oracleRefuse                   // ours must refuse (a value WAMP cannot carry)
	oracleSkip                     // a difference by design: not compared
)

// normOracle converts an oracle value to our DecodeValue model and classifies it.
func normOracle(v any) (any, oracleKind) {
	switch x := v.(type) {
	case nil, bool, uint64, int64, float64, string, []byte:
		return x, oracleSame
	case cbor.SimpleValue:
		return nil, oracleRefuse
	case big.Int, *big.Int:
		return nil, oracleSkip
	case time.Time:
		return nil, oracleSkip
	case cbor.Tag:
		return normOracle(x.Content)
	case []any:
		out := make([]any, len(x))
		kind := oracleSame
		for i, e := range x {
			var k oracleKind
			out[i], k = normOracle(e)
			kind = max(kind, k)
		}
		return out, kind
	case map[any]any:
		out := make(map[string]any, len(x))
		kind := oracleSame
		for key, e := range x {
			s, ok := key.(string)
			if !ok {
				// A non-string key: ours refuses, unless a skipped value was met first
				// (it may be read in another order: only the worst verdict counts).
				kind = max(kind, oracleRefuse)
				if _, k := normOracle(key); k == oracleSkip {
					kind = oracleSkip
				}
				continue
			}
			var k oracleKind
			out[s], k = normOracle(e)
			kind = max(kind, k)
		}
		return out, kind
	}
	return nil, oracleSkip
}

// oracleErrSkip reports an oracle refusal caused by a difference by design: the content of
// tags 0-3 (which ours ignores), or a duplicate map key (which ours allows, keeping the last).
func oracleErrSkip(err error) bool {
	var dup *cbor.DupMapKeyError
	if errors.As(err, &dup) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "tag number 0") || strings.Contains(msg, "tag number 1 ") ||
		strings.Contains(msg, "tag number 2") || strings.Contains(msg, "tag number 3") ||
		strings.Contains(msg, "time.Time") || strings.Contains(msg, "bignum") ||
		strings.Contains(msg, "big.Int")
}

// checkOracle decodes b with DecodeValue and with the oracle and fails t when they disagree.
func checkOracle(t *testing.T, b []byte) {
	t.Helper()
	ours, oerr := DecodeValue(CBOR, b)
	var raw any
	ferr := oracleDM.Unmarshal(b, &raw)
	if ferr != nil {
		if oerr == nil && !oracleErrSkip(ferr) {
			t.Fatalf("%x: ours decodes it to %#v, the oracle refuses it: %v", b, ours, ferr)
		}
		return
	}
	theirs, kind := normOracle(raw)
	switch kind {
	case oracleSkip:
		return
	case oracleRefuse:
		if oerr == nil {
			t.Fatalf("%x: ours decodes it to %#v, which WAMP cannot carry (the oracle: %#v)", b, ours, raw)
		}
		return
	}
	if oerr != nil {
		// Depth: ours counts levels from the top value as the oracle does; both stop at
		// maxDepth. Any other refusal is a disagreement.
		t.Fatalf("%x: ours refuses it (%v), the oracle decodes %#v", b, oerr, theirs)
	}
	if !sameValue(ours, theirs) {
		t.Fatalf("%x: ours %#v, the oracle %#v", b, ours, theirs)
	}
}

// sameValue is reflect.DeepEqual with NaN equal to NaN.
func sameValue(a, b any) bool {
	switch x := a.(type) {
	case float64:
		y, ok := b.(float64)
		return ok && (x == y || x != x && y != y)
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !sameValue(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, e := range x {
			f, ok := y[k]
			if !ok || !sameValue(e, f) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b)
}

// checkOracleMessage: when our message decoder accepts b, the oracle reads b as a list
// whose elements agree with the decoded message: the type code, and every raw element
// (dict, Arguments, ArgumentsKw) equal to the oracle's element at the same position.
func checkOracleMessage(t *testing.T, b []byte) {
	t.Helper()
	var m Message
	if err := For(CBOR).Decode(b, &m); err != nil {
		return
	}
	var raw any
	if err := oracleDM.Unmarshal(b, &raw); err != nil {
		if !oracleErrSkip(err) {
			t.Fatalf("%x: our message decoder accepts it (%v), the oracle refuses it: %v", b, m.Type, err)
		}
		return
	}
	v, kind := normOracle(raw)
	if kind == oracleSkip {
		return
	}
	list, ok := v.([]any)
	if !ok || len(list) == 0 {
		t.Fatalf("%x: decoded as %v, the oracle reads %#v", b, m.Type, v)
	}
	if code, _ := list[0].(uint64); code != uint64(m.Type) {
		t.Fatalf("%x: decoded as %v, the oracle reads type %#v", b, m.Type, list[0])
	}
	sh := shapeOf(uint64(m.Type))
	for i, k := range sh.elems[:sh.max] {
		var r Raw
		switch k {
		case eDict:
			r = m.Dict
		case eArgs:
			r = m.Args
		case eKwargs:
			r = m.Kwargs
		case eURI:
			if i+1 < len(list) {
				if s, ok := list[i+1].(string); ok && s != string(m.URI) {
					t.Fatalf("%x: URI %q, the oracle %q", b, m.URI, s)
				}
			}
			continue
		default:
			continue
		}
		if r == nil || i+1 >= len(list) {
			continue
		}
		checkOracle(t, r)
		if got, err := DecodeValue(CBOR, r); err == nil {
			if ov, k := normOracle(list[i+1]); k == oracleSame && !sameValue(got, ov) {
				t.Fatalf("%x: element %d (%v) %#v, the oracle %#v", b, i+1, k, got, ov)
			}
		}
	}
}

// oracleSeeds are inputs at the edges: every simple and float form, tags, indefinite
// lengths, duplicate and non-string keys, truncations.
var oracleSeeds = []string{
	"00", "17", "1818", "1817", "19ffff", "1a00000000", "1b7fffffffffffffff", "1bffffffffffffffff",
	"20", "3b7fffffffffffffff", "3b8000000000000000", "3bffffffffffffffff",
	"40", "4161", "5f4161426263ff", "5f6161ff", "5fff", "60", "6161", "7f6161626263ff", "7f4161ff",
	"62c328", "80", "8101", "9f01ff", "9f8080ff", "a0", "a1616101", "a2616101616102", "a10101",
	"bf616101ff", "bf6161ff", "c000", "c074323031332d30332d32315432303a30343a30305a", "c11a514b67b0",
	"c24101", "c2a0", "c3420102", "d8200d", "d9d9f7a0", "c6c6c601", "f4", "f5", "f6", "f7",
	"f0", "f818", "f8ff", "f81f", "f97c00", "f97e00", "f93c00", "fa7f800000", "fb3ff0000000000000",
	"ff", "1c", "5c", "bc", "fc", "9f", "bf", "5f", "7f41ff", "82", "a1", "1b00",
}

func TestCBOROracleSeeds(t *testing.T) {
	for _, h := range oracleSeeds {
		checkOracle(t, mustHex(t, h))
	}
}

func TestCBOROracleVectors(t *testing.T) {
	ins := vectorInputs(t, CBOR)
	if ins == nil {
		t.Skip("WAMP conformance vectors absent: see the log")
	}
	for _, b := range ins {
		checkOracle(t, b)
		checkOracleMessage(t, b)
	}
	for _, s := range []Serializer{CBOR} {
		for _, m := range sampleMessages(t, s) {
			b, err := For(s).Append(nil, &m)
			if err != nil {
				t.Fatal(err)
			}
			checkOracle(t, b)
			checkOracleMessage(t, b)
		}
	}
}

// TestCBOROracleRandom compares on random values encoded by both encoders (each decoder
// reads both encodings), and on random mutations of them.
func TestCBOROracleRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	em, err := cbor.EncOptions{}.EncMode()
	if err != nil {
		t.Fatal(err)
	}
	for range 2000 {
		v := randValue(r, 0)
		ours, err := AppendValue(nil, CBOR, v)
		if err != nil {
			t.Fatal(err)
		}
		theirs, err := em.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		checkOracle(t, ours)
		checkOracle(t, theirs)
		for range 4 {
			mut := mutate(r, ours)
			checkOracle(t, mut)
		}
	}
}

func randValue(r *rand.Rand, depth int) any {
	n := r.IntN(12)
	if depth > 3 && n >= 9 {
		n = r.IntN(9)
	}
	switch n {
	case 0:
		return nil
	case 1:
		return r.IntN(2) == 0
	case 2:
		return r.Uint64() >> r.IntN(64)
	case 3:
		return -1 - int64(r.Uint64()>>(1+r.IntN(63)))
	case 4:
		return math.Float64frombits(r.Uint64())
	case 5:
		return float64(float32(r.NormFloat64()))
	case 6:
		b := make([]byte, r.IntN(40))
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		return string(b)
	case 7:
		b := make([]byte, r.IntN(40))
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		return b
	case 8:
		return []any{}
	case 9, 10:
		l := make([]any, r.IntN(5))
		for i := range l {
			l[i] = randValue(r, depth+1)
		}
		return l
	}
	d := map[string]any{}
	for range r.IntN(5) {
		d[string(rune('a'+r.IntN(26)))] = randValue(r, depth+1)
	}
	return d
}

// mutate flips, inserts, deletes or truncates a byte of a copy of b.
func mutate(r *rand.Rand, b []byte) []byte {
	out := append([]byte(nil), b...)
	if len(out) == 0 {
		return []byte{byte(r.IntN(256))}
	}
	i := r.IntN(len(out))
	switch r.IntN(4) {
	case 0:
		out[i] = byte(r.IntN(256))
	case 1:
		out = append(out[:i], append([]byte{byte(r.IntN(256))}, out[i:]...)...)
	case 2:
		out = append(out[:i], out[i+1:]...)
	default:
		out = out[:i]
	}
	return out
}

// FuzzCBOROracle: DecodeValue and the message decoder agree with the oracle on any input.
func FuzzCBOROracle(f *testing.F) {
	for _, b := range vectorInputs(f, CBOR) {
		f.Add(b)
	}
	for _, h := range oracleSeeds {
		f.Add(mustHex(f, h))
	}
	for _, m := range sampleMessages(f, CBOR) {
		b, err := For(CBOR).Append(nil, &m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkOracle(t, b)
		checkOracleMessage(t, b)
	})
}

func mustHex(t testing.TB, h string) []byte {
	t.Helper()
	b, err := hex.DecodeString(h)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
