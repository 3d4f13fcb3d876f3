package config

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Cluster is the `cluster` section: this node's place in a cluster of proxy nodes
// (`switchyard proxy`: accept clients, authenticate them, forward their sessions) in
// front of router nodes (`switchyard router`: host the realms). Every node reads the
// same schema; only node, link and the listeners differ between the files of one
// cluster. The membership is static (every router is listed with the address its links
// are dialed at) or, with masters, the master's map (the node registers and follows the
// map and the cluster config versions). A file cannot know which command reads it, so
// the command checks its role with Config.ClusterRole after Validate. Plain data; see
// Config for concurrency.
type Cluster struct {
	Node         string          `json:"node" env:"SWITCHYARD_CLUSTER_NODE" doc:"This node's name, unique in the cluster: letters, digits, '.', '_' and '-', at most 64. A router's name is listed in routers, a proxy's is not. Required."`
	Link         string          `json:"link" env:"SWITCHYARD_CLUSTER_LINK" doc:"host:port this node accepts links from other nodes on. Required on a router, where it must match the router's entry in routers: the same port, and the same host or a wildcard one (\":9201\", \"0.0.0.0:9201\"). A proxy may leave it empty (it dials the routers)."`
	Secret       string          `json:"secret" secret:"true" doc:"Shared secret every node proves when a link opens; a peer that cannot is refused. At least 16 characters (switchyard init --cluster generates 32 random bytes in hex); the same on every node. Required unless tls is set."`
	Slots        int             `json:"slots" default:"4096" doc:"Hash slots. A new session goes to the router that owns the slot of its (realm, authrole); the owners follow from the router names (rendezvous hashing), so every node must use the same slots and routers. 16 to 65536."`
	LinksPerPeer int             `json:"links_per_peer" default:"2" doc:"Persistent TCP links per pair of nodes, shared by all sessions between them. 1 to 64."`
	LinkReads    string          `json:"link_reads" default:"loops" enum:"loops,goroutines" env:"SWITCHYARD_CLUSTER_LINK_READS" doc:"Who reads this node's plain TCP links: loops, the node's event loops beside its client connections (a router without listeners starts loops for them), or goroutines, one reader goroutine per link parked in Go's netpoller (the design before; cluster CPU per message 1.2-1.3x, bench/RESULTS.md 2026-12-03). TLS links always have a reader goroutine."`
	Routers      []ClusterRouter `json:"routers" doc:"Every router node of the cluster with its link address: the static membership, the same list on every node. At least one, unless masters is set (then leave it out: the map comes from the master)."`
	Masters      []string        `json:"masters" doc:"Management URLs of the cluster's master replicas (ws://host:port/ws or rs://host:port; wss/rss with TLS). With masters the membership is the master's map: the node registers there, holds a lease by heartbeat, follows the map and the cluster config versions (realms), tries the masters in turn, and keeps routing on its last map and config while none answers. A router's link is then the address it registers, so it must be one the other nodes can dial. Left out: static membership (routers)."`
	Key          string          `json:"key" secret:"true" doc:"This node's key on the masters (WAMP-CRA secret; the authid is node). Empty: the cluster secret. Only with masters."`
	TLS          *LinkTLS        `json:"tls" doc:"Mutual TLS on links: every node presents its certificate and accepts only peers whose certificate ca_file signs. Left out: plain TCP, authenticated by secret."`
}

// ClusterRouter is one router node of the static membership. Plain data.
type ClusterRouter struct {
	Name string `json:"name" doc:"The router's node name (its cluster.node). Required and unique."`
	Link string `json:"link" doc:"host:port the other nodes dial to open links to this router (a host they can reach, not a wildcard). Required and unique."`
}

// LinkTLS is the mutual TLS setup of cluster links (the shape of a listener's tls).
// Plain data.
type LinkTLS struct {
	CertFile   string `json:"cert_file" file:"true" doc:"PEM certificate chain this node presents on its links, as server and as client. Required."`
	KeyFile    string `json:"key_file" file:"true" doc:"PEM private key of the certificate. Required."`
	CAFile     string `json:"ca_file" file:"true" doc:"PEM CA certificates that sign the certificates of the cluster's nodes. Required."`
	MinVersion string `json:"min_version" default:"1.3" enum:"1.2,1.3" doc:"Lowest TLS version accepted on links."`
}

