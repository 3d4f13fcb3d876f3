package interop

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// wampyVersion is the wampy.js release pinned in js/package.json.
const wampyVersion = "8.0.2"

var (
	wampyOnce   sync.Once
	wampyClient client
)

// detectWampy finds node and js/node_modules/wampy at wampyVersion; like detectJS, the
// client's missing field says why it cannot run and how to install it.
func detectWampy() client {
	wampyOnce.Do(func() {
		c := client{name: "wampy"}
		dir, _ := filepath.Abs("js")
		nodeBin := os.Getenv("INTEROP_NODE")
		if nodeBin == "" {
			p, err := exec.LookPath("node")
			if err != nil {
				c.missing = "wampy.js: `node` (Node.js >= 20) is not on PATH; install Node.js, then `cd interop/js && npm ci`"
				wampyClient = c
				return
			}
			nodeBin = p
		}
		pkg, err := os.ReadFile(filepath.Join(dir, "node_modules", "wampy", "package.json"))
		if err != nil {
			c.missing = "wampy.js: interop/js/node_modules/wampy is missing; run `cd interop/js && npm ci`"
			wampyClient = c
			return
		}
		var meta struct{ Version string }
		if json.Unmarshal(pkg, &meta) != nil || meta.Version != wampyVersion {
			c.missing = fmt.Sprintf("wampy.js: interop/js/node_modules/wampy is version %q, want %s; run `cd interop/js && npm ci`", meta.Version, wampyVersion)
			wampyClient = c
			return
		}
		c.command = scriptCommand(nodeBin, dir, "wampy.js")
		wampyClient = c
	})
	return wampyClient
}

// TestWampy runs js/wampy.js (wampy.js with its own JSON, MessagePack and CBOR
// serializers) over WebSocket, each serializer against its own node: join, call with
// args/kwargs, errors, publish/subscribe with acknowledgement, eligible, unsubscribe and
// unregister, with a peer session on another serializer (see the script's header).
func TestWampy(t *testing.T) {
	w := detectWampy()
	var cases []scriptCase
	for _, ser := range []string{"json", "msgpack", "cbor"} {
		cases = append(cases, scriptCase{"wampy/ws/" + ser, "wampy.js", endpoint{c: w, transport: "ws", serializer: ser}})
	}
	runScripts(t, cases, startNode, scriptTimeout, true)
}
