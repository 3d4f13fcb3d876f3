// Package web is the path tree of a switchyard listener: the HTTP resources served
// next to WAMP on one port (static files, redirects, fixed JSON values, reverse proxies,
// the node info page, and whatever other http.Handler the node mounts, such as the
// HTTP bridge). Crossbar.io's "web" transport is the model.
//
// Everything here runs on Go's net/http, on goroutines, never on the WAMP event loops:
// netpoll hands a request that is not the WebSocket upgrade over to net/http and the
// Tree it was given (see netpoll/handoff.go and docs/web.md).
package web

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// Route mounts Handler at Path.
type Route struct {
	// Path is where the route lives: "/" or "/a/b" (no trailing slash, no empty, "."
	// or ".." segment).
	Path string
	// Subtree makes the route also answer every path below Path ("/a" then serves
	// "/a/x/y"); the handler sees the rest of the path, "/x/y", in r.URL.Path (and the
	// full one from OriginalPath). Without it the route answers Path only.
	Subtree bool
	// Handler serves the route's requests, concurrently.
	Handler http.Handler
}

// Tree routes a request to the route with the longest path that matches it; none: 404.
// Immutable once built: safe for concurrent use.
type Tree struct {
	routes []Route // longest path first
}

// NewTree checks routes (paths well formed and unique, handlers set) and builds the tree.
// Safe for concurrent use.
func NewTree(routes []Route) (*Tree, error) {
	seen := map[string]bool{}
	t := &Tree{}
	for i, r := range routes {
		if err := CheckPath(r.Path); err != nil {
			return nil, fmt.Errorf("web: route %d: %w", i, err)
		}
		if seen[r.Path] {
			return nil, fmt.Errorf("web: route %d: path %s mounted twice", i, r.Path)
		}
		if r.Handler == nil {
			return nil, fmt.Errorf("web: route %d (%s): no handler", i, r.Path)
		}
		seen[r.Path] = true
		t.routes = append(t.routes, r)
	}
	slices.SortStableFunc(t.routes, func(a, b Route) int { return len(b.Path) - len(a.Path) })
	return t, nil
}

// CheckPath reports whether p is a well-formed route path: "/" or "/seg/seg" without a
// trailing slash or an empty, "." or ".." segment. Safe for concurrent use.
func CheckPath(p string) error {
	if p == "/" {
		return nil
	}
	if !strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") {
		return fmt.Errorf("path %q: must start with / and not end with one", p)
	}
	for seg := range strings.SplitSeq(p[1:], "/") {
		if seg == "" || seg == "." || seg == ".." || strings.ContainsAny(seg, "?#") {
			return fmt.Errorf("path %q: bad segment %q", p, seg)
		}
	}
	return nil
}

// origKey keys the request's path before a subtree route cut its prefix.
type origKey struct{}

// OriginalPath returns the path of the request as the client sent it, before a subtree
// route cut its prefix. Safe for concurrent use.
func OriginalPath(r *http.Request) string {
	if p, ok := r.Context().Value(origKey{}).(string); ok {
		return p
	}
	return r.URL.Path
}

// ServeHTTP routes r. Safe for concurrent use.
func (t *Tree) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	for _, rt := range t.routes {
		rest, ok := match(rt, p)
		if !ok {
			continue
		}
		if rt.Subtree {
			r2 := r.Clone(context.WithValue(r.Context(), origKey{}, p))
			r2.URL.Path, r2.URL.RawPath = rest, ""
			rt.Handler.ServeHTTP(w, r2)
			return
		}
		rt.Handler.ServeHTTP(w, r)
		return
	}
	NotFound(w, r)
}

// match reports whether route rt answers path p and, for a subtree, the rest of p.
func match(rt Route, p string) (rest string, ok bool) {
	if p == rt.Path {
		return "/", true
	}
	if !rt.Subtree {
		return "", false
	}
	if rt.Path == "/" {
		return p, strings.HasPrefix(p, "/")
	}
	if strings.HasPrefix(p, rt.Path) && p[len(rt.Path)] == '/' {
		return p[len(rt.Path):], true
	}
	return "", false
}

// NotFound answers 404 with a short HTML page. Safe for concurrent use.
func NotFound(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusNotFound)
	_, _ = w.Write([]byte("<!doctype html><html><head><title>404</title></head><body><h1>404 not found</h1></body></html>\n"))
}

// getOnly answers 405 to methods other than GET and HEAD; true when it did.
func getOnly(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return false
	}
	w.Header().Set("Allow", "GET, HEAD")
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	return true
}
