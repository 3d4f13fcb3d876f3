// Command go is the Go example of switchyard: one program that registers a procedure,
// subscribes to a topic, calls the procedure and publishes an event, then exits.
//
//	go run ./examples/go --url ws://127.0.0.1:8080/ws
//	go run ./examples/go --url wss://127.0.0.1:8443/ws --ca examples/tls/server.crt
//
// The URL comes from --url, else $SWITCHYARD_URL, else ws://127.0.0.1:8080/ws; it may
// also be rs://host:port (RawSocket). The exit status is 0 on success, 1 on failure.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/switchyard-wamp/switchyard/client"
	"github.com/switchyard-wamp/switchyard/codec"
)

func main() {
	def := os.Getenv("SWITCHYARD_URL")
	if def == "" {
		def = "ws://127.0.0.1:8080/ws"
	}
	url := flag.String("url", def, "router URL (ws://, wss://, rs://, rss://)")
	realm := flag.String("realm", "realm1", "realm to join")
	ca := flag.String("ca", "", "PEM certificate to trust for wss:// and rss:// (a self-signed router certificate; see examples/tls)")
	flag.Parse()
	var tlsCfg *tls.Config
	if *ca != "" {
		pem, err := os.ReadFile(*ca)
		if err != nil {
			fmt.Fprintln(os.Stderr, "error:", err)
			os.Exit(1)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			fmt.Fprintln(os.Stderr, "error: no PEM certificate in", *ca)
			os.Exit(1)
		}
		tlsCfg = &tls.Config{RootCAs: pool}
	}
	if err := run(*url, *realm, tlsCfg); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
	fmt.Println("ok")
}

func run(url, realm string, tlsCfg *tls.Config) error {
	// Everything below must finish within 10 seconds.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Two sessions, as two programs would have: a callee/subscriber and a caller/publisher.
	// Serializer picks JSON, MessagePack or CBOR (the zero value is JSON).
	cfg := client.Config{URL: url, Realm: realm, Serializer: codec.MsgPack, TLSConfig: tlsCfg}
	callee, err := client.Connect(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect callee: %w", err)
	}
	defer callee.Close()
	caller, err := client.Connect(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect caller: %w", err)
	}
	defer caller.Close()

	// Callee: com.example.add2 returns the sum of its two arguments. Each invocation
	// runs on its own goroutine.
	_, err = callee.Register(ctx, "com.example.add2", func(_ context.Context, inv *client.Invocation) (*client.Result, error) {
		if len(inv.Args) != 2 || !isNumber(inv.Args[0]) || !isNumber(inv.Args[1]) {
			// An *client.Error reaches the caller as a WAMP error with this URI.
			return nil, &client.Error{URI: "com.example.error.invalid_argument", Args: []any{"want two numbers"}}
		}
		return &client.Result{Args: []any{toFloat(inv.Args[0]) + toFloat(inv.Args[1])}}, nil
	}, nil)
	if err != nil {
		return fmt.Errorf("register: %w", err)
	}

	// Subscriber: events on com.example.hello arrive on the session's reader goroutine.
	got := make(chan string, 1)
	_, err = callee.Subscribe(ctx, "com.example.hello", func(ev *client.Event) {
		if len(ev.Args) > 0 {
			got <- fmt.Sprint(ev.Args[0])
		}
	}, nil)
	if err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}

	// Caller.
	res, err := caller.Call(ctx, "com.example.add2", []any{2, 3}, nil, nil)
	if err != nil {
		return fmt.Errorf("call: %w", err)
	}
	fmt.Println("add2(2, 3) =", res.Args[0])
	if fmt.Sprint(res.Args[0]) != "5" {
		return fmt.Errorf("add2(2, 3) returned %v", res.Args[0])
	}

	// Publisher: Acknowledge waits until the router accepted the event.
	if err := caller.Publish(ctx, "com.example.hello", []any{"hello from Go"}, nil, client.Acknowledge()); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	select {
	case msg := <-got:
		fmt.Println("event:", msg)
	case <-ctx.Done():
		return fmt.Errorf("no event received: %w", ctx.Err())
	}
	return nil
}

// isNumber and toFloat deal with the decoded numbers: int64 or uint64 for integers,
// float64 otherwise, depending on the value and the serializer.
func isNumber(v any) bool {
	switch v.(type) {
	case int64, uint64, float64:
		return true
	}
	return false
}

func toFloat(v any) float64 {
	switch n := v.(type) {
	case int64:
		return float64(n)
	case uint64:
		return float64(n)
	case float64:
		return n
	}
	return 0
}
