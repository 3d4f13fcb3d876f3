package proxy_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/client"
	"github.com/switchyard-wamp/switchyard/engine"
	"github.com/switchyard-wamp/switchyard/link"
	"github.com/switchyard-wamp/switchyard/netpoll"
	"github.com/switchyard-wamp/switchyard/proxy"
	"github.com/switchyard-wamp/switchyard/router"
)

// The frontend's handshake over real sockets, on its own: a netpoll server in front of an
// engine (standalone) or in front of a router reached over a link (cluster). The
// end-to-end suites (node, interop) cover the same paths with every client; these keep
// the package's own tests honest about its handshake and forwarding code.

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// serve runs a netpoll server with h on loopback and returns its WebSocket URL.
func serve(t *testing.T, h netpoll.Handler) string {
	t.Helper()
	srv, err := netpoll.NewServer(netpoll.Config{Listeners: []netpoll.Listener{{Address: "127.0.0.1:0"}},
		Logger: quiet()}, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_ = srv.Stop(ctx)
	})
	return "ws://" + srv.Addr(0).String() + "/ws"
}

func connect(url, realm, authid string, methods []string, answer func(string, map[string]any) (string, error)) (*client.Session, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return client.Connect(ctx, client.Config{URL: url, Realm: realm, AuthID: authid, AuthMethods: methods, OnChallenge: answer})
}

func wantAbort(t *testing.T, err error, uri string) {
	t.Helper()
	var we *client.Error
	if !errors.As(err, &we) || we.URI != uri {
		t.Fatalf("got %v, want ABORT %s", err, uri)
	}
}

// craSignature answers a WAMP-CRA challenge with an unsalted secret.
func craSignature(secret string, extra map[string]any) string {
	challenge, _ := extra["challenge"].(string)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(challenge))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

func auth() map[string]*proxy.RealmAuth {
	anon := "anonymous"
	return map[string]*proxy.RealmAuth{
		"open": {Anonymous: &anon},
		"closed": {
			Tickets: map[string]proxy.TicketPrincipal{"joe": {Ticket: "pw", Role: "user"}},
			CRA:     map[string]proxy.CRAPrincipal{"ann": {Secret: "s3", Role: "admin"}},
		},
	}
}

// TestFrontendHandshake: anonymous, ticket and WAMP-CRA joins, and the ABORT of each
// way a handshake fails, against the in-process engine.
func TestFrontendHandshake(t *testing.T) {
	r := engine.NewRouter(quiet())
	r.AddRealm("open")
	r.AddRealm("closed")
	url := serve(t, proxy.NewFrontend(r, quiet(), auth()))
	ticket := func(pw string) func(string, map[string]any) (string, error) {
		return func(string, map[string]any) (string, error) { return pw, nil }
	}
	s, err := connect(url, "open", "", nil, nil)
	if err != nil || s.AuthRole() != "anonymous" {
		t.Fatalf("anonymous: %v", err)
	}
	s.Close()
	s, err = connect(url, "closed", "joe", []string{"ticket"}, ticket("pw"))
	if err != nil || s.AuthID() != "joe" || s.AuthRole() != "user" {
		t.Fatalf("ticket: %v", err)
	}
	s.Close()
	s, err = connect(url, "closed", "ann", []string{"wampcra"}, func(_ string, x map[string]any) (string, error) {
		return craSignature("s3", x), nil
	})
	if err != nil || s.AuthRole() != "admin" || s.WelcomeDetails()["authmethod"] != "wampcra" {
		t.Fatalf("wampcra: %v", err)
	}
	s.Close()
	_, err = connect(url, "closed", "joe", []string{"ticket"}, ticket("wrong"))
	wantAbort(t, err, engine.ErrAuthenticationFailed)
	_, err = connect(url, "closed", "nobody", []string{"ticket"}, ticket("pw"))
	wantAbort(t, err, engine.ErrAuthenticationFailed) // same answer as a wrong ticket
	_, err = connect(url, "closed", "", nil, nil)
	wantAbort(t, err, engine.ErrNoAuthMethod)
	_, err = connect(url, "missing", "", nil, nil)
	wantAbort(t, err, engine.ErrNoSuchRealm)
}

// TestClusterFrontend: the same frontend in front of a router reached over a link: the
// router joins the session (WELCOME after Opened), refuses a realm it does not have
// (ABORT with its reason), and a proxy with no reachable router aborts with
// router_unavailable.
func TestClusterFrontend(t *testing.T) {
	eng := engine.NewRouter(quiet())
	eng.AddRealm("open")
	secret := []byte("proxy package test secret")
	rs, err := router.Listen(eng, router.Config{Addr: "127.0.0.1:0",
		Link: link.Config{Node: "router1", Role: "router", Secret: secret, Logger: quiet()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rs.Close)
	newLinks := func(addr string) *proxy.Links {
		ls, err := proxy.NewLinks(proxy.LinksConfig{Link: link.Config{Node: "proxy1", Role: "proxy", Secret: secret, Logger: quiet()},
			Routers: []proxy.RouterAddr{{Name: "router1", Addr: addr}}, Slots: 64, PerPeer: 2,
			Realms: []string{"open", "closed"}, OpenTimeout: 2 * time.Second, Logger: quiet()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(ls.Close)
		return ls
	}
	ls := newLinks(rs.Addr())
	if !ls.WaitReady(5 * time.Second) {
		t.Fatal("no link to the router")
	}
	url := serve(t, proxy.NewClusterFrontend(ls, quiet(), auth()))
	s, err := connect(url, "open", "", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rl, _ := eng.Realm("open"); !rl.HasSession(s.ID()) {
		t.Fatalf("session %d is not on the router", s.ID())
	}
	// A round trip through the router: the session calls a meta procedure.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := s.Call(ctx, "wamp.session.count", nil, nil, nil)
	if err != nil || len(res.Args) != 1 {
		t.Fatalf("wamp.session.count through the link: %v %v", res, err)
	}
	s.Close()
	// The proxy serves "closed", the router does not: the router's refusal reaches the client.
	_, err = connect(url, "closed", "joe", []string{"ticket"}, func(string, map[string]any) (string, error) { return "pw", nil })
	wantAbort(t, err, engine.ErrNoSuchRealm)
	// No router reachable.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	url2 := serve(t, proxy.NewClusterFrontend(newLinks(dead), quiet(), auth()))
	_, err = connect(url2, "open", "", nil, nil)
	wantAbort(t, err, proxy.ErrRouterUnavailable)
}
