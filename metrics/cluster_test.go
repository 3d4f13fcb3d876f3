package metrics

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/client"
	"github.com/switchyard-wamp/switchyard/codec"
	"github.com/switchyard-wamp/switchyard/node"
)

// serveMetrics serves /metrics of src on a loopback port and returns its URL.
func serveMetrics(t *testing.T, src Source) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: Handler(src)}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String() + "/metrics"
}

// TestClusterMetrics runs a router and a proxy over real links on loopback: the proxy's
// scrape shows its link to the router up with traffic, and the messages it forwarded
// without decoding by type; the router's shows the session in its realm and the
// inbound links.
func TestClusterMetrics(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	common := node.ClusterCommon{Secret: []byte("test cluster secret"), Slots: 64, LinksPerPeer: 2,
		Routers: []node.ClusterMember{{Name: "router1", Addr: ln.Addr().String()}}}
	rc := common
	rc.Name = "router1"
	r, err := node.StartRouter(node.RouterNodeConfig{ClusterCommon: rc, LinkAddr: ln.Addr().String(), LinkListener: ln,
		Node: node.Config{NoListeners: true, Realms: []string{"realm1"}, Logger: quiet}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Stop(context.Background())
	pc := common
	pc.Name = "proxy1"
	p, err := node.StartProxy(node.ProxyNodeConfig{ClusterCommon: pc,
		Node: node.Config{Listeners: []node.Listener{{Address: "127.0.0.1:0"}}, Realms: []string{"realm1"}, Logger: quiet}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(context.Background())
	if !p.Links.WaitReady(10 * time.Second) {
		t.Fatal("proxy links not up")
	}
	proxyURL := serveMetrics(t, Source{Role: "proxy", Router: p.Node.Router, Server: p.Node.Server,
		Frontend: p.Node.FrontendStats, Links: p.PeerLinks, Ready: p.Ready})
	routerURL := serveMetrics(t, Source{Role: "router", Router: r.Node.Router, Links: r.PeerLinks})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := client.Connect(ctx, client.Config{URL: p.Node.WebSocketURL(), Realm: "realm1", Serializer: codec.CBOR})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for range 4 {
		if err := s.Publish(ctx, "com.example.t", []any{1}, nil, client.Acknowledge()); err != nil {
			t.Fatal(err)
		}
	}

	m := scrape(t, proxyURL)
	want(t, m, `switchyard_link_up{peer="router1"}`, 1)
	want(t, m, `switchyard_links{peer="router1"}`, 2)
	want(t, m, `switchyard_ready`, 1)
	want(t, m, `switchyard_session_joins_total`, 1)
	want(t, m, `switchyard_messages_total{direction="in",serializer="cbor",type="PUBLISH"}`, 4)
	want(t, m, `switchyard_messages_total{direction="out",serializer="cbor",type="PUBLISHED"}`, 4)
	want(t, m, `switchyard_up{role="proxy"}`, 1)
	if m[`switchyard_link_bytes_total{direction="out",peer="router1"}`] <= 0 {
		t.Errorf("no link bytes out to router1: %v", m[`switchyard_link_bytes_total{direction="out",peer="router1"}`])
	}

	m = scrape(t, routerURL)
	want(t, m, `switchyard_sessions{realm="realm1"}`, 1)
	want(t, m, `switchyard_link_up{peer="inbound"}`, 1)
	if m[`switchyard_link_frames_total{direction="in",peer="inbound"}`] < 4 {
		t.Errorf("router inbound frames %v, want at least the 4 PUBLISHes", m[`switchyard_link_frames_total{direction="in",peer="inbound"}`])
	}
	if _, ok := m[`switchyard_connections_open`]; ok {
		t.Error("a router without listeners reports client connections")
	}
}
