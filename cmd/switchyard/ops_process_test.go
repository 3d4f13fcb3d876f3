package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/client"
)

// httpGet returns the status and body of GET url.
func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// jsonLog finds the first JSON log line whose msg is msg in out; every line up to it
// must be a JSON object (the log format when stderr is not a terminal).
func jsonLog(t *testing.T, out, msg string) map[string]any {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("log line is not JSON (--log-format auto, stderr a pipe): %q", sc.Text())
		}
		if line["msg"] == msg {
			return line
		}
	}
	return nil
}

// TestDrainProcess runs the built `switchyard start` with an admin listener and the
// default log format: its stderr is a pipe, so every line is JSON. The admin listener
// answers /healthz, /readyz, /metrics, the status page and status.json. A real SIGUSR2
// starts the lame-duck drain: /readyz fails at once, new connections are refused, the
// sessions get GOODBYE wamp.close.system_shutdown spread over --drain-period, and the
// process exits 0 after the period.
func TestDrainProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	admin := "http://127.0.0.1:" + strconv.Itoa(freePort(t))
	const period = 1500 * time.Millisecond
	cmd := exec.Command(bin, "start", "--listen", "127.0.0.1:0", "--rawsocket", "",
		"--admin", strings.TrimPrefix(admin, "http://"), "--drain-period", period.String())
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	var started map[string]any
	for deadline := time.Now().Add(15 * time.Second); started == nil; time.Sleep(20 * time.Millisecond) {
		if started = jsonLog(t, out.String(), "switchyard node started"); started == nil && time.Now().After(deadline) {
			t.Fatalf("no start line:\n%s", out.String())
		}
	}
	url := strings.TrimPrefix(started["listener0"].(string), "universal ")
	url, _, _ = strings.Cut(url, " ")

	var sessions []*client.Session
	for range 3 {
		s, err := anonLogin(url, "realm1")
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		sessions = append(sessions, s)
	}
	for path, want := range map[string]string{
		"/healthz":     "ok",
		"/readyz":      "ready",
		"/metrics":     `switchyard_sessions{realm="realm1"} 3`,
		"/":            "<title>switchyard node status</title>",
		"/status.json": `"sessions":3`,
	} {
		if code, body := httpGet(t, admin+path); code != 200 || !strings.Contains(body, want) {
			t.Fatalf("GET %s: %d, no %q in:\n%.2000s", path, code, want, body)
		}
	}

	if err := cmd.Process.Signal(syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for {
		code, body := httpGet(t, admin+"/readyz")
		if code == http.StatusServiceUnavailable && strings.Contains(body, "draining") {
			break
		}
		if time.Since(start) > period/2 {
			t.Fatalf("/readyz during the drain: %d %s", code, body)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, body := httpGet(t, admin+"/metrics"); !strings.Contains(body, "switchyard_draining 1") {
		t.Errorf("/metrics during the drain has no switchyard_draining 1")
	}
	if s, err := anonLogin(url, "realm1"); err == nil {
		s.Close()
		t.Fatal("a new session joined during the drain")
	}
	for i, s := range sessions {
		select {
		case <-s.Done():
			if err := s.Err(); err == nil || !strings.Contains(err.Error(), "wamp.close.system_shutdown") {
				t.Fatalf("session %d: %v, want GOODBYE wamp.close.system_shutdown", i, err)
			}
		case <-time.After(2 * period):
			t.Fatalf("session %d: no GOODBYE within %v", i, 2*period)
		}
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, out.String())
		}
	case <-time.After(period + 10*time.Second):
		t.Fatalf("no exit after the drain:\n%s", out.String())
	}
	took := time.Since(start)
	t.Logf("drain of 3 sessions over %v: exited after %v", period, took)
	if took < period*2/3 {
		t.Fatalf("exited after %v, before the drain period %v", took, period)
	}
	if jsonLog(t, out.String(), "drain done") == nil || cmd.ProcessState.ExitCode() != 0 {
		t.Fatalf("no drain done line or exit %d:\n%s", cmd.ProcessState.ExitCode(), out.String())
	}
}

// TestLogFormat: auto is JSON on a pipe, text and json are what they say, and a bad
// format is refused.
func TestLogFormat(t *testing.T) {
	for format, wantJSON := range map[string]bool{"auto": true, "json": true, "text": false} {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		log, err := newLogger(w, format, "info")
		if err != nil {
			t.Fatal(err)
		}
		log.Info("hello", "k", 1)
		w.Close()
		b, _ := io.ReadAll(r)
		r.Close()
		if got := json.Valid(b); got != wantJSON {
			t.Errorf("format %s: JSON %v, want %v: %q", format, got, wantJSON, b)
		}
	}
	if _, err := newLogger(os.Stderr, "xml", "info"); err == nil {
		t.Error("format xml accepted")
	}
}

// TestDrainCommand: `switchyard drain --admin A --wait D` (what a Kubernetes preStop
// hook runs) drains the node at A like SIGUSR2 and returns once it has exited; a GET of
// /drain changes nothing.
func TestDrainCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	admin := "127.0.0.1:" + strconv.Itoa(freePort(t))
	cmd := exec.Command(bin, "start", "--listen", "127.0.0.1:0", "--rawsocket", "", "--admin", admin,
		"--drain-period", "300ms", "--log-format", "json")
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	var started map[string]any
	for deadline := time.Now().Add(15 * time.Second); started == nil; time.Sleep(20 * time.Millisecond) {
		if started = jsonLog(t, out.String(), "switchyard node started"); started == nil && time.Now().After(deadline) {
			t.Fatalf("no start line:\n%s", out.String())
		}
	}
	url, _, _ := strings.Cut(strings.TrimPrefix(started["listener0"].(string), "universal "), " ")
	s, err := anonLogin(url, "realm1")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if code, _ := httpGet(t, "http://"+admin+"/drain"); code != http.StatusMethodNotAllowed {
		t.Fatalf("GET /drain: %d, want 405", code)
	}
	if code, body := httpGet(t, "http://"+admin+"/readyz"); code != 200 {
		t.Fatalf("/readyz after GET /drain: %d %s", code, body)
	}
	if b, err := exec.Command(bin, "drain", "--admin", admin, "--wait", "10s").CombinedOutput(); err != nil {
		t.Fatalf("switchyard drain: %v: %s", err, b)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, out.String())
		}
	default:
		t.Fatal("switchyard drain --wait returned before the node exited")
	}
	select {
	case <-s.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the session did not end")
	}
	if err := s.Err(); err == nil || !strings.Contains(err.Error(), "wamp.close.system_shutdown") {
		t.Fatalf("session: %v, want GOODBYE wamp.close.system_shutdown", err)
	}
}
