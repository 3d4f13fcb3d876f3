package engine

import (
	"github.com/cespare/xxhash/v2"
	"github.com/switchyard-wamp/switchyard/codec"
	"github.com/switchyard-wamp/switchyard/internal/hashmix"
)

// Consistent-hash invocation policy (REGISTER.Options.invoke = "hash", or Bondy's
// "jump_consistent_hash"): calls with the same key go to the same callee while the
// callee set is unchanged, and a callee joining or leaving moves only about 1/n of the
// keys. The algorithm is rendezvous (highest random weight) hashing over the callees'
// session ids, not jump consistent hash: jump hash numbers its buckets 0..n-1, so a
// callee leaving from the middle of the list would renumber the others and move most
// keys, while with rendezvous hashing only the keys of the callee that left move.
// The cost is O(n) cheap mixes per CALL (n = callees of the registration).

// routingKey is the key of CALL m: xxhash of CALL.Options.rkey when present, else of the
// encoded bytes of the first positional argument (so a key reaches the same callee from
// callers of one serializer; use rkey, a string, for affinity across serializers), else
// 0 (every keyless call goes to one callee).
func routingKey(m *codec.Message, ser codec.Serializer) uint64 {
	if m.Details.Has&codec.KeyRKey != 0 {
		return xxhash.Sum64(m.Details.RKey)
	}
	if first, ok := codec.FirstElement(ser, m.Args); ok {
		return xxhash.Sum64(first)
	}
	return 0
}

// rendezvous returns the callee of cs (non-empty) with the highest weight for key.
func rendezvous(cs []*Session, key uint64) *Session {
	best, bestW := cs[0], hashmix.Mix64(key^cs[0].id)
	for _, c := range cs[1:] {
		if w := hashmix.Mix64(key ^ c.id); w > bestW {
			best, bestW = c, w
		}
	}
	return best
}
