package config

import (
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Master is the `master` section: this process is a replica of the cluster's master
// (`switchyard master --config FILE`), the control plane that keeps the node registry,
// the slot map and the cluster config in Raft and serves them to the nodes on a WAMP
// management realm. One replica by default; three (listed in peers) survive the loss
// of one. The rest of the file (node: log level, admin listener) applies as to any
// node; listeners and realms are not served by a master. Plain data; see Config for
// concurrency.
type Master struct {
	Node        string       `json:"node" env:"SWITCHYARD_MASTER_NODE" doc:"This replica's name, unique among the replicas (letters, digits, '.', '_' and '-'). Required."`
	Listen      string       `json:"listen" default:"127.0.0.1:9300" env:"SWITCHYARD_MASTER_LISTEN" doc:"host:port of the management endpoint nodes and switchyard cluster connect to: WebSocket at ws://listen/ws and RawSocket on the same port."`
	Raft        string       `json:"raft" default:"127.0.0.1:9301" env:"SWITCHYARD_MASTER_RAFT" doc:"host:port of the Raft transport between replicas; with peers, the address the other replicas dial (this replica's peers entry)."`
	DataDir     string       `json:"data_dir" file:"true" env:"SWITCHYARD_MASTER_DATA_DIR" doc:"Directory of the Raft log, stable store and snapshots; created if missing. A restarted replica recovers its state from it. Required; one directory per replica."`
	Peers       []MasterPeer `json:"peers" doc:"Every replica, this one included, the same list in each replica's file. Left out: a single replica. A data_dir that already holds state keeps the membership it recorded."`
	Lease       Duration     `json:"lease" default:"4s" doc:"A node's lease: a node that has not heartbeat for this long leaves the map (nodes heartbeat every third of it). At least 100ms."`
	Slots       int          `json:"slots" default:"4096" doc:"Hash slots of the map the master hands out (the nodes' cluster.slots must match). 16 to 65536."`
	ForgetAfter Duration     `json:"forget_after" default:"24h" doc:"How long a node that expired or left stays in the registry (and in switchyard cluster status); a router keeps its tag meanwhile, so one that comes back within it has the same tag. At least 1s."`
	RaftTimeout Duration     `json:"raft_timeout" default:"1s" doc:"Raft's heartbeat and election timeout (the leader lease is half of it): a follower that hears nothing from the leader this long starts an election, so a new leader serves writes about 1.5 to 3 times this after the old one dies. The same on every replica; at least 50ms. Lower it on a fast, lightly loaded network; too low for the machines' scheduling stalls makes the leadership move needlessly (a leader steps down when it cannot reach a majority within half of it). Raise it over slow links."`
	Secret      string       `json:"secret" secret:"true" env:"SWITCHYARD_MASTER_SECRET" doc:"Cluster secret: a node (authid = its node name) may authenticate with it (WAMP-CRA), unless node_keys lists it. At least 16 characters. Required unless node_keys is set."`
	NodeKeys    []NodeKey    `json:"node_keys" doc:"Per-node keys: a node listed here must authenticate with its key, never the secret."`
	OperatorKey string       `json:"operator_key" secret:"true" env:"SWITCHYARD_MASTER_OPERATOR_KEY" doc:"Key of switchyard cluster status/apply (authid operator). Empty: the cluster secret."`
}

// MasterPeer is one master replica as the others reach it. Plain data.
type MasterPeer struct {
	Name string `json:"name" doc:"The replica's master.node. Required and unique."`
	Raft string `json:"raft" doc:"Its Raft address (its master.raft): a host the other replicas can reach. Required and unique."`
	URL  string `json:"url" doc:"Its management URL as nodes reach it (ws://host:port/ws or rs://host:port), given to nodes that asked a follower for a write. Required."`
}

// NodeKey is one node's own key on the management realm. Plain data.
type NodeKey struct {
	Node string `json:"node" doc:"The node's name (its cluster.node). Required and unique."`
	Key  string `json:"key" secret:"true" doc:"Its key (WAMP-CRA secret). At least 16 characters. Required."`
}

// Bounds of the master settings.
const (
	MinMasterLeaseMS = 100
	MaxMasterPeers   = 7
)

// master checks the master section.
func (v *validator) master(m *Master) {
	const p = "master"
	v.nodeName(p+".node", m.Node)
	if m.Node == "operator" {
		v.add(p+".node", "%q is the operator's authid", m.Node)
	}
	if err := checkHostPort(m.Listen); err != nil {
		v.add(p+".listen", "%v", err)
	}
	if err := checkHostPort(m.Raft); err != nil {
		v.add(p+".raft", "%v", err)
	}
	if m.DataDir == "" {
		v.add(p+".data_dir", "required: the replica's Raft state lives there")
	}
	if time.Duration(m.Lease).Milliseconds() < MinMasterLeaseMS {
		v.add(p+".lease", "at least %dms, got %s", MinMasterLeaseMS, m.Lease)
	}
	if time.Duration(m.ForgetAfter) < time.Second {
		v.add(p+".forget_after", "at least 1s, got %s", m.ForgetAfter)
	}
	if time.Duration(m.RaftTimeout) < 50*time.Millisecond {
		v.add(p+".raft_timeout", "at least 50ms, got %s", m.RaftTimeout)
	}
	if m.Slots < MinSlots || m.Slots > MaxSlots {
		v.add(p+".slots", "must be from %d to %d, got %d", MinSlots, MaxSlots, m.Slots)
	}
	switch {
	case m.Secret == "" && len(m.NodeKeys) == 0:
		v.add(p+".secret", "required unless node_keys is set: nodes must authenticate")
	case m.Secret != "" && len(m.Secret) < MinSecretLen:
		v.add(p+".secret", "too short: at least %d characters", MinSecretLen)
	}
	if m.Secret == "" && m.OperatorKey == "" {
		v.add(p+".operator_key", "required without a secret: switchyard cluster must authenticate")
	} else if m.OperatorKey != "" && len(m.OperatorKey) < MinSecretLen {
		v.add(p+".operator_key", "too short: at least %d characters", MinSecretLen)
	}
	keyed := map[string]int{}
	for i, k := range m.NodeKeys {
		kp := fmt.Sprintf("%s.node_keys[%d]", p, i)
		v.nodeName(kp+".node", k.Node)
		if j, dup := keyed[k.Node]; dup && k.Node != "" {
			v.add(kp+".node", "node %q is also node_keys[%d]", k.Node, j)
		} else {
			keyed[k.Node] = i
		}
		if len(k.Key) < MinSecretLen {
			v.add(kp+".key", "at least %d characters", MinSecretLen)
		}
	}
	if len(m.Peers) == 0 {
		return
	}
	if len(m.Peers) > MaxMasterPeers {
		v.add(p+".peers", "at most %d replicas, got %d", MaxMasterPeers, len(m.Peers))
	}
	names, rafts := map[string]int{}, map[string]int{}
	self := -1
	for i, pe := range m.Peers {
		pp := fmt.Sprintf("%s.peers[%d]", p, i)
		v.nodeName(pp+".name", pe.Name)
		if j, dup := names[pe.Name]; dup && pe.Name != "" {
			v.add(pp+".name", "replica %q is also peers[%d]", pe.Name, j)
		} else {
			names[pe.Name] = i
		}
		if pe.Name == m.Node {
			self = i
		}
		if err := checkLinkAddr(pe.Raft, true); err != nil {
			v.add(pp+".raft", "%v", err)
		} else if j, dup := rafts[pe.Raft]; dup {
			v.add(pp+".raft", "%q is also the raft address of peers[%d]", pe.Raft, j)
		} else {
			rafts[pe.Raft] = i
		}
		if u, err := url.Parse(pe.URL); err != nil || u.Host == "" ||
			!strings.Contains(" ws wss rs rss tcp tcps ", " "+u.Scheme+" ") {
			v.add(pp+".url", "%q is not a management URL (ws://host:port/ws or rs://host:port)", pe.URL)
		}
	}
	if self < 0 {
		v.add(p+".peers", "this replica (master.node %q) is not listed", m.Node)
	} else if checkLinkAddr(m.Raft, false) == nil && checkLinkAddr(m.Peers[self].Raft, true) == nil &&
		!linkMatches(m.Raft, m.Peers[self].Raft) {
		v.add(p+".raft", "%q does not match this replica's entry peers[%d].raft %q (same port, same or wildcard host)",
			m.Raft, self, m.Peers[self].Raft)
	}
}
