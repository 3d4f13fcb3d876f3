package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/codec"
)

func TestHistogramQuantiles(t *testing.T) {
	h := newHistogram()
	for v := int64(1); v <= 100000; v++ {
		h.Record(v * 1000)
	}
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		want := q * 100000 * 1000
		if got := float64(h.Quantile(q)); math.Abs(got-want)/want > 0.002 {
			t.Errorf("q%g = %g, want %g within 0.2%%", q, got, want)
		}
	}
	if h.Quantile(1) != 100000*1000 {
		t.Errorf("max quantile = %d", h.Quantile(1))
	}
	h.Record(-5)                 // a clock step counts as 0
	h.Record(2 * int64(histMax)) // beyond the range counts as the range's end
	if l := h.Latency(); l.MinUs != 0 || l.MaxUs != float64(histMax/1000) || l.Count != 100002 {
		t.Errorf("latency summary %+v", l)
	}
	if newHistogram().Latency() != nil {
		t.Error("empty histogram has a latency summary")
	}
}

// Per-goroutine histograms merged give what one histogram of every value gives.
func TestHistogramMerge(t *testing.T) {
	all := newHistogram()
	parts := make([]*histogram, 7)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range parts {
		parts[i] = newHistogram()
		for range 5000 + i*1000 {
			v := int64(r.ExpFloat64() * float64(50*time.Microsecond) * float64(i+1))
			parts[i].Record(v)
			all.Record(v)
		}
	}
	merged := newHistogram()
	merged.Merge(newHistogram()) // an empty one changes nothing
	for _, p := range parts {
		merged.Merge(p)
	}
	if !reflect.DeepEqual(merged.Latency(), all.Latency()) {
		t.Errorf("merged %+v\nall    %+v", merged.Latency(), all.Latency())
	}
	if merged.min != all.min || merged.max != all.max || merged.Count() != all.Count() {
		t.Errorf("min/max/count: merged %d %d %d, all %d %d %d", merged.min, merged.max, merged.Count(), all.min, all.max, all.Count())
	}

	// A histSet with more recorders than shards merges all of them too.
	set := newHistSet(3 * maxHistShards())
	for k := range 3 * maxHistShards() {
		set.recorder(k).Record(int64(k+1) * 1000)
	}
	m := set.merged()
	if m.Count() != int64(3*maxHistShards()) || m.min != 1000 || m.max != int64(3*maxHistShards())*1000 {
		t.Errorf("histSet merged: n=%d min=%d max=%d", m.Count(), m.min, m.max)
	}
}

// The pacer's schedule, on a synthetic clock.
func TestPacer(t *testing.T) {
	t0 := time.Unix(1000, 0)
	// 1000/s shared by 4 senders: each sends every 4 ms; sender 2 starts 2 ms late.
	p := newPacer(1000, 4, 2, t0)
	if p.interval != 4*time.Millisecond || !p.start.Equal(t0.Add(2*time.Millisecond)) {
		t.Fatalf("interval %v start %v", p.interval, p.start.Sub(t0))
	}
	if n, wait := p.due(t0, 100); n != 0 || wait != 2*time.Millisecond {
		t.Errorf("before start: %d due, wait %v", n, wait)
	}
	if n, _ := p.due(t0.Add(2*time.Millisecond), 100); n != 1 {
		t.Errorf("at start: %d due, want 1", n)
	}
	p.took(1)
	if n, wait := p.due(t0.Add(3*time.Millisecond), 100); n != 0 || wait != 3*time.Millisecond {
		t.Errorf("1 ms after the first send: %d due, wait %v", n, wait)
	}
	// 40 ms later (42 ms after start) sends 1..10 are due: 10 at once, in one batch.
	if n, _ := p.due(t0.Add(42*time.Millisecond), 100); n != 10 {
		t.Errorf("after 40 ms: %d due, want 10", n)
	}
	if n, _ := p.due(t0.Add(42*time.Millisecond), 3); n != 3 {
		t.Errorf("limit: %d due, want 3", n)
	}
	p.took(3)
	if n, _ := p.due(t0.Add(42*time.Millisecond), 100); n != 7 {
		t.Errorf("after 3 of 10: %d due, want 7", n)
	}
	p.took(7)
	// Over a long run the count is exactly rate x time: 10 s at 250/s per sender.
	for now := t0.Add(42 * time.Millisecond); now.Before(t0.Add(10 * time.Second)); now = now.Add(time.Millisecond) {
		n, _ := p.due(now, 1<<30)
		p.took(n)
	}
	if p.next != 2500 || p.skipped != 0 {
		t.Errorf("after 10 s: %d sends (skipped %d), want 2500", p.next, p.skipped)
	}
	// A 5 s stall: only the last second of sends is kept, the rest is skipped.
	stalled := t0.Add(15*time.Second + 2*time.Millisecond)
	n, _ := p.due(stalled, 1<<30)
	if want := int64(time.Second / p.interval); n != want || p.skipped != 1250-want+1 {
		t.Errorf("after a stall: %d due (want %d), skipped %d", n, want, p.skipped)
	}
	// No rate: always due, never waits.
	if n, wait := newPacer(0, 4, 0, t0).due(t0, 64); n != 64 || wait != 0 {
		t.Errorf("unpaced: %d %v", n, wait)
	}
}

