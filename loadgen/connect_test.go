package loadgen

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/codec"
	"github.com/switchyard-wamp/switchyard/node"
)

// connectRun runs the connect scenario at urls and fails the test on a Run error.
func connectRun(t *testing.T, o Options) *Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r, err := Run(ctx, "connect", o)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestConnectLoops joins a few hundred sessions on the event loops against a real node
// and the sink, over WebSocket and RawSocket, in three serializers: every join counted,
// its latency recorded, the sessions spread over the URLs.
func TestConnectLoops(t *testing.T) {
	if !loopsSupported {
		t.Skip("no event loops on this platform")
	}
	n := startNode(t)
	s, err := StartSink("127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, tc := range []struct {
		name string
		urls []string
		ser  codec.Serializer
	}{
		{"node-ws", []string{n.WebSocketURL()}, codec.JSON},
		{"node-rs", []string{n.RawSocketURL()}, codec.MsgPack},
		{"node-both", []string{n.WebSocketURL(), n.RawSocketURL()}, codec.CBOR},
		{"sink-ws", []string{s.WebSocketURL()}, codec.JSON},
		{"sink-rs", []string{s.RawSocketURL()}, codec.CBOR},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const sessions = 300
			r := connectRun(t, Options{URLs: tc.urls, Serializer: tc.ser, Sessions: sessions, Concurrency: 32,
				Duration: 50 * time.Millisecond})
			if r.Errors != 0 || r.Delivered != sessions || r.Sent != sessions {
				t.Fatalf("sent %d joined %d errors %d %q", r.Sent, r.Delivered, r.Errors, r.ErrorSamples)
			}
			if l := r.Latency; l == nil || l.Count != sessions || l.MinUs <= 0 || l.P50Us > l.MaxUs {
				t.Errorf("latency %+v", r.Latency)
			}
			if r.MsgsPerSec <= 0 || r.LoadgenCPUSeconds < 0 {
				t.Errorf("joins/s %v, cpu %v", r.MsgsPerSec, r.LoadgenCPUSeconds)
			}
			if len(tc.urls) == 2 && (len(r.SessionsPerURL) != 2 || r.SessionsPerURL[0] != sessions/2 || r.SessionsPerURL[1] != sessions/2) {
				t.Errorf("sessions per URL %v", r.SessionsPerURL)
			}
		})
	}
}

// TestConnectRefused: a refused HELLO (unknown realm), a wrong ticket and a refused TCP
// connect each count one error per session and no join.
func TestConnectRefused(t *testing.T) {
	n := startNode(t)
	s, err := StartSink("127.0.0.1:0", "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "rs://" + ln.Addr().String()
	ln.Close()
	for _, tc := range []struct {
		name, url, realm, ticket, want string
	}{
		{"no-such-realm-ws", n.WebSocketURL(), "nope", "", "no_such_realm"},
		{"no-such-realm-rs", n.RawSocketURL(), "nope", "", "no_such_realm"},
		{"wrong-ticket-ws", s.WebSocketURL(), "", "wrong", "not_authorized"},
		{"wrong-ticket-rs", s.RawSocketURL(), "", "wrong", "not_authorized"},
		{"no-ticket", s.RawSocketURL(), "", "", "no_auth_method"},
		{"connection-refused", closed, "", "", "refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := connectRun(t, Options{URLs: []string{tc.url}, Realm: tc.realm, Ticket: tc.ticket, Sessions: 40,
				Concurrency: 8, Duration: time.Millisecond})
			if r.Delivered != 0 || r.Errors != 40 || r.Sent != 40 {
				t.Fatalf("sent %d joined %d errors %d, want 40 errors: %q", r.Sent, r.Delivered, r.Errors, r.ErrorSamples)
			}
			if len(r.ErrorSamples) == 0 || !strings.Contains(r.ErrorSamples[0], tc.want) {
				t.Errorf("error samples %q, want %q", r.ErrorSamples, tc.want)
			}
		})
	}
	// The right ticket joins.
	r := connectRun(t, Options{URLs: []string{s.WebSocketURL()}, AuthID: "bench", Ticket: "s3cret", Sessions: 40, Duration: time.Millisecond})
	if r.Delivered != 40 || r.Errors != 0 {
		t.Errorf("right ticket: joined %d errors %d %q", r.Delivered, r.Errors, r.ErrorSamples)
	}
}

