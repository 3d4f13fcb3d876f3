package node

import (
	"context"
	"time"

	"github.com/switchyard-wamp/switchyard/engine"
)

// DrainMessage is GOODBYE.Details.message of the wamp.close.system_shutdown a cluster
// proxy sends its sessions during a lame-duck drain (the engine's GOODBYE has none).
const DrainMessage = "the router is draining for a restart; reconnect"

// Drain is the lame-duck drain: the node stops accepting client connections (the
// listeners close; open connections are kept), then says GOODBYE
// wamp.close.system_shutdown to every session, spread evenly over period so that the
// clients do not all reconnect at once. It returns the number of sessions told
// GOODBYE, when the last one was told or ctx ended (the rest are left to Stop). The
// caller then calls Stop. Safe for concurrent use with the node's other methods.
func (n *Node) Drain(ctx context.Context, period time.Duration) int {
	if n.Server != nil {
		n.Server.StopAccepting()
	}
	var byes []func()
	for _, name := range n.Router.RealmNames() {
		if rl, ok := n.Router.Realm(name); ok {
			rl.LocalSessions(func(s *engine.Session, _ []uint64) bool {
				byes = append(byes, func() { s.Goodbye(engine.CloseSystemShutdown) })
				return true
			})
		}
	}
	if g, ok := n.cfg.Cluster.(interface {
		Goodbyes(reason, message string) []func()
	}); ok {
		byes = append(byes, g.Goodbyes(engine.CloseSystemShutdown, DrainMessage)...)
	}
	return spread(ctx, period, byes)
}

// spread calls each of fs, the i-th at start + period*i/len(fs), until ctx ends; it
// returns how many it called.
func spread(ctx context.Context, period time.Duration, fs []func()) int {
	start := time.Now()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for i, f := range fs {
		at := start.Add(period * time.Duration(i) / time.Duration(len(fs)))
		if d := time.Until(at); d > time.Millisecond {
			t.Reset(d)
			select {
			case <-ctx.Done():
				return i
			case <-t.C:
			}
		} else if ctx.Err() != nil {
			return i
		}
		f()
	}
	return len(fs)
}
