package loadgen

import (
	"math"
	"runtime"
	"sync"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// Latencies are recorded in nanoseconds in HDR histograms (HdrHistogram/hdrhistogram-go)
// with 3 significant digits (0.1 % relative error) from 1 ns to histMax; longer values
// count as histMax. One histogram costs about 220 KB.
const (
	histMax     = int64(time.Minute)
	histSigFigs = 3
)

// histogram is one recorder's HDR histogram plus the exact minimum, maximum and sum (HDR
// reports those at bucket precision). Not safe for concurrent use: each recording
// goroutine owns one (or one shard of a histSet), and Merge combines them at the end.
type histogram struct {
	h        *hdr.Histogram
	sum      float64
	min, max int64
}

func newHistogram() *histogram {
	return &histogram{h: hdr.New(1, histMax, histSigFigs), min: math.MaxInt64}
}

// Record adds one value in ns; negative values (clock steps) count as 0, values above
// histMax as histMax.
func (h *histogram) Record(ns int64) {
	ns = min(max(ns, 0), histMax)
	_ = h.h.RecordValue(ns) // cannot fail: ns is within the trackable range
	h.sum += float64(ns)
	h.min = min(h.min, ns)
	h.max = max(h.max, ns)
}

// Count is the number of recorded values.
func (h *histogram) Count() int64 { return h.h.TotalCount() }

// Merge adds o's values to h.
func (h *histogram) Merge(o *histogram) {
	if o.Count() == 0 {
		return
	}
	h.h.Merge(o.h)
	h.sum += o.sum
	h.min = min(h.min, o.min)
	h.max = max(h.max, o.max)
}

// Quantile returns the value at quantile q (0..1) at HDR precision, never above the
// recorded maximum.
func (h *histogram) Quantile(q float64) int64 {
	if h.Count() == 0 {
		return 0
	}
	return min(h.h.ValueAtQuantile(q*100), h.max)
}

// Latency returns the summary for a Result, nil when nothing was recorded.
func (h *histogram) Latency() *Latency {
	n := h.Count()
	if n == 0 {
		return nil
	}
	us := func(ns int64) float64 { return float64(ns) / float64(time.Microsecond) }
	return &Latency{
		Count:  uint64(n),
		MinUs:  us(h.min),
		MeanUs: h.sum / float64(n) / float64(time.Microsecond),
		P50Us:  us(h.Quantile(0.50)),
		P90Us:  us(h.Quantile(0.90)),
		P99Us:  us(h.Quantile(0.99)),
		P999Us: us(h.Quantile(0.999)),
		MaxUs:  us(h.max),
	}
}

// histSet is the latency histograms of many recording goroutines (connection readers):
// recorder k records into shard k%len(shards) under the shard's mutex. With no more
// recorders than shards, every goroutine has a histogram of its own and the lock is never
// contended; beyond that the shards bound the memory (a histogram is ~220 KB).
type histSet struct {
	shards []lockedHist
}

type lockedHist struct {
	mu sync.Mutex
	h  *histogram
	_  [40]byte // keep neighbouring shards' mutexes off one cache line
}

// maxHistShards bounds the histograms of a histSet.
func maxHistShards() int { return max(8, 2*runtime.GOMAXPROCS(0)) }

func newHistSet(recorders int) *histSet {
	n := min(max(recorders, 1), maxHistShards())
	s := &histSet{shards: make([]lockedHist, n)}
	for i := range s.shards {
		s.shards[i].h = newHistogram()
	}
	return s
}

// recorder returns the shard of recorder k.
func (s *histSet) recorder(k int) *lockedHist { return &s.shards[k%len(s.shards)] }

func (l *lockedHist) Record(ns int64) {
	l.mu.Lock()
	l.h.Record(ns)
	l.mu.Unlock()
}

// merged returns one histogram with the values of every shard.
func (s *histSet) merged() *histogram {
	h := newHistogram()
	for i := range s.shards {
		l := &s.shards[i]
		l.mu.Lock()
		h.Merge(l.h)
		l.mu.Unlock()
	}
	return h
}
