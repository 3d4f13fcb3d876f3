package netpoll

import "time"

// onTick runs on gnet's ticker goroutine (not on an event loop): it refreshes the
// coarse clock, wakes closing conns that wait for their socket backlog to drain, and
// every sweepEvery walks all conns for keepalive and handshake timeouts. Everything it
// touches on a Conn is atomic or goes through the concurrency-safe gnet calls.
func (s *Server) onTick() time.Duration {
	now := time.Now().UnixNano()
	s.clock.Store(now)
	if s.stopped.Load() {
		return s.tick
	}
	s.flushing.Range(func(c *Conn, _ int64) bool {
		c.wake()
		return true
	})
	if now-s.lastSweep >= int64(s.sweepEvery) {
		s.lastSweep = now
		s.sweep(now)
	}
	return s.tick
}

// sweep pings idle conns, closes conns whose ping went unanswered for PingTimeout and
// conns that did not finish their handshake within PingInterval+PingTimeout.
func (s *Server) sweep(now int64) {
	interval, timeout := int64(s.cfg.PingInterval), int64(s.cfg.PingTimeout)
	s.conns.Range(func(c *Conn, _ struct{}) bool {
		if c.state.Load() != stActive {
			return true
		}
		if !c.isOpen.Load() {
			if now-c.born >= interval+timeout && c.reason.CompareAndSwap(reasonNone, reasonHandshakeTimeout) {
				s.log.Info("netpoll: handshake timeout, closing", "remote", c.remote.String(),
					"age", time.Duration(now-c.born))
				_ = c.gc.Close()
			}
			return true
		}
		if p := c.pingAt.Load(); p != 0 {
			if now-p >= timeout && c.reason.CompareAndSwap(reasonNone, reasonPingTimeout) {
				s.log.Info("netpoll: ping timeout, closing", "remote", c.remote.String(),
					"transport", c.transport, "timeout", s.cfg.PingTimeout)
				_ = c.gc.Close()
			}
			return true
		}
		if now-c.lastRead.Load() >= interval {
			c.pingAt.Store(now)
			c.sendPing()
		}
		return true
	})
}

// sendPing queues a keepalive ping (WebSocket ping frame or RawSocket PING, empty
// payload). Any inbound traffic, the pong included, clears Conn.pingAt.
func (c *Conn) sendPing() {
	n := getNode()
	if c.transport == transportRawSocket {
		n.buf = append(n.buf[:0], rsPing, 0, 0, 0)
	} else {
		n.buf = append(n.buf[:0], 0x80|opPing, 0)
	}
	_ = c.enqueue(n)
}
