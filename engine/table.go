package engine

import (
	"sync"

	"github.com/cespare/xxhash/v2"
	"github.com/puzpuzpuz/xsync/v3"
)

// uriEntry is implemented by the values a uriTable holds: they know their URI.
type uriEntry interface {
	entryURI() string
}

// bucket holds the entries whose URIs share one xxhash. It is immutable once published:
// writers replace it. Almost every bucket has exactly one entry.
type bucket[V uriEntry] struct {
	entries []V
}

// uriTable maps a URI to one entry. Get is lock-free and allocation-free; writers
// serialize on mu, which also orders them against each other's read-modify-write.
type uriTable[V uriEntry] struct {
	m  *xsync.MapOf[uint64, *bucket[V]]
	mu sync.Mutex
}

func newURITable[V uriEntry]() *uriTable[V] {
	return &uriTable[V]{
		// The key is already a good hash: mixing it with the seed is enough.
		m: xsync.NewMapOfWithHasher[uint64, *bucket[V]](func(k, seed uint64) uint64 {
			return (k ^ seed) * 0x9E3779B97F4A7C15
		}),
	}
}

// Get returns the entry for uri. Safe for concurrent use; never locks.
func (t *uriTable[V]) Get(uri []byte) (v V, ok bool) {
	b, ok := t.m.Load(xxhash.Sum64(uri))
	if !ok {
		return v, false
	}
	for _, e := range b.entries {
		if e.entryURI() == string(uri) {
			return e, true
		}
	}
	return v, false
}

// getLocked is Get for a caller holding mu, taking a string.
func (t *uriTable[V]) getLocked(uri string) (v V, ok bool) {
	b, ok := t.m.Load(xxhash.Sum64String(uri))
	if !ok {
		return v, false
	}
	for _, e := range b.entries {
		if e.entryURI() == uri {
			return e, true
		}
	}
	return v, false
}

// putLocked adds v (whose URI is not in the table). Caller holds mu.
func (t *uriTable[V]) putLocked(v V) {
	h := xxhash.Sum64String(v.entryURI())
	nb := &bucket[V]{}
	if old, ok := t.m.Load(h); ok {
		nb.entries = append(nb.entries, old.entries...)
	}
	nb.entries = append(nb.entries, v)
	t.m.Store(h, nb)
}

// deleteLocked removes the entry for uri. Caller holds mu.
func (t *uriTable[V]) deleteLocked(uri string) {
	h := xxhash.Sum64String(uri)
	old, ok := t.m.Load(h)
	if !ok {
		return
	}
	nb := &bucket[V]{entries: make([]V, 0, len(old.entries))}
	for _, e := range old.entries {
		if e.entryURI() != uri {
			nb.entries = append(nb.entries, e)
		}
	}
	if len(nb.entries) == 0 {
		t.m.Delete(h)
		return
	}
	t.m.Store(h, nb)
}

// Len returns the number of hash buckets (about the number of URIs). Safe for concurrent use.
func (t *uriTable[V]) Len() int { return t.m.Size() }

// Range calls f for every entry until f returns false. Safe for concurrent use; sees a
// weakly consistent view.
func (t *uriTable[V]) Range(f func(V) bool) {
	t.m.Range(func(_ uint64, b *bucket[V]) bool {
		for _, e := range b.entries {
			if !f(e) {
				return false
			}
		}
		return true
	})
}
