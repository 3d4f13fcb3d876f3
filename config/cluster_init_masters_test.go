package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// The files of `switchyard init --cluster` with masters: each master file validates
// and lists every replica; each node file validates, suits its role and names every
// master, with no static routers.
func TestClusterInitFilesMasters(t *testing.T) {
	for _, n := range []int{1, 3} {
		dir := t.TempDir()
		files := ClusterInitFilesMasters(testSecret, n)
		var names []string
		var urls []string
		for _, p := range ExampleMasters(n) {
			urls = append(urls, p.URL)
		}
		for _, f := range files {
			names = append(names, f.Name)
			p := filepath.Join(dir, f.Name)
			if err := os.WriteFile(p, f.Data, 0o600); err != nil {
				t.Fatal(err)
			}
			c, err := Load(p)
			if err != nil {
				t.Fatalf("%s: %v", f.Name, err)
			}
			if err := c.ApplyEnv(noEnv); err != nil {
				t.Fatal(err)
			}
			if p := c.Validate(); len(p) != 0 {
				t.Errorf("%d masters, %s: %v", n, f.Name, p)
			}
			switch {
			case strings.HasPrefix(f.Name, "master"):
				m := c.Master
				if m == nil || m.Node+".yaml" != f.Name || m.Secret != testSecret || m.DataDir != filepath.Join(dir, m.Node+"-data") {
					t.Fatalf("%s: master section %+v", f.Name, m)
				}
				if n > 1 && !reflect.DeepEqual(m.Peers, ExampleMasters(n)) || n == 1 && len(m.Peers) != 0 {
					t.Errorf("%s: peers %+v", f.Name, m.Peers)
				}
			default:
				role := RoleProxy
				if strings.HasPrefix(f.Name, "router") {
					role = RoleRouter
				}
				if err := c.ClusterRole(role); err != nil {
					t.Errorf("%s as %s: %v", f.Name, role, err)
				}
				if !reflect.DeepEqual(c.Cluster.Masters, urls) || len(c.Cluster.Routers) != 0 || !c.FollowsMaster() {
					t.Errorf("%s: masters %v, routers %v", f.Name, c.Cluster.Masters, c.Cluster.Routers)
				}
			}
		}
		want := []string{"proxy1.yaml", "proxy2.yaml", "router1.yaml", "router2.yaml", "router3.yaml"}
		for i := n; i > 0; i-- {
			want = append([]string{"master" + string(rune('0'+i)) + ".yaml"}, want...)
		}
		if !reflect.DeepEqual(names, want) {
			t.Fatalf("%d masters: files %v, want %v", n, names, want)
		}
	}
	if !reflect.DeepEqual(ClusterInitFilesMasters(testSecret, 0), ClusterInitFiles(testSecret)) {
		t.Error("0 masters is not the static example")
	}
}
