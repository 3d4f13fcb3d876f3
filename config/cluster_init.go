package config

import (
	"bytes"
	_ "embed"
	"fmt"
	"strings"
	"text/template"
)

// clusterInitSource is the template of every file `switchyard init --cluster` writes.
//
//go:embed cluster_init.yaml
var clusterInitSource string

var clusterInitTemplate = template.Must(template.New("cluster_init.yaml").Parse(clusterInitSource))

// clusterInitMasterSource is the template of the master replicas' files.
//
//go:embed cluster_init_master.yaml
var clusterInitMasterSource string

var clusterInitMasterTemplate = template.Must(template.New("cluster_init_master.yaml").Parse(clusterInitMasterSource))

// NamedFile is a file to write: a name (no directory) and its content.
type NamedFile struct {
	Name string
	Data []byte
}

// ClusterSecretEnv is the secret reference ClusterInitFiles writes when given no secret.
const ClusterSecretEnv = "${env:SWITCHYARD_CLUSTER_SECRET}"

// The local example cluster of `switchyard init --cluster`.
var (
	exampleProxies = []struct{ Name, Listen string }{{"proxy1", "127.0.0.1:8080"}, {"proxy2", "127.0.0.1:8090"}}
	exampleRouters = []ClusterRouter{{"router1", "127.0.0.1:9201"}, {"router2", "127.0.0.1:9202"}, {"router3", "127.0.0.1:9203"}}
)

// ClusterInitFiles returns the commented files of the local example cluster `switchyard
// init --cluster` writes: proxy1.yaml and proxy2.yaml (universal client listeners on
// 127.0.0.1:8080 and 127.0.0.1:8090), router1.yaml .. router3.yaml (links on
// 127.0.0.1:9201 .. 9203, no client listeners), all sharing secret (empty: the reference
// ClusterSecretEnv) and realm1, whose anonymous sessions spread over the three routers.
// Each file validates and passes ClusterRole for its role. Safe for concurrent use.
func ClusterInitFiles(secret string) []NamedFile { return ClusterInitFilesMasters(secret, 0) }

// ExampleMasters returns the replicas of the local example cluster with n masters:
// master1 .. masterN, management on 127.0.0.1:9300, 9310, 9320 .. and Raft on the port
// after each. Safe for concurrent use.
func ExampleMasters(n int) []MasterPeer {
	var out []MasterPeer
	for i := range n {
		listen := fmt.Sprintf("127.0.0.1:%d", 9300+10*i)
		out = append(out, MasterPeer{Name: fmt.Sprintf("master%d", i+1), Raft: fmt.Sprintf("127.0.0.1:%d", 9301+10*i),
			URL: "ws://" + listen + "/ws"})
	}
	return out
}

// ClusterInitFilesMasters is ClusterInitFiles with masters master replicas (0: the
// static membership of ClusterInitFiles): master1.yaml .. (listed first; see
// ExampleMasters), and nodes that name the masters in cluster.masters instead of
// listing the routers. Every file validates (the nodes' also pass ClusterRole). Safe
// for concurrent use.
func ClusterInitFilesMasters(secret string, masters int) []NamedFile {
	if secret == "" {
		secret = ClusterSecretEnv
	}
	type node struct {
		Name, Role, Link, Secret string
		Routers                  []ClusterRouter
		Masters, MasterNames     []string
		Listeners                []string
	}
	peers := ExampleMasters(masters)
	var urls, names []string
	for _, p := range peers {
		urls, names = append(urls, p.URL), append(names, p.Name)
	}
	var files []NamedFile
	for _, p := range peers {
		var b bytes.Buffer
		listen := strings.TrimSuffix(strings.TrimPrefix(p.URL, "ws://"), "/ws")
		if err := clusterInitMasterTemplate.Execute(&b, map[string]any{"Name": p.Name, "Listen": listen, "Raft": p.Raft,
			"URL": p.URL, "Secret": secret, "Peers": peers}); err != nil {
			panic(fmt.Sprintf("config: cluster init master template: %v", err)) // a bug, caught by the tests
		}
		files = append(files, NamedFile{Name: p.Name + ".yaml", Data: b.Bytes()})
	}
	var nodes []node
	for _, p := range exampleProxies {
		nodes = append(nodes, node{Name: p.Name, Role: RoleProxy, Listeners: []string{p.Listen}})
	}
	for _, r := range exampleRouters {
		nodes = append(nodes, node{Name: r.Name, Role: RoleRouter, Link: r.Link})
	}
	for _, n := range nodes {
		n.Secret, n.Routers, n.Masters, n.MasterNames = secret, exampleRouters, urls, names
		if masters > 0 {
			n.Routers = nil
		}
		var b bytes.Buffer
		if err := clusterInitTemplate.Execute(&b, n); err != nil {
			panic(fmt.Sprintf("config: cluster init template: %v", err)) // a bug, caught by the tests
		}
		files = append(files, NamedFile{Name: n.Name + ".yaml", Data: b.Bytes()})
	}
	return files
}
