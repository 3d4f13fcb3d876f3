package netpoll

import "time"

// tickLoop is the server's ticker goroutine: every tick it runs onTick until the
// server has stopped.
func (s *Server) tickLoop() {
	defer close(s.tickDone)
	t := time.NewTicker(s.tick)
	defer t.Stop()
	for range t.C {
		if s.stopped.Load() {
			return
		}
		s.onTick()
	}
}

// onTick runs on the ticker goroutine (not on an event loop): it refreshes the coarse
// clock, wakes closing conns that wait for their socket backlog to drain, has conns
// over the soft outbound limit for WriteDeadline measured again, every sweepEvery walks
// all conns for keepalive and handshake timeouts, and checks that the event loops still
// run (checkEngine). Everything it touches on a Conn is atomic or goes through the
// concurrency-safe connIO calls.
func (s *Server) onTick() {
	now := time.Now().UnixNano()
	s.clock.Store(now)
	s.flushing.Range(func(c *Conn, _ int64) bool {
		c.wake()
		return true
	})
	s.checkOverLimit(now)
	if now-s.lastSweep >= int64(s.sweepEvery) {
		s.lastSweep = now
		s.sweep(now)
	}
	s.checkEngine()
}

// sweep pings idle conns, closes conns whose ping went unanswered for PingTimeout and
// conns that did not finish their handshakes within HandshakeTimeout (each listener's
// own settings; the WAMP handshake too with Config.AwaitSession).
func (s *Server) sweep(now int64) {
	await := s.cfg.AwaitSession
	s.conns.Range(func(c *Conn, _ struct{}) bool {
		interval, timeout := int64(c.ln.PingInterval), int64(c.ln.PingTimeout)
		if c.state.Load() != stActive {
			return true
		}
		if open := c.isOpen.Load(); !open || await && !c.established.Load() {
			if now-c.born >= int64(c.ln.HandshakeTimeout) && c.reason.CompareAndSwap(reasonNone, reasonHandshakeTimeout) {
				s.hsTimeouts.Add(1)
				if s.infoOK("handshake timeout", c.remote) {
					stage := "transport"
					if open {
						stage = "wamp session"
					}
					s.log.Info("netpoll: handshake timeout, closing", "remote", c.remote.String(),
						"listener", c.ln.Name, "stage", stage, "age", time.Duration(now-c.born))
				}
				_ = c.gc.Close()
			}
			if !open {
				return true
			}
		}
		if p := c.pingAt.Load(); p != 0 {
			if now-p >= timeout && c.reason.CompareAndSwap(reasonNone, reasonPingTimeout) {
				if s.infoOK("ping timeout", c.remote) {
					s.log.Info("netpoll: ping timeout, closing", "remote", c.remote.String(),
						"transport", c.transport, "timeout", c.ln.PingTimeout)
				}
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
