package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/codec"
	"github.com/switchyard-wamp/switchyard/node"
)

// startNode runs a node on a loopback port for one test.
func startNode(t *testing.T) *node.Node {
	t.Helper()
	n, err := node.Start(node.Config{Listen: "127.0.0.1:0", RawSocket: "",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_ = n.Stop(ctx)
	})
	return n
}

// run runs a scenario against a fresh node and checks what holds whatever the speed.
func run(t *testing.T, name string, o Options) *Result {
	t.Helper()
	n := startNode(t)
	o.URL = n.WebSocketURL()
	o.RouterPID = os.Getpid() // the router runs in this process
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := Run(ctx, name, o)
	if err != nil {
		t.Fatal(err)
	}
	if r.Errors != 0 {
		t.Errorf("errors = %d: %q", r.Errors, r.ErrorSamples)
	}
	if r.Delivered <= 0 {
		t.Errorf("delivered = %d, want > 0", r.Delivered)
	}
	if r.Sent <= 0 {
		t.Errorf("sent = %d, want > 0", r.Sent)
	}
	if r.Latency == nil || r.Latency.Count == 0 {
		t.Errorf("no latency recorded")
	} else if l := r.Latency; !(l.P50Us <= l.P90Us && l.P90Us <= l.P99Us && l.P99Us <= l.P999Us && l.P999Us <= l.MaxUs) {
		t.Errorf("latency percentiles out of order: %+v", l)
	}
	if r.Router == nil || r.Router.RSSBytes <= 0 {
		t.Errorf("router stats missing: %+v", r.Router)
	}
	if r.Elapsed <= 0 || r.MsgsPerSec <= 0 {
		t.Errorf("elapsed %v, msgs/s %v", r.Elapsed, r.MsgsPerSec)
	}

	var table bytes.Buffer
	if err := r.Format(&table); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"scenario", name, "delivered", "throughput", "latency (us)", "router cpu"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	var js bytes.Buffer
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back Result
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatalf("JSON does not read back: %v\n%s", err, js.String())
	}
	if back.Scenario != name || back.Delivered != r.Delivered || back.Latency == nil || back.Router == nil {
		t.Errorf("JSON round trip lost fields:\n%s", js.String())
	}
	t.Logf("\n%s", table.String())
	return r
}

func TestPubSub(t *testing.T) {
	r := run(t, "pubsub", Options{Subscribers: 3, Topics: 2, Publishers: 2, Duration: 500 * time.Millisecond, Warmup: 100 * time.Millisecond})
	if r.Lost != 0 {
		t.Errorf("lost = %d, want 0 (the window paces the publishers)", r.Lost)
	}
}

func TestPubSubCountMsgPack(t *testing.T) {
	r := run(t, "pubsub", Options{Subscribers: 2, Serializer: codec.MsgPack, Count: 2000, Size: 128})
	if r.Sent < 2000 {
		t.Errorf("sent = %d, want >= 2000", r.Sent)
	}
}

func TestPubSubRate(t *testing.T) {
	r := run(t, "pubsub", Options{Subscribers: 2, Serializer: codec.CBOR, Rate: 2000, Duration: 500 * time.Millisecond})
	if r.Sent > 1500 { // 2000/s for 0.5 s, plus the one-second backlog allowance at most
		t.Errorf("sent = %d at --rate 2000 for 0.5 s", r.Sent)
	}
}

func TestRPC(t *testing.T) {
	run(t, "rpc", Options{Callers: 4, Callees: 2, Inflight: 2, Duration: 500 * time.Millisecond, Warmup: 100 * time.Millisecond})
}

func TestConnect(t *testing.T) {
	r := run(t, "connect", Options{Sessions: 200, Concurrency: 16, Duration: 100 * time.Millisecond})
	if r.Delivered != 200 {
		t.Errorf("joined %d of 200", r.Delivered)
	}
	if r.Router.RSSBeforeBytes <= 0 {
		t.Errorf("no RSS before: %+v", r.Router)
	}
}

func TestPayload(t *testing.T) {
	ns := time.Now().UnixNano()
	for _, ser := range []codec.Serializer{codec.JSON, codec.MsgPack, codec.CBOR} {
		for _, size := range []int{minSize(ser), 33, 64, 300, 70000} {
			p, err := newPayload(ser, size)
			if err != nil {
				t.Fatal(ser, size, err)
			}
			raw := p.stamp(ns)
			if len(raw) > size || len(raw) < size-2 {
				t.Errorf("%v size %d: payload is %d bytes", ser, size, len(raw))
			}
			got, ok := payloadTime(ser, raw)
			if !ok || got != ns {
				t.Errorf("%v size %d: time %d %v, want %d", ser, size, got, ok, ns)
			}
			v, err := codec.DecodeValue(ser, raw)
			if err != nil {
				t.Fatalf("%v size %d: %v", ser, size, err)
			}
			l, _ := v.([]any)
			if len(l) != 2 || l[0] != uint64(ns) || l[1] != p.pad {
				t.Errorf("%v size %d: decodes to %#v", ser, size, v)
			}
			// A compact re-encoding (as a router transcoding it might produce) still reads.
			small, err := codec.AppendValue(nil, ser, []any{int64(12345), "x"})
			if err != nil {
				t.Fatal(err)
			}
			if got, ok := payloadTime(ser, small); !ok || got != 12345 {
				t.Errorf("%v compact: %d %v", ser, got, ok)
			}
		}
	}
}

func TestHistogram(t *testing.T) {
	h := newHistogram()
	for v := int64(1); v <= 100000; v++ {
		h.Record(v * 1000)
	}
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		want := q * 100000 * 1000
		if got := float64(h.Quantile(q)); math.Abs(got-want)/want > 0.01 {
			t.Errorf("q%g = %g, want %g within 1%%", q, got, want)
		}
	}
	if h.Quantile(1) != 100000*1000 {
		t.Errorf("max quantile = %d", h.Quantile(1))
	}
	for i := 0; i < histBuckets; i++ {
		if got := histIndex(uint64(histUpper(i))); got != i && histUpper(i) != math.MaxInt64 {
			t.Fatalf("bucket %d: upper %d maps to %d", i, histUpper(i), got)
		}
	}
}

func TestOptions(t *testing.T) {
	var o Options
	o.Defaults("pubsub")
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	if o.Duration != DefaultDuration || o.Size != DefaultSize || o.Serializer != codec.JSON {
		t.Errorf("defaults: %+v", o)
	}
	o.Size = 5
	if o.Validate() == nil {
		t.Error("size 5 accepted")
	}
	if _, err := Run(context.Background(), "nope", Options{}); err == nil {
		t.Error("unknown scenario accepted")
	}
	if s, err := ParseSerializer("msgpack"); err != nil || s != codec.MsgPack {
		t.Error(s, err)
	}
}
