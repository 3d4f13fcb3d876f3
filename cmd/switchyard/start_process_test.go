package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestStartProcess runs the built `switchyard start --config F` as a process: a client
// joins; F loses a realm and a real SIGHUP to the process makes the node refuse it (the
// reload path of runStart, not a function call); SIGTERM sends GOODBYE and exits 0.
func TestStartProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "switchyard.yaml")
	if err := os.WriteFile(file, []byte(realmsFile(anonRealm("realm1"), anonRealm("realm3"))), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "start", "--config", file, "--log-format", "text")
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	waitLog := func(re *regexp.Regexp) []string {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			if m := re.FindStringSubmatch(out.String()); m != nil {
				return m
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %q in the log:\n%s", re, out.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	url := waitLog(regexp.MustCompile(`listener0="universal (ws://\S+)`))[1]
	s1, err := anonLogin(url, "realm1")
	if err != nil {
		t.Fatal(err)
	}
	defer s1.Close()
	s3, err := anonLogin(url, "realm3")
	if err != nil {
		t.Fatal(err)
	}
	s3.Close()
	if err := os.WriteFile(file, []byte(realmsFile(anonRealm("realm1"))), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(regexp.MustCompile(`SIGHUP: config reloaded`))
	if _, err := anonLogin(url, "realm3"); err == nil || !strings.Contains(err.Error(), "wamp.error.no_such_realm") {
		t.Fatalf("realm3 after the reload: %v, want ABORT wamp.error.no_such_realm", err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s1.Done():
		if err := s1.Err(); err == nil || !strings.Contains(err.Error(), "wamp.close.system_shutdown") {
			t.Fatalf("session on SIGTERM: %v, want GOODBYE wamp.close.system_shutdown", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no GOODBYE on SIGTERM")
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, out.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
}
