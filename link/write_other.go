//go:build !unix

package link

import "time"

// writeThrough says whether a link on a plain socket writes through (see batch.go): not
// here, where a raw write(2) on the socket is not available; the writer goroutine
// writes every link.
const writeThrough = false

// writeNonBlocking is never used where writeThrough is false.
func (l *Link) writeNonBlocking(uintptr) bool { panic("link: write-through not supported here") }

// writeFd and waitWritable serve links on event loops, which need writeThrough.
func writeFd(int, []byte) (int, error)      { panic("link: event loops not supported here") }
func waitWritable(int, time.Duration) error { panic("link: event loops not supported here") }
