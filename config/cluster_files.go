package config

import (
	"fmt"
	"maps"
	"slices"
)

// CompareClusterFiles checks that the configurations of one cluster's nodes (names[i]
// is the file of cfgs[i], every one with a cluster section) agree on what the nodes
// compute placement and links from: unique node names, and the same secret, slots,
// links_per_peer, routers (names and links; order does not matter), masters (order does
// not matter), link TLS on or off,
// and spread of every realm and role they both define. Each problem's path is the field
// in the second file of the pair that differs, and its message names both files; a
// secret is never printed. Safe for concurrent use as long as nobody mutates cfgs.
func CompareClusterFiles(names []string, cfgs []*Config) []Problem {
	var out []Problem
	add := func(path, format string, args ...any) {
		out = append(out, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
	}
	nodes := map[string]int{}
	for i, c := range cfgs {
		cl := c.Cluster
		if j, dup := nodes[cl.Node]; dup {
			add("cluster.node", "%s and %s both name this node %q: node names are unique in a cluster", names[j], names[i], cl.Node)
		} else {
			nodes[cl.Node] = i
		}
		if i == 0 {
			continue
		}
		ref, rn, n := cfgs[0].Cluster, names[0], names[i]
		if cl.Secret != ref.Secret {
			add("cluster.secret", "%s's differs from %s's: the nodes could not authenticate each other's links", n, rn)
		}
		if cl.Slots != ref.Slots {
			add("cluster.slots", "%d in %s, %d in %s: the nodes would place sessions differently", cl.Slots, n, ref.Slots, rn)
		}
		if cl.LinksPerPeer != ref.LinksPerPeer {
			add("cluster.links_per_peer", "%d in %s, %d in %s", cl.LinksPerPeer, n, ref.LinksPerPeer, rn)
		}
		if (cl.TLS == nil) != (ref.TLS == nil) {
			add("cluster.tls", "set in only one of %s and %s: their links could not connect", n, rn)
		}
		if a, b := routerSet(cl), routerSet(ref); !maps.Equal(a, b) {
			add("cluster.routers", "%s lists %v, %s lists %v: the nodes would place sessions differently", n, sortedRouters(a), rn, sortedRouters(b))
		}
		if a, b := sortedMasters(cl), sortedMasters(ref); !slices.Equal(a, b) {
			add("cluster.masters", "%s names %v, %s names %v: the nodes would follow different maps", n, a, rn, b)
		}
		for ri := range c.Realms {
			r := &c.Realms[ri]
			k := slices.IndexFunc(cfgs[0].Realms, func(x Realm) bool { return x.Name == r.Name })
			if k < 0 {
				continue
			}
			other := &cfgs[0].Realms[k]
			roles := []string{""} // "": a role listed in neither (the realm's spread)
			for _, x := range append(slices.Clone(r.Roles), other.Roles...) {
				if !slices.Contains(roles, x.Name) {
					roles = append(roles, x.Name)
				}
			}
			for _, role := range roles {
				if s, t := r.SpreadOf(role), other.SpreadOf(role); s != t {
					path := fmt.Sprintf("realms[%d].spread", ri)
					if j := slices.IndexFunc(r.Roles, func(x Role) bool { return x.Name == role }); role != "" && j >= 0 {
						path = fmt.Sprintf("realms[%d].roles[%d].spread", ri, j)
					}
					add(path, "realm %s, authrole %q: spread %d in %s, %d in %s: the nodes would place sessions differently", r.Name, role, s, n, t, rn)
				}
			}
		}
	}
	return out
}

func routerSet(cl *Cluster) map[string]string {
	m := make(map[string]string, len(cl.Routers))
	for _, r := range cl.Routers {
		m[r.Name] = r.Link
	}
	return m
}

func sortedRouters(m map[string]string) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, k+"="+m[k])
	}
	return out
}

// sortedMasters is cl.Masters sorted.
func sortedMasters(cl *Cluster) []string {
	m := slices.Clone(cl.Masters)
	slices.Sort(m)
	return m
}
