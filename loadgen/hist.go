package loadgen

import (
	"math"
	"math/bits"
	"sync"
	"time"
)

// histogram is a log-linear latency histogram of nanosecond values with 128 sub-buckets
// per power of two (relative error below 0.8 %), covering the whole int64 range. It is a
// stand-in for an HDR histogram; Merge and Quantile are all the results need.
// Not safe for concurrent use; lockedHist is.
type histogram struct {
	counts   []uint64
	n        uint64
	sum      float64
	min, max int64
}

const (
	histSubBits = 7
	histBuckets = (64-histSubBits)<<histSubBits + 1<<histSubBits
)

func newHistogram() *histogram {
	return &histogram{counts: make([]uint64, histBuckets), min: math.MaxInt64}
}

func histIndex(v uint64) int {
	if v < 1<<histSubBits {
		return int(v)
	}
	l := bits.Len64(v)
	s := l - histSubBits - 1
	return (l-histSubBits)<<histSubBits + int(v>>s) - 1<<histSubBits
}

// histUpper is the largest value of bucket i.
func histUpper(i int) int64 {
	if i < 1<<histSubBits {
		return int64(i)
	}
	l := i>>histSubBits + histSubBits
	s := l - histSubBits - 1
	m := uint64(i&(1<<histSubBits-1)) + 1<<histSubBits
	u := (m+1)<<s - 1
	if u > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(u)
}

// Record adds one value; negative values (clock steps) count as 0.
func (h *histogram) Record(ns int64) {
	if ns < 0 {
		ns = 0
	}
	h.counts[histIndex(uint64(ns))]++
	h.n++
	h.sum += float64(ns)
	h.min = min(h.min, ns)
	h.max = max(h.max, ns)
}

// Merge adds o's values to h.
func (h *histogram) Merge(o *histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	h.min = min(h.min, o.min)
	h.max = max(h.max, o.max)
}

// Quantile returns the value at quantile q (0..1), within the bucket precision, never
// above the recorded maximum.
func (h *histogram) Quantile(q float64) int64 {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(histUpper(i), h.max)
		}
	}
	return h.max
}

// Latency returns the summary for a Result, nil when nothing was recorded.
func (h *histogram) Latency() *Latency {
	if h.n == 0 {
		return nil
	}
	us := func(ns int64) float64 { return float64(ns) / float64(time.Microsecond) }
	return &Latency{
		Count:  h.n,
		MinUs:  us(h.min),
		MeanUs: h.sum / float64(h.n) / float64(time.Microsecond),
		P50Us:  us(h.Quantile(0.50)),
		P90Us:  us(h.Quantile(0.90)),
		P99Us:  us(h.Quantile(0.99)),
		P999Us: us(h.Quantile(0.999)),
		MaxUs:  us(h.max),
	}
}

// lockedHist is a histogram behind a mutex: each recorder (session reader, caller
// goroutine) owns one, so the lock is uncontended until the final merge.
type lockedHist struct {
	mu sync.Mutex
	h  *histogram
}

func newLockedHist() *lockedHist { return &lockedHist{h: newHistogram()} }

func (l *lockedHist) Record(ns int64) {
	l.mu.Lock()
	l.h.Record(ns)
	l.mu.Unlock()
}

func (l *lockedHist) mergeInto(dst *histogram) {
	l.mu.Lock()
	dst.Merge(l.h)
	l.mu.Unlock()
}
