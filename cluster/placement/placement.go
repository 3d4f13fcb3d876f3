// Package placement decides which router node a new session is placed on: the
// (realm, authrole) of the session picks a hash slot, and every slot belongs to one
// live router, chosen by rendezvous (highest random weight) hashing over the routers'
// names. Every node that knows the same router names and slot count computes the same
// map, with no coordination, and a membership change moves only the slots it must:
// adding a router moves to it about 1/N of the slots and nothing else; removing one
// moves only its own slots.
//
// The hashes are part of the cluster's protocol (proxies and routers must agree on
// them), so they are spelled out here and must not change between releases:
//
//	slot(realm, authrole)        = xxhash64(realm ‖ 0x00 ‖ authrole) mod slots
//	weight(router, slot)         = hashmix.Mix64(xxhash64(router) ^ hashmix.Mix64(uint64(slot)))
//	router of a session          = the (session mod spread)-th live router in slot's order
//
// where mix is the SplitMix64 finalizer and a slot's order is by decreasing weight (ties,
// which need a 64-bit collision, go to the smaller name). With spread 1 the router is the
// slot's owner; with spread K the K sessions in a row reach K different routers (when
// there are K), and k = 0 stays on the owner, so raising a spread keeps those sessions
// where they were. OwnerExcept and OwnerK walk the same order. (Slot with spread > 1,
// slot_k = xxhash64(realm ‖ 0x00 ‖ authrole ‖ 0x00 ‖ uint64be(k)) mod slots, names K
// independent slots; the cluster does not place by it, since independent slots share
// owners: three slots reach three routers of three only 2 times in 9.)
//
// The slot only decides where a new session lands; a session stays on its router for
// life. This package knows nothing of links or configuration: the caller passes the
// names of the live routers.
package placement

import (
	"encoding/binary"
	"fmt"
	"github.com/switchyard-wamp/switchyard/internal/hashmix"
	"slices"

	"github.com/cespare/xxhash/v2"
)

// Map is the owner table of one membership: slot -> router. It is immutable once built
// by New, so any number of goroutines may read one Map at once; a membership change
// builds a new Map (callers swap it atomically).
type Map struct {
	slots   int
	routers []string // sorted, unique, non-empty
	seeds   []uint64 // xxhash64 of each router name, same order as routers
	owner   []int32  // slot -> index into routers; nil when there are no routers
	counts  []int    // slots owned per router, same order as routers
}

// New builds the map of slots hash slots over the named live routers. Order and
// duplicates in routers do not matter; empty names are ignored. With no routers every
// Owner is "". It panics if slots < 1 (the configuration allows 16..65536). The cost is
// one weight per (slot, router): about 0.1 ms for 4096 slots and 3 routers. Safe for
// concurrent use (it reads routers only).
func New(slots int, routers []string) *Map {
	if slots < 1 {
		panic(fmt.Sprintf("placement: %d slots (want at least 1)", slots))
	}
	names := make([]string, 0, len(routers))
	for _, r := range routers {
		if r != "" {
			names = append(names, r)
		}
	}
	slices.Sort(names)
	names = slices.Compact(names)
	m := &Map{slots: slots, routers: names, seeds: make([]uint64, len(names)), counts: make([]int, len(names))}
	for i, r := range names {
		m.seeds[i] = xxhash.Sum64String(r)
	}
	if len(names) == 0 {
		return m
	}
	m.owner = make([]int32, slots)
	for s := range slots {
		ms := hashmix.Mix64(uint64(s))
		best, bestW := 0, hashmix.Mix64(m.seeds[0]^ms)
		for i := 1; i < len(names); i++ {
			// names are sorted: on a tie the earlier (smaller) name keeps the slot.
			if w := hashmix.Mix64(m.seeds[i] ^ ms); w > bestW {
				best, bestW = i, w
			}
		}
		m.owner[s] = int32(best)
		m.counts[best]++
	}
	return m
}

// Slots returns the number of hash slots. Safe for concurrent use.
func (m *Map) Slots() int { return m.slots }

// Routers returns the routers of the map, sorted by name, without duplicates. The slice
// is a copy. Safe for concurrent use.
func (m *Map) Routers() []string { return slices.Clone(m.routers) }

// Owner returns the router that owns slot, or "" when the map has no routers. slot must
// be in [0, Slots()) (Slot returns such a value); it panics otherwise. No allocation;
// safe for concurrent use.
func (m *Map) Owner(slot int) string {
	if slot < 0 || slot >= m.slots {
		panic(fmt.Sprintf("placement: slot %d out of range [0, %d)", slot, m.slots))
	}
	if m.owner == nil {
		return ""
	}
	return m.routers[m.owner[slot]]
}

