package netpoll

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// webEcho answers every request with its method, path and body, from net/http.
var webEcho = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	fmt.Fprintf(w, "%s %s tls=%v body=%s", r.Method, r.URL.Path, r.TLS != nil, body)
})

// TestWebHandOff: a listener with a Web handler gives non-upgrade requests (with their
// body, on keep-alive conns, plain and TLS) to net/http, keeps the WebSocket at Path on
// the protocol code, takes a keep-alive conn back for an upgrade, and releases every
// slot when net/http closes its conns.
func TestWebHandOff(t *testing.T) {
	p := newPKI(t)
	h := newEchoHandler()
	s := startServer(t, Config{Listeners: []Listener{
		{Address: "127.0.0.1:0", Web: webEcho},
		{Address: "127.0.0.1:0", Web: webEcho, TLS: p.server.ServerConfig(nil)},
		{Address: "127.0.0.1:0"}, // no Web: the status page on the loop, as before
	}}, h)
	for i, scheme := range []string{"http", "https"} {
		t.Run(scheme, func(t *testing.T) {
			var nc net.Conn
			var err error
			if scheme == "https" {
				nc, err = tls.Dial("tcp", s.Addr(i).String(), p.ca.ClientConfig())
			} else {
				nc, err = net.Dial("tcp", s.Addr(i).String())
			}
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
			br := bufio.NewReader(nc)
			// Two requests in one write: the second is in the bytes netpoll read.
			body := strings.Repeat("b", 3000)
			fmt.Fprintf(nc, "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%sGET /b HTTP/1.1\r\nHost: x\r\n\r\n", len(body), body)
			tlsOn := fmt.Sprint(scheme == "https")
			for _, want := range []string{"POST /a tls=" + tlsOn + " body=" + body, "GET /b tls=" + tlsOn + " body="} {
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatal(err)
				}
				got, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(got) != want {
					t.Fatalf("got %.80q want %.80q", got, want)
				}
			}
			// Same keep-alive conn: the WebSocket upgrade at Path goes back to the
			// protocol code.
			key := "dGhlIHNhbXBsZSBub25jZQ=="
			fmt.Fprintf(nc, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: wamp.2.json\r\n\r\n", key)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("upgrade on a keep-alive web conn: %s", resp.Status)
			}
			h.waitOpen(t)
			c := &wsClient{conn: nc, r: br}
			c.write(t, ws.OpText, true, []byte(`[1]`))
			if f := c.read(t); string(f.Payload) != `[1]` {
				t.Fatalf("echo %q", f.Payload)
			}
		})
	}
	t.Run("no web", func(t *testing.T) {
		resp, err := http.Get("http://" + s.Addr(2).String() + "/")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !bytes.Contains(b, []byte("A WAMP router is running")) {
			t.Fatalf("status page: %s", b)
		}
	})
	t.Run("slots", func(t *testing.T) {
		tr := &http.Transport{}
		cl := &http.Client{Transport: tr}
		for range 20 {
			resp, err := cl.Get("http://" + s.Addr(0).String() + "/x")
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			tr.CloseIdleConnections()
		}
		// Closed by the client: net/http notices and closes its side.
		deadline := time.Now().Add(5 * time.Second)
		for s.webConns.Size() > 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if st := s.Stats(); st.WebOpen != 0 || st.WebHandedOff < 22 {
			t.Fatalf("web conns: %d handed off (want at least 22), %d still open", st.WebHandedOff, st.WebOpen)
		}
		// Every slot came back: the plain and TLS conns of the subtests above (handed
		// off, some taken back for a WebSocket) are closed by now.
		for s.live.Load() != 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := s.live.Load(); n != 0 {
			t.Fatalf("%d connection slots still held", n)
		}
	})
	t.Run("unix", func(t *testing.T) {
		sock := filepath.Join(t.TempDir(), "web.sock")
		startServer(t, Config{Listeners: []Listener{{Network: "unix", Address: sock, Web: webEcho}}}, newEchoHandler())
		cl := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}}
		resp, err := cl.Post("http://x/u", "text/plain", strings.NewReader("over unix"))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "POST /u tls=false body=over unix" {
			t.Fatalf("unix: %q", b)
		}
	})
}
