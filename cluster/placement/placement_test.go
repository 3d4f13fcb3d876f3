package placement

import (
	"encoding/binary"
	"fmt"
	"github.com/switchyard-wamp/switchyard/internal/hashmix"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cespare/xxhash/v2"
)

var three = []string{"router1", "router2", "router3"}

// refOwner is the rendezvous rule of the package comment, written out plainly.
func refOwner(slot int, routers []string, down map[string]bool) string {
	best, bestW := "", uint64(0)
	for _, r := range routers {
		if down[r] {
			continue
		}
		w := hashmix.Mix64(xxhash.Sum64String(r) ^ hashmix.Mix64(uint64(slot)))
		if best == "" || w > bestW || w == bestW && r < best {
			best, bestW = r, w
		}
	}
	return best
}

// TestSlotFormula checks Slot against the hashes the package comment promises.
func TestSlotFormula(t *testing.T) {
	for _, tc := range []struct {
		realm, role string
		spread      int
		session     uint64
	}{
		{"realm1", "anonymous", 1, 12345}, {"realm1", "anonymous", 0, 7}, {"com.example", "backend", 5, 10},
		{"com.example", "backend", 5, 11}, {"r", "", 3, 2}, {"", "", 1, 0}, {"realm1", "anonymous", 3, 1<<53 - 1},
		// Longer than the stack buffer: the streaming path must hash the same bytes.
		{strings.Repeat("com.example.", 10), "a-rather-long-authrole-name", 4, 3},
		{strings.Repeat("x", 127), "", 1, 0}, {strings.Repeat("x", 118), "", 2, 1}, {strings.Repeat("x", 119), "", 2, 1},
	} {
		key := tc.realm + "\x00" + tc.role
		if k := tc.session % uint64(max(tc.spread, 1)); k > 0 {
			var b [8]byte
			binary.BigEndian.PutUint64(b[:], k)
			key += "\x00" + string(b[:])
		}
		for _, slots := range []int{1, 16, 4096, 65536} {
			want := int(xxhash.Sum64String(key) % uint64(slots))
			if got := Slot(slots, tc.realm, tc.role, tc.spread, tc.session); got != want {
				t.Errorf("Slot(%d, %+v) = %d, want %d", slots, tc, got, want)
			}
		}
	}
	// The separator keeps ("ab", "c") and ("a", "bc") apart.
	if Slot(1<<16, "ab", "c", 1, 0) == Slot(1<<16, "a", "bc", 1, 0) {
		t.Error("realm/authrole boundary is ambiguous")
	}
}

// TestDeterministic: two nodes that know the same routers, in any order and with
// duplicates, compute the same map, and it follows the documented rendezvous rule.
func TestDeterministic(t *testing.T) {
	a := New(4096, []string{"router3", "router1", "router2"})
	b := New(4096, []string{"router2", "router2", "router1", "", "router3"})
	if !slices.Equal(a.Routers(), three) || !slices.Equal(b.Routers(), three) || a.Slots() != 4096 {
		t.Fatalf("routers %v %v", a.Routers(), b.Routers())
	}
	for s := range 4096 {
		if a.Owner(s) != b.Owner(s) {
			t.Fatalf("slot %d: %s vs %s", s, a.Owner(s), b.Owner(s))
		}
		if want := refOwner(s, three, nil); a.Owner(s) != want {
			t.Fatalf("slot %d: owner %s, rendezvous says %s", s, a.Owner(s), want)
		}
	}
	a.Routers()[0] = "changed"
	if a.Routers()[0] != "router1" {
		t.Error("Routers exposes the map's own slice")
	}
}