// Node roles of a cluster, as ClusterRole takes them: the command that reads the file.
const (
	RoleRouter = "router" // `switchyard router`: hosts realms, accepts links
	RoleProxy  = "proxy"  // `switchyard proxy`: accepts clients, forwards sessions to routers
)

// Bounds of the cluster settings.
const (
	MinSlots     = 16
	MaxSlots     = 65536
	MaxSpread    = 1024
	MaxNodeName  = 64
	MinSecretLen = 16
)

// ClusterRole checks that c can run as a cluster node of role (RoleRouter or
// RoleProxy): it has a cluster section, and a router's node name is listed in
// cluster.routers while a proxy's is not. `switchyard router` and `switchyard proxy`
// call it after Validate (which checks everything a file can tell on its own). The
// error reads "path: message". Safe for concurrent use as long as nobody mutates c.
func (c *Config) ClusterRole(role string) error {
	if role != RoleRouter && role != RoleProxy {
		return fmt.Errorf("unknown cluster role %q (want %s or %s)", role, RoleRouter, RoleProxy)
	}
	cl := c.Cluster
	if cl == nil {
		return fmt.Errorf("%s", Problem{"cluster", fmt.Sprintf("required by switchyard %s: this file has no cluster section (see switchyard init --cluster)", role)})
	}
	if len(cl.Masters) > 0 {
		// The master's map lists the routers: a router registers its link, which the
		// other nodes dial; a proxy needs listeners for its clients.
		switch {
		case role == RoleRouter && cl.Link == "":
			return fmt.Errorf("%s", Problem{"cluster.link", "required: a router registers its link address with the masters"})
		case role == RoleRouter && checkLinkAddr(cl.Link, true) != nil:
			return fmt.Errorf("%s", Problem{"cluster.link", fmt.Sprintf("%v (with masters a router registers this address)", checkLinkAddr(cl.Link, true))})
		case role == RoleProxy && len(c.Listeners) == 0:
			return fmt.Errorf("%s", Problem{"listeners", "no listeners: a proxy accepts its clients there"})
		}
		return nil
	}
	listed := cl.router(cl.Node) >= 0
	switch {
	case role == RoleRouter && !listed:
		return fmt.Errorf("%s", Problem{"cluster.node", fmt.Sprintf("%q is not listed in cluster.routers: switchyard router runs a listed router", cl.Node)})
	case role == RoleProxy && listed:
		return fmt.Errorf("%s", Problem{"cluster.node", fmt.Sprintf("%q is listed in cluster.routers: a proxy hosts no realm and must not be (run it with switchyard router)", cl.Node)})
	}
	return nil
}

// IsRouter reports whether this node is one of the cluster's routers (its name is
// listed in cluster.routers); false for a standalone node, and for a node following
// masters (only the command that reads the file knows its role then). Safe for
// concurrent use as long as nobody mutates c.
func (c *Config) IsRouter() bool { return c.Cluster != nil && c.Cluster.router(c.Cluster.Node) >= 0 }

// FollowsMaster reports whether the node takes its membership and cluster config from
// masters (cluster.masters is set). Safe for concurrent use as long as nobody mutates c.
func (c *Config) FollowsMaster() bool { return c.Cluster != nil && len(c.Cluster.Masters) > 0 }

// MasterKey returns the secret the node proves to the masters: cluster.key, else the
// cluster secret. Safe for concurrent use as long as nobody mutates c.
func (c *Config) MasterKey() string {
	if c.Cluster == nil {
		return ""
	}
	if c.Cluster.Key != "" {
		return c.Cluster.Key
	}
	return c.Cluster.Secret
}

// RouterNames returns the names of cluster.routers in file order (nil for a
// standalone node): the membership cluster/placement builds its map from. Safe for
// concurrent use as long as nobody mutates c.
func (c *Config) RouterNames() []string {
	if c.Cluster == nil {
		return nil
	}
	names := make([]string, len(c.Cluster.Routers))
	for i, r := range c.Cluster.Routers {
		names[i] = r.Name
	}
	return names
}

