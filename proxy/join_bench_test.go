package proxy_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/engine"
	"github.com/switchyard-wamp/switchyard/netpoll"
	"github.com/switchyard-wamp/switchyard/proxy"
)

// BenchmarkJoin measures what one session costs the router from TCP accept to the
// end of its close: the WebSocket upgrade (or RawSocket handshake), HELLO/WELCOME, the
// session held while a batch of others joins, then the client's close and the
// session's leave. The router (a netpoll server, the Frontend and an engine, as
// `switchyard start` wires them) runs in this process; the clients run in a child
// process (this test binary again, TestJoinClientProcess), so that the process's
// getrusage CPU and the allocation counts are the router's alone:
//
//	router-us/join   router CPU (user+system) per join+leave
//	ns/op            wall time per session (the client's concurrency overlaps them)
//	B/op, allocs/op  router-side heap allocations per session
//
// The child joins in batches of up to joinBatch sessions with joinConcurrency
// connections in flight, then closes the batch (WebSocket: a close frame, as
// switchyard's client does), and the benchmark waits until the router has seen every
// session leave before it reads the clock.
func BenchmarkJoin(b *testing.B) {
	for _, transport := range []string{"websocket", "rawsocket"} {
		b.Run(transport, func(b *testing.B) { benchJoin(b, transport) })
	}
}

const (
	joinBatch       = 2000
	joinConcurrency = 32
	joinClientEnv   = "SWITCHYARD_JOIN_CLIENT"
)

func benchJoin(b *testing.B, transport string) {
	router := engine.NewRouter(quiet())
	router.AddRealm("realm1")
	anon := "anonymous"
	front := proxy.NewFrontend(router, quiet(), map[string]*proxy.RealmAuth{"realm1": {Anonymous: &anon}})
	srv, err := netpoll.NewServer(netpoll.Config{
		Listeners:    []netpoll.Listener{{Address: "127.0.0.1:0"}},
		Logger:       quiet(),
		AwaitSession: true, // as node.Start
	}, front)
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Stop(ctx)
	}()
	cl, err := startJoinClient(srv.Addr(0).String(), transport)
	if err != nil {
		b.Fatal(err)
	}
	defer cl.stop()
	// Warm up: the loops' buffers, the pools and the maps grow once.
	if err := cl.run(200); err != nil {
		b.Fatal(err)
	}
	if err := waitLeft(router, front, srv, front.Stats().Joins); err != nil {
		b.Fatal(err)
	}
	joins0 := front.Stats().Joins
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU()
	if err := cl.run(b.N); err != nil {
		b.Fatal(err)
	}
	if err := waitLeft(router, front, srv, joins0+uint64(b.N)); err != nil {
		b.Fatal(err)
	}
	cpu := processCPU() - cpu0
	b.StopTimer()
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "router-us/join")
}

// waitLeft waits until the router has welcomed joins sessions in all and every one of
// them has left (its conn closed), polling at a rate that costs next to no CPU.
func waitLeft(router *engine.Router, front *proxy.Frontend, srv *netpoll.Server, joins uint64) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, fs := srv.Stats(), front.Stats()
		if fs.Joins == joins && fs.Leaves == joins && router.SessionCount() == 0 && st.Open == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after 30s: %d joins, %d leaves (want %d), %d sessions joined, %d conns open",
				fs.Joins, fs.Leaves, joins, router.SessionCount(), st.Open)
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// processCPU is this process's user+system CPU time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// joinClient is the child process that joins sessions on command.
type joinClient struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

func startJoinClient(addr, transport string) (*joinClient, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "-test.run=^TestJoinClientProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), joinClientEnv+"="+transport+"@"+addr)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &joinClient{cmd: cmd, in: in, out: bufio.NewReader(out)}, nil
}

// run has the child join and close n sessions; it returns the child's first error.
func (c *joinClient) run(n int) error {
	if _, err := fmt.Fprintf(c.in, "%d\n", n); err != nil {
		return fmt.Errorf("join client: %w", err)
	}
	for {
		line, err := c.out.ReadString('\n')
		if err != nil {
			return fmt.Errorf("join client: %w", err)
		}
		// The test framework may print its own lines (PASS, ...) on the same stdout.
		if s, ok := strings.CutPrefix(line, "joined "); ok {
			if s = strings.TrimSpace(s); s != "ok" {
				return errors.New("join client: " + s)
			}
			return nil
		}
	}
}

func (c *joinClient) stop() {
	_ = c.in.Close()
	_ = c.cmd.Wait()
}

