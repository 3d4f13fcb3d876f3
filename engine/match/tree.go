package match

import (
	"bytes"
	"math/bits"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"
)

// Kind is the matching policy of a pattern: the WAMP Options.match of a SUBSCRIBE or
// REGISTER. Exact matching is not a Kind here: exact URIs belong in the engine's tables.
type Kind uint8

const (
	// Prefix matches every URI that starts with the pattern string ("com.a" matches
	// "com.a", "com.a.b" and "com.ab").
	Prefix Kind = iota + 1
	// Wildcard matches every URI with as many components as the pattern whose components
	// equal the pattern's non-empty ones ("com..b" matches "com.a.b").
	Wildcard
)

// String returns the WAMP spelling of k ("prefix", "wildcard").
func (k Kind) String() string {
	switch k {
	case Prefix:
		return "prefix"
	case Wildcard:
		return "wildcard"
	}
	return "invalid"
}

// ParseKind maps a WAMP Options.match value ("prefix" or "wildcard") to a Kind.
func ParseKind(s string) (Kind, bool) {
	switch s {
	case "prefix":
		return Prefix, true
	case "wildcard":
		return Wildcard, true
	}
	return 0, false
}

// Match is one pattern value matching a URI, as AppendMatches returns it.
type Match[V comparable] struct {
	Pattern string
	Kind    Kind
	Value   V
}

// entry is one pattern and its values (oldest first, no duplicates, never empty).
// Immutable once published: writers replace it.
type entry[V comparable] struct {
	pattern string
	kind    Kind
	vals    []V
}

// with returns e plus v, or e and false if v is already there. e may be nil.
func (e *entry[V]) with(pattern string, kind Kind, v V) (*entry[V], bool) {
	if e == nil {
		return &entry[V]{pattern: pattern, kind: kind, vals: []V{v}}, true
	}
	for _, x := range e.vals {
		if x == v {
			return e, false
		}
	}
	vals := make([]V, len(e.vals), len(e.vals)+1)
	copy(vals, e.vals)
	return &entry[V]{pattern: e.pattern, kind: e.kind, vals: append(vals, v)}, true
}

// without returns e minus v (nil if that leaves nothing), or false if v is not there.
func (e *entry[V]) without(v V) (*entry[V], bool) {
	if e == nil {
		return nil, false
	}
	for i, x := range e.vals {
		if x != v {
			continue
		}
		if len(e.vals) == 1 {
			return nil, true
		}
		vals := make([]V, 0, len(e.vals)-1)
		vals = append(append(vals, e.vals[:i]...), e.vals[i+1:]...)
		return &entry[V]{pattern: e.pattern, kind: e.kind, vals: vals}, true
	}
	return e, false
}

// node is one URI component position in a token tree. Every field is read atomically.
type node[V comparable] struct {
	kids  atomic.Pointer[strSet[node[V]]]  // children by literal component
	wild  atomic.Pointer[node[V]]          // wildcard tree: the empty-component child
	tails atomic.Pointer[strSet[entry[V]]] // prefix tree: patterns by their last component
	ent   atomic.Pointer[entry[V]]         // wildcard tree: the pattern ending here
}

// child returns the child for component c, creating it. Caller holds the tree's mutex.
func (n *node[V]) child(c string) *node[V] {
	if k := n.kids.Load().getString(c); k != nil {
		return k
	}
	k := &node[V]{}
	setPut(&n.kids, strings.Clone(c), k)
	return k
}

// wildChild returns the empty-component child, creating it. Caller holds the mutex.
func (n *node[V]) wildChild() *node[V] {
	if w := n.wild.Load(); w != nil {
		return w
	}
	w := &node[V]{}
	n.wild.Store(w)
	return w
}

func (n *node[V]) empty() bool {
	return n.kids.Load().size() == 0 && n.wild.Load() == nil &&
		n.tails.Load().size() == 0 && n.ent.Load() == nil
}

