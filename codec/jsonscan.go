package codec

import (
	"encoding/base64"
	"errors"
	"math"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// JSON scanning primitives shared by the JSON codec, Transcode and DecodeValue. They work
// on (buffer, offset) pairs and never allocate on success.

// maxDepth bounds nesting in every recursive reader (all serializers).
const maxDepth = 512

var (
	errEOF     = errors.New("unexpected end of input")
	errSyntax  = errors.New("syntax error")
	errDepth   = errors.New("nesting too deep")
	errEscape  = errors.New("bad string escape")
	errControl = errors.New("control character in string")
	errNumber  = errors.New("bad number")
)

func isWS(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// jws skips whitespace from i.
func jws(b []byte, i int) int {
	for i < len(b) && isWS(b[i]) {
		i++
	}
	return i
}

// jstring scans the string starting at b[i] == '"'. It returns the raw content bounds
// [s, e), whether it holds escapes, and the offset after the closing quote.
func jstring(b []byte, i int) (s, e int, esc bool, next int, err error) {
	i++
	s = i
	for i < len(b) {
		c := b[i]
		switch {
		case c == '"':
			return s, i, esc, i + 1, nil
		case c == '\\':
			esc = true
			if i+1 >= len(b) {
				return 0, 0, false, 0, errEOF
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) {
					return 0, 0, false, 0, errEOF
				}
				for _, h := range b[i+2 : i+6] {
					if unhex(h) < 0 {
						return 0, 0, false, 0, errEscape
					}
				}
				i += 6
			default:
				return 0, 0, false, 0, errEscape
			}
		case c < 0x20:
			return 0, 0, false, 0, errControl
		default:
			i++
		}
	}
	return 0, 0, false, 0, errEOF
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

func hex4(b []byte) rune {
	return rune(unhex(b[0])<<12 | unhex(b[1])<<8 | unhex(b[2])<<4 | unhex(b[3]))
}

// junescape appends the unescaped form of the raw (already validated) string content s.
func junescape(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			j := i + 1
			for j < len(s) && s[j] != '\\' {
				j++
			}
			dst = append(dst, s[i:j]...)
			i = j
			continue
		}
		switch s[i+1] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := hex4(s[i+2:])
			i += 6
			if utf16.IsSurrogate(r) {
				if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
					if r2 := utf16.DecodeRune(r, hex4(s[i+2:])); r2 != utf8.RuneError {
						i += 6
						r = r2
					} else {
						r = utf8.RuneError
					}
				} else {
					r = utf8.RuneError
				}
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default: // " \ /
			dst = append(dst, s[i+1])
		}
		i += 2
	}
	return dst
}

// jnumber scans a number at b[i]; it returns the end offset and whether the number is an
// integer (no fraction, no exponent).
func jnumber(b []byte, i int) (end int, isInt bool, err error) {
	isInt = true
	if i < len(b) && b[i] == '-' {
		i++
	}
	if i >= len(b) {
		return 0, false, errEOF
	}
	switch {
	case b[i] == '0':
		i++
	case b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return 0, false, errNumber
	}
	if i < len(b) && b[i] == '.' {
		isInt = false
		i++
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return 0, false, errNumber
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		isInt = false
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return 0, false, errNumber
		}
	}
	return i, isInt, nil
}

// jliteral checks for lit at b[i].
func jliteral(b []byte, i int, lit string) (int, error) {
	if len(b)-i < len(lit) {
		return 0, errEOF
	}
	if string(b[i:i+len(lit)]) != lit {
		return 0, errSyntax
	}
	return i + len(lit), nil
}

// jskip validates and skips one value starting at b[i] (no leading whitespace).
func jskip(b []byte, i, depth int) (int, error) {
	if i >= len(b) {
		return 0, errEOF
	}
	switch c := b[i]; c {
	case '"':
		_, _, _, next, err := jstring(b, i)
		return next, err
	case '{', '[':
		if depth >= maxDepth {
			return 0, errDepth
		}
		closer := byte(']')
		if c == '{' {
			closer = '}'
		}
		i = jws(b, i+1)
		if i < len(b) && b[i] == closer {
			return i + 1, nil
		}
		for {
			var err error
			if c == '{' {
				if i >= len(b) || b[i] != '"' {
					return 0, errSyntax
				}
				if _, _, _, i, err = jstring(b, i); err != nil {
					return 0, err
				}
				i = jws(b, i)
				if i >= len(b) || b[i] != ':' {
					return 0, errSyntax
				}
				i = jws(b, i+1)
			}
			if i, err = jskip(b, i, depth+1); err != nil {
				return 0, err
			}
			i = jws(b, i)
			if i >= len(b) {
				return 0, errEOF
			}
			if b[i] == closer {
				return i + 1, nil
			}
			if b[i] != ',' {
				return 0, errSyntax
			}
			i = jws(b, i+1)
		}
	case 't':
		return jliteral(b, i, "true")
	case 'f':
		return jliteral(b, i, "false")
	case 'n':
		return jliteral(b, i, "null")
	default:
		end, _, err := jnumber(b, i)
		return end, err
	}
}

