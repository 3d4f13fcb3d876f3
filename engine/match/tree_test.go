package match

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// refMatch is the spec read literally, for checking the tree.
func refMatch(pattern string, kind Kind, uri string) bool {
	if kind == Prefix {
		return strings.HasPrefix(uri, pattern)
	}
	p, u := strings.Split(pattern, "."), strings.Split(uri, ".")
	if len(p) != len(u) {
		return false
	}
	for i := range p {
		if p[i] != "" && p[i] != u[i] {
			return false
		}
	}
	return true
}

// runs returns the lengths of the literal runs before each wildcard and after the last.
func runs(pattern string) []int {
	var r []int
	n := 0
	for _, c := range strings.Split(pattern, ".") {
		if c == "" {
			r = append(r, n)
			n = 0
		} else {
			n++
		}
	}
	return append(r, n)
}

// refBetter reports whether pattern a beats b for Best (both match one URI, same kind).
func refBetter(a, b string, kind Kind) bool {
	if kind == Prefix {
		return len(a) > len(b)
	}
	return slices.Compare(runs(a), runs(b)) > 0
}

type pv struct {
	pattern string
	kind    Kind
	v       int
}

func refMatches(set map[pv]bool, uri string) (all []string, best string, bestKind Kind) {
	for p := range set {
		if !refMatch(p.pattern, p.kind, uri) {
			continue
		}
		all = append(all, fmt.Sprintf("%s/%s/%d", p.kind, p.pattern, p.v))
		switch {
		case bestKind == 0,
			p.kind == Prefix && bestKind == Wildcard,
			p.kind == bestKind && refBetter(p.pattern, best, p.kind):
			best, bestKind = p.pattern, p.kind
		}
	}
	slices.Sort(all)
	return all, best, bestKind
}

func treeMatches(t *Tree[int], uri string) []string {
	var all []string
	t.Match([]byte(uri), func(p string, k Kind, v int) bool {
		all = append(all, fmt.Sprintf("%s/%s/%d", k, p, v))
		return true
	})
	slices.Sort(all)
	return all
}

func names(t *Tree[int], uri string) []string {
	var out []string
	t.Match([]byte(uri), func(p string, k Kind, _ int) bool {
		out = append(out, k.String()+":"+p)
		return true
	})
	slices.Sort(out)
	return out
}

func trees() map[string]*Tree[int] {
	return map[string]*Tree[int]{"cached": New[int](), "uncached": New[int](WithCacheSize(0)), "zero": {}}
}

func TestPrefixSpec(t *testing.T) {
	for name, tr := range trees() {
		t.Run(name, func(t *testing.T) {
			tr.Insert("com.myapp.topic.emergency", Prefix, 1)
			tr.Insert("com.myapp.myobject1", Prefix, 2)
			tr.Insert("com.myapp", Prefix, 3)
			for uri, want := range map[string][]string{
				// From the subscription spec.
				"com.myapp.topic.emergency.11":              {"prefix:com.myapp", "prefix:com.myapp.topic.emergency"},
				"com.myapp.topic.emergency-low":             {"prefix:com.myapp", "prefix:com.myapp.topic.emergency"},
				"com.myapp.topic.emergency.category.severe": {"prefix:com.myapp", "prefix:com.myapp.topic.emergency"},
				"com.myapp.topic.emergency":                 {"prefix:com.myapp", "prefix:com.myapp.topic.emergency"},
				"com.myapp.topic.emerge":                    {"prefix:com.myapp"},
				// From the registration spec.
				"com.myapp.myobject1.myprocedure1":              {"prefix:com.myapp", "prefix:com.myapp.myobject1"},
				"com.myapp.myobject1-mysubobject1":              {"prefix:com.myapp", "prefix:com.myapp.myobject1"},
				"com.myapp.myobject1.mysubobject1.myprocedure1": {"prefix:com.myapp", "prefix:com.myapp.myobject1"},
				"com.myapp.myobject1":                           {"prefix:com.myapp", "prefix:com.myapp.myobject1"},
				"com.myapp.myobject2":                           {"prefix:com.myapp"},
				"com.myapp.myobject":                            {"prefix:com.myapp"},
				// String prefix: "com.myapp" matches "com.myapp2".
				"com.myapp2.x": {"prefix:com.myapp"},
				"com.myap":     nil,
				"com":          nil,
				"org.myapp":    nil,
			} {
				if got := names(tr, uri); !slices.Equal(got, want) {
					t.Errorf("Match(%q) = %q, want %q", uri, got, want)
				}
			}
		})
	}
}