func sampleResult() *Result {
	part := func(s string) *Result {
		return &Result{Scenario: s, URL: "rs://h:1", Realm: "realm1", Serializer: "msgpack", Size: 64, Sent: 1000, Delivered: 990,
			Errors: 1, Lost: 10, Elapsed: 2 * time.Second, MsgsPerSec: 495, MBPerSec: 0.03, SentPerSec: 500,
			Latency: &Latency{Count: 990, MinUs: 10, MeanUs: 50, P50Us: 40, P90Us: 80, P99Us: 150, P999Us: 300, MaxUs: 400},
			Frames:  1000, Writes: 30, ErrorSamples: []string{"call: ERROR wamp.error.x"}}
	}
	r := &Result{Scenario: "mixed", URL: "rs://h:1", Realm: "realm1", Serializer: "msgpack", Publishers: 1, Subscribers: 2,
		Topics: 1, Callers: 2, Callees: 1, Inflight: 4, Size: 64, Rate: 1000, Ack: true, Elapsed: 2 * time.Second,
		Sent: 2000, Delivered: 1980, Errors: 2, Lost: 20, Acked: 990, MsgsPerSec: 990, MBPerSec: 0.06,
		Router:            &RouterStats{PID: 42, CPUSeconds: 1.5, CPUPercent: 75, CPUPerMsgUs: 757, RSSBytes: 20 << 20},
		LoadgenCPUSeconds: 0.5, LoadgenCPUPerMsgUs: 125, HostCPUBusyPercent: 90, HostCPUs: 2,
		ErrorSamples: []string{"call: ERROR wamp.error.x"}, Parts: []*Result{part("pubsub"), part("rpc")}}
	return r
}

func TestResultFormat(t *testing.T) {
	r := sampleResult()
	var b bytes.Buffer
	if err := r.Format(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"scenario", "mixed", "rs://h:1 (realm realm1, msgpack)", "publishers=1 subscribers=2", "rate=1000/s",
		"window", "2.000 s", "sent ", "2,000", "delivered", "1,980", "errors", "lost",
		"throughput", "990 msgs/s", "pubsub sent", "1,000 (500 msgs/s", "rpc sent", "1,000 (500 calls/s", "rpc delivered", "pubsub latency",
		"p50 40.0 us  p90 80.0 us  p99 150.0 us  p99.9 300.0 us  max 400.0 us", "router cpu", "757.00 us per delivered event or call",
		"router rss", "20.0 MiB", "loadgen cpu", "125.00 us per message", "host cpu", "90% busy of 2 cores",
		"error ", "wamp.error.x",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	// pubsub alone: writes and acks.
	p := r.Parts[0]
	p.Ack, p.Acked = true, 990
	b.Reset()
	_ = p.Format(&b)
	for _, want := range []string{"acked", "990 (0 never acknowledged)", "loadgen writes", "1,000 messages in 30 write syscalls (33.3 per write)"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("pubsub table lacks %q:\n%s", want, b.String())
		}
	}
}

// TestResultFormatRPCUnits: an rpc table counts calls (not msgs), says what sent minus
// delivered is, and gives latencies past 10 ms in ms.
func TestResultFormatRPCUnits(t *testing.T) {
	r := &Result{Scenario: "rpc", URL: "ws://h:1/ws", Realm: "realm1", Serializer: "json", Callers: 64, Callees: 1,
		Inflight: 8, Size: 64, Elapsed: 10 * time.Second, Sent: 100512, Delivered: 100000, MsgsPerSec: 10000, SentPerSec: 10051.2,
		Latency: &Latency{Count: 100000, MinUs: 800, MeanUs: 9000, P50Us: 8200.4, P90Us: 9999.9, P99Us: 40000, P999Us: 92864.5, MaxUs: 120000}}
	var b bytes.Buffer
	if err := r.Format(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"100,512 (10,051 calls/s", "10,000 calls/s", "100,000 (the other 512 calls were in flight when the window ended)",
		"p50 8200.4 us  p90 9999.9 us  p99 40.0 ms  p99.9 92.9 ms  max 120.0 ms  (mean 9000.0 us, n=100000)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("rpc table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "msgs/s") {
		t.Errorf("rpc table counts msgs/s:\n%s", out)
	}
}

