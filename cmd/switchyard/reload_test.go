package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/client"
	"github.com/switchyard-wamp/switchyard/node"
)

const reloadBase = `
listeners:
  - address: "127.0.0.1:0"
    auth: [ticket]
realms:
  - name: realm1
    roles:
      - name: user
        permissions:
          - {uri: "", match: prefix, allow: {call: true, register: true, publish: true, subscribe: true}}
    auth:
      ticket:
        - {authid: joe, ticket: %s, role: user}
`

func ticketLogin(t *testing.T, url, realm, ticket string) (*client.Session, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return client.Connect(ctx, client.Config{URL: url, Realm: realm, AuthID: "joe", AuthMethods: []string{"ticket"},
		OnChallenge: func(string, map[string]any) (string, error) { return ticket, nil }})
}

// TestSIGHUPReload: a real SIGHUP to a started node (through serveSignals, as `switchyard
// start` runs it) refuses a bad file and keeps the running config, and applies a good one
// to new logins while established sessions keep working.
func TestSIGHUPReload(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "switchyard.yaml")
	write := func(s string) {
		if err := os.WriteFile(file, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(fmt.Sprintf(reloadBase, "first"))
	f, fs, nc := startConfigOf(t, file)
	nc.Listeners = nc.Listeners[:1]
	logs := &syncBuffer{}
	nc.Logger = slog.New(slog.NewTextHandler(logs, nil))
	n, err := node.Start(nc)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop(context.Background())
	hup := serveHUP(t, n, fs, f, nc.Logger, logs)
	url := n.WebSocketURL()
	old, err := ticketLogin(t, url, "realm1", "first")
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()

	// A bad file is refused: the old ticket still works.
	write("realms: [{name: realm1, roles: [{name: user, permissions: [{uri: x, match: sideways}]}]}]")
	hup("SIGHUP: config reload refused", 1)
	if s, err := ticketLogin(t, url, "realm1", "first"); err != nil {
		t.Fatalf("bad file changed the running config: %v", err)
	} else {
		s.Close()
	}

	// A good file takes effect for new logins; the established session keeps working.
	write(fmt.Sprintf(reloadBase, "second") + "  - name: realm2\n    roles: [{name: user, permissions: [{uri: '', match: prefix, allow: {call: true}}]}]\n    auth: {ticket: [{authid: joe, ticket: second, role: user}]}\n")
	hup("SIGHUP: config reloaded", 1)
	_, err = ticketLogin(t, url, "realm1", "first")
	var we *client.Error
	if !errors.As(err, &we) || we.URI != "wamp.error.authentication_failed" {
		t.Fatalf("old ticket after reload: %v", err)
	}
	for _, realm := range []string{"realm1", "realm2"} {
		s, err := ticketLogin(t, url, realm, "second")
		if err != nil {
			t.Fatalf("%s with the new ticket: %v", realm, err)
		}
		s.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := old.Publish(ctx, "com.still.here", nil, nil, client.Acknowledge()); err != nil {
		t.Fatalf("session from before the reload: %v", err)
	}
}

// startConfigOf loads file as `switchyard start --config file` does and maps it to the
// node's config; the flags and flag set are what reload needs.
func startConfigOf(t *testing.T, file string) (*startFlags, *flag.FlagSet, node.Config) {
	t.Helper()
	f := &startFlags{configFile: file}
	fs := flag.NewFlagSet("start", flag.ContinueOnError)
	cfg, err := loadStartConfig(f, fs)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nodeConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f, fs, nc
}
