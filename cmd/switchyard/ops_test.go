package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/node"
	"github.com/switchyard-wamp/switchyard/statuspage"
)

// TestReadyzProxy: a cluster proxy is not ready while no router link is up (its
// router is not there yet) and becomes ready once the router runs; status.json then
// lists the router as an up peer.
func TestReadyzProxy(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // the router comes later, on this address
	common := node.ClusterCommon{Secret: []byte("test cluster secret"), Slots: 64, LinksPerPeer: 1,
		Routers: []node.ClusterMember{{Name: "router1", Addr: addr}}}
	pc := common
	pc.Name = "proxy1"
	p, err := node.StartProxy(node.ProxyNodeConfig{ClusterCommon: pc,
		Node: node.Config{Listeners: []node.Listener{{Address: "127.0.0.1:0"}}, Realms: []string{"realm1"}, Logger: quiet}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(context.Background())
	ops := &opsNode{role: "proxy", name: "proxy1", n: p.Node, links: p.PeerLinks, clusterReady: p.Ready,
		sessions: p.Links.Sessions, started: time.Now(), log: quiet}
	h := ops.adminHandler()
	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		return rec.Code, rec.Body.String()
	}
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, "no router link up") {
		t.Fatalf("/readyz without a router: %d %q", code, body)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Fatalf("/healthz: %d", code)
	}

	rln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("the router's port was taken meanwhile: %v", err)
	}
	rc := common
	rc.Name = "router1"
	r, err := node.StartRouter(node.RouterNodeConfig{ClusterCommon: rc, LinkAddr: addr, LinkListener: rln,
		Node: node.Config{NoListeners: true, Realms: []string{"realm1"}, Logger: quiet}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Stop(context.Background())
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, body := get("/readyz")
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz with the router up: %d %q", code, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	_, body := get("/status.json")
	var st statuspage.Node
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	if !st.Ready || st.Role != "proxy" || len(st.Peers) != 1 || st.Peers[0].Name != "router1" || !st.Peers[0].Up {
		t.Fatalf("status.json: %s", body)
	}
}
