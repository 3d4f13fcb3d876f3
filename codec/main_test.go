package codec

import (
	"fmt"
	"os"
	"sync"
	"testing"
)

// suiteReport collects one line per conformance-vector suite (ran with what count, or
// skipped and why). TestMain prints them after the run, so that a vector suite that
// quietly skipped is visible without -v (in directory mode, on failure, and in the
// summary step of `make test`); t.Log alone shows only with -v.
var suiteReport struct {
	mu    sync.Mutex
	lines []string
}

// reportSuite records a line for TestMain's summary. Safe for concurrent use.
func reportSuite(format string, args ...any) {
	suiteReport.mu.Lock()
	defer suiteReport.mu.Unlock()
	suiteReport.lines = append(suiteReport.lines, fmt.Sprintf(format, args...))
}

func TestMain(m *testing.M) {
	code := m.Run()
	suiteReport.mu.Lock()
	for _, l := range suiteReport.lines {
		fmt.Println("codec conformance: " + l)
	}
	suiteReport.mu.Unlock()
	os.Exit(code)
}
