package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// masterRouterConfig is a router following two masters (no static routers).
func masterRouterConfig() *Config {
	c := routerConfig()
	c.Cluster.Routers = nil
	c.Cluster.Masters = []string{"ws://127.0.0.1:9300/ws", "rs://127.0.0.1:9301"}
	return c
}

func TestValidateClusterMasters(t *testing.T) {
	for _, tc := range []ruleCase{
		{"routers or masters", func(c *Config) { c.Cluster.Masters = nil }, func(c *Config) {}, "cluster.routers", "at least one router (or masters)"},
		{"not both", func(c *Config) { c.Cluster.Routers = routerConfig().Cluster.Routers }, func(c *Config) {}, "cluster.routers", "leave it out with masters"},
		{"master url scheme", func(c *Config) { c.Cluster.Masters[1] = "http://127.0.0.1:9301" }, func(c *Config) { c.Cluster.Masters[1] = "wss://m2.internal:9301/ws" },
			"cluster.masters[1]", `scheme "http" is not ws`},
		{"master url port", func(c *Config) { c.Cluster.Masters[0] = "ws://127.0.0.1/ws" }, func(c *Config) { c.Cluster.Masters[0] = "tcp://127.0.0.1:1" },
			"cluster.masters[0]", "host and port"},
		{"master url empty", func(c *Config) { c.Cluster.Masters[0] = "" }, func(c *Config) {}, "cluster.masters[0]", "required"},
		{"master urls unique", func(c *Config) { c.Cluster.Masters[1] = c.Cluster.Masters[0] }, func(c *Config) {}, "cluster.masters[1]", "is also masters[0]"},
		{"key only with masters", func(c *Config) { *c = *routerConfig(); c.Cluster.Key = testSecret }, func(c *Config) { c.Cluster.Key = testSecret },
			"cluster.key", "only with masters"},
		{"key length", func(c *Config) { c.Cluster.Key = "short" }, func(c *Config) { c.Cluster.Key = strings.Repeat("k", 16) }, "cluster.key", "at least 16"},
		{"a router following masters needs no listeners", func(c *Config) { c.Listeners = nil; c.Cluster.Masters = nil }, func(c *Config) { c.Listeners = nil },
			"listeners", "no listeners"},
	} {
		checkRule(t, masterRouterConfig, tc)
	}
}

func TestClusterRoleWithMasters(t *testing.T) {
	c := masterRouterConfig()
	c.Listeners = nil
	if problems := c.Validate(); len(problems) != 0 {
		t.Fatalf("router following masters: %v", problems)
	}
	if !c.FollowsMaster() || c.IsRouter() {
		t.Errorf("FollowsMaster %v, IsRouter %v", c.FollowsMaster(), c.IsRouter())
	}
	if err := c.ClusterRole(RoleRouter); err != nil {
		t.Errorf("as router: %v", err)
	}
	if err := c.ClusterRole(RoleProxy); err == nil || !strings.HasPrefix(err.Error(), "listeners: no listeners") {
		t.Errorf("without listeners as proxy: %v", err)
	}
	for link, want := range map[string]string{"": "cluster.link: required", "0.0.0.0:9201": "not a wildcard"} {
		c.Cluster.Link = link
		if err := c.ClusterRole(RoleRouter); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("router with link %q: %v, want %q", link, err, want)
		}
	}
	c.Cluster.Node, c.Listeners = "proxy1", DefaultListeners()
	if err := c.ClusterRole(RoleProxy); err != nil {
		t.Errorf("proxy: %v", err)
	}
	if c.MasterKey() != testSecret {
		t.Errorf("MasterKey without key = %q, want the cluster secret", c.MasterKey())
	}
	c.Cluster.Key = "per-node-key-0123456789"
	if c.MasterKey() != c.Cluster.Key || Default().MasterKey() != "" || Default().FollowsMaster() {
		t.Errorf("MasterKey = %q", c.MasterKey())
	}
}

// LoadOverlay replaces the file's realms by the cluster config's and keeps the rest
// (listeners, cluster section, relative paths).
func TestLoadOverlay(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "node.yaml")
	file := `version: 1
cluster: {node: proxy1, secret: "` + testSecret + `", masters: ["ws://127.0.0.1:9300/ws"]}
listeners: [{address: "127.0.0.1:0"}]
realms: [{name: local, roles: [{name: anonymous}], auth: {anonymous: {role: anonymous}}}]
`
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	shared := map[string]any{"realms": []any{
		map[string]any{"name": "r1", "roles": []any{map[string]any{"name": "anonymous", "spread": 2.0}},
			"auth": map[string]any{"anonymous": map[string]any{"role": "anonymous"}}},
		map[string]any{"name": "r2"},
	}}
	c, err := LoadOverlay(path, shared)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Realms) != 2 || c.Realms[0].Name != "r1" || c.Realms[1].Name != "r2" || c.SpreadOf("r1", "anonymous") != 2 {
		t.Fatalf("realms %+v", c.Realms)
	}
	if c.Cluster == nil || c.Cluster.Node != "proxy1" || len(c.Listeners) != 1 || c.Listeners[0].Address != "127.0.0.1:0" {
		t.Fatalf("the file's own keys: %+v %+v", c.Cluster, c.Listeners)
	}
	if problems := c.Validate(); len(problems) != 0 {
		t.Fatalf("overlaid config: %v", problems)
	}
	plain, err := Load(path)
	if err != nil || len(plain.Realms) != 1 || plain.Realms[0].Name != "local" {
		t.Fatalf("Load keeps the file's realms: %v %+v", err, plain)
	}
	if _, err := LoadOverlay(path, map[string]any{"realms": "nope"}); err == nil {
		t.Fatal("a shared part of the wrong shape was accepted")
	}
}
