package interop

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/engine"
)

// interopStore gives realm1 of every interop node an event history for the topics
// <prefix>history (the prefix is interop.tN.name., see uniquePrefix), which the
// features scripts read with wamp.subscription.get_events.
var interopStore = map[string]engine.StoreConfig{"realm1": {History: []engine.HistoryRule{
	{URI: "interop...history", Match: "wildcard", Limit: 10}}}}

// featuresTimeout is the hard timeout of features.js / features.py.
const featuresTimeout = 20 * time.Second

// TestFeatures runs the advanced-profile scenario (js/features.js, python/features.py;
// see docs/features.md) once per client, on one serializer each: publisher and caller
// identification, pattern-based subscriptions and registrations, shared registrations,
// progressive call results, call canceling and timeout, the meta API, event retention,
// event history, the consistent-hash invocation policy, testaments and subscriber
// black/whitelisting. Each script opens several sessions in
// one process. Same skip rule as the other tests: a missing client skips, unless CI is set.
func TestFeatures(t *testing.T) {
	js, py := clients()
	for _, tc := range []struct {
		name   string
		c      client
		script string
		e      endpoint
	}{
		{"js/ws/msgpack", js, "features.js", endpoint{c: js, transport: "ws", serializer: "msgpack"}},
		{"py/ws/cbor", py, "features.py", endpoint{c: py, transport: "ws", serializer: "cbor"}},
		{"py/rs/msgpack/twisted", py, "features.py", endpoint{c: py, transport: "rs", serializer: "msgpack"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require(t, tc.c)
			t.Parallel()
			rn := startNode(t)
			runFeatures(t, rn, tc.e, tc.script)
		})
	}
}

// runFeatures runs one features script against rn and fails t with its output on error.
func runFeatures(t *testing.T, rn *routerNode, e endpoint, name string) {
	runScript(t, rn, e, name, featuresTimeout, false)
}

// runScript runs the script name (in place of scenario.{js,py}, with the same command
// line) against rn with a hard timeout, and fails t with its output on error, on FAIL
// lines, and, when needPass is set, when it printed no PASS line. env ("KEY=value") is
// added to the script's environment.
func runScript(t *testing.T, rn *routerNode, e endpoint, name string, timeout time.Duration, needPass bool, env ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout+5*time.Second)
	defer cancel()
	cmd := rn.scriptCmd(ctx, e, "solo", uniquePrefix(t.Name()))
	cmd.Env = append(cmd.Env, env...)
	for i, a := range cmd.Args {
		if base := filepath.Base(a); base == "scenario.js" || base == "scenario.py" {
			cmd.Args[i] = filepath.Join(filepath.Dir(a), name)
		}
		if a == "--timeout" && i+1 < len(cmd.Args) {
			cmd.Args[i+1] = strings.TrimSuffix(timeout.String(), "s")
		}
	}
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	report(t, err, time.Since(start), script{e.String() + " " + name, &out})
	if err == nil && strings.Contains(out.String(), "\nFAIL ") {
		t.Errorf("%s exited 0 but printed FAIL lines", name)
	}
	if err == nil && needPass && !strings.Contains(out.String(), "PASS ") {
		t.Errorf("%s exited 0 but printed no PASS line", name)
	}
}
