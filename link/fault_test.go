package link

import (
	"crypto/tls"
	"errors"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/internal/testpki"
)

// rawServer accepts TCP connections on loopback and runs fn on each, for peers that
// misbehave in ways a real Link never would.
func rawServer(t *testing.T, fn func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var conns []net.Conn
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
			go fn(c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// noFrames fails if r saw a link come up or any frame.
func noFrames(t *testing.T, side string, r *recorder) {
	t.Helper()
	select {
	case <-r.ups:
		t.Fatalf("%s: a link came up", side)
	default:
	}
	if n := len(r.got()); n != 0 {
		t.Fatalf("%s: %d frames delivered", side, n)
	}
}

func TestWrongSecretRefusedBothSides(t *testing.T) {
	llog, dlog := &logBuf{}, &logBuf{}
	lr, dr := newRecorder(), newRecorder()
	ln, err := Listen("127.0.0.1:0", cfg("r1", "router", llog), dr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	bad := cfg("p1", "proxy", dlog)
	bad.Secret = []byte("wrong secret")
	p := Dial(ln.Addr().String(), 2, bad, lr)
	eventually(t, "refusals on both sides", func() bool {
		return ln.Stats().AuthFailed >= 2 && p.Stats().AuthFailed >= 2
	})
	p.Close()
	if p.Up() || ln.Stats().Links != 0 {
		t.Fatal("a link is up with a wrong secret")
	}
	noFrames(t, "listener", dr)
	noFrames(t, "dialer", lr)
	// The counters move before the log lines are written (CI once read the listener's
	// log between the two), so the lines get the same grace as the counters.
	logged := func() bool {
		s := llog.String()
		return strings.Contains(s, "link: handshake refused") && strings.Contains(s, "wrong cluster secret") &&
			strings.Contains(dlog.String(), "link: cannot connect")
	}
	eventually(t, "the refusal in both logs", logged)
}

// TestDialerRefusesBadListeners: a listener that does not know the secret (it answers
// with a wrong proof, or reflects the dialer's own proof or hello) gets no link.
func TestDialerRefusesBadListeners(t *testing.T) {
	lc := cfg("r1", "router", nil)
	lc, _ = lc.withDefaults(true)
	cases := map[string]func(c net.Conn){
		"wrong proof": func(c net.Conn) {
			readCtl(c, kindHello)
			h, _ := makeHello(&lc)
			writeCtl(c, kindHello, h)
			readCtl(c, kindAuth)
			writeCtl(c, kindAuth, make([]byte, 32))
			time.Sleep(time.Second)
		},
		"reflected proof": func(c net.Conn) {
			readCtl(c, kindHello)
			h, _ := makeHello(&lc)
			writeCtl(c, kindHello, h)
			p, _ := readCtl(c, kindAuth)
			writeCtl(c, kindAuth, p)
			time.Sleep(time.Second)
		},
		"reflected hello": func(c net.Conn) {
			h, _ := readCtl(c, kindHello)
			writeCtl(c, kindHello, h)
			p, _ := readCtl(c, kindAuth)
			writeCtl(c, kindAuth, p)
			time.Sleep(time.Second)
		},
	}
	for name, fn := range cases {
		t.Run(name, func(t *testing.T) {
			addr := rawServer(t, fn)
			dr := newRecorder()
			p := Dial(addr, 1, cfg("p1", "proxy", nil), dr)
			eventually(t, "refusal", func() bool { return p.Stats().AuthFailed >= 1 })
			p.Close()
			noFrames(t, "dialer", dr)
		})
	}
}

func TestSilentPeerIsDeadWithinDeadAfter(t *testing.T) {
	lc := cfg("r1", "router", nil)
	lc, _ = lc.withDefaults(true)
	// Completes the handshake, then neither reads nor writes.
	addr := rawServer(t, func(c net.Conn) {
		if _, err := listenerHandshake(c, &lc); err != nil {
			t.Error(err)
		}
	})
	dc := cfg("p1", "proxy", nil)
	dc.Heartbeat, dc.DeadAfter = 50*time.Millisecond, 300*time.Millisecond
	dr := newRecorder()
	p := Dial(addr, 1, dc, dr)
	defer p.Close()
	waitUp(t, dr)
	start := time.Now()
	err := waitDown(t, dr, 2*time.Second)
	el := time.Since(start)
	if !errors.Is(err, ErrDead) {
		t.Fatalf("OnLinkDown(%v), want ErrDead", err)
	}
	if el < 250*time.Millisecond || el > 800*time.Millisecond {
		t.Fatalf("declared dead after %v, DeadAfter is 300ms", el)
	}
	if p.Stats().Dead != 1 {
		t.Fatalf("pool counted %d dead links", p.Stats().Dead)
	}
}

// The read deadline moves only every DeadAfter/4 on a busy link: a peer that falls
// silent right after a frame that did not move it must still get DeadAfter from that
// frame, not from the older deadline.
func TestDeadAfterCountsFromTheLastFrame(t *testing.T) {
	lc := cfg("r1", "router", nil)
	lc, _ = lc.withDefaults(true)
	const deadAfter = 800 * time.Millisecond
	// Completes the handshake, sends two frames 100ms apart (under DeadAfter/4), then
	// stays silent.
	addr := rawServer(t, func(c net.Conn) {
		if _, err := listenerHandshake(c, &lc); err != nil {
			t.Error(err)
			return
		}
		for range 2 {
			if _, err := c.Write(appendFrame(nil, kEvent, 1, []byte("x"))); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	dc := cfg("p1", "proxy", nil)
	dc.Heartbeat, dc.DeadAfter = 100*time.Millisecond, deadAfter
	var mu sync.Mutex
	var last time.Time
	frames := 0
	dr := newRecorder()
	dr.setOnFrame(func(*Link, *Frame) {
		mu.Lock()
		last = time.Now()
		frames++
		mu.Unlock()
	})
	p := Dial(addr, 1, dc, dr)
	defer p.Close()
	waitUp(t, dr)
	err := waitDown(t, dr, 5*time.Second)
	down := time.Now()
	if !errors.Is(err, ErrDead) {
		t.Fatalf("OnLinkDown(%v), want ErrDead", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if frames != 2 {
		t.Fatalf("%d frames arrived, want 2", frames)
	}
	if silent := down.Sub(last); silent < deadAfter-20*time.Millisecond || silent > deadAfter+time.Second {
		t.Fatalf("declared dead %v after the last frame, DeadAfter is %v", silent, deadAfter)
	}
}

func TestHeartbeatKeepsIdleLinkUp(t *testing.T) {
	c1, c2 := cfg("r1", "router", nil), cfg("p1", "proxy", nil)
	c1.Heartbeat, c1.DeadAfter = 30*time.Millisecond, 150*time.Millisecond
	c2.Heartbeat, c2.DeadAfter = c1.Heartbeat, c1.DeadAfter
	tp := pair(t, 1, c1, c2)
	time.Sleep(600 * time.Millisecond) // four DeadAfters of silence from the user
	select {
	case err := <-tp.dr.downs:
		t.Fatalf("idle link died: %v", err)
	default:
	}
	// A side that answers the other's pings has written, so it may never ping itself:
	// the round-trip time is measured by whichever side pings (at least one does).
	st, lst := tp.p.Pick(0).Stats(), tp.llinks[0].Stats()
	if st.RTT <= 0 && lst.RTT <= 0 || st.FramesIn < 5 || lst.FramesIn < 5 {
		t.Fatalf("no heartbeat seen: dialer %+v, listener %+v", st, lst)
	}
}

func TestPoolReconnectsAfterListenerRestart(t *testing.T) {
	tp := pair(t, 2, cfg("r1", "router", nil), cfg("p1", "proxy", nil))
	addr := tp.ln.Addr().String()
	tp.ln.Close()
	for range 2 {
		if err := waitDown(t, tp.dr, 5*time.Second); !errors.Is(err, ErrPeerClosed) && !errors.Is(err, ErrClosed) {
			t.Logf("down: %v", err)
		}
	}
	eventually(t, "pool down", func() bool { return !tp.p.Up() })
	if tp.p.Pick(0) != nil || tp.p.Pick(1) != nil {
		t.Fatal("Pick returned a link while the listener is gone")
	}
	time.Sleep(200 * time.Millisecond) // a few failed dials: backoff grows
	lr := newRecorder()
	ln, err := Listen(addr, cfg("r1", "router", nil), lr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	eventually(t, "pool back up", func() bool { return tp.p.Stats().Links == 2 })
	must(t, tp.p.Pick(1).Send(kEvent, 1, []byte("again")))
	eventually(t, "frame after reconnect", func() bool { return len(lr.got()) == 1 })
	if tp.p.Stats().Errors == 0 {
		t.Fatal("no failed dial was counted while the listener was down")
	}
}

func TestOutboundLimitClosesTheLink(t *testing.T) {
	lc := cfg("r1", "router", nil)
	lc, _ = lc.withDefaults(true)
	// Completes the handshake, then pings so it looks alive, but never reads.
	addr := rawServer(t, func(c net.Conn) {
		if _, err := listenerHandshake(c, &lc); err != nil {
			return
		}
		for {
			if _, err := c.Write(appendFrame(nil, kindPing, 0, make([]byte, 8))); err != nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	dlog := &logBuf{}
	dc := cfg("p1", "proxy", dlog)
	dc.OutboundLimit = 1 << 20
	dr := newRecorder()
	p := Dial(addr, 1, dc, dr)
	defer p.Close()
	l := waitUp(t, dr)
	payload := make([]byte, 64<<10)
	var err error
	for i := 0; i < 1<<12 && err == nil; i++ { // at most 256 MiB
		payload[0] = byte(i)
		err = l.Send(kEvent, uint64(i+1), payload)
		if l.Stats().Queued > 0 {
			time.Sleep(10 * time.Microsecond)
		}
	}
	if !errors.Is(err, ErrOverloaded) {
		t.Fatalf("Send returned %v, want ErrOverloaded", err)
	}
	if down := waitDown(t, dr, 5*time.Second); !errors.Is(down, ErrOverloaded) {
		t.Fatalf("OnLinkDown(%v), want ErrOverloaded", down)
	}
	if err := l.Send(kEvent, 1, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after overload: %v", err)
	}
	if p.Stats().Overloaded != 1 || !strings.Contains(dlog.String(), "outbound queue over limit") {
		t.Fatalf("overload not counted (%d) or not logged:\n%s", p.Stats().Overloaded, dlog.String())
	}
}

func TestTLSMutualAuth(t *testing.T) {
	ca := testpki.MustCA("cluster CA")
	srv := ca.MustServer("127.0.0.1")
	lc := Config{Node: "r1", Role: "router", Logger: (&logBuf{}).logger(), TLS: srv.ServerConfig(ca.Pool())}
	if _, err := Listen("127.0.0.1:0", lc, newRecorder()); err == nil {
		t.Fatal("a listener with optional client certificates and no secret was accepted")
	}
	lc.TLS.ClientAuth = tls.RequireAndVerifyClientCert
	dc := Config{Node: "p1", Role: "proxy", Logger: (&logBuf{}).logger(),
		TLS: ca.ClientConfig(ca.MustClient("p1"))}
	tp := pair(t, 1, lc, dc)
	must(t, tp.p.Pick(0).Send(kEvent, 7, []byte("over tls")))
	eventually(t, "frame", func() bool { return len(tp.lr.got()) == 1 })
	if _, ok := tp.llinks[0].conn.(*tls.Conn); !ok {
		t.Fatal("the link is not over TLS")
	}

	// A client certificate from another CA, and none at all (the dialer then needs a
	// secret to pass its own config check): both refused by the listener.
	other := testpki.MustCA("other CA")
	for name, c := range map[string]*tls.Config{
		"foreign cert": ca.ClientConfig(other.MustClient("p2")),
		"no cert":      ca.ClientConfig(),
	} {
		t.Run(name, func(t *testing.T) {
			before := tp.ln.Stats().AuthFailed
			dr := newRecorder()
			bad := Config{Node: "p2", Role: "proxy", Secret: testSecret, Logger: (&logBuf{}).logger(), TLS: c}
			p := Dial(tp.ln.Addr().String(), 1, bad, dr)
			eventually(t, "refusal", func() bool { return tp.ln.Stats().AuthFailed > before })
			p.Close()
			noFrames(t, "dialer", dr)
		})
	}
}

func TestMaxConnsClosesExtraConnections(t *testing.T) {
	lc := cfg("r1", "router", &logBuf{})
	lc.MaxConns = 1
	tp := pair(t, 1, lc, cfg("p1", "proxy", nil))
	c, err := net.Dial("tcp", tp.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	// Closed at once: end of stream (or a reset), not the read deadline.
	if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("extra connection read %d bytes, err %v", n, err)
	}
	if s := tp.ln.Stats(); s.Rejected != 1 || s.Links != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// flakyListener fails its first Accepts with EMFILE, as a process out of descriptors.
type flakyListener struct {
	net.Listener
	fails atomic.Int32
}

func (f *flakyListener) Accept() (net.Conn, error) {
	if f.fails.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: syscall.EMFILE}
	}
	return f.Listener.Accept()
}

func TestListenerSurvivesEMFILE(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := &flakyListener{Listener: raw}
	fl.fails.Store(3)
	lb := &logBuf{}
	lc, _ := cfg("r1", "router", lb).withDefaults(true)
	lr := newRecorder()
	ln := serveOn(fl, lc, lr)
	defer ln.Close()
	dr := newRecorder()
	p := Dial(raw.Addr().String(), 1, cfg("p1", "proxy", nil), dr)
	defer p.Close()
	waitUp(t, lr)
	if s := ln.Stats(); s.Errors != 3 {
		t.Fatalf("accept errors counted: %d, want 3", s.Errors)
	}
	if !strings.Contains(lb.String(), "accept failed") {
		t.Fatalf("no log line:\n%s", lb.String())
	}
}

func TestConfigChecks(t *testing.T) {
	for name, c := range map[string]Config{
		"no secret no tls": {Node: "a"},
		"no node":          {Secret: testSecret},
		"dead <= heartbeat": {Node: "a", Secret: testSecret, Heartbeat: time.Second,
			DeadAfter: time.Second},
	} {
		if _, err := Listen("127.0.0.1:0", c, newRecorder()); err == nil {
			t.Errorf("%s: Listen accepted the config", name)
		}
		if p := Dial("127.0.0.1:1", 1, c, newRecorder()); p.Err() == nil {
			t.Errorf("%s: Dial accepted the config", name)
			p.Close()
		}
	}
}