// Tree holds prefix and wildcard patterns, each with a set of values of type V (for
// instance a subscription or a registration), and finds the patterns matching a URI.
//
// Match, AppendMatches, Best and Len are safe for concurrent use, never lock and, on a
// cache hit or with the cache disabled, never allocate. Insert and Remove are safe for
// concurrent use and serialize on a mutex. The zero Tree is empty, has no result cache
// and is ready to use; New makes one with a cache. A Tree must not be copied.
type Tree[V comparable] struct {
	mu  sync.Mutex
	pfx node[V] // root of the prefix tree
	wc  node[V] // root of the wildcard tree

	gen     atomic.Uint64 // bumped after every change; tags cache slots
	count   atomic.Int64  // patterns
	npfx    atomic.Int64  // prefix patterns
	wcLens  atomic.Uint64 // bit min(c, 63) set while a wildcard pattern has c components
	wcByLen [64]int       // wildcard patterns per component count; under mu

	cache []atomic.Pointer[cached[V]] // nil: no cache; len is a power of two
}

// DefaultCacheSize is the number of result cache slots of a Tree made by New.
const DefaultCacheSize = 4096

// Option configures New.
type Option func(*config)

type config struct{ cacheSize int }

// WithCacheSize sets the number of result cache slots, rounded up to a power of two
// (at most 1<<20). Zero or less disables the cache: every lookup walks the trees.
func WithCacheSize(n int) Option { return func(c *config) { c.cacheSize = n } }

// New returns an empty Tree with a result cache of DefaultCacheSize slots unless
// an option says otherwise.
func New[V comparable](opts ...Option) *Tree[V] {
	c := config{cacheSize: DefaultCacheSize}
	for _, o := range opts {
		o(&c)
	}
	t := &Tree[V]{}
	if c.cacheSize > 0 {
		n := 1 << bits.Len(uint(min(c.cacheSize, 1<<20)-1))
		t.cache = make([]atomic.Pointer[cached[V]], n)
	}
	return t
}

// Len returns the number of patterns (distinct pattern and kind pairs) in t. Safe for
// concurrent use.
func (t *Tree[V]) Len() int { return int(t.count.Load()) }

// Insert adds v to the values of pattern under kind, creating the pattern if needed, and
// reports whether v was added (false if it was already there). It panics on an invalid
// kind. Safe for concurrent use; serializes with Remove.
func (t *Tree[V]) Insert(pattern string, kind Kind, v V) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	var created bool
	switch kind {
	case Prefix:
		n, tail := &t.pfx, pattern
		for i := strings.IndexByte(tail, '.'); i >= 0; i = strings.IndexByte(tail, '.') {
			n, tail = n.child(tail[:i]), tail[i+1:]
		}
		old := n.tails.Load().getString(tail)
		ne, ok := old.with(pattern, kind, v)
		if !ok {
			return false
		}
		setPut(&n.tails, ne.pattern[len(ne.pattern)-len(tail):], ne)
		if created = old == nil; created {
			t.npfx.Add(1)
		}
	case Wildcard:
		n, rest, comps := &t.wc, pattern, 0
		for {
			c, next, more := strings.Cut(rest, ".")
			comps++
			if c == "" {
				n = n.wildChild()
			} else {
				n = n.child(c)
			}
			if !more {
				break
			}
			rest = next
		}
		old := n.ent.Load()
		ne, ok := old.with(pattern, kind, v)
		if !ok {
			return false
		}
		n.ent.Store(ne)
		if created = old == nil; created {
			b := min(comps, 63)
			t.wcByLen[b]++
			t.wcLens.Or(1 << b)
		}
	default:
		panic("match: Insert with invalid Kind")
	}
	if created {
		t.count.Add(1)
	}
	t.gen.Add(1)
	return true
}

// step is one edge of a writer's walk, kept to prune emptied nodes.
type step[V comparable] struct {
	parent *node[V]
	key    string // "" for the wildcard edge
}

