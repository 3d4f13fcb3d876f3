// Package master is the cluster's control plane: the node registry, the slot map and the
// cluster config, replicated with Raft (hashicorp/raft, raft-boltdb/v2 storage). It is
// never in the data path: nodes keep routing on their last map and config while no
// master answers.
//
// This file is the control protocol, shared by the master (which serves it) and the
// nodes (which call it through the client package): WAMP on the management realm Realm,
// which every master replica serves on its `master.listen` endpoint. A node joins with
// WAMP-CRA, authid = its node name, secret = its per-node key or else the cluster secret;
// an operator (switchyard cluster status/apply) joins with authid "operator" and the
// operator key or the cluster secret, and gets authrole RoleOperator. Every procedure
// takes and returns keyword arguments whose JSON names are the struct tags below; the
// types are the Go shape of those dicts. docs/cluster.md ("The master") describes it for
// people.
package master

// Realm is the management realm every master replica serves.
const Realm = "switchyard.cluster"

// Auth roles on the management realm.
const (
	RoleNode     = "node"     // a proxy or router node: register, heartbeat, read
	RoleOperator = "operator" // switchyard cluster status / apply: read, apply
)

// Procedures of the control protocol (keyword arguments in, keyword arguments out).
const (
	// ProcRegister: RegisterReq -> RegisterRes. A node (re-)registers: it holds a
	// lease from then on. A write: served by the leader (see ErrNotLeader).
	ProcRegister = "switchyard.master.register"
	// ProcHeartbeat: HeartbeatReq -> HeartbeatRes. Renews the lease; the answer names
	// the current map and config versions so the node fetches what changed. Answered
	// by the leader; ErrNotRegistered asks the node to register again (e.g. after a
	// failover or its lease expired).
	ProcHeartbeat = "switchyard.master.heartbeat"
	// ProcLeave: LeaveReq -> {}. A node leaving on purpose (SIGTERM, drain) leaves the
	// map at once instead of at lease expiry. A write.
	ProcLeave = "switchyard.master.leave"
	// ProcGetMap: {} -> Map. Served by any replica from its replicated state.
	ProcGetMap = "switchyard.master.get_map"
	// ProcGetConfig: {} -> ConfigVersion. Served by any replica.
	ProcGetConfig = "switchyard.master.get_config"
	// ProcApply: ApplyReq -> ApplyRes. Operator only: validates the config (the
	// checks of `switchyard check`) and makes it the next version. A write.
	ProcApply = "switchyard.master.apply"
	// ProcStatus: {} -> Status. Operator and node: the cluster as this replica sees it.
	ProcStatus = "switchyard.master.status"
)

// Topics the master publishes on the management realm when a version changes (a hint:
// nodes also learn versions from heartbeat answers, so a missed event costs at most one
// heartbeat interval).
const (
	TopicMap    = "switchyard.master.on_map"    // kwargs {"version": N}
	TopicConfig = "switchyard.master.on_config" // kwargs {"version": N}
)

// Error URIs of the control protocol.
const (
	// ErrNotLeader: this replica is not the Raft leader; kwargs {"leader": URL} names
	// the leader's management endpoint when known ("" during an election). The node
	// retries there (or at the next master) after a short pause.
	ErrNotLeader = "switchyard.error.not_leader"
	// ErrNotRegistered: heartbeat from a node without a lease: register again.
	ErrNotRegistered = "switchyard.error.not_registered"
	// ErrInvalidConfig: apply refused; args[0] is the validation report.
	ErrInvalidConfig = "switchyard.error.invalid_config"
)

// Node roles in the registry.
const (
	NodeRouter = "router"
	NodeProxy  = "proxy"
)

// RegisterReq is what a node says about itself when it registers.
type RegisterReq struct {
	Node    string `json:"node"`    // node name (cluster.node); must equal the authid
	Role    string `json:"role"`    // NodeRouter or NodeProxy
	Link    string `json:"link"`    // a router's link address other nodes dial ("" on a proxy)
	Admin   string `json:"admin"`   // its admin listener address, for status ("" if none)
	Version string `json:"version"` // build version of the binary
}

