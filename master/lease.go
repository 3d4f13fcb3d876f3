package master

import (
	"time"

	"github.com/hashicorp/raft"
)

// lease is a node's lease as the leader tracks it (never replicated).
type lease struct {
	epoch   uint64    // raft index of the registration it belongs to
	renewed time.Time // last register or heartbeat (or the grace grant)
	expires time.Time
	hb      HeartbeatReq // last report
}

// watchLeadership follows Raft's leadership changes: every change starts the leases
// afresh, so a new leader gives every live node a full grace lease.
func (s *Server) watchLeadership() {
	defer s.wg.Done()
	for {
		select {
		case <-s.stop:
			return
		case lead := <-s.notify:
			s.leading.Store(false)
			s.mu.Lock()
			clear(s.leases)
			s.mu.Unlock()
			if !lead {
				s.log.Info("master: this replica is no longer the leader")
				continue
			}
			// Serve as leader once the state holds every committed entry.
			if err := s.rn.r.Barrier(applyTimeout).Error(); err != nil {
				s.log.Warn("master: leader barrier failed", "err", err)
				continue
			}
			if s.rn.r.State() == raft.Leader {
				s.leading.Store(true)
				s.log.Info("master: this replica is the leader")
			}
		}
	}
}

// expireLoop, on the leader, expires the nodes whose lease ran out (one Raft write per
// round, naming each lease's registration), gives live nodes without a lease (known
// from an earlier leader) a grace lease, and removes from the registry the nodes gone
// (expired or left) longer than ForgetAfter, which frees a router's tag.
func (s *Server) expireLoop() {
	defer s.wg.Done()
	tick := time.NewTicker(max(min(s.cfg.Lease/20, 250*time.Millisecond), 10*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-tick.C:
		}
		if !s.isLeader() {
			continue
		}
		now := time.Now()
		var gone []expireEntry
		var forget []string
		s.mu.Lock()
		for _, n := range s.fsm.nodes() {
			if n.State != StateLive {
				if now.Sub(time.UnixMilli(n.Since)) > s.cfg.ForgetAfter {
					forget = append(forget, n.Node)
				}
				continue
			}
			l := s.leases[n.Node]
			switch {
			case l == nil || l.epoch < n.Epoch:
				s.leases[n.Node] = &lease{epoch: n.Epoch, renewed: now, expires: now.Add(s.cfg.Lease)}
			case l.epoch == n.Epoch && !now.Before(l.expires):
				gone = append(gone, expireEntry{Node: n.Node, Epoch: n.Epoch})
			}
		}
		s.mu.Unlock()
		for _, name := range forget {
			if _, _, err := s.write(command{Kind: cmdForget, Node: name}); err != nil {
				s.log.Warn("master: forgetting a node failed", "node", name, "err", err)
				break
			}
			s.log.Info("master: node forgotten (gone longer than forget_after)", "node", name)
		}
		if len(gone) == 0 {
			continue
		}
		if _, _, err := s.write(command{Kind: cmdExpire, Expire: gone}); err != nil {
			s.log.Warn("master: expiring leases failed", "nodes", len(gone), "err", err)
			continue
		}
		for _, g := range gone {
			s.log.Warn("master: node lease expired", "node", g.Node)
		}
	}
}
