package link

import (
	"encoding/binary"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the process's user+system CPU time so far (getrusage).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the process's CPU time (user+system, every goroutine: both ends of
// the link) per op since start, as cpu-ns/op: on a shared machine it is steadier than
// ns/op, which also counts the time the process waits for a core.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
}

// counter is a Handler that counts frames and, when echo is set, sends each frame back.
type counter struct {
	frames atomic.Uint64
	echo   bool
	got    chan struct{}
}

func (c *counter) OnLinkUp(*Link) {}
func (c *counter) OnFrame(l *Link, f *Frame) {
	c.frames.Add(1)
	if c.echo {
		_ = l.Send(f.Kind, f.Session, f.Payload)
	}
	if c.got != nil {
		c.got <- struct{}{}
	}
}
func (c *counter) OnLinkDown(*Link, error) {}

// benchPair returns a dialer-side link to a listener whose handler is lh.
func benchPair(b *testing.B, lh, dh Handler) *Link {
	b.Helper()
	lc, dc := cfg("r1", "router", nil), cfg("p1", "proxy", nil)
	lc.OutboundLimit, dc.OutboundLimit = 256<<20, 256<<20
	ln, err := Listen("127.0.0.1:0", lc, lh)
	if err != nil {
		b.Fatal(err)
	}
	p := Dial(ln.Addr().String(), 1, dc, dh)
	b.Cleanup(func() { p.Close(); ln.Close() })
	deadline := time.Now().Add(5 * time.Second)
	for p.Pick(0) == nil {
		if time.Now().After(deadline) {
			b.Fatal("no link")
		}
		time.Sleep(time.Millisecond)
	}
	return p.Pick(0)
}

// pace keeps the queue under 1 MiB so a benchmark measures a link that keeps up,
// not a growing buffer.
func pace(l *Link) {
	for l.Stats().Queued > 1<<20 {
		runtime.Gosched()
	}
}

// BenchmarkSend: one 64-byte frame per op, distinct payloads (no coalescing).
func BenchmarkSend(b *testing.B) {
	rc := &counter{}
	l := benchPair(b, rc, &counter{})
	payload := make([]byte, 64)
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := range b.N {
		binary.BigEndian.PutUint64(payload, uint64(i))
		if err := l.Send(kEvent, uint64(i%1000+1), payload); err != nil {
			b.Fatal(err)
		}
		if i%1024 == 0 {
			pace(l)
		}
	}
	for rc.frames.Load() < uint64(b.N) {
		runtime.Gosched()
	}
	b.StopTimer()
	reportCPU(b, cpu0)
	reportLink(b, l)
}

// BenchmarkSendCoalesced: the fan-out case, one 64-byte EVENT to many sessions behind
// the link; most Sends only add a target id to the tail frame.
func BenchmarkSendCoalesced(b *testing.B) {
	l := benchPair(b, &counter{}, &counter{})
	payload := make([]byte, 64)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if i%1000 == 0 {
			binary.BigEndian.PutUint64(payload, uint64(i)) // a new event every 1000 targets
			pace(l)
		}
		if err := l.Send(kEvent, uint64(i%1000+1), payload); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportLink(b, l)
}

// BenchmarkSendParallel: Send from all Ps at once on one link.
func BenchmarkSendParallel(b *testing.B) {
	l := benchPair(b, &counter{}, &counter{})
	b.ReportAllocs()
	var seq atomic.Uint64
	b.RunParallel(func(pb *testing.PB) {
		payload := make([]byte, 64)
		i := seq.Add(1 << 32)
		for pb.Next() {
			i++
			binary.BigEndian.PutUint64(payload, i)
			if err := l.Send(kEvent, i, payload); err != nil {
				b.Fatal(err)
			}
			if i%1024 == 0 {
				pace(l)
			}
		}
	})
	b.StopTimer()
	reportLink(b, l)
}

// BenchmarkPingPong: one frame to the listener and back per op (a round trip).
func BenchmarkPingPong(b *testing.B) {
	dc := &counter{got: make(chan struct{}, 1)}
	l := benchPair(b, &counter{echo: true}, dc)
	payload := make([]byte, 64)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := range b.N {
		if err := l.Send(kEvent, uint64(i+1), payload); err != nil {
			b.Fatal(err)
		}
		<-dc.got
	}
	b.StopTimer()
	reportCPU(b, cpu0)
	reportLink(b, l)
}

// BenchmarkThroughput: 4 senders, 100-byte frames, until the receiver has all of them.
func BenchmarkThroughput(b *testing.B) {
	rc := &counter{}
	l := benchPair(b, rc, &counter{})
	const senders = 4
	b.ReportAllocs()
	b.SetBytes(100)
	b.ResetTimer()
	cpu0 := cpuTime()
	start := time.Now()
	var wg sync.WaitGroup
	for g := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			payload := make([]byte, 100)
			for i := g; i < b.N; i += senders {
				binary.BigEndian.PutUint64(payload, uint64(i))
				if err := l.Send(kEvent, uint64(i%1000+1), payload); err != nil {
					b.Error(err)
					return
				}
				if i%1024 < senders {
					pace(l)
				}
			}
		}()
	}
	wg.Wait()
	for rc.frames.Load() < uint64(b.N) {
		runtime.Gosched()
	}
	b.StopTimer()
	reportCPU(b, cpu0)
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "frames/s")
	reportLink(b, l)
}

func reportLink(b *testing.B, l *Link) {
	s := l.Stats()
	if s.Writes > 0 {
		b.ReportMetric(float64(s.BytesOut)/float64(s.Writes), "bytes/write")
		b.ReportMetric(float64(s.FramesOut)/float64(s.Writes), "frames/write")
	}
}

// replies is a Handler that hands each frame's session to the channel of that session
// (BenchmarkPingPongParallel's callers wait on their own channel).
type replies struct{ ch []chan struct{} }

func (r *replies) OnLinkUp(*Link)          {}
func (r *replies) OnLinkDown(*Link, error) {}
func (r *replies) OnFrame(_ *Link, f *Frame) {
	f.Each(func(one *Frame) { r.ch[one.Session-1] <- struct{}{} })
}

// BenchmarkPingPongParallel: 64 callers, each with one frame in flight to the listener
// and back (the cluster's RPC shape on one link: many sessions, one call each).
func BenchmarkPingPongParallel(b *testing.B) {
	const callers = 64
	dr := &replies{}
	for range callers {
		dr.ch = append(dr.ch, make(chan struct{}, 1))
	}
	l := benchPair(b, &counter{echo: true}, dr)
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	var wg sync.WaitGroup
	for c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			payload := make([]byte, 64)
			binary.BigEndian.PutUint64(payload, uint64(c))
			for next.Add(1) <= int64(b.N) {
				if err := l.Send(kEvent, uint64(c+1), payload); err != nil {
					b.Error(err)
					return
				}
				<-dr.ch[c]
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	reportCPU(b, cpu0)
	reportLink(b, l)
}
