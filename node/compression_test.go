package node

import (
	"bytes"
	"compress/flate"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/httphead"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/switchyard-wamp/switchyard/netpoll"
)

// deflatePeer is a minimal WAMP-over-WebSocket JSON client that offers permessage-deflate
// and inflates what it receives (no compression of its own: the router must accept
// plain frames from a compressing session too).
type deflatePeer struct {
	conn net.Conn
	r    io.Reader
	ext  bool
}

func dialDeflatePeer(t testing.TB, url string, offer bool) *deflatePeer {
	t.Helper()
	d := ws.Dialer{Protocols: []string{"wamp.2.json"}, Timeout: 5 * time.Second}
	if offer {
		d.Extensions = []httphead.Option{httphead.NewOption("permessage-deflate", nil)}
	}
	conn, br, hs, err := d.Dial(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	var r io.Reader = conn
	if br != nil {
		r = io.MultiReader(br, conn)
	}
	p := &deflatePeer{conn: conn, r: r, ext: len(hs.Extensions) > 0}
	if offer && !p.ext {
		t.Fatal("permessage-deflate not negotiated")
	}
	p.send(t, `[1,"realm1",{"roles":{"subscriber":{},"publisher":{}}}]`)
	if m := p.recv(t); !strings.HasPrefix(m, "[2,") {
		t.Fatalf("want WELCOME, got %s", m)
	}
	return p
}

func (p *deflatePeer) send(t testing.TB, msg string) {
	t.Helper()
	if err := wsutil.WriteClientMessage(p.conn, ws.OpText, []byte(msg)); err != nil {
		t.Fatal(err)
	}
}

// recv reads one message, inflating it when the frame has RSV1.
func (p *deflatePeer) recv(t testing.TB) string {
	t.Helper()
	_ = p.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		f, err := ws.ReadFrame(p.r)
		if err != nil {
			t.Fatal(err)
		}
		if f.Header.OpCode.IsControl() {
			continue
		}
		if f.Header.Rsv&0x4 == 0 {
			return string(f.Payload)
		}
		tail := []byte{0, 0, 0xff, 0xff}
		out, err := io.ReadAll(flate.NewReader(io.MultiReader(bytes.NewReader(f.Payload), bytes.NewReader(tail))))
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatal(err)
		}
		return string(out)
	}
}

func startCompressionNode(t testing.TB) *Node {
	t.Helper()
	n, err := Start(Config{Listeners: []Listener{{Address: "127.0.0.1:0", Compression: &netpoll.Compression{}}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = n.Stop(ctx)
	})
	return n
}

// The broker's fan-out of one EVENT to many compressed sessions compresses it about once
// (no context takeover: the compressed bytes are the same for every session).
func TestCompressionFanOutCompressesOnce(t *testing.T) {
	const subs = 40
	n := startCompressionNode(t)
	peers := make([]*deflatePeer, subs)
	for i := range peers {
		peers[i] = dialDeflatePeer(t, n.WebSocketURL(), true)
		peers[i].send(t, `[32,1,{},"com.example.big"]`)
		if m := peers[i].recv(t); !strings.HasPrefix(m, "[33,") {
			t.Fatalf("want SUBSCRIBED, got %s", m)
		}
	}
	pub := dialDeflatePeer(t, n.WebSocketURL(), false)
	before := n.Server.Stats()
	payload := strings.Repeat("compress me once ", 100)
	pub.send(t, fmt.Sprintf(`[16,1,{},"com.example.big",[%q]]`, payload))
	for i, p := range peers {
		var ev []any
		if err := json.Unmarshal([]byte(p.recv(t)), &ev); err != nil || len(ev) < 5 {
			t.Fatalf("subscriber %d: bad EVENT (%v)", i, err)
		}
		if args, _ := ev[4].([]any); len(args) != 1 || args[0] != payload {
			t.Fatalf("subscriber %d: EVENT args differ", i)
		}
	}
	st := n.Server.Stats()
	comp, shared := st.DeflateCompressed-before.DeflateCompressed, st.DeflateShared-before.DeflateShared
	t.Logf("one event to %d compressed subscribers: %d compressions, %d shared", subs, comp, shared)
	if comp+shared != subs || (comp > 4 && !raceEnabled) || comp > subs/2 {
		t.Fatalf("%d compressions and %d shared for %d subscribers: want about one compression", comp, shared, subs)
	}
}

// TestCompressionIdleSessionMemory reports the heap an idle session costs with and
// without permessage-deflate (SWITCHYARD_DEFLATE_MEM_SESSIONS sessions each, default
// 300). It fails only if compression costs an idle session more than 4 KiB: without
// context takeover an idle compressed session holds no compressor or window.
func TestCompressionIdleSessionMemory(t *testing.T) {
	sessions := 300
	if v := os.Getenv("SWITCHYARD_DEFLATE_MEM_SESSIONS"); v != "" {
		fmt.Sscan(v, &sessions)
	}
	measure := func(offer bool) float64 {
		n := startCompressionNode(t)
		heap := func() uint64 {
			runtime.GC()
			runtime.GC()
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			return m.HeapInuse
		}
		// Warm the pools once (a compressed round trip), then measure the idle sessions.
		w := dialDeflatePeer(t, n.WebSocketURL(), offer)
		w.send(t, fmt.Sprintf(`[16,1,{"acknowledge":true},"x",[%q]]`, strings.Repeat("warm ", 100)))
		w.recv(t)
		base := heap()
		for range sessions {
			dialDeflatePeer(t, n.WebSocketURL(), offer)
		}
		return float64(int64(heap())-int64(base)) / float64(sessions)
	}
	plain := measure(false)
	comp := measure(true)
	t.Logf("heap per idle session (client and router in this process): plain %.0f B, permessage-deflate %.0f B (%d sessions each)", plain, comp, sessions)
	if comp-plain > 4096 {
		t.Fatalf("an idle compressed session costs %.0f B more than a plain one", comp-plain)
	}
}
