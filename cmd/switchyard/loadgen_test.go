package main

import (
	"bufio"
	"context"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/loadgen"
	"github.com/switchyard-wamp/switchyard/profiles"
)

// TestLoadgenURLAndPIDFlags: --url and --router-pid take several values, repeated or
// comma-separated; the first --url replaces the default.
func TestLoadgenURLAndPIDFlags(t *testing.T) {
	parse := func(args ...string) (*loadgen.Options, error) {
		var o loadgen.Options
		var ser string
		fs := loadgenFlags(&o, &ser, new(profiles.Flags), new(tlsFlags))
		fs.SetOutput(new(discard))
		return &o, fs.Parse(args)
	}
	o, err := parse()
	if err != nil || !slices.Equal(o.URLs, []string{loadgen.DefaultURL}) || len(o.RouterPIDs) != 0 {
		t.Errorf("no flags: urls %q pids %v, %v", o.URLs, o.RouterPIDs, err)
	}
	o, err = parse("--url", "ws://a:1/ws, rs://b:2", "--url", "ws://c:3/ws", "--router-pid", "11,12", "--router-pid", "13")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"ws://a:1/ws", "rs://b:2", "ws://c:3/ws"}; !slices.Equal(o.URLs, want) {
		t.Errorf("urls %q, want %q", o.URLs, want)
	}
	if want := []int{11, 12, 13}; !slices.Equal(o.RouterPIDs, want) {
		t.Errorf("pids %v, want %v", o.RouterPIDs, want)
	}
	for _, bad := range [][]string{{"--router-pid", "x"}, {"--router-pid", "0"}, {"--url", ","}} {
		if _, err := parse(bad...); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// TestLoadgenUnknownScenarioListsSink: the error for a wrong scenario lists every
// scenario `switchyard loadgen` accepts, sink included.
func TestLoadgenUnknownScenarioListsSink(t *testing.T) {
	err := runLoadgen([]string{"bogus"})
	if err == nil || !strings.Contains(err.Error(), "rpc") || !strings.Contains(err.Error(), "sink") {
		t.Fatalf("loadgen bogus: %v", err)
	}
}

// TestLoadgenSinkEpollFlags: --epoll belongs to --echo, and needs a loop.
func TestLoadgenSinkEpollFlags(t *testing.T) {
	if err := runSink([]string{"--epoll"}); err == nil || !strings.Contains(err.Error(), "--echo") {
		t.Errorf("--epoll without --echo: %v", err)
	}
	if err := runSink([]string{"--echo", "--epoll", "--loops", "0"}); err == nil || !strings.Contains(err.Error(), "--loops") {
		t.Errorf("--loops 0: %v", err)
	}
}

// TestLoadgenEchoEpollProcess: `switchyard loadgen sink --echo --epoll` as a process
// prints the startup line scripts grep (URLs and pid), echoes an echo run's messages over
// WebSocket and RawSocket, and on SIGTERM reports them and exits 0.
func TestLoadgenEchoEpollProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	cmd := exec.Command(bin, "loadgen", "sink", "--echo", "--epoll", "--loops", "2", "--listen", "127.0.0.1:0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	sc := bufio.NewScanner(stderr)
	if !sc.Scan() {
		t.Fatalf("no startup line: %v", sc.Err())
	}
	line := sc.Text()
	m := regexp.MustCompile(`^switchyard: loadgen echo server on (ws://\S+) and (rs://\S+) \(pid (\d+)\)$`).FindStringSubmatch(line)
	if m == nil || m[3] != strconv.Itoa(cmd.Process.Pid) {
		t.Fatalf("startup line %q (pid %d)", line, cmd.Process.Pid)
	}
	var delivered int64
	for _, url := range m[1:3] {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		r, err := loadgen.Run(ctx, "echo", loadgen.Options{URLs: []string{url}, Callers: 4, Size: 100,
			Duration: 300 * time.Millisecond, RouterPIDs: []int{cmd.Process.Pid}})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if r.Delivered <= 0 || r.Errors != 0 || r.Router == nil || r.Router.CPUPerMsgUs <= 0 {
			t.Fatalf("%s: delivered %d, errors %d %q, server %+v", url, r.Delivered, r.Errors, r.ErrorSamples, r.Router)
		}
		delivered += r.Delivered
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var last string
	for sc.Scan() {
		last = sc.Text()
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v (%s)", err, last)
	}
	m = regexp.MustCompile(`^switchyard: loadgen echo server \(epoll, 2 loops\): 8 connections, (\d+) messages echoed$`).FindStringSubmatch(last)
	if m == nil {
		t.Fatalf("last line %q", last)
	}
	if n, _ := strconv.ParseInt(m[1], 10, 64); n < delivered {
		t.Errorf("%d messages echoed, the runs received %d", n, delivered)
	}
}
