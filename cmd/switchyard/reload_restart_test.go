package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchyard-wamp/switchyard/node"
)

// TestSIGHUPNamesChangesThatNeedARestart: a reload that changes a listener and a node
// setting applies the realms and logs those two changes as needing a restart; a reload
// that changes only realms logs none.
func TestSIGHUPNamesChangesThatNeedARestart(t *testing.T) {
	file := filepath.Join(t.TempDir(), "switchyard.yaml")
	write := func(s string) {
		if err := os.WriteFile(file, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(realmsFile(anonRealm("realm1")))
	f, fs, nc := startConfigOf(t, file)
	cfg, err := loadStartConfig(f, fs)
	if err != nil {
		t.Fatal(err)
	}
	f.running = cfg // as runStart does
	var logs syncBuffer
	nc.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	n, err := node.Start(nc)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop(context.Background())

	write(realmsFile(anonRealm("realm1"), anonRealm("realm2")))
	reload(n, fs, f, nc.Logger)
	if strings.Contains(logs.String(), "need a restart") {
		t.Fatalf("a realms-only reload logged a restart:\n%s", logs.String())
	}
	write("node: {log_level: warn}\n" + strings.Replace(realmsFile(anonRealm("realm1")), "127.0.0.1:0", "127.0.0.1:1", 1))
	reload(n, fs, f, nc.Logger)
	out := logs.String()
	if !strings.Contains(out, "need a restart") || !strings.Contains(out, "listeners[0].address") || !strings.Contains(out, "node.log_level") {
		t.Fatalf("reload log:\n%s", out)
	}
	if strings.Count(out, "SIGHUP: config reloaded") != 2 {
		t.Fatalf("reload log:\n%s", out)
	}
}
