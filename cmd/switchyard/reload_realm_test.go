package main

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/client"
	"github.com/switchyard-wamp/switchyard/node"
)

const (
	realmAnon = `
  - name: %s
    roles: [{name: anonymous, permissions: [{uri: "", match: prefix, allow: {call: true, register: true, publish: true, subscribe: true}}]}]
    auth: {anonymous: {role: anonymous}}
`
	realmTicket = `
  - name: realm2
    roles: [{name: user, permissions: [{uri: "", match: prefix, allow: {call: true, register: true, publish: true, subscribe: true}}]}]
    auth: {ticket: [{authid: joe, ticket: s3cret, role: user}]}
`
)

func realmsFile(realms ...string) string {
	return "listeners:\n  - address: \"127.0.0.1:0\"\nrealms:" + strings.Join(realms, "")
}

func anonRealm(name string) string { return strings.Replace(realmAnon, "%s", name, 1) }

func anonLogin(url, realm string) (*client.Session, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return client.Connect(ctx, client.Config{URL: url, Realm: realm, AuthMethods: []string{"anonymous"}})
}

// serveHUP runs serveSignals for n as `switchyard start` does, fed by real SIGHUPs sent
// to this process, until the test ends; log is the logger writing into logs. The
// returned hup sends one SIGHUP and waits until logs holds nth lines saying want.
// The tests using it must not run in parallel: a SIGHUP reaches every listener.
func serveHUP(t *testing.T, n *node.Node, fs *flag.FlagSet, f *startFlags, log *slog.Logger, logs *syncBuffer) (hup func(want string, nth int)) {
	t.Helper()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGHUP)
	done := make(chan os.Signal, 1)
	go func() { done <- serveSignals(n, sig, fs, f, log) }()
	t.Cleanup(func() {
		signal.Stop(sig)
		close(sig)
		<-done
	})
	return func(want string, nth int) {
		t.Helper()
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for strings.Count(logs.String(), want) < nth {
			if time.Now().After(deadline) {
				t.Fatalf("SIGHUP %d: %q not logged:\n%s", nth, want, logs.String())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// TestSIGHUPRemovesRealm: a realm left out of the file at a SIGHUP is gone. New HELLOs
// get ABORT wamp.error.no_such_realm whatever method they offer (not a WELCOME as
// anonymous), its sessions get GOODBYE wamp.close.close_realm, the other realms' sessions
// keep running, and a second SIGHUP does not bring it back.
func TestSIGHUPRemovesRealm(t *testing.T) {
	file := filepath.Join(t.TempDir(), "switchyard.yaml")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(realmsFile(anonRealm("realm1"), realmTicket, anonRealm("realm3")))
	f, fs, nc := startConfigOf(t, file)
	logs := &syncBuffer{}
	nc.Logger = slog.New(slog.NewTextHandler(logs, nil))
	n, err := node.Start(nc)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop(context.Background())
	url := n.WebSocketURL()

	hup := serveHUP(t, n, fs, f, nc.Logger, logs)
	s1, err := anonLogin(url, "realm1")
	if err != nil {
		t.Fatal(err)
	}
	defer s1.Close()
	s2, err := ticketLogin(t, url, "realm2", "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	s3, err := anonLogin(url, "realm3")
	if err != nil {
		t.Fatal(err)
	}
	defer s3.Close()

	write(realmsFile(anonRealm("realm1")))
	hup("SIGHUP: config reloaded", 1)

	for _, s := range []*client.Session{s2, s3} {
		select {
		case <-s.Done():
		case <-time.After(5 * time.Second):
			t.Errorf("session of removed realm %s still open", s.Realm())
		}
		var ce *client.Error
		if !errors.As(s.Err(), &ce) || ce.URI != "wamp.close.close_realm" {
			t.Errorf("session of removed realm %s ended with %v, want GOODBYE wamp.close.close_realm", s.Realm(), s.Err())
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s1.Publish(ctx, "com.still.here", nil, nil, client.Acknowledge()); err != nil {
		t.Fatalf("session of the kept realm: %v", err)
	}

	refused := func(when string) {
		t.Helper()
		for _, try := range []struct {
			realm string
			login func() (*client.Session, error)
		}{
			{"realm2", func() (*client.Session, error) { return anonLogin(url, "realm2") }},
			{"realm2", func() (*client.Session, error) { return ticketLogin(t, url, "realm2", "s3cret") }},
			{"realm3", func() (*client.Session, error) { return anonLogin(url, "realm3") }},
		} {
			s, err := try.login()
			var ce *client.Error
			if !errors.As(err, &ce) || ce.URI != "wamp.error.no_such_realm" {
				if s != nil {
					t.Errorf("%s: HELLO to removed %s: WELCOME as %s/%s, want ABORT wamp.error.no_such_realm",
						when, try.realm, s.AuthID(), s.AuthRole())
					s.Close()
					continue
				}
				t.Errorf("%s: HELLO to removed %s: %v, want ABORT wamp.error.no_such_realm", when, try.realm, err)
			}
		}
	}
	refused("after one reload")
	hup("SIGHUP: config reloaded", 2)
	refused("after two reloads")
	if s, err := anonLogin(url, "realm1"); err != nil {
		t.Fatalf("kept realm after two reloads: %v", err)
	} else {
		s.Close()
	}
	if !strings.Contains(logs.String(), "realm removed") {
		t.Errorf("no log line for the removed realms:\n%s", logs.String())
	}
}
