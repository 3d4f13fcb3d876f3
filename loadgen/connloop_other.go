//go:build !linux

package loadgen

import (
	"errors"
	"sync/atomic"
)

// loopsSupported reports whether the connect event loops (epoll) run on this platform.
const loopsSupported = false

func newLoopJoiner(*Options, int, *atomic.Int64, *atomic.Int64, *errorLog) (joiner, error) {
	return nil, errors.New("loadgen: the connect event loops need Linux")
}