// TestJoinClientProcess is BenchmarkJoin's client when run as its child process
// (SWITCHYARD_JOIN_CLIENT=transport@addr); otherwise it is skipped. It reads a session
// count per line on stdin and answers "joined ok" or "joined <error>".
func TestJoinClientProcess(t *testing.T) {
	spec := os.Getenv(joinClientEnv)
	if spec == "" {
		t.Skip("only BenchmarkJoin's client process")
	}
	transport, addr, _ := strings.Cut(spec, "@")
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		n, err := strconv.Atoi(strings.TrimSpace(sc.Text()))
		if err == nil {
			err = joinSessions(transport, addr, n)
		}
		res := "ok"
		if err != nil {
			res = strings.ReplaceAll(err.Error(), "\n", " ")
		}
		fmt.Printf("joined %s\n", res)
	}
	os.Exit(0) // no test output, no leak check: the parent reads stdout
}

// joinSessions joins n sessions in batches of joinBatch, closing each batch once all
// of it has joined.
func joinSessions(transport, addr string, n int) error {
	for n > 0 {
		k := min(n, joinBatch)
		n -= k
		conns := make([]net.Conn, k)
		var next atomic.Int64
		var firstErr error
		var mu sync.Mutex
		var wg sync.WaitGroup
		for range min(joinConcurrency, k) {
			wg.Go(func() {
				for {
					i := int(next.Add(1) - 1)
					if i >= k {
						return
					}
					c, err := joinOne(transport, addr)
					if err != nil {
						mu.Lock()
						firstErr = cmpOr(firstErr, err)
						mu.Unlock()
						return
					}
					conns[i] = c
				}
			})
		}
		wg.Wait()
		for _, c := range conns {
			if c == nil {
				continue
			}
			if transport == "websocket" {
				_, _ = c.Write(wsClientFrame(0x8, []byte{0x03, 0xE8})) // close 1000
			}
			_ = c.Close()
		}
		if firstErr != nil {
			return firstErr
		}
	}
	return nil
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// helloJSON is switchyard's client's HELLO (the same roles and agent).
var helloJSON = []byte(`[1,"realm1",{"agent":"switchyard-client","roles":{"callee":{},"caller":{},"publisher":{},"subscriber":{}}}]`)

const upgradeRequest = "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: wamp.2.json\r\n\r\n"

// joinOne opens one connection and joins realm1 on it (the session stays joined).
func joinOne(transport, addr string) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReaderSize(c, 4096)
	var welcome []byte
	if transport == "websocket" {
		welcome, err = joinWS(c, br)
	} else {
		welcome, err = joinRS(c, br)
	}
	if err == nil && !bytes.HasPrefix(welcome, []byte("[2,")) {
		err = fmt.Errorf("expected WELCOME, got %.200q", welcome)
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

func joinWS(c net.Conn, br *bufio.Reader) ([]byte, error) {
	if _, err := io.WriteString(c, upgradeRequest); err != nil {
		return nil, err
	}
	status, err := br.ReadString('\n')
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(status, "HTTP/1.1 101") {
		return nil, fmt.Errorf("upgrade refused: %q", status)
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return nil, err
		}
		if line == "\r\n" {
			break
		}
	}
	if _, err := c.Write(wsClientFrame(0x1, helloJSON)); err != nil {
		return nil, err
	}
	var h [10]byte
	if _, err := io.ReadFull(br, h[:2]); err != nil {
		return nil, err
	}
	n := int(h[1] & 0x7F)
	switch n {
	case 126:
		if _, err := io.ReadFull(br, h[2:4]); err != nil {
			return nil, err
		}
		n = int(binary.BigEndian.Uint16(h[2:4]))
	case 127:
		return nil, errors.New("WELCOME over 64 KiB")
	}
	msg := make([]byte, n)
	_, err = io.ReadFull(br, msg)
	return msg, err
}

func joinRS(c net.Conn, br *bufio.Reader) ([]byte, error) {
	if _, err := c.Write([]byte{0x7F, 0xF1, 0, 0}); err != nil { // JSON, 16 MiB
		return nil, err
	}
	var h [4]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return nil, err
	}
	if h[0] != 0x7F || h[1]&0x0F != 1 {
		return nil, fmt.Errorf("rawsocket handshake refused: % x", h)
	}
	frame := append([]byte{0, 0, 0, 0}, helloJSON...)
	binary.BigEndian.PutUint32(frame, uint32(len(helloJSON)))
	if _, err := c.Write(frame); err != nil {
		return nil, err
	}
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return nil, err
	}
	msg := make([]byte, int(h[1])<<16|int(h[2])<<8|int(h[3]))
	_, err := io.ReadFull(br, msg)
	return msg, err
}

// wsClientFrame is a final, masked client frame (mask 0: the payload goes as it is).
func wsClientFrame(op byte, payload []byte) []byte {
	f := []byte{0x80 | op}
	if len(payload) <= 125 {
		f = append(f, 0x80|byte(len(payload)))
	} else {
		f = append(f, 0x80|126, byte(len(payload)>>8), byte(len(payload)))
	}
	f = append(f, 0, 0, 0, 0)
	return append(f, payload...)
}
