package engine

import (
	"math/rand/v2"
	"sync/atomic"
)

// maxID is the largest WAMP ID: IDs are integers in [1, 2^53] so that they survive
// IEEE-754 doubles in JavaScript clients.
const maxID = 1 << 53

// globalID returns a random ID in the global scope (session and publication IDs).
// Safe for concurrent use; it does not lock or allocate (math/rand/v2 runs per thread).
func globalID() uint64 { return rand.Uint64N(maxID) + 1 }

// idSeq hands out IDs of the router or session scope: sequential from 1, wrapping to 1
// after 2^53. Safe for concurrent use.
type idSeq struct{ n atomic.Uint64 }

func (s *idSeq) next() uint64 {
	for {
		v := s.n.Add(1)
		if v <= maxID {
			return v
		}
		s.n.CompareAndSwap(v, 0)
	}
}
