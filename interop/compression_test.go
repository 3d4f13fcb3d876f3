package interop

import (
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/netpoll"
	"github.com/switchyard-wamp/switchyard/node"
)

// startCompressionNode starts a node whose universal listener offers permessage-deflate
// (defaults: no context takeover either way, level 1, messages from 128 bytes up
// compressed).
func startCompressionNode(t *testing.T) *routerNode {
	t.Helper()
	return startNodeConfig(t, func(c *node.Config) {
		c.Listeners[0].Compression = &netpoll.Compression{}
	})
}

// TestCompression negotiates permessage-deflate (RFC 7692) with AutobahnJS
// (js/compression.js: the `ws` library's default offer) and AutobahnPython
// (python/compression.py: PerMessageDeflateOffer, asyncio and Twisted) and sends
// compressed events and calls both ways; then checks on the router's counters that it
// really inflated what the client sent and compressed what it sent back, so a script
// that silently fell back to plain frames fails.
func TestCompression(t *testing.T) {
	js, py := clients()
	cases := []scriptCase{
		{"js/ws/json", "compression.js", endpoint{c: js, transport: "ws", serializer: "json"}},
		{"js/ws/msgpack", "compression.js", endpoint{c: js, transport: "ws", serializer: "msgpack"}},
		{"py/ws/json/asyncio", "compression.py", endpoint{c: py, transport: "ws", serializer: "json", framework: "asyncio"}},
		{"py/ws/cbor/twisted", "compression.py", endpoint{c: py, transport: "ws", serializer: "cbor", framework: "twisted"}},
	}
	eachOnOwnNode(t, cases, startCompressionNode, func(t *testing.T, rn *routerNode, tc scriptCase) {
		runScript(t, rn, tc.e, tc.script, 15*time.Second, false)
		st := rn.Node.Server.Stats()
		t.Logf("router deflate counters: compressed %d, shared %d, inflated %d", st.DeflateCompressed, st.DeflateShared, st.DeflateInflated)
		if st.DeflateInflated == 0 {
			t.Errorf("the router inflated no message: the client sent nothing compressed")
		}
		if st.DeflateCompressed == 0 {
			t.Errorf("the router compressed no message")
		}
	})
}