func TestPrefixEdges(t *testing.T) {
	tr := New[int]()
	tr.Insert("", Prefix, 1)     // matches everything
	tr.Insert("a.b.", Prefix, 2) // trailing dot: needs a third component
	for uri, want := range map[string][]string{
		"":      {"prefix:"},
		"x":     {"prefix:"},
		"a.b":   {"prefix:"},
		"a.b.":  {"prefix:", "prefix:a.b."},
		"a.b.c": {"prefix:", "prefix:a.b."},
		"a.bc":  {"prefix:"},
	} {
		if got := names(tr, uri); !slices.Equal(got, want) {
			t.Errorf("Match(%q) = %q, want %q", uri, got, want)
		}
	}
}

func TestWildcardSpec(t *testing.T) {
	for name, tr := range trees() {
		t.Run(name, func(t *testing.T) {
			tr.Insert("com.myapp..userevent", Wildcard, 1)
			tr.Insert("com.myapp..myprocedure1", Wildcard, 2)
			tr.Insert("com..create", Wildcard, 3)
			tr.Insert("..", Wildcard, 4)
			for uri, want := range map[string][]string{
				"com.myapp.foo.userevent":     {"wildcard:com.myapp..userevent"},
				"com.myapp.bar.userevent":     {"wildcard:com.myapp..userevent"},
				"com.myapp.a12.userevent":     {"wildcard:com.myapp..userevent"},
				"com.myapp.foo.userevent.bar": nil,
				"com.myapp.foo.user":          nil,
				"com.myapp2.foo.userevent":    nil,

				"com.myapp.myobject1.myprocedure1":                 {"wildcard:com.myapp..myprocedure1"},
				"com.myapp.myobject2.myprocedure1":                 {"wildcard:com.myapp..myprocedure1"},
				"com.myapp.myobject1.myprocedure1.mysubprocedure1": nil,
				"com.myapp.myobject1.myprocedure2":                 nil,
				"com.myapp2.myobject1.myprocedure1":                nil,

				"com.myapp.create":     {"wildcard:..", "wildcard:com..create"},
				"com.myapp.foo.create": nil,
				"x.y.z":                {"wildcard:.."},
			} {
				if got := names(tr, uri); !slices.Equal(got, want) {
					t.Errorf("Match(%q) = %q, want %q", uri, got, want)
				}
			}
		})
	}
}

func TestBestSpec(t *testing.T) {
	for name, tr := range trees() {
		t.Run(name, func(t *testing.T) {
			// The spec's example; registration 1 is exact and lives outside the Tree.
			tr.Insert("a1.b2.c3", Prefix, 2)
			tr.Insert("a1.b2.c3.d4", Prefix, 3)
			tr.Insert("a1.b2..d4.e5", Wildcard, 4)
			tr.Insert("a1.b2.c3..e5", Wildcard, 5)
			tr.Insert("a1.b2..d4.e5..g7", Wildcard, 6)
			tr.Insert("a1.b2..d4..f6.g7", Wildcard, 7)
			tr.Insert("a1...d4", Wildcard, 8)
			tr.Insert("a1.b2..d4", Wildcard, 9)
			for uri, want := range map[string]int{
				"a1.b2.c3.d98.e74":      2,
				"a1.b2.c3.d4.e325":      3,
				"a1.b2.c3.d4.e55":       3, // the exact registration 1 would win first
				"a1.b2.c55.d4.e5":       4,
				"a1.b2.c3x.d4.e5":       2, // string prefix "a1.b2.c3" beats wildcard 4
				"a1.b2.c88.d4.e5.f6.g7": 6,
				"a1.b9.c3.d4":           8,
				"a1.b2.c9.d4":           9, // a1.b2..d4 beats a1...d4
				"a2.b2.c2.d2.e2":        0,
			} {
				_, _, got, ok := tr.Best([]byte(uri))
				if !ok {
					got = 0
				}
				if got != want {
					t.Errorf("Best(%q) = %d, want %d", uri, got, want)
				}
			}
			// Same test on a wildcard-only URI that is not a prefix match.
			tr.Insert("x.y.z", Prefix, 10)
			if p, k, v, ok := tr.Best([]byte("x.y.zz")); !ok || p != "x.y.z" || k != Prefix || v != 10 {
				t.Errorf("Best(x.y.zz) = %q %v %d %v", p, k, v, ok)
			}
		})
	}
}

