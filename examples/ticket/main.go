// Command ticket is the ticket-auth example of switchyard: it joins realm1 as "alice"
// with a ticket (a password), calls a procedure it registered itself, and exits.
//
//	EXAMPLE_TICKET=s3cret switchyard start --config examples/ticket/switchyard.yaml
//	EXAMPLE_TICKET=s3cret go run ./examples/ticket --url ws://127.0.0.1:8080/ws
//
// The URL comes from --url, else $SWITCHYARD_URL, else ws://127.0.0.1:8080/ws; the
// ticket from $EXAMPLE_TICKET. The exit status is 0 on success, 1 on failure.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/switchyard-wamp/switchyard/client"
)

func main() {
	def := os.Getenv("SWITCHYARD_URL")
	if def == "" {
		def = "ws://127.0.0.1:8080/ws"
	}
	url := flag.String("url", def, "router URL (ws://, wss://, rs://, rss://)")
	flag.Parse()
	if err := run(*url, os.Getenv("EXAMPLE_TICKET")); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
	fmt.Println("ok")
}

func run(url, ticket string) error {
	if ticket == "" {
		return errors.New("set EXAMPLE_TICKET to alice's ticket")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	s, err := client.Connect(ctx, client.Config{
		URL:         url,
		Realm:       "realm1",
		AuthID:      "alice",
		AuthMethods: []string{"ticket"},
		// The router sends a CHALLENGE; for ticket the answer is the ticket itself.
		OnChallenge: func(method string, _ map[string]any) (string, error) {
			if method != "ticket" {
				return "", fmt.Errorf("unexpected challenge %q", method)
			}
			return ticket, nil
		},
	})
	if err != nil {
		// A wrong ticket ends here: wamp.error.authentication_failed.
		return fmt.Errorf("join: %w", err)
	}
	defer s.Close()
	fmt.Printf("joined %s as %s (role %s)\n", s.Realm(), s.AuthID(), s.AuthRole())

	// The role "app" may register and call under com.example. (see switchyard.yaml).
	_, err = s.Register(ctx, "com.example.whoami", func(_ context.Context, inv *client.Invocation) (*client.Result, error) {
		return &client.Result{Args: []any{"alice"}}, nil
	}, nil)
	if err != nil {
		return fmt.Errorf("register: %w", err)
	}
	res, err := s.Call(ctx, "com.example.whoami", nil, nil, nil)
	if err != nil {
		return fmt.Errorf("call: %w", err)
	}
	fmt.Println("whoami:", res.Args[0])

	// Anything outside com.example. is refused with wamp.error.not_authorized.
	_, err = s.Call(ctx, "other.thing", nil, nil, nil)
	var werr *client.Error
	if !errors.As(err, &werr) || werr.URI != "wamp.error.not_authorized" {
		return fmt.Errorf("call other.thing: want wamp.error.not_authorized, got %v", err)
	}
	fmt.Println("other.thing refused:", werr.URI)
	return nil
}
