package statuspage

import (
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/switchyard-wamp/switchyard/internal/browsertest"
)

// serve runs h on a loopback port for the test and returns its base URL.
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}

// clusterSource is a cluster whose routers' message counters grow by 500 per
// snapshot, as a master would report them from its nodes' heartbeats.
func clusterSource() func() Cluster {
	var calls atomic.Uint64
	return func() Cluster {
		k := calls.Add(1) * 500
		return Cluster{Master: "master1", Leader: "master1", Version: 7, Slots: 1024, Nodes: []ClusterNode{
			{Name: "proxy1", Role: "proxy", Addr: "10.0.0.1:8080", Up: true, Sessions: 40, MessagesIn: k, MessagesOut: 2 * k},
			{Name: "router1", Role: "router", Addr: "10.0.0.2:7000", Up: true, Slots: 512, Sessions: 25, MessagesIn: k, MessagesOut: k},
			{Name: "router2", Role: "router", Addr: "10.0.0.3:7000", Up: true, Slots: 512, Sessions: 15, MessagesIn: k, MessagesOut: k},
			{Name: "router3", Role: "router", Addr: "10.0.0.4:7000", Up: false},
		}}
	}
}

// TestJSON: status.json and cluster.json carry what get returns, with the time filled in.
func TestJSON(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("/status.json", NodeJSON(func() Node { return Node{Node: "n1", Sessions: 3, Realms: []Realm{{Name: "realm1", Sessions: 3}}} }))
	mux.Handle("/cluster.json", ClusterJSON(clusterSource()))
	base := serve(t, mux)
	var n Node
	getJSON(t, base+"/status.json", &n)
	if n.Node != "n1" || n.Sessions != 3 || len(n.Realms) != 1 || n.Time == 0 {
		t.Fatalf("status.json: %+v", n)
	}
	var c Cluster
	getJSON(t, base+"/cluster.json", &c)
	if len(c.Nodes) != 4 || c.Slots != 1024 || c.Time == 0 {
		t.Fatalf("cluster.json: %+v", c)
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%s: content type %q", url, resp.Header.Get("Content-Type"))
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

// TestClusterPage opens the master's cluster page in headless Chromium: it lists the
// nodes with their state and slots, and shows rates once it has refreshed itself.
func TestClusterPage(t *testing.T) {
	ctx := browsertest.Browser(t, 60*time.Second)
	mux := http.NewServeMux()
	mux.Handle("/cluster", ClusterPage())
	mux.Handle("/cluster.json", ClusterJSON(clusterSource()))
	base := serve(t, mux)
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/cluster")); err != nil {
		t.Fatal(err)
	}
	rateUp := `Number(document.getElementById("rate-in").textContent.replace(/[^0-9.]/g, "")) > 0`
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](rateUp, chromedp.WithPollingTimeout(15*time.Second))); err != nil {
		t.Fatalf("the cluster page shows no message rate: %v", err)
	}
	nodes, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("nodes")))
	if err != nil {
		t.Fatal(err)
	}
	up, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("nodes-up")))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("nodes up %s; table:\n%s", up, nodes)
	if strings.TrimSpace(up) != "3 / 4" {
		t.Errorf("nodes up %q, want 3 / 4", up)
	}
	for _, want := range []string{"router1\trouter\t10.0.0.2:7000\tup\t512", "router3\trouter\t10.0.0.4:7000\tdown", "proxy1\tproxy"} {
		if !strings.Contains(nodes, want) {
			t.Errorf("nodes table has no %q", want)
		}
	}
	browsertest.Screenshot(t, ctx, "switchyard-cluster-page")
}