func TestBalance(t *testing.T) {
	m := New(4096, three)
	total := 0
	for _, r := range three {
		n := m.SlotsOf(r)
		total += n
		if third := 4096.0 / 3; math.Abs(float64(n)-third) > 0.1*third {
			t.Errorf("%s owns %d slots, want %.0f ±10%%", r, n, third)
		}
	}
	if total != 4096 || m.SlotsOf("router9") != 0 {
		t.Errorf("slots owned: %d of 4096; unknown router owns %d", total, m.SlotsOf("router9"))
	}
	// Larger clusters and other slot counts stay balanced too.
	var many []string
	for i := range 10 {
		many = append(many, fmt.Sprintf("r%d.example.net", i))
	}
	m = New(16384, many)
	for _, r := range many {
		if n, tenth := m.SlotsOf(r), 16384.0/10; math.Abs(float64(n)-tenth) > 0.1*tenth {
			t.Errorf("%s owns %d of 16384 slots, want %.0f ±10%%", r, n, tenth)
		}
	}
}

// TestMinimalMovement: adding a router moves slots only to it (about 1/N of them);
// removing one moves only its own slots.
func TestMinimalMovement(t *testing.T) {
	const slots = 4096
	before := New(slots, three)
	after := New(slots, append(slices.Clone(three), "router4"))
	moved := 0
	for s := range slots {
		if o := before.Owner(s); after.Owner(s) != o {
			moved++
			if after.Owner(s) != "router4" {
				t.Fatalf("slot %d moved from %s to %s, not to the new router", s, o, after.Owner(s))
			}
		}
	}
	if quarter := slots / 4.0; math.Abs(float64(moved)-quarter) > 0.1*quarter {
		t.Errorf("adding a 4th router moved %d slots, want about %.0f", moved, quarter)
	}
	if moved != after.SlotsOf("router4") {
		t.Errorf("moved %d, router4 owns %d", moved, after.SlotsOf("router4"))
	}

	smaller := New(slots, []string{"router1", "router3"})
	for s := range slots {
		if o := before.Owner(s); o != "router2" && smaller.Owner(s) != o {
			t.Fatalf("slot %d of %s moved to %s when router2 left", s, o, smaller.Owner(s))
		}
	}
	if smaller.SlotsOf("router1")+smaller.SlotsOf("router3") != slots {
		t.Error("slots lost")
	}
}

// TestSpread: a spread (realm, authrole) lands on several routers, the session id picks
// the slot, and spread 1 (or less) is one slot whatever the session.
func TestSpread(t *testing.T) {
	m := New(4096, three)
	one := map[int]bool{}
	for s := range uint64(100) {
		one[Slot(4096, "realm1", "backend", 1, s)] = true
		one[Slot(4096, "realm1", "backend", 0, s)] = true
	}
	if len(one) != 1 {
		t.Fatalf("spread 1: %d slots", len(one))
	}
	const k = 8
	slotsUsed, routers := map[int]int{}, map[string]int{}
	for s := range uint64(8000) {
		slot := Slot(4096, "realm1", "backend", k, s)
		if slot != Slot(4096, "realm1", "backend", k, s%k) {
			t.Fatalf("session %d: slot depends on more than session %% spread", s)
		}
		slotsUsed[slot]++
		routers[m.Place("realm1", "backend", k, s)]++
	}
	if len(slotsUsed) != k {
		t.Errorf("spread %d used %d slots", k, len(slotsUsed))
	}
	for slot, n := range slotsUsed {
		if n != 1000 {
			t.Errorf("slot %d got %d of 8000 sessions, want 1000", slot, n)
		}
	}
	if len(routers) < 2 {
		t.Errorf("spread %d placed every session on %v", k, routers)
	}
	// slot_0 is the unspread slot: raising spread keeps k = 0 sessions in place.
	if Slot(4096, "realm1", "backend", 1, 0) != Slot(4096, "realm1", "backend", k, 0) {
		t.Error("slot_0 differs from the unspread slot")
	}
	// Every role with spread 3 over 3 routers reaches all 3 (the k-th router of the
	// role's rendezvous order), and spread 2 reaches 2, whatever the role's slot.
	for i := range 2700 {
		for k := 2; k <= 3; k++ {
			set := map[string]bool{}
			for s := range uint64(k) {
				set[m.Place("realm1", fmt.Sprintf("role%d", i), k, s)] = true
			}
			if len(set) != k {
				t.Fatalf("role%d with spread %d reaches %v", i, k, set)
			}
		}
	}
	// Place with spread is OwnerK over the role's own slot; k = 0 is its owner.
	base := Slot(4096, "realm1", "backend", 1, 0)
	if m.Place("realm1", "backend", 3, 0) != m.Owner(base) || m.Place("realm1", "backend", 3, 4) != m.OwnerK(base, 1, nil) {
		t.Error("Place with spread is not the k-th router of the role's slot")
	}
	// A down router is skipped: the remaining two share the role.
	down := func(r string) bool { return r == m.Owner(base) }
	set := map[string]bool{}
	for s := range uint64(3) {
		set[m.PlaceExcept("realm1", "backend", 3, s, down)] = true
	}
	if len(set) != 2 || set[m.Owner(base)] {
		t.Errorf("spread 3 with the owner down reaches %v", set)
	}
}

