package match

import (
	"sync/atomic"

	"github.com/cespare/xxhash/v2"
	"github.com/puzpuzpuz/xsync/v3"
)

// smallMax is the number of keys a strSet keeps in its copy-on-write slice before it
// moves them to a concurrent map.
const smallMax = 16

// slot is one key of a strSet. Immutable once published. In a big set, slots whose keys
// share an xxhash are chained through next.
type slot[T any] struct {
	key  string
	val  *T
	next *slot[T]
}

// strSet maps strings (URI components) to *T. Readers never lock. In small mode the
// published strSet is immutable and writers replace it; in big mode writers update the
// concurrent map in place and the strSet itself stays published forever.
type strSet[T any] struct {
	small []slot[T]
	big   *xsync.MapOf[uint64, *slot[T]]
	// lens has bit min(len(key), 63) set for every key stored in big mode (never
	// cleared: a stale bit only costs a probe). It lets prefixesOf probe only the
	// lengths present.
	lens atomic.Uint64
}

func newBigMap[T any]() *xsync.MapOf[uint64, *slot[T]] {
	// The key is already a good hash: mixing it with the seed is enough.
	return xsync.NewMapOfWithHasher[uint64, *slot[T]](func(k, seed uint64) uint64 {
		return (k ^ seed) * 0x9E3779B97F4A7C15
	})
}

func lenBit(n int) uint64 { return 1 << min(n, 63) }

// get returns the value for key, or nil. Safe for concurrent use; never allocates.
func (s *strSet[T]) get(key []byte) *T {
	if s.big == nil {
		for i := range s.small {
			if s.small[i].key == string(key) {
				return s.small[i].val
			}
		}
		return nil
	}
	sl, _ := s.big.Load(xxhash.Sum64(key))
	for ; sl != nil; sl = sl.next {
		if sl.key == string(key) {
			return sl.val
		}
	}
	return nil
}

// getString is get for writers.
func (s *strSet[T]) getString(key string) *T {
	if s == nil {
		return nil
	}
	if s.big == nil {
		for i := range s.small {
			if s.small[i].key == key {
				return s.small[i].val
			}
		}
		return nil
	}
	sl, _ := s.big.Load(xxhash.Sum64String(key))
	for ; sl != nil; sl = sl.next {
		if sl.key == key {
			return sl.val
		}
	}
	return nil
}

// prefixesOf calls visit for the value of every key that is a byte prefix of comp (comp
// itself included) until visit returns false; it reports whether it ran to the end.
// Safe for concurrent use.
func (s *strSet[T]) prefixesOf(comp []byte, visit func(*T) bool) bool {
	if s.big == nil {
		for i := range s.small {
			k := s.small[i].key
			if len(k) <= len(comp) && string(comp[:len(k)]) == k {
				if !visit(s.small[i].val) {
					return false
				}
			}
		}
		return true
	}
	mask := s.lens.Load()
	for j := 0; j <= len(comp); j++ {
		if mask&lenBit(j) == 0 {
			if j >= 63 {
				break
			}
			continue
		}
		if v := s.get(comp[:j]); v != nil && !visit(v) {
			return false
		}
	}
	return true
}

// size returns the number of keys. For writers.
func (s *strSet[T]) size() int {
	if s == nil {
		return 0
	}
	if s.big != nil {
		return s.big.Size()
	}
	return len(s.small)
}

// setPut stores key -> v in the set published at p. Caller serializes writers.
func setPut[T any](p *atomic.Pointer[strSet[T]], key string, v *T) {
	s := p.Load()
	switch {
	case s == nil:
		p.Store(&strSet[T]{small: []slot[T]{{key: key, val: v}}})
	case s.big != nil:
		h := xxhash.Sum64String(key)
		old, _ := s.big.Load(h)
		s.lens.Or(lenBit(len(key)))
		s.big.Store(h, &slot[T]{key: key, val: v, next: chainWithout(old, key)})
	default:
		for i := range s.small {
			if s.small[i].key == key {
				ns := &strSet[T]{small: append([]slot[T](nil), s.small...)}
				ns.small[i].val = v
				p.Store(ns)
				return
			}
		}
		if len(s.small) < smallMax {
			ns := &strSet[T]{small: make([]slot[T], len(s.small), len(s.small)+1)}
			copy(ns.small, s.small)
			ns.small = append(ns.small, slot[T]{key: key, val: v})
			p.Store(ns)
			return
		}
		// Upgrade: build the map fully before publishing it.
		ns := &strSet[T]{big: newBigMap[T]()}
		for _, sl := range s.small {
			ns.bigAdd(sl.key, sl.val)
		}
		ns.bigAdd(key, v)
		p.Store(ns)
	}
}

// bigAdd adds a key known to be absent to an unpublished big set.
func (s *strSet[T]) bigAdd(key string, v *T) {
	h := xxhash.Sum64String(key)
	old, _ := s.big.Load(h)
	s.big.Store(h, &slot[T]{key: key, val: v, next: old})
	s.lens.Or(lenBit(len(key)))
}

// setDel removes key from the set published at p. Caller serializes writers.
func setDel[T any](p *atomic.Pointer[strSet[T]], key string) {
	s := p.Load()
	switch {
	case s == nil:
	case s.big != nil:
		h := xxhash.Sum64String(key)
		old, ok := s.big.Load(h)
		if !ok {
			return
		}
		if rest := chainWithout(old, key); rest != nil {
			s.big.Store(h, rest)
		} else {
			s.big.Delete(h)
		}
	default:
		for i := range s.small {
			if s.small[i].key != key {
				continue
			}
			if len(s.small) == 1 {
				p.Store(nil)
				return
			}
			ns := &strSet[T]{small: make([]slot[T], 0, len(s.small)-1)}
			ns.small = append(ns.small, s.small[:i]...)
			ns.small = append(ns.small, s.small[i+1:]...)
			p.Store(ns)
			return
		}
	}
}

// chainWithout returns a fresh chain holding the slots of c except key's (nil if none).
func chainWithout[T any](c *slot[T], key string) *slot[T] {
	var out *slot[T]
	for ; c != nil; c = c.next {
		if c.key != key {
			out = &slot[T]{key: c.key, val: c.val, next: out}
		}
	}
	return out
}
