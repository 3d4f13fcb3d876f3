package netpoll

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"strconv"
)

// findCookie returns the value of the cookie named name in a Cookie header value
// ("a=1; b=2"), or nil. The result aliases header.
func findCookie(header []byte, name string) []byte {
	for part := range bytes.SplitSeq(header, []byte(";")) {
		k, v, ok := bytes.Cut(bytes.TrimSpace(part), []byte("="))
		if ok && string(k) == name {
			return bytes.Trim(v, `"`)
		}
	}
	return nil
}

// validCookieToken accepts only what newCookieToken could have made, give or take the
// length: 22 to 43 base64url characters (128 to 256 bits).
func validCookieToken(t []byte) bool {
	if len(t) < 22 || len(t) > 43 {
		return false
	}
	for _, b := range t {
		switch {
		case b >= 'A' && b <= 'Z', b >= 'a' && b <= 'z', b >= '0' && b <= '9', b == '-', b == '_':
		default:
			return false
		}
	}
	return true
}

// newCookieToken returns a fresh random 128-bit token, base64url without padding.
func newCookieToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand panics instead)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// setCookieHeader is the Set-Cookie header line (with CRLF) for token on listener l.
func setCookieHeader(l *listener, token string) string {
	h := "Set-Cookie: " + l.Cookie.Name + "=" + token + "; Max-Age=" +
		strconv.FormatInt(int64(l.Cookie.MaxAge.Seconds()), 10) + "; Path=/; HttpOnly; SameSite=Strict"
	if l.TLS != nil {
		h += "; Secure"
	}
	return h + "\r\n"
}
