package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"regexp"
	"testing"

	"github.com/switchyard-wamp/switchyard/node"
)

// TestStatsKeysSnakeCase: every key of /debug/stats is snake_case, the netpoll counters
// included (they were Go field names: Accepted next to sessions).
func TestStatsKeysSnakeCase(t *testing.T) {
	n, err := node.Start(node.Config{Listeners: []node.Listener{{Address: "127.0.0.1:0"}},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop(context.Background())
	rec := httptest.NewRecorder()
	statsHandler(n).ServeHTTP(rec, httptest.NewRequest("GET", "/debug/stats", nil))
	var got map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatalf("%v: %s", err, rec.Body.String())
	}
	snake := regexp.MustCompile(`^[a-z]+(_[a-z]+)*$`)
	np, _ := got["netpoll"].(map[string]any)
	if _, ok := got["sessions"]; !ok || np["accepted"] == nil || np["slow_consumer_closed"] == nil || np["over_outbound_limit"] == nil {
		t.Fatalf("stats: %s", rec.Body.String())
	}
	for k := range got {
		if !snake.MatchString(k) {
			t.Errorf("key %q", k)
		}
	}
	for k := range np {
		if !snake.MatchString(k) {
			t.Errorf("netpoll key %q", k)
		}
	}
	for in, want := range map[string]string{"BytesIn": "bytes_in", "TLSErrors": "tls_errors", "Open": "open", "HTTPServerID": "http_server_id"} {
		if got := snakeCase(in); got != want {
			t.Errorf("snakeCase(%s) = %q, want %q", in, got, want)
		}
	}
}
