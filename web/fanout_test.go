package web_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/loadgen"
	"github.com/switchyard-wamp/switchyard/node"
)

// TestFanoutUnderStaticLoad measures what web requests cost the WAMP hot path: the
// pub/sub fan-out rate of one node (loadgen's pubsub scenario: 1 publisher, 8
// subscribers of one topic, 64-byte payloads, as fast as the window allows, 3 s after
// 0.5 s of warm-up) alone, then, right after, 4 HTTP clients fetch a 16 KiB static file from the same listener: as fast as
// they can over keep-alive connections, paced to 1000 requests/s over keep-alive
// connections, and paced to 200 requests/s with a new connection per request (each one
// handed off from an event loop to net/http). Everything runs in this process
// on the machine's cores, so the HTTP clients compete for CPU too: the ratio is an upper
// bound on the cost. It reports numbers and never fails on them; it is long, so it runs
// only with SWITCHYARD_WEB_FANOUT=1 (see docs/web.md):
//
//	SWITCHYARD_WEB_FANOUT=1 go test -count=1 -run TestFanoutUnderStaticLoad -v ./web
func TestFanoutUnderStaticLoad(t *testing.T) {
	if os.Getenv("SWITCHYARD_WEB_FANOUT") == "" {
		t.Skip("measurement: set SWITCHYARD_WEB_FANOUT=1 to run it (about 30 s)")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "app.js"), []byte(strings.Repeat("x", 16<<10)), 0o644); err != nil {
		t.Fatal(err)
	}
	n, err := node.Start(node.Config{
		Listeners: []node.Listener{{Address: "127.0.0.1:0", Web: []node.WebPath{
			{Path: "/static", Kind: node.WebStatic, Directory: dir},
			{Path: "/", Kind: node.WebNodeInfo},
		}}},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = n.Stop(ctx)
	}()
	fileURL := "http://" + n.Server.Addr(0).String() + "/static/app.js"

	fanout := func() float64 {
		t.Helper()
		r, err := loadgen.Run(context.Background(), "pubsub", loadgen.Options{URLs: []string{n.WebSocketURL()},
			Publishers: 1, Subscribers: 8, Topics: 1, Size: 64, Duration: 3 * time.Second, Warmup: 500 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		return r.MsgsPerSec
	}
	// load runs 4 HTTP clients until stop is closed (each paced to perWorker requests
	// per second, 0: as fast as it can) and returns the requests per second.
	load := func(keepAlive bool, perWorker int, stop chan struct{}) func() float64 {
		var done atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tr := &http.Transport{DisableKeepAlives: !keepAlive}
				defer tr.CloseIdleConnections()
				cl := &http.Client{Transport: tr}
				var tick <-chan time.Time
				if perWorker > 0 {
					tk := time.NewTicker(time.Second / time.Duration(perWorker))
					defer tk.Stop()
					tick = tk.C
				}
				for {
					if tick != nil {
						select {
						case <-stop:
							return
						case <-tick:
						}
					}
					select {
					case <-stop:
						return
					default:
					}
					resp, err := cl.Get(fileURL)
					if err != nil {
						t.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode == 200 {
						done.Add(1)
					}
				}
			}()
		}
		return func() float64 {
			wg.Wait()
			return float64(done.Load()) / time.Since(start).Seconds()
		}
	}

	var res []string
	for _, c := range []struct {
		keep      bool
		perWorker int
	}{{true, 0}, {true, 250}, {false, 50}} {
		// Alone right before each loaded run: the machine's other load drifts.
		base := fanout()
		stop := make(chan struct{})
		rate := load(c.keep, c.perWorker, stop)
		under := fanout()
		close(stop)
		kind := "keep-alive"
		if !c.keep {
			kind = "new connection per request"
		}
		pace := "unpaced"
		if c.perWorker > 0 {
			pace = fmt.Sprintf("paced to %d/s", 4*c.perWorker)
		}
		reqs := rate()
		res = append(res, fmt.Sprintf("static load %s, %s (%.0f req/s of 16 KiB): fan-out %.0f events/s vs %.0f alone just before = %.2f (%.0f events lost per request)",
			kind, pace, reqs, under, base, under/base, (base-under)/reqs))
	}
	for _, l := range res {
		t.Log(l)
	}
}
