package master

import (
	"net"
	"slices"
	"time"

	"github.com/hashicorp/raft"

	"github.com/switchyard-wamp/switchyard/cluster/placement"
)

// LeaderURL returns the leader's management URL ("" during an election or when the
// leader is not in the peers list). Safe for concurrent use.
func (s *Server) LeaderURL() string {
	_, id := s.rn.r.LeaderWithID()
	if id == "" {
		return ""
	}
	if string(id) == s.cfg.Name {
		return s.url
	}
	for _, p := range s.cfg.Peers {
		if p.Name == string(id) {
			return p.URL
		}
	}
	return ""
}

// Map returns the current map. Safe for concurrent use.
func (s *Server) Map() Map { return s.fsm.Map() }

// Status returns the cluster as this replica sees it; lease ages, loads and versions
// per node are known to the leader only (elsewhere LeaseAgeMS is -1). Safe for
// concurrent use.
func (s *Server) Status() Status {
	_, leader := s.rn.r.LeaderWithID()
	mapV, cfgV := s.fsm.Versions()
	m := s.fsm.Map()
	names := make([]string, len(m.Routers))
	for i, r := range m.Routers {
		names[i] = r.Name
	}
	pm := placement.New(m.Slots, names)
	st := Status{Replica: s.cfg.Name, Leader: string(leader), MapVersion: mapV,
		ConfigVersion: cfgV, Slots: m.Slots, Masters: s.masters(string(leader)), Nodes: []NodeInfo{}}
	now := time.Now()
	isLeader := s.isLeader()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range s.fsm.nodes() {
		ni := NodeInfo{Node: n.Node, Role: n.Role, Link: n.Link, Admin: n.Admin, State: n.State, LeaseAgeMS: -1}
		if l := s.leases[n.Node]; isLeader && l != nil && n.State == StateLive {
			ni.LeaseAgeMS = now.Sub(l.renewed).Milliseconds()
			ni.Sessions, ni.LinksUp = l.hb.Sessions, l.hb.LinksUp
			ni.MessagesIn, ni.MessagesOut = l.hb.MessagesIn, l.hb.MessagesOut
			ni.MapVersion, ni.ConfigVersion = l.hb.MapVersion, l.hb.ConfigVersion
		}
		if n.Role == NodeRouter && n.State == StateLive && len(names) > 0 {
			ni.Slots = pm.SlotsOf(n.Node)
		}
		st.Nodes = append(st.Nodes, ni)
	}
	return st
}

// masters lists the replicas of the Raft configuration: this one with its own Raft
// state, the others as leader, follower, or unreachable when their Raft port does not
// answer a TCP dial.
func (s *Server) masters(leader string) []MasterInfo {
	var out []MasterInfo
	cf := s.rn.r.GetConfiguration()
	if cf.Error() != nil {
		return nil
	}
	for _, sv := range cf.Configuration().Servers {
		mi := MasterInfo{Name: string(sv.ID), Raft: string(sv.Address)}
		for _, p := range s.cfg.Peers {
			if p.Name == mi.Name {
				mi.URL = p.URL
			}
		}
		switch {
		case mi.Name == s.cfg.Name:
			mi.URL, mi.State = s.url, stateName(s.rn.r.State())
		case mi.Name == leader:
			mi.State = "leader"
		default:
			mi.State = "follower"
			c, err := net.DialTimeout("tcp", mi.Raft, 300*time.Millisecond)
			if err != nil {
				mi.State = "unreachable"
			} else {
				c.Close()
			}
		}
		out = append(out, mi)
	}
	slices.SortFunc(out, func(a, b MasterInfo) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return out
}

func stateName(st raft.RaftState) string {
	switch st {
	case raft.Leader:
		return "leader"
	case raft.Candidate:
		return "candidate"
	case raft.Follower:
		return "follower"
	}
	return "unreachable"
}
