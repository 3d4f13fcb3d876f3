// Package origin checks and matches the allowed_origins patterns of WebSocket
// listeners, shared by config validation and netpoll's upgrade path so both agree on
// what a pattern means. Pure functions: safe for concurrent use.
package origin

import (
	"fmt"
	"strings"
)

// Check reports whether p is a valid pattern: "*" (any origin), "null" (the opaque
// origin of sandboxed pages and file:// documents), or "scheme://host[:port]" in which
// each '*' stands for any run of characters other than '/' and ':' (so
// "https://*.example.com" matches "https://a.b.example.com" but neither
// "https://example.com" nor another port). Safe for concurrent use.
func Check(p string) error {
	if p == "*" || p == "null" {
		return nil
	}
	scheme, host, ok := strings.Cut(p, "://")
	if !ok || scheme == "" || host == "" || strings.ContainsAny(p, " \t\r\n?#@") || strings.Contains(host, "/") {
		return fmt.Errorf("origin pattern %q: want \"*\", \"null\" or scheme://host[:port] (e.g. https://*.example.com)", p)
	}
	return nil
}

// Match reports whether the Origin header value s matches pattern p (checked by Check
// and lower-cased); s is compared ASCII case-insensitively. Does not allocate. Safe for
// concurrent use.
func Match(p string, s []byte) bool {
	// Iterative glob, backtracking to the last star.
	pi, si := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case pi < len(p) && p[pi] == lowerASCII(s[si]):
			pi++
			si++
		case star >= 0 && s[mark] != '/' && s[mark] != ':':
			mark++
			si = mark
			pi = star + 1
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

func lowerASCII(b byte) byte {
	if 'A' <= b && b <= 'Z' {
		return b + ('a' - 'A')
	}
	return b
}
