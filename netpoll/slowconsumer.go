package netpoll

import (
	"errors"
	"time"
)

// Slow-consumer policy.
//
// A conn's backlog is what it has been sent and not yet taken: the bytes in its Send
// queue, the bytes gnet (or the TLS writer) holds for the socket, and the bytes the
// kernel holds in the socket's send buffer that it could not send yet because the
// peer's receive window is closed (Linux: ioctl SIOCOUTQNSD). The kernel part matters:
// with send-buffer autotuning a peer that stopped reading absorbs about 4 MiB on
// loopback before gnet has to buffer a single byte, so without it such a peer would
// look healthy until its ping timeout. Bytes already acknowledged by the peer's kernel
// (its receive buffer) are delivered as far as the router can know, and not counted.
//
// A slow consumer is a conn whose backlog stays high, not one that just got a burst:
//
//   - over Config.OutboundLimit (the soft limit) without a break for longer than
//     Config.WriteDeadline: closed as a slow consumer. A reader that keeps up gets
//     back under the soft limit as soon as it has read the burst.
//   - over Config.OutboundHardLimit: closed at once, whatever the time. This bounds
//     the memory one conn can pin: Send refuses to queue past it, and the loop closes
//     the conn when the queue plus the socket backlog pass it, so the router holds at
//     most about twice the hard limit for one conn (plus the kernel's own buffer).
//
// "Without a break" is measured at every drain (each batch of Sends the loop writes)
// and by the ticker, which wakes a conn once its deadline has passed so that its loop
// measures again: a conn found back under the soft limit starts from zero.
//
// Cost: Send only compares its queue with the hard limit (lock-free, no allocation).
// The loop reads the socket backlog after each drain; it asks the kernel only when
// the bytes it wrote since it last asked could have put the conn over the soft limit,
// so a conn that receives little never pays for the system call.

// Defaults of the slow-consumer policy (Config zero values).
const (
	// DefaultOutboundLimit is the default soft limit (Config.OutboundLimit).
	DefaultOutboundLimit = 4 << 20
	// DefaultWriteDeadline is the default Config.WriteDeadline: a reader must get its
	// backlog back under the soft limit within this time. Five seconds lets a reader on
	// a 50 Mbit/s link take in a burst that fills the default hard limit.
	DefaultWriteDeadline = 5 * time.Second
	// minHardLimit is the smallest default hard limit: the default is the larger of
	// this and twice the soft limit, so that a small soft limit does not turn every
	// burst of a few MB into an immediate disconnect.
	minHardLimit = 32 << 20
)

var errHardBelowSoft = errors.New("netpoll: OutboundHardLimit below OutboundLimit")

// applyOutboundDefaults fills the slow-consumer fields of cfg that are zero (or
// negative) and checks that the hard limit is not below the soft one.
func applyOutboundDefaults(cfg *Config) error {
	if cfg.OutboundLimit <= 0 {
		cfg.OutboundLimit = DefaultOutboundLimit
	}
	if cfg.OutboundHardLimit <= 0 {
		cfg.OutboundHardLimit = max(minHardLimit, 2*cfg.OutboundLimit)
	}
	if cfg.OutboundHardLimit < cfg.OutboundLimit {
		return errHardBelowSoft
	}
	if cfg.WriteDeadline <= 0 {
		cfg.WriteDeadline = DefaultWriteDeadline
	}
	return nil
}

// sockBacklog returns the bytes held for the socket: by gnet or the TLS writer, plus
// what the kernel has not sent. The kernel is asked only when the upper bound on its
// part (kernHint: what it held when last asked plus what was written since) could put
// the total over bound. Loop only.
func (c *Conn) sockBacklog(bound int64) int64 {
	b := int64(c.gc.OutboundBuffered())
	if c.kernHint > 0 && b+c.kernHint > bound {
		// Exact now; the hint stays an upper bound: what gnet or the TLS writer holds
		// may still move into the kernel (a TLS writer that empties its buffer into
		// the socket after this look must not leave the hint at 0).
		k := c.kernelUnsent()
		c.kernHint = k + b
		return b + k
	}
	return b + c.kernHint
}

// kernelUnsent asks the kernel how many bytes of the socket's send buffer are not sent
// yet; 0 where that cannot be known (Unix sockets, other systems), and then it is not
// asked again for this conn. Loop only.
func (c *Conn) kernelUnsent() int64 {
	if c.kernOff {
		return 0
	}
	n, ok := socketUnsent(c.gc)
	if !ok {
		c.kernOff = true
		return 0
	}
	return n
}

// resetIfUnder runs on the loop before a drain while the conn is marked over the soft
// limit: if the socket backlog went back under it since (the peer read it while nobody
// looked), the conn was not over without a break, and the mark is cleared.
func (c *Conn) resetIfUnder() {
	if c.overSince.Load() == 0 {
		return
	}
	soft := int64(c.srv.cfg.OutboundLimit)
	if c.sockBacklog(soft) <= soft {
		c.clearOver()
	}
}

func (c *Conn) clearOver() {
	c.overSince.Store(0)
	c.srv.overLimit.Delete(c)
}

// checkBacklog applies the policy after a drain (loop only, or the ticker holding a
// TLS conn's lock): it marks or clears "over the soft limit since", and closes the
// conn as a slow consumer when it is over the hard limit, or has been over the soft
// limit for WriteDeadline. It reports whether it closed the conn.
func (c *Conn) checkBacklog() bool {
	s := c.srv
	soft, hard := int64(s.cfg.OutboundLimit), int64(s.cfg.OutboundHardLimit)
	q := c.queued.Load()
	b := q + c.sockBacklog(soft-q)
	since := c.overSince.Load()
	if b <= soft {
		if since != 0 {
			c.clearOver()
		}
		return false
	}
	now := s.now()
	if since == 0 {
		// The precise clock: the coarse one may lag by a tick, which would make the
		// conn look over the limit for longer than it was.
		since = time.Now().UnixNano()
		c.overSince.Store(since)
		s.overLimit.Store(c, struct{}{})
	}
	switch {
	case b > hard:
		c.slowConsumer(b, "hard_limit")
	case now-since >= int64(s.cfg.WriteDeadline):
		c.slowConsumer(b, "write_deadline")
	default:
		return false
	}
	return true
}

// checkOverLimit runs on the ticker: every conn over the soft limit for WriteDeadline
// is measured again on its loop (a gnet conn is woken; a TLS conn, whose writer may
// be blocked on the socket, is checked here under its protocol lock).
func (s *Server) checkOverLimit(now int64) {
	s.overLimit.Range(func(c *Conn, _ struct{}) bool {
		since := c.overSince.Load()
		if since == 0 || c.state.Load() != stActive {
			s.overLimit.Delete(c)
			return true
		}
		if now-since < int64(s.cfg.WriteDeadline) {
			return true
		}
		if t, ok := c.gc.(*tlsConn); ok {
			t.checkBacklog()
		} else {
			c.wake()
		}
		return true
	})
}
