package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchyard-wamp/switchyard/node"
)

// twoRealms is what a user gets after `switchyard init` (a listener offering only
// anonymous) plus a realm with ticket auth.
const twoRealms = `
listeners:
  - address: "127.0.0.1:0"
    auth: [anonymous]%s
realms:
  - name: realm1
    roles:
      - name: anonymous
        permissions:
          - {uri: "", match: prefix, allow: {call: true, register: true, publish: true, subscribe: true}}
    auth:
      anonymous: {role: anonymous}
  - name: realm2
    roles:
      - name: user
        permissions:
          - {uri: "", match: prefix, allow: {call: true, register: true, publish: true, subscribe: true}}
    auth:
      ticket:
        - {authid: joe, ticket: secret, role: user}
`

// TestCheckRealmMethodNoListenerOffers: check flags a realm's auth method that no
// listener offers, and is content once some listener does.
func TestCheckRealmMethodNoListenerOffers(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	good := filepath.Join(dir, "good.yaml")
	second := "\n  - address: \"127.0.0.2:0\"\n    kind: rawsocket\n    auth: [ticket]"
	if err := os.WriteFile(bad, []byte(strings.Replace(twoRealms, "%s", "", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(good, []byte(strings.Replace(twoRealms, "%s", second, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if checkOK(&out, bad, "") || !strings.Contains(out.String(), "realms[1].auth.ticket: ") ||
		!strings.Contains(out.String(), "no listener offers it") {
		t.Errorf("check %s:\n%s", bad, out.String())
	}
	out.Reset()
	if !checkOK(&out, good, "") {
		t.Errorf("check %s:\n%s", good, out.String())
	}
}

// TestAbortNamesTheListenersLimit: a ticket HELLO to a realm that accepts tickets, on a
// listener that offers only anonymous, is refused with a text that says so.
func TestAbortNamesTheListenersLimit(t *testing.T) {
	file := filepath.Join(t.TempDir(), "switchyard.yaml")
	second := "\n  - address: \"127.0.0.2:0\"\n    auth: [ticket]"
	if err := os.WriteFile(file, []byte(strings.Replace(twoRealms, "%s", second, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, nc := startConfigOf(t, file)
	nc.Listeners = nc.Listeners[:1] // the anonymous-only listener
	nc.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	n, err := node.Start(nc)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop(context.Background())
	_, err = ticketLogin(t, n.WebSocketURL(), "realm2", "secret")
	if err == nil {
		t.Fatal("ticket login through an anonymous-only listener succeeded")
	}
	for _, want := range []string{"wamp.error.no_auth_method", "ticket", "listener", "anonymous"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("ABORT %q lacks %q", err, want)
		}
	}
}