// TestConnectKeepalive holds sessions for several ping intervals (100 ms) of a node that
// closes a connection whose ping goes unanswered for 300 ms (not less: on a loaded
// machine the node's own write of the ping counts): they all survive, and the node read
// the pongs during the hold (bytes in while every session was open and idle). Without
// pongs every session ends about 400 ms into the hold.
func TestConnectKeepalive(t *testing.T) {
	for _, rs := range []bool{false, true} {
		t.Run(map[bool]string{false: "ws", true: "rs"}[rs], func(t *testing.T) {
			n, err := node.Start(node.Config{Listeners: []node.Listener{{Address: "127.0.0.1:0",
				PingInterval: 100 * time.Millisecond, PingTimeout: 300 * time.Millisecond}},
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = n.Stop(context.Background()) })
			url := n.WebSocketURL()
			if rs {
				url = n.RawSocketURL()
			}
			const sessions = 200
			// Sample the node while the sessions are held: the bytes it read from the
			// first moment all were open to the last.
			var firstFull, lastFull atomic.Uint64
			var minOpenAfterFull atomic.Int64
			minOpenAfterFull.Store(sessions)
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Go(func() {
				full := false
				for {
					select {
					case <-stop:
						return
					case <-time.After(10 * time.Millisecond):
					}
					st := n.Server.Stats()
					if st.Open == sessions {
						if !full {
							firstFull.Store(st.BytesIn)
							full = true
						}
						lastFull.Store(st.BytesIn)
					} else if full && st.Open < minOpenAfterFull.Load() {
						minOpenAfterFull.Store(st.Open)
					}
				}
			})
			r := connectRun(t, Options{URLs: []string{url}, Sessions: sessions, Concurrency: 16, Duration: 1200 * time.Millisecond})
			close(stop)
			wg.Wait()
			if r.Errors != 0 || r.Delivered != sessions {
				t.Fatalf("joined %d errors %d %q", r.Delivered, r.Errors, r.ErrorSamples)
			}
			if pong := lastFull.Load() - firstFull.Load(); firstFull.Load() == 0 || pong == 0 {
				t.Errorf("the node read %d bytes from idle sessions over the hold: no pongs", pong)
			} else {
				t.Logf("pong bytes read by the node during the hold: %d", pong)
			}
		})
	}
}

// TestConnectUnixSocket joins over rs+unix:// (the event loops' AF_UNIX path).
func TestConnectUnixSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "r.sock")
	n, err := node.Start(node.Config{Listeners: []node.Listener{{Network: "unix", Address: sock}},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Stop(context.Background()) })
	r := connectRun(t, Options{URLs: []string{"rs+unix://" + sock}, Sessions: 100, Duration: time.Millisecond})
	if r.Errors != 0 || r.Delivered != 100 {
		t.Fatalf("joined %d errors %d %q", r.Delivered, r.Errors, r.ErrorSamples)
	}
}

// TestConnectBadUpgrade: a server that answers the upgrade with a wrong accept value, a
// 404, a masked frame or garbage instead of a RawSocket reply fails every join with a
// counted error.
func TestConnectBadUpgrade(t *testing.T) {
	for _, tc := range []struct{ name, scheme, reply, want string }{
		{"wrong-accept", "ws", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: xxxxxxxxxxxxxxxxxxxxxxxxxxx=\r\nSec-WebSocket-Protocol: wamp.2.json\r\n\r\n", "Sec-WebSocket-Accept"},
		{"not-found", "ws", "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", "404"},
		{"rawsocket-garbage", "rs", "HTTP", "bad handshake reply"},
		{"rawsocket-refused", "rs", "\x7f\x10\x00\x00", "rawsocket"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					go func() {
						defer c.Close()
						br := bufio.NewReader(c)
						if tc.scheme == "ws" {
							for { // the request head
								line, err := br.ReadString('\n')
								if err != nil || line == "\r\n" {
									break
								}
							}
						} else if _, err := io.ReadFull(br, make([]byte, 4)); err != nil {
							return
						}
						_, _ = io.WriteString(c, tc.reply)
						_, _ = io.Copy(io.Discard, br)
					}()
				}
			}()
			url := tc.scheme + "://" + ln.Addr().String()
			if tc.scheme == "ws" {
				url += "/ws"
			}
			r := connectRun(t, Options{URLs: []string{url}, Sessions: 20, Concurrency: 4, Duration: time.Millisecond})
			if r.Delivered != 0 || r.Errors != 20 {
				t.Fatalf("joined %d errors %d %q", r.Delivered, r.Errors, r.ErrorSamples)
			}
			if !strings.Contains(r.ErrorSamples[0], tc.want) {
				t.Errorf("error samples %q, want %q", r.ErrorSamples, tc.want)
			}
		})
	}
}

// TestConnectCancel: a paced run whose context ends mid-way returns at once with what
// joined, counting no error for the joins it abandoned.
func TestConnectCancel(t *testing.T) {
	n := startNode(t)
	// 5000 joins at 200/s would take 25 s; the context ends after 1.5 s (~300 joins).
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	start := time.Now()
	r, err := Run(ctx, "connect", Options{URLs: []string{n.WebSocketURL()}, Sessions: 5000, Rate: 200, Duration: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 4*time.Second {
		t.Errorf("Run took %v after its context ended", el)
	}
	if r.Errors != 0 || r.Delivered == 0 || r.Delivered >= 1000 {
		t.Errorf("joined %d errors %d %q", r.Delivered, r.Errors, r.ErrorSamples)
	}
}

// TestConnectRate: --rate paces the joins over the window.
func TestConnectRate(t *testing.T) {
	n := startNode(t)
	r := connectRun(t, Options{URLs: []string{n.RawSocketURL()}, Sessions: 200, Rate: 1000, Duration: time.Millisecond})
	if r.Errors != 0 || r.Delivered != 200 {
		t.Fatalf("joined %d errors %d %q", r.Delivered, r.Errors, r.ErrorSamples)
	}
	// 200 joins at 1000/s take about 200 ms; unpaced they take a few ms.
	if r.Elapsed < 150*time.Millisecond || r.MsgsPerSec > 1400 {
		t.Errorf("200 joins at --rate 1000 took %v (%.0f joins/s)", r.Elapsed, r.MsgsPerSec)
	}
}
