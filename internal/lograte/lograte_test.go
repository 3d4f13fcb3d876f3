package lograte

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// sink keeps the summary lines a Limiter writes.
type sink struct {
	mu    sync.Mutex
	lines []slog.Record
}

func (s *sink) Enabled(context.Context, slog.Level) bool { return true }
func (s *sink) Handle(_ context.Context, r slog.Record) error {
	s.mu.Lock()
	s.lines = append(s.lines, r.Clone())
	s.mu.Unlock()
	return nil
}
func (s *sink) WithAttrs([]slog.Attr) slog.Handler { return s }
func (s *sink) WithGroup(string) slog.Handler      { return s }

// summaries returns cause/remote -> suppressed count of the lines so far.
func (s *sink) summaries() map[[2]string]uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[[2]string]uint64{}
	for _, r := range s.lines {
		var cause, remote string
		var n uint64
		r.Attrs(func(a slog.Attr) bool {
			switch a.Key {
			case "cause":
				cause = a.Value.String()
			case "remote":
				remote = a.Value.String()
			case "suppressed":
				n = a.Value.Uint64()
			}
			return true
		})
		out[[2]string{cause, remote}] += n
	}
	return out
}

func (s *sink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.lines)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

var (
	ip1 = netip.MustParseAddr("192.0.2.1")
	ip2 = netip.MustParseAddr("2001:db8::2")
)

func TestBurstThenSummary(t *testing.T) {
	s := &sink{}
	l := New(slog.New(s), 3, 500*time.Millisecond, 0)
	allowed := 0
	for range 100 {
		if l.Allow(slog.LevelWarn, "bad frame", ip1) {
			allowed++
		}
	}
	// Another address and another cause have their own budgets.
	for range 3 {
		if !l.Allow(slog.LevelWarn, "bad frame", ip2) || !l.Allow(slog.LevelWarn, "bad login", ip1) {
			t.Fatal("independent key refused")
		}
	}
	if allowed != 3 || s.count() != 0 {
		t.Fatalf("allowed %d, %d summaries before the interval ended", allowed, s.count())
	}
	waitFor(t, "the summary", func() bool { return s.count() > 0 })
	time.Sleep(20 * time.Millisecond)
	got := s.summaries()
	if len(got) != 1 || got[[2]string{"bad frame", "192.0.2.1"}] != 97 {
		t.Fatalf("summaries %v, want bad frame 192.0.2.1 97", got)
	}
	s.mu.Lock()
	msg, level := s.lines[0].Message, s.lines[0].Level
	s.mu.Unlock()
	if msg != "suppressed 97 similar lines" || level != slog.LevelWarn {
		t.Fatalf("summary %q at %s", msg, level)
	}
	// A new interval: the budget is back.
	if !l.Allow(slog.LevelWarn, "bad frame", ip1) {
		t.Fatal("budget not restored in the next interval")
	}
}

// TestSummaryBeforeNextAllowedLine: when the next line of a key comes after its interval
// and the timer has not written the summary yet, Allow writes it first.
func TestSummaryBeforeNextAllowedLine(t *testing.T) {
	s := &sink{}
	l := New(slog.New(s), 1, time.Hour, 0)
	l.Allow(slog.LevelInfo, "x", ip1)
	l.Allow(slog.LevelInfo, "x", ip1)
	l.Allow(slog.LevelInfo, "x", ip1)
	l.mu.Lock()
	l.keys[key{cause: "x", addr: ip1}].start = time.Now().Add(-2 * time.Hour) // the hour has passed
	l.mu.Unlock()
	if !l.Allow(slog.LevelInfo, "x", ip1) {
		t.Fatal("refused in a new interval")
	}
	if got := s.summaries(); got[[2]string{"x", "192.0.2.1"}] != 2 || s.count() != 1 {
		t.Fatalf("summaries %v", got)
	}
}

func TestKeysAreBounded(t *testing.T) {
	s := &sink{}
	l := New(slog.New(s), 2, time.Hour, 16)
	allowed := 0
	for i := range 10000 {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		if l.Allow(slog.LevelWarn, "spray", a) {
			allowed++
		}
	}
	l.mu.Lock()
	n := len(l.keys)
	var suppressed uint64
	for _, e := range l.keys {
		suppressed += e.suppressed
	}
	overflow := l.keys[key{cause: "spray", overflow: true}]
	l.mu.Unlock()
	if n > 16+1 { // plus the cause's overflow key
		t.Fatalf("%d keys tracked, cap 16+1", n)
	}
	if allowed > 16*2+2 || overflow == nil || int(suppressed)+allowed != 10000 {
		t.Fatalf("allowed %d, suppressed %d (want 10000 in all), overflow key %v", allowed, suppressed, overflow)
	}
}

// TestOverflowSummary: the shared key of further addresses gets its summary line.
func TestOverflowSummary(t *testing.T) {
	s := &sink{}
	l := New(slog.New(s), 1, 100*time.Millisecond, 2)
	for i := range 10 {
		l.Allow(slog.LevelWarn, "spray", netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}))
	}
	waitFor(t, "the overflow summary", func() bool { return s.summaries()[[2]string{"spray", "other addresses"}] > 0 })
}

func TestConcurrentCountsAddUp(t *testing.T) {
	s := &sink{}
	l := New(slog.New(s), 4, 20*time.Millisecond, 0)
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	const workers, each = 8, 2000
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := netip.AddrFrom4([4]byte{10, 0, 0, byte(w % 3)})
			n := 0
			for range each {
				if l.Allow(slog.LevelWarn, "c", a) {
					n++
				}
			}
			mu.Lock()
			allowed += n
			mu.Unlock()
		}()
	}
	wg.Wait()
	// Once every interval is over the timer has written every summary.
	var total uint64
	deadline := time.Now().Add(5 * time.Second)
	for int(total)+allowed != workers*each && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		total = 0
		for _, v := range s.summaries() {
			total += v
		}
	}
	if int(total)+allowed != workers*each {
		t.Fatalf("allowed %d + suppressed %d != %d", allowed, total, workers*each)
	}
}

func TestSuppressedLineDoesNotAllocate(t *testing.T) {
	l := New(slog.New(&sink{}), 1, time.Hour, 0)
	addr := Addr(&net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 1234})
	l.Allow(slog.LevelWarn, "c", addr)
	if n := testing.AllocsPerRun(1000, func() {
		if l.Allow(slog.LevelWarn, "c", Addr(&net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 1})) {
			t.Fatal("allowed")
		}
	}); n != 0 {
		t.Fatalf("%v allocations per suppressed line", n)
	}
}

func TestAddr(t *testing.T) {
	if a := Addr(&net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.1"), Port: 1}); a != ip1 {
		t.Fatalf("v4-mapped: %v", a)
	}
	if a := Addr(&net.UnixAddr{Name: "/x", Net: "unix"}); a.IsValid() {
		t.Fatalf("unix: %v", a)
	}
	if a := Addr(nil); a.IsValid() {
		t.Fatal("nil")
	}
	var l *Limiter
	if !l.Allow(slog.LevelInfo, "x", ip1) {
		t.Fatal("nil Limiter refused")
	}
}

func BenchmarkAllowSuppressed(b *testing.B) {
	l := New(slog.New(&sink{}), 1, time.Hour, 0)
	remote := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 1}
	l.Allow(slog.LevelWarn, "c", Addr(remote))
	b.ReportAllocs()
	for b.Loop() {
		l.Allow(slog.LevelWarn, "c", Addr(remote))
	}
}