func TestResultJSONRoundTrip(t *testing.T) {
	r := sampleResult()
	var b bytes.Buffer
	if err := r.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var back Result
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&back, r) {
		t.Errorf("round trip differs:\n%+v\n%+v", &back, r)
	}
	for _, key := range []string{`"p99_us"`, `"p999_us"`, `"msgs_per_sec"`, `"mb_per_sec"`, `"cpu_per_msg_us"`, `"parts"`, `"loadgen_cpu_seconds"`} {
		if !strings.Contains(b.String(), key) {
			t.Errorf("JSON lacks %s", key)
		}
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -12345: "-12,345"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
	if l := progressLine(1500*time.Millisecond, "run", 12345, 123450, 99999.6, 2); !strings.Contains(l, "sent 12,345  delivered 123,450  100,000 msgs/s  errors 2") {
		t.Errorf("progress line %q", l)
	}
}

// Templates build the same bytes as the codec, for every serializer and id width.
func TestTemplate(t *testing.T) {
	for _, ser := range []codec.Serializer{codec.JSON, codec.MsgPack, codec.CBOR, codec.UBJSON} {
		pl, err := newPayload(ser, 100)
		if err != nil {
			t.Fatal(err)
		}
		args := pl.stamp(time.Now().UnixNano())
		msgs := []codec.Message{
			{Type: codec.PUBLISH, URI: []byte("loadgen.topic.1")},
			{Type: codec.PUBLISH, URI: []byte("t"), Details: codec.Details{Has: codec.KeyAcknowledge, Acknowledge: true}},
			{Type: codec.CALL, URI: []byte("loadgen.echo.0")},
			{Type: codec.YIELD},
		}
		for _, m := range msgs {
			tm, err := newTemplate(ser, m)
			if err != nil {
				t.Fatalf("%v %v: %v", ser, m.Type, err)
			}
			for _, id := range []uint64{1, 23, 24, 127, 128, 255, 256, 65535, 65536, 1<<32 - 1, 1 << 32, 1<<53 - 1} {
				want := m
				want.Request, want.Args = id, args
				enc, err := codec.For(ser).Append(nil, &want)
				if err != nil {
					t.Fatal(err)
				}
				got := tm.build(nil, id, args)
				if !bytes.Equal(got, enc) {
					t.Errorf("%v %v id %d:\n got % x\nwant % x", ser, m.Type, id, got, enc)
				}
			}
		}
	}
}

// Ticket authentication, and a publish-only run against the no-op sink over both
// transports (the sink has no broker: nothing is delivered, everything is sent).
func TestSinkTicket(t *testing.T) {
	s, err := StartSink("127.0.0.1:0", "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, url := range []string{s.WebSocketURL(), s.RawSocketURL()} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		o := Options{URLs: []string{url}, AuthID: "bench", Ticket: "s3cret", PublishOnly: true, Publishers: 2, Topics: 2,
			Serializer: codec.CBOR, Duration: 200 * time.Millisecond}
		r, err := Run(ctx, "pubsub", o)
		cancel()
		if err != nil {
			t.Fatal(url, err)
		}
		if r.Sent <= 0 || r.Errors != 0 || r.Subscribers != 0 {
			t.Errorf("%s: sent %d, errors %d %q, subscribers %d", url, r.Sent, r.Errors, r.ErrorSamples, r.Subscribers)
		}
		// client.Session (connect) authenticates too.
		ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
		o = Options{URLs: []string{url}, AuthID: "bench", Ticket: "s3cret", Sessions: 5, Duration: time.Millisecond}
		r, err = Run(ctx, "connect", o)
		cancel()
		if err != nil || r.Delivered != 5 || r.Errors != 0 {
			t.Errorf("%s connect: %v, joined %d, errors %q", url, err, r.Delivered, r.ErrorSamples)
		}
	}
	if s.Bytes() <= 0 {
		t.Error("the sink read nothing")
	}
	// A wrong ticket fails the run.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = Run(ctx, "pubsub", Options{URLs: []string{s.RawSocketURL()}, Ticket: "wrong", PublishOnly: true, Duration: 100 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "not_authorized") {
		t.Errorf("wrong ticket: %v", err)
	}
}

// TestSinkCeiling logs how fast one publisher pushes publications into the in-process
// no-op sink (the sink's reads share the process, so this is a lower bound; the README
// figure runs the sink in its own process). No timed assertion.
func TestSinkCeiling(t *testing.T) {
	if testing.Short() {
		t.Skip("measurement")
	}
	s, err := StartSink("127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := Run(ctx, "pubsub", Options{URLs: []string{s.RawSocketURL()}, PublishOnly: true, Duration: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if r.Sent <= 0 || r.Errors != 0 {
		t.Errorf("sent %d, errors %q", r.Sent, r.ErrorSamples)
	}
	t.Logf("loadgen -> no-op sink: %.0f publications/s, loadgen+sink CPU %.2f s (%.2f us per publication), %.1f per write",
		r.SentPerSec, r.LoadgenCPUSeconds, r.LoadgenCPUPerMsgUs, float64(r.Frames)/float64(max(r.Writes, 1)))
}
