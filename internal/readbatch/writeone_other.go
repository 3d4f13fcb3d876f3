//go:build !unix

package readbatch

// writeOne is never reached here: without io_uring (uring.New fails) no Writes exist.
func writeOne(int, []byte) int { return -1 }
