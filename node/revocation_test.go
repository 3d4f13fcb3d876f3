package node

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/client"
	"github.com/switchyard-wamp/switchyard/codec"
)

// TestClientSeesRevocation: our Go client announces registration_revocation, so the
// router tells it when wamp.registration.remove_callee takes its registration: the
// Registration's Revoked channel closes with the reason, and the procedure is gone. In
// every serializer (the registration id decodes to different number types).
func TestClientSeesRevocation(t *testing.T) {
	n := startNode(t, nil)
	for _, ser := range []codec.Serializer{codec.JSON, codec.MsgPack, codec.CBOR} {
		t.Run(ser.String(), func(t *testing.T) { clientSeesRevocation(t, n, ser) })
	}
}

func clientSeesRevocation(t *testing.T, n *Node, ser codec.Serializer) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	connect := func() *client.Session {
		s, err := client.Connect(ctx, client.Config{URL: n.WebSocketURL(), Realm: "realm1", Serializer: ser})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	callee, other := connect(), connect()
	reg, err := callee.Register(ctx, "com.example.revoked", func(context.Context, *client.Invocation) (*client.Result, error) {
		return &client.Result{}, nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if reg.RevokedReason() != "" {
		t.Fatal("revoked before anything happened")
	}
	if _, err := other.Call(ctx, "wamp.registration.remove_callee", []any{reg.ID(), callee.ID()},
		map[string]any{"reason": "com.example.moved"}, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-reg.Revoked():
	case <-time.After(5 * time.Second):
		t.Fatal("the client was not told its registration was revoked")
	}
	if got := reg.RevokedReason(); got != "com.example.moved" {
		t.Fatalf("reason %q", got)
	}
	var we *client.Error
	if _, err := other.Call(ctx, "com.example.revoked", nil, nil, nil); !errors.As(err, &we) || we.URI != "wamp.error.no_such_procedure" {
		t.Fatalf("call after the revocation: %v", err)
	}
}
