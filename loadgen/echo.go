package loadgen

import (
	"context"
)

// echoScenario is the baseline of rpc: Callers connections to an EchoServer (`switchyard
// loadgen sink --echo`), each keeping Inflight messages in flight, each message a CALL
// of the size rpc sends with the same Size (same procedure URI length, same payload).
// The server writes each back unchanged; the reply is decoded and its send time read as
// rpc reads a RESULT's. It is rpc's own code path (rpcPart: templates, wconn framing,
// batching writer, reader, pacing, window, drain), minus the callees and the WAMP
// session: the connections do the transport handshake (WebSocket upgrade with the wamp.2
// subprotocol, or RawSocket) and nothing else. So a run of rpc and one of echo with the
// same flags, one after the other, read as "a call through the router" against "one
// WebSocket round trip on this machine with this client": issue #15's p50 ratio, and
// with --router-pid the echo server's CPU per echoed message.
type echoScenario struct{}

func (echoScenario) Name() string { return "echo" }

func (echoScenario) Run(ctx context.Context, o *Options) (*Result, error) {
	o.transportOnly = true
	p := newRPCPart(o, o.Rate)
	p.echo = true
	return runOnePart(ctx, o, p)
}