// Remove removes v from the values of pattern under kind, and the pattern once it has no
// values, and reports whether v was there. Safe for concurrent use; serializes with Insert.
func (t *Tree[V]) Remove(pattern string, kind Kind, v V) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	var stack [16]step[V]
	path := stack[:0]
	var n *node[V]
	switch kind {
	case Prefix:
		n = &t.pfx
		tail := pattern
		for i := strings.IndexByte(tail, '.'); i >= 0; i = strings.IndexByte(tail, '.') {
			k := n.kids.Load().getString(tail[:i])
			if k == nil {
				return false
			}
			path = append(path, step[V]{n, tail[:i]})
			n, tail = k, tail[i+1:]
		}
		ne, ok := n.tails.Load().getString(tail).without(v)
		if !ok {
			return false
		}
		if ne != nil {
			setPut(&n.tails, ne.pattern[len(ne.pattern)-len(tail):], ne)
		} else {
			setDel(&n.tails, tail)
			t.npfx.Add(-1)
			t.count.Add(-1)
		}
	case Wildcard:
		n = &t.wc
		rest, comps := pattern, 0
		for {
			c, next, more := strings.Cut(rest, ".")
			comps++
			var k *node[V]
			if c == "" {
				k = n.wild.Load()
			} else {
				k = n.kids.Load().getString(c)
			}
			if k == nil {
				return false
			}
			path = append(path, step[V]{n, c})
			n = k
			if !more {
				break
			}
			rest = next
		}
		ne, ok := n.ent.Load().without(v)
		if !ok {
			return false
		}
		n.ent.Store(ne)
		if ne == nil {
			t.count.Add(-1)
			b := min(comps, 63)
			if t.wcByLen[b]--; t.wcByLen[b] == 0 {
				t.wcLens.And(^uint64(1 << b))
			}
		}
	default:
		return false
	}
	// Detach the nodes this left empty, deepest first. Readers still inside them see
	// an empty subtree.
	for i := len(path) - 1; i >= 0 && n.empty(); i-- {
		p := path[i]
		if p.key == "" {
			p.parent.wild.Store(nil)
		} else {
			setDel(&p.parent.kids, p.key)
		}
		n = p.parent
	}
	t.gen.Add(1)
	return true
}

// Match calls f for every value of every pattern that matches uri, until f returns false:
// prefix patterns first, shortest first, then wildcard patterns in precedence order (see
// Best). Safe for concurrent use; never locks. It does not allocate unless the cache is
// enabled and misses; f must not retain or modify uri.
func (t *Tree[V]) Match(uri []byte, f func(pattern string, kind Kind, v V) bool) {
	if t.count.Load() == 0 {
		return
	}
	if t.cache != nil {
		for _, m := range t.lookup(uri).matches {
			if !f(m.Pattern, m.Kind, m.Value) {
				return
			}
		}
		return
	}
	t.visit(uri, func(e *entry[V]) bool {
		for _, v := range e.vals {
			if !f(e.pattern, e.kind, v) {
				return false
			}
		}
		return true
	})
}

// AppendMatches appends to dst every value of every pattern matching uri, in Match's
// order, and returns the extended slice. Safe for concurrent use; never locks. It does not
// allocate when dst has room, unless the cache is enabled and misses.
func (t *Tree[V]) AppendMatches(dst []Match[V], uri []byte) []Match[V] {
	if t.count.Load() == 0 {
		return dst
	}
	if t.cache != nil {
		return append(dst, t.lookup(uri).matches...)
	}
	t.visit(uri, func(e *entry[V]) bool {
		for _, v := range e.vals {
			dst = append(dst, Match[V]{e.pattern, e.kind, v})
		}
		return true
	})
	return dst
}

// Best returns the single pattern a dealer routes a call on uri to, when no exact
// registration exists: the longest matching prefix pattern, else the matching wildcard
// pattern with the longest run of literal components before its first wildcard, then
// before its second, and so on. For a pattern with several values it returns the oldest.
// ok is false if no pattern matches. Safe for concurrent use; never locks; does not
// allocate unless the cache is enabled and misses.
func (t *Tree[V]) Best(uri []byte) (pattern string, kind Kind, v V, ok bool) {
	if t.count.Load() == 0 {
		return "", 0, v, false
	}
	if t.cache != nil {
		c := t.lookup(uri)
		if c.best < 0 {
			return "", 0, v, false
		}
		m := &c.matches[c.best]
		return m.Pattern, m.Kind, m.Value, true
	}
	var best *entry[V]
	if t.npfx.Load() > 0 {
		t.visitPrefix(uri, func(e *entry[V]) bool {
			if best == nil || len(e.pattern) > len(best.pattern) {
				best = e
			}
			return true
		})
	}
	if best == nil && t.wcLens.Load()&lenBit(bytes.Count(uri, dot)+1) != 0 {
		visitWild(&t.wc, uri, 0, func(e *entry[V]) bool {
			best = e
			return false
		})
	}
	if best == nil {
		return "", 0, v, false
	}
	return best.pattern, best.kind, best.vals[0], true
}

