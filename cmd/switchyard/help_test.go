package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestHelpExitsZero runs every command of the built binary with -h: each prints its
// usage and exits 0, and no flag's usage turns a backquoted word into the flag's
// argument name (flag.UnquoteUsage does that: "-config switchyard init").
func TestHelpExitsZero(t *testing.T) {
	bin := buildBinary(t)
	for _, args := range [][]string{
		{"-h"}, {"--help"}, {"help"},
		{"start", "-h"}, {"start", "--help"}, {"router", "-h"}, {"proxy", "-h"},
		{"init", "-h"}, {"check", "-h"}, {"bench", "-h"}, {"bench", "run", "-h"},
		{"loadgen", "-h"}, {"loadgen", "rpc", "-h"}, {"loadgen", "sink", "-h"},
	} {
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil {
			t.Errorf("switchyard %s: %v\n%s", strings.Join(args, " "), err, out)
			continue
		}
		if len(out) == 0 {
			t.Errorf("switchyard %s printed nothing", strings.Join(args, " "))
		}
		for _, bad := range []string{"-config switchyard", "help requested"} {
			if strings.Contains(string(out), bad) {
				t.Errorf("switchyard %s: output has %q:\n%s", strings.Join(args, " "), bad, out)
			}
		}
	}
}
