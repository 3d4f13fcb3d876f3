package node

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/client"
	"github.com/switchyard-wamp/switchyard/codec"
	"github.com/switchyard-wamp/switchyard/internal/testpki"
	"github.com/switchyard-wamp/switchyard/proxy"
)

// Handshake timeouts (issue 12): every connection that has not got its WELCOME within the
// listener's handshake_timeout is closed, whatever stage it stopped at, and a flood of
// such connections leaves joined sessions alone.

// wsUpgrade is a complete WebSocket upgrade request for the node's /ws.
const wsUpgrade = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
	"Sec-WebSocket-Protocol: wamp.2.json\r\n\r\n"

// stallStages are the ways a client can stop before WELCOME, and what it sends to get
// there (to the universal listener, or to the RawSocket-only one with rs).
var stallStages = []struct {
	name     string
	rs       bool
	send     string
	response bool // read the upgrade's or the handshake's answer before stalling
}{
	{"tcp-nothing-sent", false, "", false},
	{"http-head-incomplete", false, "GET /ws HTTP/1.1\r\nHost: x\r\n", false},
	{"websocket-no-hello", false, wsUpgrade, true},
	{"rawsocket-handshake-incomplete", true, "\x7f\xf1", false},
	{"rawsocket-no-hello", true, "\x7f\xf1\x00\x00", true},
}

// stall opens a connection that stops at stage i of stallStages.
func stall(i int, universal, rawsocket string) (net.Conn, error) {
	st := stallStages[i]
	addr := universal
	if st.rs {
		addr = rawsocket
	}
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	if st.send != "" {
		if _, err := io.WriteString(c, st.send); err != nil {
			c.Close()
			return nil, err
		}
	}
	if st.response {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		n := 4 // the RawSocket handshake reply
		if !st.rs {
			n = len("HTTP/1.1 101")
		}
		buf := make([]byte, n)
		if _, err := io.ReadFull(c, buf); err != nil || !st.rs && string(buf) != "HTTP/1.1 101" {
			c.Close()
			return nil, fmt.Errorf("%s: no handshake answer: %q %v", st.name, buf, err)
		}
		_ = c.SetReadDeadline(time.Time{})
	}
	return c, nil
}

// waitClosed reads c until the peer closes it (the upgrade's answer and a WebSocket close
// frame are read through) and returns when that was; a deadline passed is an error.
func waitClosed(c net.Conn, limit time.Duration) (time.Time, error) {
	_ = c.SetReadDeadline(time.Now().Add(limit))
	buf := make([]byte, 512)
	for {
		if _, err := c.Read(buf); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				return time.Time{}, err
			}
			return time.Now(), nil
		}
	}
}