var dot = []byte{'.'}

// visit calls f for every entry matching uri, prefixes (shortest first) then wildcards
// (best first), until f returns false.
func (t *Tree[V]) visit(uri []byte, f func(*entry[V]) bool) {
	if t.npfx.Load() > 0 && !t.visitPrefix(uri, f) {
		return
	}
	if t.wcLens.Load()&lenBit(bytes.Count(uri, dot)+1) != 0 {
		visitWild(&t.wc, uri, 0, f)
	}
}

// visitPrefix walks the one path of uri's components down the prefix tree; at depth d it
// visits the tails that are byte prefixes of the d-th component.
func (t *Tree[V]) visitPrefix(uri []byte, f func(*entry[V]) bool) bool {
	n := &t.pfx
	for pos := 0; ; {
		end := len(uri)
		if i := bytes.IndexByte(uri[pos:], '.'); i >= 0 {
			end = pos + i
		}
		comp := uri[pos:end]
		if ts := n.tails.Load(); ts != nil && !ts.prefixesOf(comp, f) {
			return false
		}
		if end == len(uri) {
			return true
		}
		ks := n.kids.Load()
		if ks == nil {
			return true
		}
		if n = ks.get(comp); n == nil {
			return true
		}
		pos = end + 1
	}
}

// visitWild visits the wildcard patterns under n matching uri[pos:], the literal edge
// before the wildcard edge at every level, so in Best's precedence order. pos is past the
// end of uri once every component is consumed.
func visitWild[V comparable](n *node[V], uri []byte, pos int, f func(*entry[V]) bool) bool {
	if pos > len(uri) {
		if e := n.ent.Load(); e != nil {
			return f(e)
		}
		return true
	}
	end := len(uri)
	if i := bytes.IndexByte(uri[pos:], '.'); i >= 0 {
		end = pos + i
	}
	if ks := n.kids.Load(); ks != nil {
		if k := ks.get(uri[pos:end]); k != nil && !visitWild(k, uri, end+1, f) {
			return false
		}
	}
	if w := n.wild.Load(); w != nil {
		return visitWild(w, uri, end+1, f)
	}
	return true
}

// cached is one result cache slot's content. Immutable.
type cached[V comparable] struct {
	gen     uint64
	hash    uint64
	uri     string
	matches []Match[V] // in Match's order
	best    int        // index in matches of Best's answer, -1 if none
}

// lookup returns the cached result for uri, computing and caching it on a miss.
func (t *Tree[V]) lookup(uri []byte) *cached[V] {
	h := xxhash.Sum64(uri)
	s := &t.cache[h&uint64(len(t.cache)-1)]
	// Load the generation before walking: a write that lands during the walk bumps it
	// after, so the slot filled below can never hit.
	g := t.gen.Load()
	if c := s.Load(); c != nil && c.gen == g && c.hash == h && c.uri == string(uri) {
		return c
	}
	c := &cached[V]{gen: g, hash: h, uri: string(uri), best: -1}
	var bestPfx *entry[V]
	t.visit(uri, func(e *entry[V]) bool {
		if e.kind == Prefix {
			if bestPfx == nil || len(e.pattern) > len(bestPfx.pattern) {
				bestPfx, c.best = e, len(c.matches)
			}
		} else if c.best < 0 { // prefixes come first; the first wildcard is the best
			c.best = len(c.matches)
		}
		for _, v := range e.vals {
			c.matches = append(c.matches, Match[V]{e.pattern, e.kind, v})
		}
		return true
	})
	s.Store(c)
	return c
}
