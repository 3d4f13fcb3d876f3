package bridge_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/client"
	"github.com/switchyard-wamp/switchyard/node"
)

// TestBridgeOnClusterProxy runs the publisher and caller bridges on the proxies of a
// local cluster (3 routers, 2 proxies, sessions alternating over the routers): the
// bridge's session lives on a router, a callee and a subscriber joined through the other
// proxy are reached across routers, and the bridge role's permissions apply on the
// router.
func TestBridgeOnClusterProxy(t *testing.T) {
	rs := roles(t)
	lc, err := node.StartLocalCluster(node.LocalClusterConfig{Alternate: true, Mod: func(c *node.Config) {
		c.Roles = rs
		if len(c.Listeners) > 0 { // a proxy
			c.Listeners = []node.Listener{{Address: "127.0.0.1:0", Web: []node.WebPath{
				{Path: "/publish", Kind: node.WebPublisher, Realm: "realm1", Role: "bridge"},
				{Path: "/call", Kind: node.WebCaller, Realm: "realm1", Role: "bridge", Timeout: 2 * time.Second},
			}}}
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = lc.Stop(ctx)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	peer, err := client.Connect(ctx, client.Config{URL: lc.Proxies[1].Node.WebSocketURL(), Realm: "realm1"})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Leave(context.Background(), "")
	if _, err := peer.Register(ctx, "com.ok.where", func(_ context.Context, inv *client.Invocation) (*client.Result, error) {
		return &client.Result{Args: []any{fmt.Sprint("pong ", inv.Args[0])}}, nil
	}, nil); err != nil {
		t.Fatal(err)
	}
	events := make(chan *client.Event, 4)
	if _, err := peer.Subscribe(ctx, "com.ok.news", func(e *client.Event) { events <- e }, nil); err != nil {
		t.Fatal(err)
	}
	base := "http://" + lc.Proxies[0].Node.Server.Addr(0).String()
	for i := range 3 { // the session opens once and is reused
		a := post(t, base+"/call", fmt.Sprintf(`{"procedure":"com.ok.where","args":[%d]}`, i), nil)
		if a.code != 200 || fmt.Sprint(a.body["args"]) != fmt.Sprintf("[pong %d]", i) {
			t.Fatalf("call %d through the cluster: %d %v", i, a.code, a.body)
		}
	}
	if a := post(t, base+"/call", `{"procedure":"com.secret.x"}`, nil); a.code != 403 {
		t.Fatalf("unauthorized call: %d %v", a.code, a.body)
	}
	if a := post(t, base+"/call", `{"procedure":"com.ok.nobody"}`, nil); a.code != 404 {
		t.Fatalf("no callee: %d %v", a.code, a.body)
	}
	if a := post(t, base+"/publish", `{"topic":"com.ok.news","args":["x"]}`, nil); a.code != 200 {
		t.Fatalf("publish: %d %v", a.code, a.body)
	}
	if e := wait(t, events); fmt.Sprint(e.Args) != "[x]" {
		t.Fatalf("event %+v", e)
	}
}
