package interop

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/codec"
)

// TestAutobahnPythonFlatbuffers records what AutobahnPython 22.7.1 (Debian) can do over
// WAMP-Flatbuffers against switchyard (python/fbs_probe.py does the Python side; not
// named flatbuffers.py, which would shadow the flatbuffers module). Checked:
//   - switchyard negotiates wamp.2.flatbuffers with it: the WebSocket opens and the
//     session reaches its join;
//   - it cannot join: its serializer implements only EVENT and PUBLISH, and HELLO raises
//     NotImplementedError (surfacing as SerializationError in join).
//
// Logged, not asserted: its EVENT and PUBLISH tables follow an older schema than the
// WAMP vectors (newer AutobahnPython): no session field, so every field id is one lower
// (and enc_algo/enc_serializer/enc_key instead of ppt_*). switchyard follows the vectors,
// so the PUBLISH it writes and the EVENT it reads do not match; the log shows how each
// side reads the other's bytes.
func TestAutobahnPythonFlatbuffers(t *testing.T) {
	_, py := clients()
	require(t, py)
	if out, err := exec.Command("/usr/bin/python3", "-c", "import flatbuffers").CombinedOutput(); err != nil {
		require(t, client{name: "py", missing: "AutobahnPython's Flatbuffers serializer needs python3-flatbuffers (" + strings.TrimSpace(string(out)) + ")"})
	}
	rn := startNode(t)

	ev := codec.Message{Type: codec.EVENT, Subscription: 5512315355, Publication: 4429313566,
		Details: codec.Details{Has: codec.KeyPublisher | codec.KeyTopic, Publisher: 1234, Topic: []byte("com.example.topic")}}
	var err error
	if ev.Args, err = codec.AppendValue(nil, codec.Flatbuffers, []any{"héllo", uint64(23), []any{true, nil}}); err != nil {
		t.Fatal(err)
	}
	if ev.Kwargs, err = codec.AppendValue(nil, codec.Flatbuffers, map[string]any{"k": 1.5}); err != nil {
		t.Fatal(err)
	}
	evBytes, err := codec.For(codec.Flatbuffers).Append(nil, &ev)
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), scriptTimeout)
	defer cancel()
	dir, _ := filepath.Abs("python")
	cmd := exec.CommandContext(ctx, "/usr/bin/python3", filepath.Join(dir, "fbs_probe.py"), hex.EncodeToString(evBytes), rn.urls["ws"])
	cmd.WaitDelay = 2 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("fbs_probe.py: %v\n%s\n%s", err, out, stderr.String())
	}
	steps := map[string]map[string]any{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var st map[string]any
		if json.Unmarshal(sc.Bytes(), &st) == nil {
			steps[st["step"].(string)] = st
			t.Logf("%s", sc.Text())
		}
	}

	// Not asserted (see the comment above): how each side reads the other's bytes.
	t.Logf("AutobahnPython reading switchyard's EVENT %x: %v", evBytes, steps["event_in"])
	if st := steps["publish"]; st != nil && st["ok"] == true {
		b, _ := hex.DecodeString(st["hex"].(string))
		var m codec.Message
		err := codec.For(codec.Flatbuffers).Decode(b, &m)
		t.Logf("switchyard reading AutobahnPython's PUBLISH %x: %+v, %v", b, m, err)
	}

	// Cannot write HELLO, so cannot join; the transport did open.
	if st := steps["hello"]; st == nil || st["ok"] != false || !strings.Contains(st["error"].(string), "NotImplementedError") {
		t.Errorf("HELLO: %v (AutobahnPython 22.7.1 raises NotImplementedError; a client that can join deserves a session test)", st)
	}
	if st := steps["join"]; st == nil || st["outcome"] != "join" || !strings.Contains(st["detail"].(string), "SerializationError") {
		t.Errorf("join: %v; want the WebSocket open with wamp.2.flatbuffers and the join failing in the client's HELLO serializer", st)
	}
}
