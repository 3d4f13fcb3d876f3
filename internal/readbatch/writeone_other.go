//go:build !unix

package readbatch

// WriteNonBlocking is unsupported here: it reports a failure.
func WriteNonBlocking(int, []byte) int { return -1 }
