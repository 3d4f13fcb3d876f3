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
	runScripts(t, []scriptCase{
		{"js/ws/msgpack", "features.js", endpoint{c: js, transport: "ws", serializer: "msgpack"}},
		{"py/ws/cbor", "features.py", endpoint{c: py, transport: "ws", serializer: "cbor"}},
		{"py/rs/msgpack/twisted", "features.py", endpoint{c: py, transport: "rs", serializer: "msgpack"}},
	}, startNode, featuresTimeout, false)
}

// scriptCase is one run of a script against a node of its own.
type scriptCase struct {
	name   string   // the subtest's name
	script string   // the script, in js/ or python/ (the directory of e.c)
	e      endpoint // the client, transport, serializer and framework
}

// eachOnOwnNode runs every case as a parallel subtest of t, against the node start
// starts for that subtest alone, with run. A subtest whose client is missing skips
// (fails under CI, see require).
func eachOnOwnNode[N any](t *testing.T, cases []scriptCase, start func(*testing.T) N, run func(*testing.T, N, scriptCase)) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require(t, tc.e.c)
			t.Parallel()
			run(t, start(t), tc)
		})
	}
}

// runScripts is eachOnOwnNode running each case's script with runScript.
func runScripts(t *testing.T, cases []scriptCase, start func(*testing.T) *routerNode, timeout time.Duration, needPass bool, env ...string) {
	t.Helper()
	eachOnOwnNode(t, cases, start, func(t *testing.T, rn *routerNode, tc scriptCase) {
		runScript(t, rn, tc.e, tc.script, timeout, needPass, env...)
	})
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
	if err == nil && hasLine(out.String(), "FAIL ") {
		t.Errorf("%s exited 0 but printed FAIL lines", name)
	}
	if err == nil && needPass && !hasLine(out.String(), "PASS ") {
		t.Errorf("%s exited 0 but printed no PASS line", name)
	}
}

// hasLine reports whether some line of out, the first and last included, starts with
// prefix.
func hasLine(out, prefix string) bool {
	for line := range strings.Lines(out) {
		if strings.HasPrefix(line, prefix) {
			return true
		}
	}
	return false
}

// TestHasLine checks the scan of script output for FAIL and PASS lines: a FAIL on the
// first line counts, a FAIL inside a line does not.
func TestHasLine(t *testing.T) {
	for _, c := range []struct {
		out  string
		want bool
	}{
		{"FAIL 0.1s js subscribe: no event\nok   publish\n", true},
		{"ok   publish\nFAIL 0.1s js subscribe: no event\n", true},
		{"ok   publish\nFAIL 0.1s js subscribe: no event", true},
		{"ok   publish\nok   call\nPASS js\n", false},
		{"ok   detail says FAIL here\n", false},
		{"FAILED js (1 failed checks)\n", false},
		{"", false},
	} {
		if got := hasLine(c.out, "FAIL "); got != c.want {
			t.Errorf("hasLine(%q, FAIL) = %v, want %v", c.out, got, c.want)
		}
	}
	if !hasLine("PASS js\n", "PASS ") || hasLine("ok   PASS later\n", "PASS ") {
		t.Error("PASS line scan")
	}
}
