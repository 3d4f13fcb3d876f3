package main

import (
	"os"
	"os/signal"
)

// selfSignals carries the signals the process gives itself (POST /drain), so that they
// go through the same path as those the operating system delivers, on every platform.
var selfSignals = make(chan os.Signal, 1)

// notifySignals returns a channel of the signals a node acts on: SIGINT and SIGTERM
// (stop), SIGHUP (reload), the drain signal (SIGUSR2 where there is one), and the
// signals the process gives itself. Called once per process (a node command).
func notifySignals() chan os.Signal {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, nodeSignals...)
	go func() {
		for s := range selfSignals {
			sig <- s
		}
	}()
	return sig
}
