package node

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/client"
	"github.com/switchyard-wamp/switchyard/codec"
)

// slowReader is a RawSocket subscriber that reads its events at a fixed, low rate
// through a small socket receive buffer, so that the node's backlog for it grows.
type slowReader struct {
	c      net.Conn
	read   atomic.Int64 // events read
	closed chan time.Time
}

// rsWrite writes one RawSocket frame holding m, encoded in JSON.
func rsWrite(c net.Conn, m *codec.Message) error {
	b, err := codec.For(codec.JSON).Append(make([]byte, 4, 256), m)
	if err != nil {
		return err
	}
	binary.BigEndian.PutUint32(b, uint32(len(b)-4)) // type 0 (regular) in the top byte
	_, err = c.Write(b)
	return err
}

// rsRead reads one RawSocket frame and decodes it (JSON).
func rsRead(c net.Conn, m *codec.Message) error {
	var h [4]byte
	if _, err := io.ReadFull(c, h[:]); err != nil {
		return err
	}
	b := make([]byte, binary.BigEndian.Uint32(h[:])&0xFFFFFF)
	if _, err := io.ReadFull(c, b); err != nil {
		return err
	}
	if h[0] != 0 {
		return rsRead(c, m) // a ping or pong
	}
	return codec.For(codec.JSON).Decode(b, m)
}

// subscribeSlow joins realm1 over RawSocket at addr, subscribes to topic and starts
// reading one event every interval. Safe to call from any goroutine.
func subscribeSlow(t *testing.T, addr, topic string, interval time.Duration) (*slowReader, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	_ = c.(*net.TCPConn).SetReadBuffer(4096) // the kernel autotunes it up to MBs otherwise
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte{0x7f, 0xf1, 0, 0}); err != nil {
		return nil, err
	}
	var hs [4]byte
	if _, err := io.ReadFull(c, hs[:]); err != nil || hs[0] != 0x7f || hs[1]&0x0f != 1 {
		return nil, fmt.Errorf("rawsocket handshake: %x %v", hs, err)
	}
	var m codec.Message
	steps := []struct {
		send codec.Message
		want codec.MessageType
	}{
		{codec.Message{Type: codec.HELLO, URI: []byte("realm1"), DictAny: map[string]any{"roles": map[string]any{"subscriber": map[string]any{}}}}, codec.WELCOME},
		{codec.Message{Type: codec.SUBSCRIBE, Request: 1, URI: []byte(topic), DictAny: map[string]any{}}, codec.SUBSCRIBED},
	}
	for _, s := range steps {
		if err := rsWrite(c, &s.send); err != nil {
			return nil, err
		}
		if err := rsRead(c, &m); err != nil || m.Type != s.want {
			return nil, fmt.Errorf("want %v, got %v %v", s.want, m.Type, err)
		}
	}
	_ = c.SetDeadline(time.Time{})
	r := &slowReader{c: c, closed: make(chan time.Time, 1)}
	go func() {
		var m codec.Message
		for {
			if err := rsRead(c, &m); err != nil {
				r.closed <- time.Now()
				return
			}
			r.read.Add(1)
			time.Sleep(interval)
		}
	}()
	return r, nil
}

