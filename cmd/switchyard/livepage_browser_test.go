package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/switchyard-wamp/switchyard/client"
	"github.com/switchyard-wamp/switchyard/internal/browsertest"
	"github.com/switchyard-wamp/switchyard/node"
)

// TestLiveStatusPage opens the admin listener's status page of a real node in headless
// Chromium while clients publish: the page must show the node ready, its sessions and
// realm, and a message rate above zero, which it can only compute after refreshing
// itself (two polls of status.json). A screenshot is kept as an artifact.
func TestLiveStatusPage(t *testing.T) {
	ctx := browsertest.Browser(t, 60*time.Second)
	n, err := node.Start(node.Config{Listeners: []node.Listener{{Address: "127.0.0.1:0"}},
		Realms: []string{"realm1", "sensors"}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop(context.Background())
	ops := &opsNode{role: "standalone", name: "test-node", n: n, started: time.Now(), log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: ops.adminHandler()}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	cctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var sessions []*client.Session
	for i := range 3 {
		s, err := client.Connect(cctx, client.Config{URL: n.WebSocketURL(), Realm: []string{"realm1", "realm1", "sensors"}[i]})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		sessions = append(sessions, s)
	}
	if _, err := sessions[1].Subscribe(cctx, "com.example.tick", func(*client.Event) {}, nil); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() { // steady traffic for the page's rates
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
				_ = sessions[0].Publish(cctx, "com.example.tick", []any{1}, nil)
			}
		}
	}()

	if err := chromedp.Do(ctx, chromedp.Navigate("http://"+ln.Addr().String()+"/")); err != nil {
		t.Fatal(err)
	}
	// The rate needs two polls, so this waits for the page to refresh itself.
	rateUp := `Number(document.getElementById("rate-out").textContent.replace(/[^0-9.]/g, "")) > 0`
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](rateUp, chromedp.WithPollingTimeout(15*time.Second))); err != nil {
		t.Fatalf("the page shows no message rate: %v", err)
	}
	// Let the chart draw a few points for the screenshot.
	if err := chromedp.Do(ctx, chromedp.Sleep(2500*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	text := func(id string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID(id)))
		if err != nil {
			t.Fatalf("#%s: %v", id, err)
		}
		return strings.TrimSpace(s)
	}
	if got := text("state"); got != "ready" {
		t.Errorf("state %q, want ready", got)
	}
	if got := text("sessions"); got != "3" {
		t.Errorf("sessions %q, want 3", got)
	}
	if got := text("node"); got != "test-node" {
		t.Errorf("node %q", got)
	}
	realms := text("realms")
	for _, want := range []string{"realm1\t2", "sensors\t1"} {
		if !strings.Contains(realms, want) {
			t.Errorf("realms table %q has no %q", realms, want)
		}
	}
	rate, _ := strconv.ParseFloat(strings.TrimRight(text("rate-in"), "k"), 64)
	t.Logf("page: state %s, sessions %s, in %s/s, out %s/s", text("state"), text("sessions"), text("rate-in"), text("rate-out"))
	if rate <= 0 {
		t.Errorf("messages in / s %q", text("rate-in"))
	}
	browsertest.Screenshot(t, ctx, "switchyard-status-page")
}
