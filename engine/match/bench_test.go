package match

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// benchTree builds n patterns spread over many prefixes and wildcards:
// "com.app<i>.sensor.<j>" prefixes and "com.app<i>..<j>" wildcards with 100 values of j
// per app, plus the prefix "com.app0" and the wildcard "com..sensor.3". The URI
// "com.app0.sensor.3" matches four of them whatever n is.
func benchTree(n int, opts ...Option) *Tree[int] {
	tr := New[int](opts...)
	tr.Insert("com.app0", Prefix, -1)
	tr.Insert("com..sensor.3", Wildcard, -2)
	apps := max(1, n/200)
	var buf []byte
	for k := range n/2 - 1 {
		i, j := k%apps, k/apps
		buf = append(buf[:0], "com.app"...)
		buf = strconv.AppendInt(buf, int64(i), 10)
		mid := len(buf)
		buf = append(buf, ".sensor."...)
		buf = strconv.AppendInt(buf, int64(j), 10)
		tr.Insert(string(buf), Prefix, k)
		buf = append(buf[:mid], ".."...)
		buf = strconv.AppendInt(buf, int64(j), 10)
		tr.Insert(string(buf), Wildcard, k)
	}
	return tr
}

var (
	benchMu    sync.Mutex
	benchTrees = map[int]*Tree[int]{}
)

// sharedBenchTree memoizes benchTree(n) across sub-benchmarks.
func sharedBenchTree(n int) *Tree[int] {
	benchMu.Lock()
	defer benchMu.Unlock()
	if tr := benchTrees[n]; tr != nil {
		return tr
	}
	tr := benchTree(n)
	benchTrees[n] = tr
	return tr
}

// withoutCache runs f with tr's cache disabled.
func withoutCache(tr *Tree[int], f func()) {
	saved := tr.cache
	tr.cache = nil
	defer func() { tr.cache = saved }()
	f()
}

// BenchmarkBuildMillion is the build of 10^6 patterns (benchTree(10^6)), the time limit
// TestBuildMillion does not check; ns/op is one whole build.
func BenchmarkBuildMillion(b *testing.B) {
	for b.Loop() {
		tr := benchTree(1_000_000)
		if len(treeMatches(tr, "com.app0.sensor.3")) != 4 {
			b.Fatal("wrong matches")
		}
	}
}

// BenchmarkMatch is one broker lookup of a URI with four matching patterns among n:
// cached (repeated URI, cache hit), uncached (cache disabled: the tree walk) and miss
// (a new URI each time: walk plus cache fill).
func BenchmarkMatch(b *testing.B) {
	for _, n := range []int{100, 10_000, 1_000_000} {
		uri := []byte("com.app0.sensor.3")
		run := func(b *testing.B, tr *Tree[int], uri func(i int) []byte, want int) {
			got := 0
			f := func(string, Kind, int) bool { got++; return true }
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				tr.Match(uri(i), f)
			}
			if got != want*b.N {
				b.Fatalf("%d matches for %d lookups", got, b.N)
			}
		}
		b.Run(fmt.Sprintf("patterns=%d/cached", n), func(b *testing.B) {
			tr := sharedBenchTree(n)
			run(b, tr, func(int) []byte { return uri }, 4)
		})
		b.Run(fmt.Sprintf("patterns=%d/uncached", n), func(b *testing.B) {
			tr := sharedBenchTree(n)
			withoutCache(tr, func() { run(b, tr, func(int) []byte { return uri }, 4) })
		})
		b.Run(fmt.Sprintf("patterns=%d/miss", n), func(b *testing.B) {
			tr := sharedBenchTree(n)
			uris := make([][]byte, 1<<14) // 4x the cache: every lookup misses
			for i := range uris {
				uris[i] = fmt.Appendf(nil, "com.app0.sensor.3.%d", i)
			}
			run(b, tr, func(i int) []byte { return uris[i&(len(uris)-1)] }, 2)
		})
	}
}

// BenchmarkBest is one dealer lookup (see BenchmarkMatch for the patterns).
func BenchmarkBest(b *testing.B) {
	for _, n := range []int{100, 10_000, 1_000_000} {
		uris := [][]byte{[]byte("com.app0.sensor.3"), []byte("com.app1.x.3")}
		wants := []string{"com.app0.sensor.3", "com.app1..3"}
		for _, cached := range []bool{true, false} {
			name := fmt.Sprintf("patterns=%d/cached", n)
			if !cached {
				name = fmt.Sprintf("patterns=%d/uncached", n)
			}
			b.Run(name, func(b *testing.B) {
				tr := sharedBenchTree(n)
				if n == 100 { // app1 does not exist
					uris[1], wants[1] = []byte("com.app0.x.3"), "com.app0"
				}
				f := func() {
					b.ReportAllocs()
					b.ResetTimer()
					for i := 0; i < b.N; i++ {
						if p, _, _, _ := tr.Best(uris[i&1]); p != wants[i&1] {
							b.Fatalf("Best = %q, want %q", p, wants[i&1])
						}
					}
				}
				if cached {
					f()
				} else {
					withoutCache(tr, f)
				}
			})
		}
	}
}

// BenchmarkMatchDepth is an uncached lookup of a URI of depth components, which matches
// a prefix of depth-1 components and a wildcard of depth components, among 10^4 other
// patterns: the walk's cost in URI depth.
func BenchmarkMatchDepth(b *testing.B) {
	for _, depth := range []int{2, 4, 8, 16} {
		b.Run(fmt.Sprintf("depth=%d", depth), func(b *testing.B) {
			tr := benchTree(10_000, WithCacheSize(0))
			comps := make([]string, depth)
			for i := range comps {
				comps[i] = fmt.Sprintf("level%d", i)
			}
			tr.Insert(strings.Join(comps[:depth-1], "."), Prefix, 1)
			w := append([]string(nil), comps...)
			w[1] = ""
			tr.Insert(strings.Join(w, "."), Wildcard, 2)
			uri := []byte(strings.Join(comps, "."))
			got := 0
			f := func(string, Kind, int) bool { got++; return true }
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				tr.Match(uri, f)
			}
			if got != 2*b.N {
				b.Fatalf("%d matches for %d lookups", got, b.N)
			}
		})
	}
}

// BenchmarkInsertRemove is one Insert plus one Remove of a prefix and a wildcard pattern
// in a tree of 10^4 patterns.
func BenchmarkInsertRemove(b *testing.B) {
	tr := benchTree(10_000)
	pats := make([]string, 1024)
	for i := range pats {
		pats[i] = fmt.Sprintf("com.app%d.sensor.x%d", i%50, i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p := pats[i&1023]
		tr.Insert(p, Prefix, 1)
		tr.Insert(p, Wildcard, 1)
		tr.Remove(p, Prefix, 1)
		tr.Remove(p, Wildcard, 1)
	}
}