func TestRemoveAndDuplicates(t *testing.T) {
	for name, tr := range trees() {
		t.Run(name, func(t *testing.T) {
			if !tr.Insert("com.a", Prefix, 1) || !tr.Insert("com.a", Prefix, 2) || tr.Insert("com.a", Prefix, 1) {
				t.Fatal("Insert results wrong")
			}
			tr.Insert("com..c", Wildcard, 1)
			tr.Insert("com..c", Wildcard, 2)
			tr.Insert("com.a", Wildcard, 3) // same string, other kind
			if tr.Len() != 3 {
				t.Fatalf("Len = %d", tr.Len())
			}
			if got, want := treeMatches(tr, "com.a.c"), []string{"prefix/com.a/1", "prefix/com.a/2", "wildcard/com..c/1", "wildcard/com..c/2"}; !slices.Equal(got, want) {
				t.Fatalf("got %q want %q", got, want)
			}
			if _, _, v, _ := tr.Best([]byte("com.a.c")); v != 1 {
				t.Fatalf("Best value = %d, want the oldest", v)
			}
			if tr.Remove("com.a", Prefix, 9) || tr.Remove("com.b", Prefix, 1) || tr.Remove("com..c", Prefix, 1) || tr.Remove("x", 0, 1) {
				t.Fatal("Remove of absent value succeeded")
			}
			if !tr.Remove("com.a", Prefix, 1) || tr.Remove("com.a", Prefix, 1) {
				t.Fatal("Remove results wrong")
			}
			if _, _, v, _ := tr.Best([]byte("com.a.c")); v != 2 {
				t.Fatalf("Best value = %d, want 2", v)
			}
			tr.Remove("com.a", Prefix, 2)
			tr.Remove("com..c", Wildcard, 2)
			if got, want := treeMatches(tr, "com.a.c"), []string{"wildcard/com..c/1"}; !slices.Equal(got, want) {
				t.Fatalf("got %q want %q", got, want)
			}
			tr.Remove("com..c", Wildcard, 1)
			tr.Remove("com.a", Wildcard, 3)
			if tr.Len() != 0 || len(treeMatches(tr, "com.a.c")) != 0 || len(treeMatches(tr, "com.a")) != 0 {
				t.Fatal("tree not empty")
			}
			// Every emptied node was pruned.
			if !tr.pfx.empty() || !tr.wc.empty() || tr.wcLens.Load() != 0 {
				t.Fatal("empty nodes left behind")
			}
		})
	}
}

func TestCacheInvalidation(t *testing.T) {
	tr := New[int](WithCacheSize(8))
	uri := []byte("com.app.sensor.1")
	tr.Insert("org", Prefix, 0) // not matching: the tree is not empty
	if got := treeMatches(tr, string(uri)); len(got) != 0 {
		t.Fatal(got)
	}
	tr.Insert("com.app", Prefix, 1)
	if got := treeMatches(tr, string(uri)); !slices.Equal(got, []string{"prefix/com.app/1"}) {
		t.Fatalf("after Insert: %q", got)
	}
	tr.Insert("com..sensor.", Wildcard, 2)
	if p, _, _, _ := tr.Best(uri); p != "com.app" {
		t.Fatalf("Best = %q", p)
	}
	tr.Remove("com.app", Prefix, 1)
	if p, _, _, _ := tr.Best(uri); p != "com..sensor." {
		t.Fatalf("Best after Remove = %q", p)
	}
	tr.Remove("com..sensor.", Wildcard, 2)
	if _, _, _, ok := tr.Best(uri); ok {
		t.Fatal("Best after removing all")
	}
	// Colliding slots: more URIs than slots still give right answers.
	tr.Insert("u", Prefix, 3)
	for i := range 100 {
		for range 2 {
			if got := treeMatches(tr, fmt.Sprintf("u%d", i)); len(got) != 1 {
				t.Fatalf("u%d: %q", i, got)
			}
		}
	}
}