func TestHandshakeTimeoutEveryStage(t *testing.T) {
	const timeout = 300 * time.Millisecond
	ticket := "s3cret"
	certFile, keyFile, _, err := testpki.MustCA("handshake test CA").ServerFiles(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	n := startNode(t, func(c *Config) {
		c.Auth = map[string]*proxy.RealmAuth{"realm1": {Tickets: map[string]proxy.TicketPrincipal{"joe": {Ticket: ticket, Role: "user"}}}}
		c.Listeners = append(c.Listeners, Listener{Address: "127.0.0.1:0", TLS: &TLSFiles{CertFile: certFile, KeyFile: keyFile}})
		for i := range c.Listeners {
			c.Listeners[i].HandshakeTimeout = timeout
			c.Listeners[i].PingInterval = time.Minute // keepalive must not be what closes them
			c.Listeners[i].PingTimeout = time.Minute
		}
	})
	universal, rawsocket := n.Server.UniversalAddr().String(), n.Server.RawSocketAddr().String()

	// A welcomed session outlives the timeout.
	joined, err := client.Connect(ctxT(t), client.Config{URL: n.WebSocketURL(), Realm: "realm1", AuthID: "joe",
		AuthMethods: []string{"ticket"}, OnChallenge: func(string, map[string]any) (string, error) { return ticket, nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer joined.Close()

	type stalled struct {
		name  string
		born  time.Time
		close func(limit time.Duration) (time.Time, error)
	}
	var all []stalled
	for i, st := range stallStages {
		born := time.Now()
		c, err := stall(i, universal, rawsocket)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		all = append(all, stalled{st.name, born, func(d time.Duration) (time.Time, error) { return waitClosed(c, d) }})
	}
	// TLS: nothing sent (the TLS handshake times out), and TLS done but nothing more.
	tlsAddr := n.Server.Addr(2).String()
	for _, finish := range []bool{false, true} {
		born := time.Now()
		raw, err := net.Dial("tcp", tlsAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		c, name := raw, "tls-nothing-sent"
		if finish {
			tc := tls.Client(raw, &tls.Config{InsecureSkipVerify: true})
			if err := tc.HandshakeContext(ctxT(t)); err != nil {
				t.Fatal(err)
			}
			c, name = tc, "tls-done-nothing-more"
		}
		all = append(all, stalled{name, born, func(d time.Duration) (time.Time, error) { return waitClosed(c, d) }})
	}
	// HELLO sent, CHALLENGE never answered.
	tr, err := client.Dial(ctxT(t), n.RawSocketURL(), codec.JSON)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	born := time.Now()
	hello := codec.Message{Type: codec.HELLO, URI: []byte("realm1"), DictAny: map[string]any{
		"roles": map[string]any{"subscriber": map[string]any{}}, "authid": "joe", "authmethods": []any{"ticket"}}}
	if err := tr.Send(&hello); err != nil {
		t.Fatal(err)
	}
	var m codec.Message
	if _, err := tr.Recv(&m); err != nil || m.Type != codec.CHALLENGE {
		t.Fatalf("want CHALLENGE, got %v %v", m.Type, err)
	}
	all = append(all, stalled{"challenge-unanswered", born, func(d time.Duration) (time.Time, error) {
		_ = tr.SetReadDeadline(time.Now().Add(d))
		for {
			if _, err := tr.Recv(&m); err != nil {
				if !closedByPeer(err) {
					return time.Time{}, err
				}
				return time.Now(), nil
			}
		}
	}})

	const slack = 2 * time.Second // one sweep (timeout/4) and a loaded machine's scheduling
	for _, s := range all {
		at, err := s.close(timeout + slack)
		if err != nil {
			t.Errorf("%s: not closed within %v: %v", s.name, timeout+slack, err)
			continue
		}
		took := at.Sub(s.born)
		if took < timeout {
			t.Errorf("%s: closed after %v, before the %v timeout", s.name, took, timeout)
		}
		t.Logf("%s: closed %v after connecting (timeout %v)", s.name, took.Round(time.Millisecond), timeout)
	}
	if got := n.Server.Stats().HandshakeTimeouts; got < uint64(len(all)) {
		t.Errorf("Stats.HandshakeTimeouts = %d, want >= %d", got, len(all))
	}
	// The joined session is still there and works.
	if _, err := joined.Subscribe(ctxT(t), "com.still.here", func(*client.Event) {}, nil); err != nil {
		t.Fatalf("joined session after the timeouts: %v", err)
	}
}

// floodResult is what the flood client process reports.
type floodResult struct {
	Dialed, Failed, Closed, NotClosed int
	CloseP50, CloseP99, CloseMax      time.Duration // from each connection's dial to its close
	DialTime                          time.Duration // to open them all
}

// TestHandshakeFlood opens many stalled connections at once (all stages of stallStages,
// from a child process so that the node's memory and descriptors are its own) while a
// joined publisher and subscriber exchange events at a fixed rate. Every stalled
// connection must be closed within the timeout plus slack, the subscriber must get every
// event, and the heap must come back down. SWITCHYARD_FLOOD=N sets the number (default
// 2000; the figure is 10000) and runs a second flood, which must not grow the heap.
func TestHandshakeFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("a flood of connections: not in -short")
	}
	count, rounds := 2000, 1
	if v := os.Getenv("SWITCHYARD_FLOOD"); v != "" {
		rounds = 2
		var err error
		if count, err = strconv.Atoi(v); err != nil {
			t.Fatalf("SWITCHYARD_FLOOD=%q: %v", v, err)
		}
	}
	// The node holds one descriptor per stalled connection (the child the other).
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil && rl.Cur < uint64(count)+512 {
		t.Logf("descriptor limit %d: %d stalled connections instead of %d", rl.Cur, rl.Cur-512, count)
		count = int(max(rl.Cur, 612) - 512)
	}
	timeout := 2*time.Second + time.Duration(count/2000)*time.Second // time to open them all first
	n := startNode(t, func(c *Config) {
		for i := range c.Listeners {
			c.Listeners[i].HandshakeTimeout = timeout
			c.Listeners[i].PingInterval = time.Minute
			c.Listeners[i].PingTimeout = time.Minute
		}
	})
	ctx := ctxT(t)
	sub := connect(t, endpoints(n)[0], codec.MsgPack)
	pub := connect(t, endpoints(n)[2], codec.MsgPack)
	var mu sync.Mutex
	var got []time.Time // arrival of each event
	if _, err := sub.Subscribe(ctx, "com.flood.tick", func(*client.Event) {
		mu.Lock()
		got = append(got, time.Now())
		mu.Unlock()
	}, nil); err != nil {
		t.Fatal(err)
	}
	// The publisher: one event every 2 ms until stopped.
	stop := make(chan struct{})
	var sent atomic.Int64
	pubDone := make(chan error, 1)
	go func() {
		tk := time.NewTicker(2 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				pubDone <- nil
				return
			case <-tk.C:
				if err := pub.Publish(context.Background(), "com.flood.tick", []any{sent.Load()}, nil); err != nil {
					pubDone <- err
					return
				}
				sent.Add(1)
			}
		}
	}()
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse
	}
	rate := func(from, to time.Time) float64 {
		mu.Lock()
		defer mu.Unlock()
		k := 0
		for _, at := range got {
			if !at.Before(from) && at.Before(to) {
				k++
			}
		}
		return float64(k) / to.Sub(from).Seconds()
	}

	time.Sleep(time.Second)
	before, t0 := heap(), time.Now()
	baseRate := rate(t0.Add(-time.Second), t0)

	// flood runs one flood from a child process and returns its result, the heap with
	// every stalled connection open, and when the last one was closed.
	flood := func() (res floodResult, during uint64, closedAt time.Time) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestFloodClientProcess$", "-test.v")
		cmd.Env = append(os.Environ(), "SWITCHYARD_FLOOD_CLIENT="+strings.Join([]string{
			strconv.Itoa(count), n.Server.UniversalAddr().String(), n.Server.RawSocketAddr().String(),
			(timeout + 10*time.Second).String()}, ","))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var dialedAt time.Time
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "FLOOD DIALED"):
				dialedAt = time.Now()
				during = heap()
			case strings.HasPrefix(line, "FLOOD RESULT "):
				closedAt = time.Now()
				if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "FLOOD RESULT ")), &res); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := cmd.Wait(); err != nil {
			t.Fatalf("flood client: %v", err)
		}
		if dialedAt.IsZero() || closedAt.IsZero() {
			t.Fatal("the flood client reported nothing")
		}
		return res, during, closedAt
	}
	res, during, closedAt := flood()
	time.Sleep(time.Second)
	after, t1 := heap(), time.Now()
	if rounds > 1 {
		// The same flood again: what the first one left (grown tables, pooled buffers)
		// is reused, not added to.
		res2, during2, _ := flood()
		time.Sleep(time.Second)
		after2 := heap()
		t.Logf("second flood: closed %d, not closed %d, max time to close %v; heap in use with all open %.1f MiB, after %.1f MiB (after the first: %.1f MiB)",
			res2.Closed, res2.NotClosed, res2.CloseMax.Round(time.Millisecond), mib(during2), mib(after2), mib(after))
		if res2.NotClosed > 0 || res2.Closed != res2.Dialed {
			t.Fatalf("second flood: %+v", res2)
		}
		if after2 > after+2<<20 {
			t.Errorf("heap in use after the second flood %.1f MiB, after the first %.1f MiB: it accumulates", mib(after2), mib(after))
		}
		t1 = time.Now()
	}
	close(stop)
	if err := <-pubDone; err != nil {
		t.Fatalf("publisher during the flood: %v", err)
	}
	floodRate := rate(t0, closedAt)
	afterRate := rate(closedAt, t1)
	// Every event published arrives (the subscriber session was never in danger).
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		k := len(got)
		mu.Unlock()
		if int64(k) == sent.Load() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("subscriber got %d of %d events", k, sent.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	st := n.Server.Stats()
	t.Logf("flood of %d stalled connections (%d stages), handshake_timeout %v: dialed in %v (%d failed); closed %d, not closed %d; "+
		"time to close from dial p50 %v p99 %v max %v; Stats.HandshakeTimeouts %d",
		count, len(stallStages), timeout, res.DialTime.Round(time.Millisecond), res.Failed, res.Closed, res.NotClosed,
		res.CloseP50.Round(time.Millisecond), res.CloseP99.Round(time.Millisecond), res.CloseMax.Round(time.Millisecond), st.HandshakeTimeouts)
	t.Logf("node heap in use: before %.1f MiB, with all %d open %.1f MiB (%.0f bytes per stalled connection), after %.1f MiB",
		mib(before), res.Dialed, mib(during), float64(during-min(during, before))/float64(max(res.Dialed, 1)), mib(after))
	t.Logf("joined subscriber, events/s received: before %.0f, during the flood %.0f, after %.0f (published %d, all received)",
		baseRate, floodRate, afterRate, sent.Load())
	if res.Failed > 0 || res.NotClosed > 0 || res.Closed != res.Dialed {
		t.Fatalf("flood: %+v", res)
	}
	const slack = 3 * time.Second
	if res.CloseMax > timeout+slack {
		t.Errorf("a stalled connection stayed %v (timeout %v + slack %v)", res.CloseMax, timeout, slack)
	}
	if st.HandshakeTimeouts < uint64(res.Dialed) {
		t.Errorf("Stats.HandshakeTimeouts = %d, want >= %d", st.HandshakeTimeouts, res.Dialed)
	}
	if after > before+8<<20 {
		t.Errorf("heap in use after the flood %.1f MiB, before %.1f MiB: the stalled connections' memory was not freed", mib(after), mib(before))
	}
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// TestFloodClientProcess is the flood client of TestHandshakeFlood, run in a child
// process (it does nothing in a normal run).
func TestFloodClientProcess(t *testing.T) {
	spec := os.Getenv("SWITCHYARD_FLOOD_CLIENT")
	if spec == "" {
		t.Skip("the flood client of TestHandshakeFlood: runs only in its child process")
	}
	p := strings.Split(spec, ",")
	count, _ := strconv.Atoi(p[0])
	universal, rawsocket := p[1], p[2]
	limit, _ := time.ParseDuration(p[3])
	var res floodResult
	var mu sync.Mutex
	var took []time.Duration
	var wg sync.WaitGroup
	start := time.Now()
	sem := make(chan struct{}, 64)
	for i := range count {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			born := time.Now()
			c, err := stall(i%len(stallStages), universal, rawsocket)
			<-sem
			mu.Lock()
			if err != nil {
				res.Failed++
				if res.Failed <= 3 {
					fmt.Fprintln(os.Stderr, "flood dial:", err)
				}
				mu.Unlock()
				return
			}
			res.Dialed++
			mu.Unlock()
			defer c.Close()
			at, err := waitClosed(c, limit)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.NotClosed++
				return
			}
			res.Closed++
			took = append(took, at.Sub(born))
		}()
	}
	for range cap(sem) {
		sem <- struct{}{} // every dial done
	}
	res.DialTime = time.Since(start)
	fmt.Println("FLOOD DIALED")
	wg.Wait()
	slices.Sort(took)
	if len(took) > 0 {
		res.CloseP50, res.CloseP99, res.CloseMax = took[len(took)/2], took[len(took)*99/100], took[len(took)-1]
	}
	b, _ := json.Marshal(res)
	fmt.Println("FLOOD RESULT " + string(b))
}
