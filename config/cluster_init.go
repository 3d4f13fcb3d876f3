package config

import (
	"bytes"
	_ "embed"
	"fmt"
	"text/template"
)

// clusterInitSource is the template of every file `switchyard init --cluster` writes.
//
//go:embed cluster_init.yaml
var clusterInitSource string

var clusterInitTemplate = template.Must(template.New("cluster_init.yaml").Parse(clusterInitSource))

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
func ClusterInitFiles(secret string) []NamedFile {
	if secret == "" {
		secret = ClusterSecretEnv
	}
	type node struct {
		Name, Role, Link, Secret string
		Routers                  []ClusterRouter
		Listeners                []string
	}
	var nodes []node
	for _, p := range exampleProxies {
		nodes = append(nodes, node{Name: p.Name, Role: RoleProxy, Listeners: []string{p.Listen}})
	}
	for _, r := range exampleRouters {
		nodes = append(nodes, node{Name: r.Name, Role: RoleRouter, Link: r.Link})
	}
	files := make([]NamedFile, 0, len(nodes))
	for _, n := range nodes {
		n.Secret, n.Routers = secret, exampleRouters
		var b bytes.Buffer
		if err := clusterInitTemplate.Execute(&b, n); err != nil {
			panic(fmt.Sprintf("config: cluster init template: %v", err)) // a bug, caught by the tests
		}
		files = append(files, NamedFile{Name: n.Name + ".yaml", Data: b.Bytes()})
	}
	return files
}
