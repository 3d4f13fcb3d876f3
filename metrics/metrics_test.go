package metrics

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/client"
	"github.com/switchyard-wamp/switchyard/codec"
	"github.com/switchyard-wamp/switchyard/node"
	"github.com/switchyard-wamp/switchyard/proxy"
)

// startNode runs a standalone node on loopback port 0 with realm1 (anonymous) and
// realm2 (ticket only), and serves /metrics for it on a real HTTP listener.
func startNode(t *testing.T) (*node.Node, string) {
	t.Helper()
	n, err := node.Start(node.Config{
		Listeners: []node.Listener{{Address: "127.0.0.1:0"}},
		Realms:    []string{"realm1", "realm2"},
		Auth: map[string]*proxy.RealmAuth{"realm2": {Tickets: map[string]proxy.TicketPrincipal{
			"joe": {Ticket: "secret", Role: "user"}}}},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_ = n.Stop(ctx)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: Handler(Source{Role: "standalone", Router: n.Router, Server: n.Server,
		Frontend: n.FrontendStats, Ready: func() bool { return true }})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return n, "http://" + ln.Addr().String() + "/metrics"
}

// scrape GETs url and returns the samples by their name and labels as printed.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad sample line %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

func want(t *testing.T, m map[string]float64, key string, v float64) {
	t.Helper()
	got, ok := m[key]
	if !ok {
		t.Errorf("no sample %s", key)
	} else if got != v {
		t.Errorf("%s = %v, want %v", key, got, v)
	}
}

// TestMetrics drives real WAMP traffic at a node and checks the scrape: sessions per
// realm, joins and leaves, messages by direction, serializer and type, failed logins
// by method, connection counters and the Go runtime collector.
func TestMetrics(t *testing.T) {
	n, url := startNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws := n.WebSocketURL()
	sub, err := client.Connect(ctx, client.Config{URL: ws, Realm: "realm1", Serializer: codec.MsgPack})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan struct{}, 10)
	if _, err := sub.Subscribe(ctx, "com.example.t", func(*client.Event) { got <- struct{}{} }, nil); err != nil {
		t.Fatal(err)
	}
	pub, err := client.Connect(ctx, client.Config{URL: ws, Realm: "realm1", Serializer: codec.JSON})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := pub.Publish(ctx, "com.example.t", []any{1}, nil, client.Acknowledge()); err != nil {
			t.Fatal(err)
		}
		<-got
	}
	// A wrong ticket: one failure of method ticket.
	_, err = client.Connect(ctx, client.Config{URL: ws, Realm: "realm2", AuthID: "joe", AuthMethods: []string{"ticket"},
		OnChallenge: func(string, map[string]any) (string, error) { return "wrong", nil }})
	var werr *client.Error
	if !errors.As(err, &werr) {
		t.Fatalf("bad ticket: %v", err)
	}

	m := scrape(t, url)
	want(t, m, `switchyard_sessions{realm="realm1"}`, 2)
	want(t, m, `switchyard_sessions{realm="realm2"}`, 0)
	want(t, m, `switchyard_session_joins_total`, 2)
	want(t, m, `switchyard_auth_failures_total{method="ticket"}`, 1)
	want(t, m, `switchyard_auth_failures_total{method="wampcra"}`, 0)
	want(t, m, `switchyard_messages_total{direction="in",serializer="json",type="PUBLISH"}`, 3)
	want(t, m, `switchyard_messages_total{direction="out",serializer="json",type="PUBLISHED"}`, 3)
	want(t, m, `switchyard_messages_total{direction="out",serializer="msgpack",type="EVENT"}`, 3)
	want(t, m, `switchyard_messages_total{direction="in",serializer="msgpack",type="SUBSCRIBE"}`, 1)
	want(t, m, `switchyard_messages_total{direction="in",serializer="json",type="HELLO"}`, 2)
	want(t, m, `switchyard_calls_in_flight{realm="realm1"}`, 0)
	want(t, m, `switchyard_up{role="standalone"}`, 1)
	want(t, m, `switchyard_ready`, 1)
	want(t, m, `switchyard_slow_consumer_closed_total{reason="hard_limit"}`, 0)
	want(t, m, `switchyard_slow_consumer_closed_total{reason="write_deadline"}`, 0)
	if m[`switchyard_bytes_total{direction="in"}`] <= 0 || m[`go_goroutines`] <= 0 {
		t.Errorf("bytes in %v, go_goroutines %v", m[`switchyard_bytes_total{direction="in"}`], m[`go_goroutines`])
	}

	_ = pub.Leave(ctx, "wamp.close.normal")
	deadline := time.Now().Add(5 * time.Second)
	for {
		m = scrape(t, url)
		if (m[`switchyard_session_leaves_total`] == 1 && m[`switchyard_connections_open`] == 1) || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	want(t, m, `switchyard_session_leaves_total`, 1)
	want(t, m, `switchyard_sessions{realm="realm1"}`, 1)
	want(t, m, `switchyard_connections_open`, 1) // the subscriber's
	want(t, m, `switchyard_connections_accepted_total`, 3)
}
