package netpoll

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"
)

// TestSlowConsumerHealthyVsStalled: two conns get the same burst (1 MiB in 1 KiB
// messages) with a 64 KiB soft limit. The one that reads at full speed gets all of it
// and stays open; the one that stopped reading holds the burst in the kernel's send
// buffer and is closed as a slow consumer after about WriteDeadline, long before its
// ping timeout. Plain and TLS conns share the policy.
func TestSlowConsumerHealthyVsStalled(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "tls"}[useTLS], func(t *testing.T) {
			testHealthyVsStalled(t, useTLS)
		})
	}
}

func testHealthyVsStalled(t *testing.T, useTLS bool) {
	const deadline = time.Second
	h := newEchoHandler()
	ln := Listener{Address: "127.0.0.1:0", Kind: KindRawSocket, PingInterval: time.Minute, PingTimeout: time.Minute}
	var p *pki
	if useTLS {
		p = newPKI(t)
		ln.TLS = p.server.ServerConfig(nil)
	}
	s := startServer(t, Config{OutboundLimit: 64 << 10, WriteDeadline: deadline, Listeners: []Listener{ln}}, h)
	dial := func() *rsClient {
		if useTLS {
			return rsOver(t, dialTLS(t, s.Addr(0), p.ca.ClientConfig()))
		}
		return dialRS(t, s.Addr(0))
	}
	healthy, stalled := dial(), dial()
	healthy.handshake(t, 15, 1)
	hc := h.waitOpen(t)
	stalled.handshake(t, 15, 1)
	sc := h.waitOpen(t)

	const n = 1024
	msg := bytes.Repeat([]byte("e"), 1024)
	got := make(chan error, 1)
	go func() { // the healthy client reads at full speed
		_ = healthy.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		for i := range n {
			if _, p, err := healthy.tryReadFrame(); err != nil || len(p) != len(msg) {
				got <- fmt.Errorf("frame %d of %d (%d bytes): %w", i, n, len(p), err)
				return
			}
		}
		got <- nil
	}()
	for range n {
		if err := hc.Send(msg); err != nil {
			t.Fatalf("healthy Send: %v", err)
		}
		if err := sc.Send(msg); err != nil {
			t.Fatalf("stalled Send during the burst: %v", err)
		}
	}
	burstEnd := time.Now()
	if err := <-got; err != nil {
		t.Fatalf("healthy reader: %v", err)
	}
	select {
	case err := <-h.closeCh:
		took := time.Since(burstEnd)
		if !errors.Is(err, ErrSlowConsumer) {
			t.Fatalf("stalled conn closed with %v", err)
		}
		if took > deadline+time.Second {
			t.Fatalf("stalled conn closed %v after the burst, write deadline %v", took, deadline)
		}
		t.Logf("stalled conn closed %v after the burst", took)
	case <-time.After(deadline + 2*time.Second):
		t.Fatalf("stalled conn still open %v after the burst (stats %+v)", deadline+2*time.Second, s.Stats())
	}
	h.mu.Lock()
	_, healthyClosed := h.closed[hc]
	_, stalledClosed := h.closed[sc]
	h.mu.Unlock()
	if healthyClosed || !stalledClosed {
		t.Fatalf("closed: healthy %v, stalled %v", healthyClosed, stalledClosed)
	}
	// The healthy conn still works.
	if err := hc.Send([]byte("after")); err != nil {
		t.Fatalf("healthy Send after the burst: %v", err)
	}
	if _, p, err := healthy.tryReadFrame(); err != nil || string(p) != "after" {
		t.Fatalf("healthy read after the burst: %q %v", p, err)
	}
	if st := s.Stats(); st.SlowConsumerClosed != 1 || st.Open != 1 || st.OverOutboundLimit != 0 {
		t.Fatalf("stats %+v", st)
	}
	_ = stalled // never reads
}

// TestSlowConsumerHiddenInKernel: a conn that stopped reading gets 1 MiB at a pace the
// loop keeps up with, so neither the Send queue nor gnet's buffer ever holds much: the
// backlog sits in the kernel's send buffer (autotuned to MBs). The policy must still
// see it and close the conn after about WriteDeadline, not at the ping timeout.
func TestSlowConsumerHiddenInKernel(t *testing.T) {
	const deadline = 500 * time.Millisecond
	h := newEchoHandler()
	ln := Listener{Address: "127.0.0.1:0", Kind: KindRawSocket, PingInterval: time.Minute, PingTimeout: time.Minute}
	s := startServer(t, Config{OutboundLimit: 64 << 10, WriteDeadline: deadline, Listeners: []Listener{ln}}, h)
	c := dialRS(t, s.Addr(0))
	c.handshake(t, 15, 1)
	sc := h.waitOpen(t)
	msg := bytes.Repeat([]byte("k"), 1024)
	for i := range 1024 {
		if err := sc.Send(msg); err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
		if i%16 == 15 {
			time.Sleep(time.Millisecond)
		}
	}
	sent := time.Now()
	select {
	case err := <-h.closeCh:
		if !errors.Is(err, ErrSlowConsumer) {
			t.Fatalf("closed with %v", err)
		}
		t.Logf("closed %v after the last Send", time.Since(sent))
	case <-time.After(deadline + time.Second):
		t.Fatalf("stalled conn still open %v after the last Send (stats %+v)", deadline+time.Second, s.Stats())
	}
}

// TestSlowConsumerBurstsApart: a reader that takes each of two 512 KiB bursts, the
// second one only after a pause, is over the soft limit twice but never for
// WriteDeadline without a break (it caught up between the bursts), and stays open
// although the second burst is still unread a deadline after the first one.
func TestSlowConsumerBurstsApart(t *testing.T) {
	const deadline = time.Second
	h := newEchoHandler()
	ln := Listener{Address: "127.0.0.1:0", Kind: KindRawSocket, PingInterval: time.Minute, PingTimeout: time.Minute}
	s := startServer(t, Config{OutboundLimit: 64 << 10, WriteDeadline: deadline, Listeners: []Listener{ln}}, h)
	c := dialRS(t, s.Addr(0))
	// A fixed receive buffer: autotuned, it would grow while the first burst is read
	// and take in the whole second one.
	if err := c.conn.(*net.TCPConn).SetReadBuffer(32 << 10); err != nil {
		t.Fatal(err)
	}
	c.handshake(t, 15, 1)
	sc := h.waitOpen(t)
	msg := bytes.Repeat([]byte("b"), 1024)
	const n = 512
	burst := func() {
		for i := range n {
			if err := sc.Send(msg); err != nil {
				t.Fatalf("Send %d: %v", i, err)
			}
		}
	}
	read := func() {
		for i := range n {
			if _, p, err := c.tryReadFrame(); err != nil || len(p) != len(msg) {
				t.Fatalf("frame %d: %d bytes, %v", i, len(p), err)
			}
		}
	}
	start := time.Now()
	burst() // over the soft limit until read
	read()
	time.Sleep(time.Until(start.Add(deadline * 6 / 10)))
	burst()                                               // over again, 0.6 deadline after the first mark
	time.Sleep(time.Until(start.Add(deadline * 12 / 10))) // the first mark is a deadline old
	read()
	if err := sc.Send([]byte("after")); err != nil {
		t.Fatalf("Send after the bursts: %v", err)
	}
	if _, p, err := c.tryReadFrame(); err != nil || string(p) != "after" {
		t.Fatalf("read after the bursts: %q %v", p, err)
	}
	if st := s.Stats(); st.SlowConsumerClosed != 0 {
		t.Fatalf("stats %+v", st)
	}
}
