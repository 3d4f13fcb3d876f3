package engine

import (
	"fmt"

	"github.com/switchyard-wamp/switchyard/engine/match"
)

// uriRules maps URI rules (exact, prefix or wildcard) to values and finds the value of
// the most specific rule for a URI: exact, then the longest prefix, then the wildcard
// with the most literal components (engine/match's precedence). Permissions and event
// history rules are both this. Built once, then read-only: best never locks and does
// not allocate once the pattern tree's cache holds the URI.
type uriRules[T any] struct {
	exact    map[string]T
	patterns *match.Tree[*T]
}

func newURIRules[T any]() uriRules[T] {
	return uriRules[T]{exact: map[string]T{}, patterns: match.New[*T]()}
}

// add sets v for uri under policy ("" or "exact", "prefix", "wildcard").
func (r *uriRules[T]) add(uri, policy string, v T) error {
	switch policy {
	case "", "exact":
		r.exact[uri] = v
		return nil
	}
	kind, ok := match.ParseKind(policy)
	if !ok {
		return fmt.Errorf("match %q", policy)
	}
	r.patterns.Insert(uri, kind, &v)
	return nil
}

// best returns the value of the most specific rule for uri.
func (r *uriRules[T]) best(uri []byte) (T, bool) {
	if v, ok := r.exact[string(uri)]; ok {
		return v, true
	}
	var zero T
	if r.patterns.Len() == 0 {
		return zero, false
	}
	_, _, v, ok := r.patterns.Best(uri)
	if !ok {
		return zero, false
	}
	return *v, true
}
