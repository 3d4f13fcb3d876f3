package netpoll

import (
	"errors"
	"strings"

	"github.com/switchyard-wamp/switchyard/internal/origin"
)

// errOriginRefused marks a WebSocket upgrade refused because its Origin header matched
// none of the listener's AllowedOrigins.
var errOriginRefused = errors.New("websocket origin not allowed")

// originPatterns are a listener's compiled AllowedOrigins (compileOrigins); an empty
// list and a list holding "*" allow every origin. Immutable once built: safe for concurrent
// use.
type originPatterns struct {
	any      bool
	patterns []string // lower-cased, each "scheme://host[:port]" with optional '*'
}

// compileOrigins checks and lower-cases the AllowedOrigins patterns of a listener
// (syntax: internal/origin.Check).
func compileOrigins(list []string) (originPatterns, error) {
	var o originPatterns
	if len(list) == 0 {
		o.any = true
		return o, nil
	}
	for _, p := range list {
		if err := origin.Check(p); err != nil {
			return originPatterns{}, err
		}
		if p == "*" {
			o.any = true
		}
		o.patterns = append(o.patterns, strings.ToLower(p))
	}
	return o, nil
}

// allowed reports whether a request's Origin header value may upgrade. An empty
// origin (no header: a non-browser client) is always allowed. Does not allocate.
func (op *originPatterns) allowed(o []byte) bool {
	if op.any || len(o) == 0 {
		return true
	}
	for _, p := range op.patterns {
		if origin.Match(p, o) {
			return true
		}
	}
	return false
}