// router returns the index of the router named name in cl.Routers, or -1.
func (cl *Cluster) router(name string) int {
	return slices.IndexFunc(cl.Routers, func(r ClusterRouter) bool { return r.Name == name })
}

// SpreadOf returns the number of hash slots the sessions of authrole in realm r are
// spread over: the role's spread when it is listed with one, else the realm's; never
// less than 1. Safe for concurrent use as long as nobody mutates r.
func (r *Realm) SpreadOf(authrole string) int {
	for i := range r.Roles {
		if r.Roles[i].Name == authrole && r.Roles[i].Spread > 0 {
			return r.Roles[i].Spread
		}
	}
	return max(r.Spread, 1)
}

// SpreadOf returns the spread of authrole's sessions in the realm named realm (see
// Realm.SpreadOf); 1 for a realm c does not define. Its method value fits a
// func(realm, authrole string) int hook. Safe for concurrent use as long as nobody
// mutates c.
func (c *Config) SpreadOf(realm, authrole string) int {
	for i := range c.Realms {
		if c.Realms[i].Name == realm {
			return c.Realms[i].SpreadOf(authrole)
		}
	}
	return 1
}

// cluster checks the cluster section.
func (v *validator) cluster(cl *Cluster) {
	const p = "cluster"
	v.nodeName(p+".node", cl.Node)
	if cl.Link != "" {
		if err := checkLinkAddr(cl.Link, false); err != nil {
			v.add(p+".link", "%v", err)
		}
	}
	if cl.Secret == "" && cl.TLS == nil {
		v.add(p+".secret", "required unless tls is set: links must authenticate")
	} else if cl.Secret != "" && len(cl.Secret) < MinSecretLen {
		v.add(p+".secret", "too short: at least %d characters (e.g. 32 random bytes in hex)", MinSecretLen)
	}
	if cl.Slots < MinSlots || cl.Slots > MaxSlots {
		v.add(p+".slots", "must be from %d to %d, got %d", MinSlots, MaxSlots, cl.Slots)
	}
	if cl.LinksPerPeer < 1 || cl.LinksPerPeer > 64 {
		v.add(p+".links_per_peer", "must be from 1 to 64, got %d", cl.LinksPerPeer)
	}
	switch {
	case len(cl.Routers) == 0 && len(cl.Masters) == 0:
		v.add(p+".routers", "at least one router (or masters): sessions need a router to live on")
	case len(cl.Routers) > 0 && len(cl.Masters) > 0:
		v.add(p+".routers", "leave it out with masters: the membership is the master's map")
	}
	v.masters(cl)
	names, links := map[string]int{}, map[string]int{}
	for i, r := range cl.Routers {
		rp := fmt.Sprintf("%s.routers[%d]", p, i)
		v.nodeName(rp+".name", r.Name)
		if j, dup := names[r.Name]; dup && r.Name != "" {
			v.add(rp+".name", "router %q is also routers[%d]", r.Name, j)
		} else {
			names[r.Name] = i
		}
		if r.Link == "" {
			v.add(rp+".link", "required")
			continue
		}
		if err := checkLinkAddr(r.Link, true); err != nil {
			v.add(rp+".link", "%v", err)
		} else if j, dup := links[r.Link]; dup {
			v.add(rp+".link", "%q is also the link of routers[%d]", r.Link, j)
		} else {
			links[r.Link] = i
		}
	}
	// A listed router listens where the others dial it.
	if i := cl.router(cl.Node); i >= 0 && cl.Node != "" {
		entry := cl.Routers[i].Link
		switch {
		case cl.Link == "":
			v.add(p+".link", "required: this node is routers[%d] (link %s) and accepts links", i, entry)
		case checkLinkAddr(cl.Link, false) == nil && checkLinkAddr(entry, true) == nil && !linkMatches(cl.Link, entry):
			v.add(p+".link", "%q does not match this node's entry routers[%d].link %q (same port, same or wildcard host)", cl.Link, i, entry)
		}
	}
	if t := cl.TLS; t != nil {
		v.keyPair(t.CertFile, t.KeyFile, p+".tls.cert_file", p+".tls.key_file")
		if v.readable(t.CAFile, p+".tls.ca_file") {
			v.caFile(t.CAFile, p+".tls.ca_file")
		}
	}
}

