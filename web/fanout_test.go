package web_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/loadgen"
	"github.com/switchyard-wamp/switchyard/node"
)

// TestFanoutUnderStaticLoad measures what web requests cost the WAMP hot path. One node
// in this process serves a 16 KiB static file and WebSocket on one listener. It measures
// the pub/sub fan-out rate (loadgen's pubsub scenario, in this process: 1 publisher, 8
// subscribers of one topic, 64-byte payloads, as fast as the window allows, 3 s after
// 0.5 s of warm-up) alone, then right after under a concurrent static-file load of 4
// HTTP clients in a child process (this test binary, TestStaticLoadClient): as fast as
// they go over keep-alive connections, paced to 1000 requests/s over keep-alive
// connections, and paced to 200 requests/s with a new connection per request (each one
// handed off from an event loop to net/http). It also reports this process's CPU time
// per static request with no fan-out running (the node's cost of one request: the
// clients are in the other process), and, to compare, per request for the status page
// of a second listener without a web tree (served on the event loop, no hand-off). The machine's cores are shared by everything, so
// the throughput ratio is an upper bound on the cost. It reports numbers and never
// fails on them; it takes about 35 s, so it runs only with SWITCHYARD_WEB_FANOUT=1
// (see docs/web.md):
//
//	SWITCHYARD_WEB_FANOUT=1 go test -count=1 -run TestFanoutUnderStaticLoad -v ./web
func TestFanoutUnderStaticLoad(t *testing.T) {
	if os.Getenv("SWITCHYARD_WEB_FANOUT") == "" {
		t.Skip("measurement: set SWITCHYARD_WEB_FANOUT=1 to run it (about 35 s)")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "app.js"), []byte(strings.Repeat("x", 16<<10)), 0o644); err != nil {
		t.Fatal(err)
	}
	n, err := node.Start(node.Config{
		Listeners: []node.Listener{{Address: "127.0.0.1:0", Web: []node.WebPath{
			{Path: "/static", Kind: node.WebStatic, Directory: dir},
			{Path: "/", Kind: node.WebNodeInfo},
		}}, {Address: "127.0.0.1:0"}}, // the second: no web tree, "/" served on the loop
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

	var res []string
	// The node's CPU per static request, nothing else running in this process, less
	// what the idle node spends (tickers, GC) in as much time.
	cpu0, wall := cpuTime(), time.Now()
	time.Sleep(2 * time.Second)
	idle := float64(cpuTime()-cpu0) / float64(time.Since(wall)) // cores
	perReq := func(url string, keep bool, perWorker int, what string) {
		cpu0, wall := cpuTime(), time.Now()
		reqs := staticLoad(t, url, keep, perWorker, 3*time.Second)()
		el := time.Since(wall).Seconds()
		used := (cpuTime() - cpu0).Seconds() - idle*el
		res = append(res, fmt.Sprintf("%s: %.0f req/s; node CPU %.1f µs per request (%.3f cores; idle node %.3f cores subtracted)",
			what, reqs, used/(reqs*el)*1e6, used/el, idle))
	}
	perReq(fileURL, true, 0, "static alone, keep-alive, unpaced")
	perReq(fileURL, false, 50, "static alone, new connection per request, paced to 200/s")
	// For comparison, what a new connection costs without a hand-off: the status page of
	// a listener without a web tree, served on the event loop.
	perReq("http://"+n.Server.Addr(1).String()+"/", false, 50, "status page on the loop (no web tree), new connection per request, paced to 200/s")

	for _, c := range []struct {
		keep      bool
		perWorker int
	}{{true, 0}, {true, 250}, {false, 50}} {
		// Alone right before each loaded run: the machine's other load drifts.
		base := fanout()
		rate := staticLoad(t, fileURL, c.keep, c.perWorker, 3500*time.Millisecond)
		under := fanout()
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

// cpuTime is this process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// staticLoad runs TestStaticLoadClient in a child process for d and returns a function
// that waits for it and returns the requests per second it got answered.
func staticLoad(t *testing.T, url string, keepAlive bool, perWorker int, d time.Duration) func() float64 {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestStaticLoadClient$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "SWITCHYARD_WEB_LOAD_URL="+url,
		"SWITCHYARD_WEB_LOAD_KEEPALIVE="+strconv.FormatBool(keepAlive),
		"SWITCHYARD_WEB_LOAD_PACE="+strconv.Itoa(perWorker),
		"SWITCHYARD_WEB_LOAD_FOR="+d.String())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return func() float64 {
		var rate float64
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == "REQ_PER_SEC" {
				rate, _ = strconv.ParseFloat(f[1], 64)
			}
		}
		if err := cmd.Wait(); err != nil {
			t.Fatalf("load client: %v", err)
		}
		return rate
	}
}

// TestStaticLoadClient is the child process of staticLoad: 4 HTTP clients GET
// SWITCHYARD_WEB_LOAD_URL for SWITCHYARD_WEB_LOAD_FOR (each paced to
// SWITCHYARD_WEB_LOAD_PACE requests per second, 0: as fast as it can; keep-alive or a
// new connection per request), then it prints "REQ_PER_SEC n". Skipped without the
// variables.
func TestStaticLoadClient(t *testing.T) {
	url := os.Getenv("SWITCHYARD_WEB_LOAD_URL")
	if url == "" {
		t.Skip("the child process of TestFanoutUnderStaticLoad")
	}
	keepAlive := os.Getenv("SWITCHYARD_WEB_LOAD_KEEPALIVE") == "true"
	perWorker, _ := strconv.Atoi(os.Getenv("SWITCHYARD_WEB_LOAD_PACE"))
	d, err := time.ParseDuration(os.Getenv("SWITCHYARD_WEB_LOAD_FOR"))
	if err != nil {
		t.Fatal(err)
	}
	var done atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(d)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := &http.Transport{DisableKeepAlives: !keepAlive}
			defer tr.CloseIdleConnections()
			cl := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			var tick <-chan time.Time
			if perWorker > 0 {
				tk := time.NewTicker(time.Second / time.Duration(perWorker))
				defer tk.Stop()
				tick = tk.C
			}
			for time.Now().Before(end) {
				if tick != nil {
					<-tick
				}
				resp, err := cl.Get(url)
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
	wg.Wait()
	fmt.Printf("REQ_PER_SEC %.1f\n", float64(done.Load())/time.Since(start).Seconds())
}
