package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/switchyard-wamp/switchyard/loadgen"
	"github.com/switchyard-wamp/switchyard/profiles"
)

// TestLoadgenURLAndPIDFlags: --url and --router-pid take several values, repeated or
// comma-separated; the first --url replaces the default.
func TestLoadgenURLAndPIDFlags(t *testing.T) {
	parse := func(args ...string) (*loadgen.Options, error) {
		var o loadgen.Options
		var ser string
		fs := loadgenFlags(&o, &ser, new(profiles.Flags), new(tlsFlags))
		fs.SetOutput(new(discard))
		return &o, fs.Parse(args)
	}
	o, err := parse()
	if err != nil || !slices.Equal(o.URLs, []string{loadgen.DefaultURL}) || len(o.RouterPIDs) != 0 {
		t.Errorf("no flags: urls %q pids %v, %v", o.URLs, o.RouterPIDs, err)
	}
	o, err = parse("--url", "ws://a:1/ws, rs://b:2", "--url", "ws://c:3/ws", "--router-pid", "11,12", "--router-pid", "13")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"ws://a:1/ws", "rs://b:2", "ws://c:3/ws"}; !slices.Equal(o.URLs, want) {
		t.Errorf("urls %q, want %q", o.URLs, want)
	}
	if want := []int{11, 12, 13}; !slices.Equal(o.RouterPIDs, want) {
		t.Errorf("pids %v, want %v", o.RouterPIDs, want)
	}
	for _, bad := range [][]string{{"--router-pid", "x"}, {"--router-pid", "0"}, {"--url", ","}} {
		if _, err := parse(bad...); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// TestLoadgenUnknownScenarioListsSink: the error for a wrong scenario lists every
// scenario `switchyard loadgen` accepts, sink included.
func TestLoadgenUnknownScenarioListsSink(t *testing.T) {
	err := runLoadgen([]string{"bogus"})
	if err == nil || !strings.Contains(err.Error(), "rpc") || !strings.Contains(err.Error(), "sink") {
		t.Fatalf("loadgen bogus: %v", err)
	}
}