// masters checks cluster.masters and cluster.key.
func (v *validator) masters(cl *Cluster) {
	const p = "cluster"
	seen := map[string]int{}
	for i, m := range cl.Masters {
		mp := fmt.Sprintf("%s.masters[%d]", p, i)
		u, err := url.Parse(m)
		switch {
		case m == "":
			v.add(mp, "required")
		case err != nil:
			v.add(mp, "%q is not a URL: %v", m, err)
		case !slices.Contains([]string{"ws", "wss", "rs", "rss", "tcp", "tcps"}, u.Scheme):
			v.add(mp, "%q: scheme %q is not ws, wss, rs, rss, tcp or tcps (e.g. ws://10.0.0.9:9300/ws)", m, u.Scheme)
		case u.Hostname() == "" || u.Port() == "":
			v.add(mp, "%q: give the master's host and port (e.g. ws://10.0.0.9:9300/ws)", m)
		default:
			if j, dup := seen[m]; dup {
				v.add(mp, "%q is also masters[%d]", m, j)
			}
			seen[m] = i
		}
	}
	if cl.Key != "" && len(cl.Masters) == 0 {
		v.add(p+".key", "only with masters: it is this node's key on the masters")
	} else if cl.Key != "" && len(cl.Key) < MinSecretLen {
		v.add(p+".key", "too short: at least %d characters", MinSecretLen)
	}
	if len(cl.Masters) > 0 && cl.Key == "" && cl.Secret == "" {
		v.add(p+".key", "required with masters when there is no secret: the node proves it to the masters")
	}
}

// nodeName checks a cluster node name.
func (v *validator) nodeName(p, name string) {
	switch {
	case name == "":
		v.add(p, "required")
	case len(name) > MaxNodeName:
		v.add(p, "%q is longer than %d bytes", name, MaxNodeName)
	case strings.ContainsFunc(name, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-')
	}):
		v.add(p, "%q: a node name has only letters, digits, '.', '_' and '-'", name)
	}
}

// spread checks the spread of realm r (at p) and of its roles.
func (v *validator) spread(r *Realm, p string) {
	limit, why := MaxSpread, ""
	if cl := v.c.Cluster; cl != nil && cl.Slots >= MinSlots && cl.Slots < limit {
		limit, why = cl.Slots, " (cluster.slots)"
	}
	check := func(path string, n int) {
		if n < 0 || n > limit {
			v.add(path, "must be from 0 to %d%s, got %d", limit, why, n)
		}
	}
	check(p+".spread", r.Spread)
	for i := range r.Roles {
		check(fmt.Sprintf("%s.roles[%d].spread", p, i), r.Roles[i].Spread)
	}
}

// checkLinkAddr checks a link address: host:port with a port from 1 to 65535. A dial
// address (a routers entry) also needs a host other nodes can reach: not empty and not
// a wildcard.
func checkLinkAddr(addr string, dial bool) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port (e.g. \"10.0.0.5:9201\", \"[::1]:9201\")", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q: port %q is not a number from 1 to 65535", addr, port)
	}
	if dial && wildcardHost(host) {
		return fmt.Errorf("%q: other nodes dial this address: give a host they can reach, not a wildcard", addr)
	}
	return nil
}

func wildcardHost(host string) bool {
	if host == "" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsUnspecified()
}

// linkMatches reports whether a router listening on listen can be reached at its entry
// address dial: the same port, and the same host or a wildcard listen host.
func linkMatches(listen, dial string) bool {
	lh, lp, _ := net.SplitHostPort(listen)
	dh, dp, _ := net.SplitHostPort(dial)
	if lp != dp {
		return false
	}
	if wildcardHost(lh) || strings.EqualFold(lh, dh) {
		return true
	}
	l, d := net.ParseIP(lh), net.ParseIP(dh)
	return l != nil && d != nil && l.Equal(d)
}