// OwnerExcept returns the first router in slot's rendezvous order for which down
// returns false: Owner(slot) when it is up, otherwise the router the slot would move to
// if the down routers left the membership. It returns "" when every router is down (or
// there are none). down is called at most once per router, in no particular order; nil
// means none is down. Meant for failover (a router that is unreachable before the
// membership says it left), not for the per-session hot path: it costs one weight per
// router. Safe for concurrent use if down is.
func (m *Map) OwnerExcept(slot int, down func(string) bool) string {
	if slot < 0 || slot >= m.slots {
		panic(fmt.Sprintf("placement: slot %d out of range [0, %d)", slot, m.slots))
	}
	ms := hashmix.Mix64(uint64(slot))
	best, bestW := -1, uint64(0)
	for i, r := range m.routers {
		w := hashmix.Mix64(m.seeds[i] ^ ms)
		if best >= 0 && w <= bestW {
			continue // lower in the order (or a tie lost to a smaller name)
		}
		if down != nil && down(r) {
			continue
		}
		best, bestW = i, w
	}
	if best < 0 {
		return ""
	}
	return m.routers[best]
}

// SlotsOf returns how many slots router owns (0 for a name not in the map). Safe for
// concurrent use.
func (m *Map) SlotsOf(router string) int {
	if i, ok := slices.BinarySearch(m.routers, router); ok {
		return m.counts[i]
	}
	return 0
}

// Slot returns the hash slot of a new session of (realm, authrole) in a cluster of
// slots slots (slots >= 1; it panics otherwise). spread is the number of slots the
// (realm, authrole) is spread over (values below 1 count as 1); the session id picks
// one of them: k = session % spread. See the package comment for the exact hashes. No
// allocation; safe for concurrent use.
func Slot(slots int, realm, authrole string, spread int, session uint64) int {
	if slots < 1 {
		panic(fmt.Sprintf("placement: %d slots (want at least 1)", slots))
	}
	k := uint64(0)
	if spread > 1 {
		k = session % uint64(spread)
	}
	n := len(realm) + 1 + len(authrole)
	if k > 0 {
		n += 9
	}
	var h uint64
	if n <= 128 {
		// The usual case: hash one stack buffer (one pass, no streaming state).
		var buf [128]byte
		b := append(buf[:0], realm...)
		b = append(b, 0)
		b = append(b, authrole...)
		if k > 0 {
			b = append(b, 0)
			b = binary.BigEndian.AppendUint64(b, k)
		}
		h = xxhash.Sum64(b)
	} else {
		var d xxhash.Digest
		d.Reset()
		var buf [9]byte // separator, then k (big endian) when spread
		d.WriteString(realm)
		d.Write(buf[:1])
		d.WriteString(authrole)
		if k > 0 {
			binary.BigEndian.PutUint64(buf[1:], k)
			d.Write(buf[:])
		}
		h = d.Sum64()
	}
	return int(h % uint64(slots))
}

// Place returns the router a new session of (realm, authrole) with this session id is
// placed on. With spread K > 1 the session goes to the (session % K)-th router in the
// rendezvous order of the (realm, authrole)'s own slot, so K sessions in a row reach K
// different routers whenever there are at least K (independent slots per k would
// collide: three slots have three different owners among three routers only 2 times
// in 9). "" when the map has no routers. Safe for concurrent use; with spread <= 1 it
// does not allocate.
func (m *Map) Place(realm, authrole string, spread int, session uint64) string {
	return m.PlaceExcept(realm, authrole, spread, session, nil)
}

// PlaceExcept is Place over the routers for which down returns false (nil: none is
// down): the failover a proxy applies while a router is unreachable. Safe for concurrent
// use if down is.
func (m *Map) PlaceExcept(realm, authrole string, spread int, session uint64, down func(string) bool) string {
	slot := Slot(m.slots, realm, authrole, 1, 0)
	if spread <= 1 {
		if down == nil {
			return m.Owner(slot)
		}
		return m.OwnerExcept(slot, down)
	}
	return m.OwnerK(slot, int(session%uint64(spread)), down)
}

// OwnerK returns the k-th router (from 0) in slot's rendezvous order among the routers
// for which down returns false, k taken modulo their number; "" when none is up.
// OwnerK(slot, 0, down) == OwnerExcept(slot, down). It costs one weight per router and
// a sort. Safe for concurrent use if down is.
func (m *Map) OwnerK(slot, k int, down func(string) bool) string {
	if slot < 0 || slot >= m.slots {
		panic(fmt.Sprintf("placement: slot %d out of range [0, %d)", slot, m.slots))
	}
	type ranked struct {
		w uint64
		i int
	}
	ms := hashmix.Mix64(uint64(slot))
	var buf [16]ranked
	live := buf[:0]
	for i, r := range m.routers {
		if down != nil && down(r) {
			continue
		}
		live = append(live, ranked{hashmix.Mix64(m.seeds[i] ^ ms), i})
	}
	if len(live) == 0 {
		return ""
	}
	// Highest weight first; a tie goes to the smaller name (routers are sorted).
	slices.SortFunc(live, func(a, b ranked) int {
		switch {
		case a.w > b.w:
			return -1
		case a.w < b.w:
			return 1
		}
		return a.i - b.i
	})
	return m.routers[live[k%len(live)].i]
}
