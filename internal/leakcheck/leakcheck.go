// Package leakcheck runs a package's tests under goleak with the project's list of
// goroutines that are known to outlive every test by design, so that each TestMain is one
// line and the list is kept in one place.
package leakcheck

import (
	"testing"

	"go.uber.org/goleak"
)

// benign are the top functions of goroutines that live for the whole process by design.
var benign = []goleak.Option{
	// gnet's default goroutine pool (an ants pool created when gnet's package
	// initializes) runs these two for the life of the process; they hold no conn.
	goleak.IgnoreTopFunction("github.com/panjf2000/ants/v2.(*poolCommon).purgeStaleWorkers"),
	goleak.IgnoreTopFunction("github.com/panjf2000/ants/v2.(*poolCommon).ticktock"),
}

// Main runs m and fails the run when a goroutine is left behind once every test is
// done (and its cleanups have run), other than the benign ones. For TestMain. Not safe
// for concurrent use (call it once).
func Main(m *testing.M, extra ...goleak.Option) {
	goleak.VerifyTestMain(m, append(benign, extra...)...)
}
