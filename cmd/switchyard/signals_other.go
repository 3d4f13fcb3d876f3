//go:build !unix

package main

import (
	"os"
	"syscall"
)

// drainRequest is the drain signal where there is no SIGUSR2: only POST /drain
// (`switchyard drain`) gives it.
type drainRequest struct{}

func (drainRequest) String() string { return "drain request" }
func (drainRequest) Signal()        {}

// drainSignal starts the lame-duck drain.
var drainSignal os.Signal = drainRequest{}

// nodeSignals are the signals a node is notified of.
var nodeSignals = []os.Signal{os.Interrupt, syscall.SIGTERM}