// TestRandom checks the trees against the spec's text on random patterns and URIs,
// through inserts and removes, with small and big (map) child sets.
func TestRandom(t *testing.T) {
	comps := []string{"a", "b", "ab", "abc", "ba"}
	for i := range 30 {
		comps = append(comps, fmt.Sprintf("x%d", i))
	}
	r := rand.New(rand.NewPCG(1, 2))
	word := func(maxComps int, wild bool) string {
		n := 1 + r.IntN(maxComps)
		parts := make([]string, n)
		for i := range parts {
			if wild && r.IntN(3) == 0 {
				continue
			}
			parts[i] = comps[r.IntN(len(comps))]
			if !wild && i == n-1 && r.IntN(3) == 0 {
				parts[i] = parts[i][:r.IntN(len(parts[i])+1)] // partial last component
			}
		}
		return strings.Join(parts, ".")
	}
	uris := make([]string, 400)
	for i := range uris {
		uris[i] = word(4, false)
	}
	for name, tr := range trees() {
		t.Run(name, func(t *testing.T) {
			set := map[pv]bool{}
			for round := range 40 {
				for range 60 {
					p := pv{word(4, false), Prefix, r.IntN(3)}
					if r.IntN(2) == 0 {
						p = pv{word(4, true), Wildcard, p.v}
					}
					if got := tr.Insert(p.pattern, p.kind, p.v); got == set[p] {
						t.Fatalf("Insert(%v) = %v", p, got)
					}
					set[p] = true
				}
				for p := range set {
					if r.IntN(3) == 0 {
						if !tr.Remove(p.pattern, p.kind, p.v) {
							t.Fatalf("Remove(%v) = false", p)
						}
						delete(set, p)
					}
				}
				for _, u := range uris {
					want, wantBest, wantKind := refMatches(set, u)
					if got := treeMatches(tr, u); !slices.Equal(got, want) {
						t.Fatalf("round %d Match(%q) = %q, want %q", round, u, got, want)
					}
					p, k, _, ok := tr.Best([]byte(u))
					if ok != (wantKind != 0) || p != wantBest || k != wantKind {
						t.Fatalf("round %d Best(%q) = %q %v, want %q %v", round, u, p, k, wantBest, wantKind)
					}
				}
			}
			for p := range set {
				tr.Remove(p.pattern, p.kind, p.v)
			}
			if tr.Len() != 0 || !tr.pfx.empty() || !tr.wc.empty() {
				t.Fatal("tree not empty after removing everything")
			}
		})
	}
}

func TestZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under -race")
	}
	for name, tr := range trees() {
		for i := range 100 {
			tr.Insert(fmt.Sprintf("com.app%d.sensor", i), Prefix, i)
			tr.Insert(fmt.Sprintf("com..sensor.%d", i), Wildcard, i)
		}
		uri := []byte("com.app7.sensor.7")
		dst := make([]Match[int], 0, 16)
		n := 0
		tr.Match(uri, func(string, Kind, int) bool { n++; return true }) // fill the cache
		allocs := testing.AllocsPerRun(100, func() {
			tr.Match(uri, func(string, Kind, int) bool { n++; return true })
			dst = tr.AppendMatches(dst[:0], uri)
			if _, _, _, ok := tr.Best(uri); !ok {
				t.Fatal("no best")
			}
		})
		if allocs != 0 || len(dst) != 2 {
			t.Errorf("%s: %v allocs, %d matches", name, allocs, len(dst))
		}
	}
}

