//go:build unix

package main

import (
	"os"
	"syscall"
)

// drainSignal starts the lame-duck drain.
var drainSignal os.Signal = syscall.SIGUSR2

// nodeSignals are the signals a node is notified of.
var nodeSignals = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGUSR2}
