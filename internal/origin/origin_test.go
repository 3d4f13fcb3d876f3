package origin

import (
	"strings"
	"testing"
)

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		p, s string
		want bool
	}{
		{"https://*.example.com", "https://a.example.com", true},
		{"https://*.example.com", "https://a.b.example.com", true},
		{"https://*.example.com", "HTTPS://A.Example.com", true},
		{"https://*.example.com", "https://example.com", false},
		{"https://*.example.com", "https://a.example.com:444", false},
		{"https://*.example.com", "https://evil.org/.example.com", false},
		{"https://*.example.com", "http://a.example.com", false},
		{"http://localhost:*", "http://localhost:3000", true},
		{"http://localhost:*", "http://localhost", false},
		{"https://app.test", "https://app.test", true},
		{"https://app.test", "https://app.test.evil", false},
		{"null", "null", true},
		{"null", "https://x", false},
	} {
		if got := Match(strings.ToLower(tc.p), []byte(tc.s)); got != tc.want {
			t.Errorf("Match(%q, %q) = %v", tc.p, tc.s, got)
		}
	}
}

func TestCheck(t *testing.T) {
	for _, p := range []string{"*", "null", "https://*.example.com", "http://localhost:*", "app://x"} {
		if err := Check(p); err != nil {
			t.Errorf("%q: %v", p, err)
		}
	}
	for _, p := range []string{"", "example.com", "https://", "://x", "https://a.com/path", "https://a b", "https://u@h"} {
		if Check(p) == nil {
			t.Errorf("%q accepted", p)
		}
	}
}
