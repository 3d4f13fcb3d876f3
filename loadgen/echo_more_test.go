package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/switchyard-wamp/switchyard/codec"
)

// echoClient is one test connection to an echo server, WebSocket or RawSocket.
type echoClient struct {
	c  net.Conn
	rd *bufio.Reader
	ws bool
}

// dialEcho connects and does the transport handshake; rcvbuf > 0 shrinks the client's
// receive buffer (so that the server's big writes are taken in part).
func dialEcho(t *testing.T, s echoServer, wsock bool, rcvbuf int) *echoClient {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err == nil && rcvbuf > 0 {
			err = c.(*net.TCPConn).SetReadBuffer(rcvbuf)
		}
		return c, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ec := &echoClient{ws: wsock}
	if wsock {
		conn, br, _, err := ws.Dialer{Protocols: []string{"wamp.2.json"}, NetDial: dial}.Dial(ctx, s.WebSocketURL())
		if err != nil {
			t.Fatal(err)
		}
		ec.c, ec.rd = conn, bufio.NewReader(conn)
		if br != nil {
			ec.rd = bufio.NewReader(io.MultiReader(br, conn))
		}
	} else {
		conn, err := dial(ctx, "tcp", s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		ec.c, ec.rd = conn, bufio.NewReader(conn)
		if _, err := conn.Write([]byte{0x7F, 0xF0 | byte(codec.JSON), 0, 0}); err != nil {
			t.Fatal(err)
		}
		var hs [4]byte
		if _, err := io.ReadFull(ec.rd, hs[:]); err != nil || hs[0] != 0x7F {
			t.Fatalf("RawSocket handshake reply % x, %v", hs, err)
		}
	}
	t.Cleanup(func() { ec.c.Close() })
	return ec
}

// frame is one message from the client: a masked WebSocket binary frame or a RawSocket
// message frame.
func (ec *echoClient) frame(p []byte) []byte {
	if ec.ws {
		var b bytes.Buffer
		_ = ws.WriteFrame(&b, ws.MaskFrame(ws.NewBinaryFrame(p)))
		return b.Bytes()
	}
	n := len(p)
	return append([]byte{rsMessage, byte(n >> 16), byte(n >> 8), byte(n)}, p...)
}

// readMsg reads one echoed message (its payload).
func (ec *echoClient) readMsg() ([]byte, error) {
	if ec.ws {
		f, err := ws.ReadFrame(ec.rd)
		if err != nil {
			return nil, err
		}
		if f.Header.Masked || f.Header.OpCode != ws.OpBinary || !f.Header.Fin {
			return nil, fmt.Errorf("reply: masked %v op %v fin %v", f.Header.Masked, f.Header.OpCode, f.Header.Fin)
		}
		return f.Payload, nil
	}
	var h [4]byte
	if _, err := io.ReadFull(ec.rd, h[:]); err != nil {
		return nil, err
	}
	if h[0] != rsMessage {
		return nil, fmt.Errorf("reply frame type %d", h[0])
	}
	p := make([]byte, int(h[1])<<16|int(h[2])<<8|int(h[3]))
	_, err := io.ReadFull(ec.rd, p)
	return p, err
}

// TestEchoServerSizes: messages of every length encoding up to 4 MiB, sent back to back
// by one goroutine while the client reads late through a small receive buffer, come back
// whole and in order. On the epoll server the big replies do not fit the socket: the
// rest waits for EPOLLOUT (partial writes are counted, and must have happened).
func TestEchoServerSizes(t *testing.T) {
	forEachEcho(t, func(t *testing.T, s echoServer) {
		for _, wsock := range []bool{true, false} {
			t.Run(fmt.Sprintf("ws=%v", wsock), func(t *testing.T) {
				testEchoSizes(t, s, wsock)
			})
		}
		if es, ok := s.(*EpollEchoServer); ok && es.partials.Load() == 0 {
			t.Error("no write was partial: the EPOLLOUT path did not run")
		}
	})
}

func testEchoSizes(t *testing.T, s echoServer, wsock bool) {
	ec := dialEcho(t, s, wsock, 16<<10)
	_ = ec.c.SetDeadline(time.Now().Add(20 * time.Second))
	sizes := []int{0, 1, 125, 126, 1000, 65535, 65536, 70_000, 1 << 20, 4 << 20, 3, 200_000, 4<<20 + 7, 10}
	msgs := make([][]byte, len(sizes))
	for i, n := range sizes {
		msgs[i] = bytes.Repeat([]byte{byte(i + 1)}, n)
		for j := 0; j < n; j += 997 {
			msgs[i][j] = byte(j) // not one byte repeated: a shifted or torn copy shows
		}
	}
	m0, b0 := s.Messages(), s.Bytes()
	errc := make(chan error, 1)
	go func() {
		for _, m := range msgs {
			if _, err := ec.c.Write(ec.frame(m)); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	time.Sleep(100 * time.Millisecond) // the server's replies pile up meanwhile
	var total int64
	for i, m := range msgs {
		got, err := ec.readMsg()
		if err != nil {
			t.Fatalf("reply %d (%d bytes): %v", i, len(m), err)
		}
		if !bytes.Equal(got, m) {
			t.Fatalf("reply %d: %d bytes, not the %d sent", i, len(got), len(m))
		}
		total += int64(len(m))
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return s.Messages()-m0 == int64(len(msgs)) && s.Bytes()-b0 == total },
		func() string { return fmt.Sprintf("counted %d messages %d bytes", s.Messages()-m0, s.Bytes()-b0) })
}

// TestEchoServerHandshakeLeftover: frames sent in the same write as the handshake (the
// handshake's reader buffers them) are echoed before anything else.
func TestEchoServerHandshakeLeftover(t *testing.T) {
	forEachEcho(t, func(t *testing.T, s echoServer) {
		for _, wsock := range []bool{true, false} {
			conn, err := net.Dial("tcp", s.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
			ec := &echoClient{c: conn, rd: bufio.NewReader(conn), ws: wsock}
			var req []byte
			if wsock {
				req = []byte("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
					"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
					"Sec-WebSocket-Protocol: wamp.2.json\r\n\r\n")
			} else {
				req = []byte{0x7F, 0xF0 | byte(codec.JSON), 0, 0}
			}
			req = append(req, ec.frame([]byte("first"))...)
			req = append(req, ec.frame([]byte("second"))...)
			if _, err := conn.Write(req); err != nil {
				t.Fatal(err)
			}
			if wsock {
				for {
					line, err := ec.rd.ReadString('\n')
					if err != nil {
						t.Fatal(err)
					}
					if line == "\r\n" {
						break
					}
					if strings.HasPrefix(line, "HTTP/") && !strings.Contains(line, " 101 ") {
						t.Fatalf("upgrade answered %q", line)
					}
				}
			} else if _, err := ec.rd.Discard(4); err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"first", "second"} {
				got, err := ec.readMsg()
				if err != nil || string(got) != want {
					t.Fatalf("ws=%v: echoed %q, %v; want %q", wsock, got, err, want)
				}
			}
		}
	})
}

// TestEchoServerManyConns: 200 connections (WebSocket and RawSocket) on the epoll
// server's one loop (and on the goroutine server), each with several round trips at
// once, all answered on their own connection.
func TestEchoServerManyConns(t *testing.T) {
	forEachEcho(t, func(t *testing.T, s echoServer) {
		const conns, rounds = 200, 20
		clients := make([]*echoClient, conns)
		for i := range clients {
			clients[i] = dialEcho(t, s, i%2 == 0, 0)
		}
		var wg sync.WaitGroup
		errs := make(chan error, conns)
		for i, ec := range clients {
			wg.Go(func() {
				_ = ec.c.SetDeadline(time.Now().Add(10 * time.Second))
				for r := range rounds {
					m := fmt.Appendf(nil, "conn %d round %d %s", i, r, strings.Repeat("x", r*100))
					if _, err := ec.c.Write(ec.frame(m)); err != nil {
						errs <- err
						return
					}
					got, err := ec.readMsg()
					if err != nil || !bytes.Equal(got, m) {
						errs <- fmt.Errorf("conn %d round %d: %q, %v", i, r, got, err)
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if s.Conns() != conns {
			t.Errorf("%d conns counted", s.Conns())
		}
		waitFor(t, func() bool { return s.Messages() == conns*rounds },
			func() string { return fmt.Sprintf("%d messages counted", s.Messages()) })
	})
}

// TestEchoServerCloseLive: Close with connections open (one of them in the middle of a
// frame, one not past the handshake) returns, and every client sees its connection end;
// the package's leak check finds no goroutine of the server left.
func TestEchoServerCloseLive(t *testing.T) {
	for _, k := range echoServers {
		t.Run(k.name, func(t *testing.T) {
			s, err := k.start("127.0.0.1:0")
			if err != nil {
				t.Skip(err) // the epoll server off Linux; TestEchoServerWebSocket fails on other errors
			}
			var clients []*echoClient
			for i := range 10 {
				ec := dialEcho(t, s, i%2 == 0, 0)
				_ = ec.c.SetDeadline(time.Now().Add(5 * time.Second))
				if _, err := ec.c.Write(ec.frame([]byte("hi"))); err != nil {
					t.Fatal(err)
				}
				if got, err := ec.readMsg(); err != nil || string(got) != "hi" {
					t.Fatalf("echo %q, %v", got, err)
				}
				clients = append(clients, ec)
			}
			half := clients[0].frame(make([]byte, 1000))[:500]
			if _, err := clients[0].c.Write(half); err != nil {
				t.Fatal(err)
			}
			pending, err := net.Dial("tcp", s.Addr()) // no handshake sent
			if err != nil {
				t.Fatal(err)
			}
			defer pending.Close()
			waitFor(t, func() bool { return s.Conns() == 10 }, func() string { return fmt.Sprintf("%d conns", s.Conns()) })
			time.Sleep(20 * time.Millisecond) // the half frame reaches the server
			done := make(chan error, 1)
			go func() { done <- s.Close() }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("Close did not return with connections open")
			}
			for i, ec := range append(clients, &echoClient{c: pending, rd: bufio.NewReader(pending)}) {
				_ = ec.c.SetReadDeadline(time.Now().Add(5 * time.Second))
				if _, err := ec.rd.ReadByte(); err == nil || errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
					t.Errorf("client %d after Close: %v, want the connection ended", i, err)
				}
			}
		})
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestEchoServerSocketAllocs: a round trip over a real socket, client included, allocates
// nothing in steady state on either server (the buffers are the connection's or the
// loop's, reused).
func TestEchoServerSocketAllocs(t *testing.T) {
	forEachEcho(t, func(t *testing.T, s echoServer) {
		conn := dialRawEcho(t, s, codec.JSON, 20*time.Second)
		reply := make([]byte, 4+200)
		frame := append([]byte{rsMessage, 0, 0, 200}, bytes.Repeat([]byte("m"), 200)...)
		roundTrip := func() {
			if _, err := conn.Write(frame); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(conn, reply); err != nil {
				t.Fatal(err)
			}
		}
		for range 100 {
			roundTrip()
		}
		if allocs := testing.AllocsPerRun(2000, roundTrip); allocs > 0.05 {
			t.Errorf("%.2f allocations per round trip", allocs)
		}
		if !bytes.Equal(reply, frame) {
			t.Errorf("echoed %q", reply)
		}
	})
}
