package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/codec"
	"github.com/switchyard-wamp/switchyard/node"
)

// startNode runs a node on a loopback port for one test.
func startNode(t *testing.T) *node.Node {
	t.Helper()
	n, err := node.Start(node.Config{Listeners: []node.Listener{{Address: "127.0.0.1:0"}},
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

// run runs a scenario against a fresh node over WebSocket (rs: RawSocket) and checks
// what holds whatever the speed.
func run(t *testing.T, name string, rs bool, o Options) *Result {
	t.Helper()
	n := startNode(t)
	o.URLs = []string{n.WebSocketURL()}
	if rs {
		o.URLs = []string{n.RawSocketURL()}
	}
	o.RouterPIDs = []int{os.Getpid()} // the router runs in this process
	var prog bytes.Buffer
	o.Progress = &lockedWriter{w: &prog}
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
	lats := []*Latency{r.Latency}
	if name == "mixed" {
		lats = nil
		if len(r.Parts) != 2 || r.Parts[0].Scenario != "pubsub" || r.Parts[1].Scenario != "rpc" {
			t.Fatalf("mixed parts: %+v", r.Parts)
		}
		for _, p := range r.Parts {
			if p.Delivered <= 0 || p.Sent <= 0 || p.MsgsPerSec <= 0 {
				t.Errorf("%s part: sent %d delivered %d, %v msgs/s", p.Scenario, p.Sent, p.Delivered, p.MsgsPerSec)
			}
			lats = append(lats, p.Latency)
		}
		if r.Delivered != r.Parts[0].Delivered+r.Parts[1].Delivered {
			t.Errorf("mixed delivered %d is not the sum of its parts", r.Delivered)
		}
	}
	for _, l := range lats {
		if l == nil || l.Count == 0 {
			t.Errorf("no latency recorded")
		} else if !(l.P50Us <= l.P90Us && l.P90Us <= l.P99Us && l.P99Us <= l.P999Us && l.P999Us <= l.MaxUs) {
			t.Errorf("latency percentiles out of order: %+v", l)
		}
	}
	if r.Router == nil || r.Router.RSSBytes <= 0 {
		t.Errorf("router stats missing: %+v", r.Router)
	}
	if r.Elapsed <= 0 || r.MsgsPerSec <= 0 {
		t.Errorf("elapsed %v, msgs/s %v", r.Elapsed, r.MsgsPerSec)
	}
	if name != "connect" && (r.Writes <= 0 || r.Frames < r.Writes) {
		t.Errorf("frames %d in %d writes", r.Frames, r.Writes)
	}

	var table bytes.Buffer
	if err := r.Format(&table); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"scenario", name, "delivered", "throughput", "router cpu", "loadgen cpu"} {
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
	if back.Scenario != name || back.Delivered != r.Delivered || back.Router == nil {
		t.Errorf("JSON round trip lost fields:\n%s", js.String())
	}
	t.Logf("\n%s", table.String())
	return r
}

// lockedWriter serialises writes (the progress goroutine writes while the test reads).
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestPubSub(t *testing.T) {
	for _, rs := range []bool{false, true} {
		t.Run(map[bool]string{false: "ws", true: "rs"}[rs], func(t *testing.T) {
			r := run(t, "pubsub", rs, Options{Subscribers: 3, Topics: 2, Publishers: 2, Duration: 500 * time.Millisecond, Warmup: 100 * time.Millisecond})
			if r.Lost != 0 {
				t.Errorf("lost = %d, want 0 (the window paces the publishers)", r.Lost)
			}
		})
	}
}

func TestPubSubCountMsgPackAck(t *testing.T) {
	r := run(t, "pubsub", true, Options{Subscribers: 2, Serializer: codec.MsgPack, Count: 2000, Size: 128, Ack: true})
	if r.Sent < 2000 {
		t.Errorf("sent = %d, want >= 2000", r.Sent)
	}
	if r.Acked <= 0 || r.Unacked != 0 {
		t.Errorf("acked %d, unacked %d", r.Acked, r.Unacked)
	}
}

// TestUBJSON runs pub/sub (acknowledged) and RPC over UBJSON: templates,
// payload stamps and latency reads in UBJSON against a real node.
func TestUBJSON(t *testing.T) {
	r := run(t, "pubsub", false, Options{Subscribers: 2, Serializer: codec.UBJSON, Size: 100, Ack: true,
		Duration: 300 * time.Millisecond, Warmup: 50 * time.Millisecond})
	if r.Acked <= 0 || r.Lost != 0 {
		t.Errorf("pubsub: sent %d acked %d lost %d", r.Sent, r.Acked, r.Lost)
	}
	r = run(t, "rpc", true, Options{Callers: 2, Callees: 1, Inflight: 2, Serializer: codec.UBJSON, Duration: 300 * time.Millisecond})
	if r.Lost != 0 {
		t.Errorf("rpc: lost %d", r.Lost)
	}
}

func TestPubSubRate(t *testing.T) {
	// Only that a paced run works: the pacing itself is tested by TestPacer.
	run(t, "pubsub", false, Options{Subscribers: 2, Serializer: codec.CBOR, Rate: 2000, Duration: 300 * time.Millisecond})
}

func TestRPC(t *testing.T) {
	for _, rs := range []bool{false, true} {
		t.Run(map[bool]string{false: "ws", true: "rs"}[rs], func(t *testing.T) {
			r := run(t, "rpc", rs, Options{Callers: 4, Callees: 2, Inflight: 2, Duration: 500 * time.Millisecond, Warmup: 100 * time.Millisecond})
			if r.Lost != 0 {
				t.Errorf("lost = %d", r.Lost)
			}
		})
	}
}

func TestRPCRate(t *testing.T) {
	run(t, "rpc", true, Options{Callers: 2, Inflight: 4, Serializer: codec.CBOR, Rate: 2000, Duration: 300 * time.Millisecond})
}

func TestConnect(t *testing.T) {
	for _, rs := range []bool{false, true} {
		t.Run(map[bool]string{false: "ws", true: "rs"}[rs], func(t *testing.T) {
			r := run(t, "connect", rs, Options{Sessions: 100, Concurrency: 16, Duration: 100 * time.Millisecond})
			if r.Delivered != 100 {
				t.Errorf("joined %d of 100", r.Delivered)
			}
			if r.Router.RSSBeforeBytes <= 0 {
				t.Errorf("no RSS before: %+v", r.Router)
			}
		})
	}
}

func TestMixed(t *testing.T) {
	for _, rs := range []bool{false, true} {
		t.Run(map[bool]string{false: "ws", true: "rs"}[rs], func(t *testing.T) {
			run(t, "mixed", rs, Options{Subscribers: 2, Callers: 2, Inflight: 2, Serializer: codec.MsgPack,
				Duration: 500 * time.Millisecond, Warmup: 100 * time.Millisecond})
		})
	}
}

func TestPayload(t *testing.T) {
	ns := time.Now().UnixNano()
	for _, ser := range []codec.Serializer{codec.JSON, codec.MsgPack, codec.CBOR, codec.UBJSON} {
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