// TestSlowConsumerOverload: one subscriber reads 100 times slower than its events arrive.
// Its backlog must stay bounded (the hard limit, plus what the kernel holds), the policy
// must close it and count it (netpoll.slow_consumer_closed in /debug/stats), and the other
// subscribers of the same topic must get every event at the rate they got them at
// without it (the same test measures both). SWITCHYARD_OVERLOAD_LONG=1 runs it longer and
// harder.
func TestSlowConsumerOverload(t *testing.T) {
	if testing.Short() {
		t.Skip("a timed overload run: not in -short")
	}
	rate, phase, fast, size := 1000, 2*time.Second, 3, 1000 // events/s, per phase, fast subscribers, payload bytes
	deadline, hard := 500*time.Millisecond, 1<<20
	if os.Getenv("SWITCHYARD_OVERLOAD_LONG") != "" {
		rate, phase, fast, deadline = 4000, 10*time.Second, 8, 2*time.Second
	}
	const topic = "com.overload"
	n := startNode(t, func(c *Config) {
		c.OutboundLimit = 64 << 10
		c.OutboundHardLimit = hard
		c.WriteDeadline = deadline
		for i := range c.Listeners {
			c.Listeners[i].PingInterval = time.Minute
			c.Listeners[i].PingTimeout = time.Minute
		}
	})
	ctx := ctxT(t)
	counts := make([]atomic.Int64, fast)
	for i := range fast {
		s := connect(t, endpoints(n)[i%2], codec.MsgPack)
		if _, err := s.Subscribe(ctx, topic, func(*client.Event) { counts[i].Add(1) }, nil); err != nil {
			t.Fatal(err)
		}
	}
	pub := connect(t, endpoints(n)[2], codec.MsgPack)
	payload := []any{strings.Repeat("e", size)}

	heapNow := func() uint64 {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse
	}
	// run publishes at rate for phase, sampling the heap, and returns every fast
	// subscriber's received rate once all events arrived, and the peak heap.
	run := func(name string) (rates []float64, peak uint64, published int64) {
		before := make([]int64, fast)
		for i := range counts {
			before[i] = counts[i].Load()
		}
		start := time.Now()
		tk := time.NewTicker(time.Second / time.Duration(rate/10)) // 10 events per tick
		defer tk.Stop()
		for time.Since(start) < phase {
			<-tk.C
			for range 10 {
				if err := pub.Publish(context.Background(), topic, payload, nil); err != nil {
					t.Fatalf("%s: publish: %v", name, err)
				}
				published++
			}
			peak = max(peak, heapNow())
		}
		// Every fast subscriber gets every event; its rate is the events over the time
		// from the first publish to its last event.
		end := time.Now().Add(10 * time.Second)
		rates = make([]float64, fast)
		for done := 0; done < fast; time.Sleep(time.Millisecond) {
			if time.Now().After(end) {
				t.Fatalf("%s: fast subscribers got %v of %d events", name, counts, published)
			}
			for i := range counts {
				if rates[i] == 0 && counts[i].Load()-before[i] >= published {
					rates[i] = float64(published) / time.Since(start).Seconds()
					done++
				}
			}
		}
		return rates, peak, published
	}

	runtime.GC()
	base := heapNow()
	rateA, peakA, pubA := run("without the slow subscriber")

	// Phase B: a slow subscriber is there all along: when the policy closes one, the
	// next one subscribes.
	slowEvery := time.Second / time.Duration(rate/100) // 100x slower than events arrive
	before := n.Server.Stats().SlowConsumerClosed
	var closeTimes []time.Duration // from each slow subscriber's SUBSCRIBED to the counter moving
	var readSlowly int64
	var seenAfter time.Duration // the longest a slow client took to see its connection end
	stopSlow := make(chan struct{})
	slowDone := make(chan error, 1)
	go func() {
		seen := before
		for {
			since := time.Now()
			slow, err := subscribeSlow(t, n.Server.RawSocketAddr().String(), topic, slowEvery)
			if err != nil {
				slowDone <- err
				return
			}
			for n.Server.Stats().SlowConsumerClosed == seen {
				select {
				case <-stopSlow:
					slowDone <- nil
					return
				case <-time.After(2 * time.Millisecond):
				}
			}
			seen++
			policy := time.Now()
			closeTimes = append(closeTimes, policy.Sub(since))
			// The node resets the connection: what the kernel held for it is dropped,
			// so the client learns it at once rather than after reading all of it.
			select {
			case at := <-slow.closed:
				seenAfter = max(seenAfter, at.Sub(policy))
			case <-time.After(2 * time.Second):
				slowDone <- fmt.Errorf("slow subscriber %d still connected 2s after the policy closed it (read %d events)", len(closeTimes), slow.read.Load())
				return
			}
			readSlowly += slow.read.Load()
		}
	}()
	rateB, peakB, pubB := run("with slow subscribers")
	close(stopSlow)
	if err := <-slowDone; err != nil {
		t.Fatalf("slow subscriber: %v", err)
	}
	if len(closeTimes) == 0 {
		t.Fatalf("no slow subscriber was closed; stats %+v", n.Server.Stats())
	}
	// The node closed them: only the fast subscribers, the publisher and the last slow
	// one (not yet over its deadline, or closed just now) are open.
	waitFor(t, func() bool { return n.Server.Stats().Open <= int64(fast+2) })
	st := n.Server.Stats()
	if got := st.SlowConsumerClosed - before; got < uint64(len(closeTimes)) {
		t.Errorf("SlowConsumerClosed went from %d to %d, want %d more", before, st.SlowConsumerClosed, len(closeTimes))
	}
	slices.Sort(closeTimes)
	t.Logf("overload: %d events/s of %d bytes for %v per phase, %d fast subscribers; the slow one reads one event every %v (%dx slower)",
		rate, size, phase, fast, slowEvery, rate*int(slowEvery)/int(time.Second))
	t.Logf("%d slow subscribers in a row, each closed by the policy %v to %v after it subscribed (soft limit 64 KiB, write deadline %v, hard limit %d KiB); they read %d of the %d events; each saw its connection end at most %v after; slow_consumer_closed %d -> %d",
		len(closeTimes), closeTimes[0].Round(time.Millisecond), closeTimes[len(closeTimes)-1].Round(time.Millisecond), deadline, hard>>10, readSlowly, pubB, seenAfter.Round(time.Millisecond), before, st.SlowConsumerClosed)
	t.Logf("heap in use: idle %.1f MiB, peak without slow subscribers %.1f MiB, with them %.1f MiB",
		mib(base), mib(peakA), mib(peakB))
	t.Logf("fast subscribers' received events/s: without slow subscribers %s (%d events), with them %s (%d events), all received",
		fmtRates(rateA), pubA, fmtRates(rateB), pubB)
	// Memory: the slow subscriber pins at most about twice the hard limit in the node.
	if grow := int64(peakB) - int64(peakA); grow > int64(2*hard)+4<<20 {
		t.Errorf("peak heap grew by %.1f MiB with the slow subscriber; its bound is about 2 x %d KiB", float64(grow)/(1<<20), hard>>10)
	}
	for i := range rateA {
		if rateB[i] < 0.8*rateA[i] {
			t.Errorf("fast subscriber %d: %.0f events/s with the slow one, %.0f without", i, rateB[i], rateA[i])
		}
	}
}

func fmtRates(r []float64) string {
	var b strings.Builder
	for i, v := range r {
		if i > 0 {
			b.WriteByte('/')
		}
		fmt.Fprintf(&b, "%.0f", v)
	}
	return b.String()
}
