package span

import (
	"testing"

	"github.com/switchyard-wamp/switchyard/internal/leakcheck"
)

// TestMain fails the package's run when a test leaves a goroutine behind.
func TestMain(m *testing.M) { leakcheck.Main(m) }
