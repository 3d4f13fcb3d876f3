package netpoll

import (
	"testing"

	"github.com/switchyard-wamp/switchyard/internal/readbatch"
)

// TestURing runs the direct-write tests with the flushes' writes batched over io_uring
// (Config.IOUring): the same stream order, no frame lost, partial writes handed to the
// loop, a close while writes are in a batch. Skipped where the kernel has no io_uring.
func TestURing(t *testing.T) {
	if on, err := readbatch.SetURing(true); !on {
		t.Skipf("io_uring unavailable here: %v", err)
	}
	t.Cleanup(func() { _, _ = readbatch.SetURing(false) })
	before := readbatch.URingWrites()
	t.Run("NothingLost", testAppendBufferNothingLost)
	if readbatch.URingWrites() == before {
		t.Fatal("no write went through io_uring: the test did not exercise the batched path")
	}
	t.Run("KeepStreamWhole", testDirectWritesKeepStreamWhole)
	t.Run("CloseWhileWriting", testCloseWhileDirectWriting)
}