// jcount returns the number of elements (array) or pairs (object) of the container at
// b[i], which must already be validated.
func jcount(b []byte, i int) int {
	c := b[i]
	closer := byte(']')
	if c == '{' {
		closer = '}'
	}
	i = jws(b, i+1)
	if b[i] == closer {
		return 0
	}
	n := 0
	for {
		if c == '{' {
			_, _, _, i, _ = jstring(b, i)
			i = jws(b, i) + 1
			i = jws(b, i)
		}
		i, _ = jskip(b, i, 0)
		n++
		i = jws(b, i)
		if b[i] == closer {
			return n
		}
		i = jws(b, i+1)
	}
}

// bstr views b as a string without copying; the result must not outlive b and must not
// be retained (strconv clones it in its errors).
func bstr(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// parseUintDigits parses a JSON integer without sign; ok is false on overflow.
func parseUintDigits(b []byte) (v uint64, ok bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	for _, c := range b {
		d := uint64(c - '0')
		if d > 9 {
			return 0, false
		}
		if v > (math.MaxUint64-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	return v, true
}

// jsonNum is a parsed JSON number: kind 'u' (uint), 'i' (negative int) or 'f' (float).
type jsonNum struct {
	kind byte
	u    uint64
	i    int64
	f    float64
}

func parseJSONNum(b []byte, isInt bool) (jsonNum, error) {
	if isInt {
		if b[0] != '-' {
			if u, ok := parseUintDigits(b); ok {
				return jsonNum{kind: 'u', u: u}, nil
			}
		} else if v, err := strconv.ParseInt(bstr(b), 10, 64); err == nil {
			if v == 0 { // "-0"
				return jsonNum{kind: 'u'}, nil
			}
			return jsonNum{kind: 'i', i: v}, nil
		}
	}
	f, err := strconv.ParseFloat(bstr(b), 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return jsonNum{}, errNumber
	}
	return jsonNum{kind: 'f', f: f}, nil
}

var jsonEscNeeded = func() (t [256]bool) {
	for i := 0; i < 0x20; i++ {
		t[i] = true
	}
	t['"'], t['\\'] = true, true
	for i := 0x80; i < 0x100; i++ {
		t[i] = true // checked as UTF-8 (see jappendString)
	}
	return
}()

const hexDigits = "0123456789abcdef"

// jappendString appends s as a quoted JSON string. A byte that does not start a valid
// UTF-8 sequence becomes U+FFFD: JSON goes out in WebSocket text frames, which must be
// valid UTF-8 (browsers close the connection on anything else, RFC 6455 8.1), and a
// string from a binary serializer (a MessagePack or CBOR publisher's) may not be.
func jappendString(dst, s []byte) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !jsonEscNeeded[c] {
			continue
		}
		if c >= utf8.RuneSelf {
			dst, start, i = jappendNonASCII(dst, s, start, i)
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&15])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// jappendNonASCII handles the byte s[i] >= 0x80 of jappendString: a valid UTF-8
// sequence (U+FFFD itself included) stays as it is and is skipped; an invalid byte is
// replaced by U+FFFD. It returns the new dst, start and the index of the last byte
// handled. Kept out of line so that the ASCII loop stays small.
//
//go:noinline
func jappendNonASCII(dst, s []byte, start, i int) ([]byte, int, int) {
	if r, size := utf8.DecodeRune(s[i:]); r != utf8.RuneError || size > 1 {
		return dst, start, i + size - 1
	}
	dst = append(dst, s[start:i]...)
	dst = append(dst, "\ufffd"...)
	return dst, i + 1, i
}

// jappendBinary appends b under the WAMP binary rule: "\u0000" + base64(b).
func jappendBinary(dst, b []byte) []byte {
	dst = append(dst, `"\u0000`...)
	dst = base64.StdEncoding.AppendEncode(dst, b)
	return append(dst, '"')
}

// jappendFloat appends f so that it reads back as a float (keeps a '.' or an exponent).
func jappendFloat(dst []byte, f float64) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return dst, errors.New("NaN or infinity has no JSON form")
	}
	p := len(dst)
	abs := math.Abs(f)
	fmtc := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		fmtc = 'e'
	}
	dst = strconv.AppendFloat(dst, f, fmtc, -1, 64)
	for _, c := range dst[p:] {
		if c == '.' || c == 'e' {
			return dst, nil
		}
	}
	return append(dst, '.', '0'), nil
}

// jdecodeBinary decodes base64 text (after the NUL) appended to dst; padded or not.
func jdecodeBinary(dst, text []byte) ([]byte, error) {
	enc := base64.StdEncoding
	if len(text)%4 != 0 {
		enc = base64.RawStdEncoding
	}
	return enc.AppendDecode(dst, text)
}