// RegisterRes grants the lease.
type RegisterRes struct {
	LeaseMS       int64 `json:"lease_ms"`       // heartbeat at least every LeaseMS/3
	Map           Map   `json:"map"`            // the current slot map (with this router in it, if one)
	ConfigVersion int64 `json:"config_version"` // fetch with ProcGetConfig when newer than held
}

// HeartbeatReq renews a lease and reports load.
type HeartbeatReq struct {
	Node          string `json:"node"`
	Sessions      int    `json:"sessions"`       // sessions on this node
	LinksUp       int    `json:"links_up"`       // cluster links up
	MessagesIn    uint64 `json:"messages_in"`    // WAMP messages (a router: link frames) received since start
	MessagesOut   uint64 `json:"messages_out"`   // and sent
	MapVersion    int64  `json:"map_version"`    // the map version the node routes by
	ConfigVersion int64  `json:"config_version"` // the config version it runs
}

// HeartbeatRes tells the node which versions are current.
type HeartbeatRes struct {
	MapVersion    int64 `json:"map_version"`
	ConfigVersion int64 `json:"config_version"`
}

// LeaveReq names the node leaving.
type LeaveReq struct {
	Node string `json:"node"`
}

// Map is the membership the slot map follows: the live routers. Every node computes
// slot owners from it with cluster/placement (rendezvous over the router names), so
// the map is small and a change moves only the slots it must.
type Map struct {
	Version int64       `json:"version"` // raises with every membership change
	Slots   int         `json:"slots"`   // number of hash slots (cluster.slots)
	Routers []MapRouter `json:"routers"` // sorted by name
}

// MapRouter is one live router in the map.
type MapRouter struct {
	Name string `json:"name"`
	Link string `json:"link"`
	// Tag is the router's stable small number (1..63), given at its first registration
	// and kept while it is known: its INVOCATION id tag and interest bit in the
	// realm-spanning protocol (span), which must not change or collide while it runs.
	Tag int `json:"tag"`
}

// ConfigVersion is a versioned cluster config: the shared part every node applies
// (realms with their roles, permissions and principals), as the JSON form of the
// config file's keys (the same schema `switchyard check` validates).
type ConfigVersion struct {
	Version int64          `json:"version"`
	Config  map[string]any `json:"config"`
}

// ApplyReq carries a config to make the next version.
type ApplyReq struct {
	Config map[string]any `json:"config"`
}

// ApplyRes names the version it became.
type ApplyRes struct {
	Version int64 `json:"version"`
}

// Status is the cluster as one master replica sees it (switchyard cluster status).
type Status struct {
	Replica       string       `json:"replica"` // the answering replica's name
	Leader        string       `json:"leader"`  // the Raft leader's name ("" during an election)
	Masters       []MasterInfo `json:"masters"`
	MapVersion    int64        `json:"map_version"`
	ConfigVersion int64        `json:"config_version"`
	Slots         int          `json:"slots"`
	Nodes         []NodeInfo   `json:"nodes"`
}

// MasterInfo is one master replica.
type MasterInfo struct {
	Name  string `json:"name"`
	Raft  string `json:"raft"`  // raft address
	URL   string `json:"url"`   // management endpoint
	State string `json:"state"` // leader, follower, candidate, unreachable
}

// NodeInfo is one registered node as the leader tracks it.
type NodeInfo struct {
	Node          string `json:"node"`
	Role          string `json:"role"`
	Link          string `json:"link,omitempty"`
	Admin         string `json:"admin,omitempty"`
	State         string `json:"state"` // live, expired, left
	LeaseAgeMS    int64  `json:"lease_age_ms"`
	Sessions      int    `json:"sessions"`
	Slots         int    `json:"slots"` // slots owned (routers)
	LinksUp       int    `json:"links_up"`
	MessagesIn    uint64 `json:"messages_in"` // from its last heartbeat (rates: the cluster page)
	MessagesOut   uint64 `json:"messages_out"`
	MapVersion    int64  `json:"map_version"`
	ConfigVersion int64  `json:"config_version"`
}