// TestConcurrent hammers lookups while a writer inserts and removes; run with -race.
// Stable patterns must always be seen, and every match must be a real one.
func TestConcurrent(t *testing.T) {
	for name, tr := range map[string]*Tree[int]{"cached": New[int](WithCacheSize(64)), "uncached": New[int](WithCacheSize(0))} {
		t.Run(name, func(t *testing.T) {
			tr.Insert("com.stable", Prefix, -1)
			tr.Insert("com..x", Wildcard, -2)
			uris := []string{"com.stable.x", "com.a1.x", "com.a2.b.c", "com.stablex.y.x", "com.a17.x"}
			var stop atomic.Bool
			var wg sync.WaitGroup
			var lookups atomic.Int64
			for g := range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var dst []Match[int]
					for i := g; !stop.Load(); i++ {
						u := uris[i%len(uris)]
						stable := 0
						dst = tr.AppendMatches(dst[:0], []byte(u))
						for _, m := range dst {
							if !refMatch(m.Pattern, m.Kind, u) {
								t.Errorf("%q matched %q", u, m.Pattern)
							}
							if m.Value < 0 {
								stable++
							}
						}
						want := refStable(u)
						if stable != want {
							t.Errorf("%q: %d stable matches, want %d", u, stable, want)
						}
						if p, k, _, ok := tr.Best([]byte(u)); ok != (want > 0 || ok) || ok && !refMatch(p, k, u) {
							t.Errorf("Best(%q) = %q %v %v", u, p, k, ok)
						}
						lookups.Add(1)
					}
				}()
			}
			deadline := time.Now().Add(300 * time.Millisecond)
			for i := 0; time.Now().Before(deadline); i++ {
				// Enough keys per node to flip child and tail sets into map mode.
				p := fmt.Sprintf("com.a%d", i%40)
				w := fmt.Sprintf("com..%d.c", i%40)
				tr.Insert(p, Prefix, i%3)
				tr.Insert(w, Wildcard, i%3)
				if i%2 == 1 {
					tr.Remove(p, Prefix, (i-1)%3)
					tr.Remove(fmt.Sprintf("com..%d.c", (i+20)%40), Wildcard, (i+1)%3)
				}
			}
			stop.Store(true)
			wg.Wait()
			t.Logf("%d lookups", lookups.Load())
		})
	}
}

func refStable(u string) int {
	n := 0
	if refMatch("com.stable", Prefix, u) {
		n++
	}
	if refMatch("com..x", Wildcard, u) {
		n++
	}
	return n
}

// TestBuildMillion checks that 10^6 patterns build small and still match. How fast they
// build is BenchmarkBuildMillion's business: a wall-clock limit in a test fails on a
// loaded machine and passes a regression on a fast one.
func TestBuildMillion(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("slow")
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	tr := benchTree(1_000_000)
	took := time.Since(start)
	runtime.GC()
	runtime.ReadMemStats(&after)
	heap := after.HeapAlloc - before.HeapAlloc
	t.Logf("10^6 patterns: built in %v, heap %d MB (%d B/pattern)", took, heap>>20, heap/1_000_000)
	if heap > 600<<20 {
		t.Errorf("too big: %d MB", heap>>20)
	}
	if got := treeMatches(tr, "com.app0.sensor.3"); len(got) != 4 {
		t.Errorf("matches: %q", got)
	}
	runtime.KeepAlive(tr)
}

// TestLongTails covers tails of 63 bytes and more in a map-mode tail set.
func TestLongTails(t *testing.T) {
	for name, tr := range trees() {
		t.Run(name, func(t *testing.T) {
			long := strings.Repeat("z", 80)
			set := map[pv]bool{}
			for i := range 40 {
				p := pv{"p." + long[:30+i], Prefix, i}
				tr.Insert(p.pattern, p.kind, p.v)
				set[p] = true
			}
			for _, u := range []string{"p." + long, "p." + long[:65], "p." + long[:62] + ".x", "p." + long[:20]} {
				want, _, _ := refMatches(set, u)
				if got := treeMatches(tr, u); !slices.Equal(got, want) {
					t.Fatalf("Match(%q) = %q, want %q", u, got, want)
				}
				if p, _, _, ok := tr.Best([]byte(u)); ok && p != u[:min(len(u), len(p))] {
					t.Fatalf("Best(%q) = %q", u, p)
				}
			}
			// Early stop.
			n := 0
			tr.Match([]byte("p."+long), func(string, Kind, int) bool { n++; return n < 3 })
			if n != 3 {
				t.Fatalf("Match went on after false: %d calls", n)
			}
		})
	}
}

func TestKind(t *testing.T) {
	for _, k := range []Kind{Prefix, Wildcard} {
		if got, ok := ParseKind(k.String()); !ok || got != k {
			t.Errorf("ParseKind(%q) = %v, %v", k.String(), got, ok)
		}
	}
	if _, ok := ParseKind("exact"); ok || Kind(0).String() != "invalid" {
		t.Error("exact is not a pattern Kind")
	}
}

func TestChainWithout(t *testing.T) {
	var c *slot[int]
	for _, k := range []string{"a", "b", "c"} {
		c = &slot[int]{key: k, next: c}
	}
	got := ""
	for s := chainWithout(c, "b"); s != nil; s = s.next {
		got += s.key
	}
	if got != "ac" && got != "ca" {
		t.Fatalf("chain = %q", got)
	}
}