func TestOwnerExcept(t *testing.T) {
	m := New(1024, append(slices.Clone(three), "router4"))
	for s := range 1024 {
		if got := m.OwnerExcept(s, nil); got != m.Owner(s) {
			t.Fatalf("slot %d: nothing down gives %s, owner %s", s, got, m.Owner(s))
		}
		first := m.Owner(s)
		down := map[string]bool{first: true}
		second := m.OwnerExcept(s, func(r string) bool { return down[r] })
		if second == first || second == "" || second != refOwner(s, m.Routers(), down) {
			t.Fatalf("slot %d: next after %s is %q, want %s", s, first, second, refOwner(s, m.Routers(), down))
		}
		// The next owner is where the slot goes when the first owner leaves the map.
		var rest []string
		for _, r := range m.Routers() {
			if r != first {
				rest = append(rest, r)
			}
		}
		if New(1024, rest).Owner(s) != second {
			t.Fatalf("slot %d: OwnerExcept %s, map without %s says %s", s, second, first, New(1024, rest).Owner(s))
		}
		down[second] = true
		third := m.OwnerExcept(s, func(r string) bool { return down[r] })
		if third == first || third == second || third != refOwner(s, m.Routers(), down) {
			t.Fatalf("slot %d: third owner %s", s, third)
		}
	}
	if got := m.OwnerExcept(0, func(string) bool { return true }); got != "" {
		t.Errorf("all down: %q", got)
	}
}

func TestNoRouters(t *testing.T) {
	m := New(16, nil)
	if m.Owner(3) != "" || m.Place("realm1", "anonymous", 3, 9) != "" || m.OwnerExcept(3, nil) != "" ||
		len(m.Routers()) != 0 || m.SlotsOf("") != 0 {
		t.Error("empty map answers")
	}
	for _, f := range []func(){
		func() { New(0, three) },
		func() { Slot(0, "r", "a", 1, 0) },
		func() { m.Owner(16) },
		func() { m.Owner(-1) },
		func() { m.OwnerExcept(16, nil) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("no panic on a bad slot count or slot")
				}
			}()
			f()
		}()
	}
}

// TestConcurrentReads shares one Map between goroutines (run with -race).
func TestConcurrentReads(t *testing.T) {
	m := New(4096, three)
	want := m.Place("realm1", "anonymous", 3, 42)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range 10000 {
				if m.Place("realm1", "anonymous", 3, 42) != want {
					t.Error("Place changed")
					return
				}
				_ = m.OwnerExcept(i%4096, func(r string) bool { return r == want })
				_ = m.SlotsOf(want)
			}
		})
	}
	wg.Wait()
}

func BenchmarkPlace(b *testing.B) {
	m := New(4096, three)
	b.ReportAllocs()
	var sink string
	for i := range b.N {
		sink = m.Place("realm1", "anonymous", 3, uint64(i))
	}
	_ = sink
}

func BenchmarkNew(b *testing.B) {
	for _, n := range []struct{ slots, routers int }{{4096, 3}, {16384, 3}, {16384, 16}} {
		var routers []string
		for i := range n.routers {
			routers = append(routers, fmt.Sprintf("router%d", i+1))
		}
		b.Run(fmt.Sprintf("slots=%d/routers=%d", n.slots, n.routers), func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				New(n.slots, routers)
			}
		})
	}
}
