package config

import (
	"strings"
	"testing"
	"time"
)

// masterConfig is Default() made replica m1 of a three-replica master.
func masterConfig() *Config {
	c := Default()
	c.Master = &Master{Node: "m1", Listen: "127.0.0.1:9300", Raft: "127.0.0.1:9301", DataDir: "/tmp/m1",
		Lease: Duration(5 * time.Second), RaftTimeout: Duration(time.Second), ForgetAfter: Duration(24 * time.Hour), Slots: 4096, Secret: testSecret,
		Peers: []MasterPeer{{"m1", "127.0.0.1:9301", "ws://127.0.0.1:9300/ws"},
			{"m2", "127.0.0.1:9311", "ws://127.0.0.1:9310/ws"}, {"m3", "127.0.0.1:9321", "rs://127.0.0.1:9320"}}}
	return c
}

func TestValidateMaster(t *testing.T) {
	single := func(c *Config) { c.Master.Peers = nil }
	for _, tc := range []ruleCase{
		{"node required", func(c *Config) { c.Master.Node = "" }, single, "master.node", "required"},
		{"node characters", func(c *Config) { single(c); c.Master.Node = "m 1" }, func(c *Config) { single(c); c.Master.Node = "m-1.eu" }, "master.node", "only letters"},
		{"node not operator", func(c *Config) { single(c); c.Master.Node = "operator" }, single, "master.node", "operator's authid"},
		{"listen parses", func(c *Config) { c.Master.Listen = "9300" }, func(c *Config) { c.Master.Listen = ":9300" }, "master.listen", "not host:port"},
		{"raft parses", func(c *Config) { single(c); c.Master.Raft = "raft" }, func(c *Config) { single(c); c.Master.Raft = ":9301" }, "master.raft", "not host:port"},
		{"data dir", func(c *Config) { c.Master.DataDir = "" }, func(c *Config) {}, "master.data_dir", "required"},
		{"lease", func(c *Config) { c.Master.Lease = Duration(50 * time.Millisecond) }, func(c *Config) { c.Master.Lease = Duration(100 * time.Millisecond) }, "master.lease", "at least 100ms"},
		{"forget after", func(c *Config) { c.Master.ForgetAfter = 0 }, func(c *Config) { c.Master.ForgetAfter = Duration(time.Second) }, "master.forget_after", "at least 1s"},
		{"raft timeout", func(c *Config) { c.Master.RaftTimeout = Duration(10 * time.Millisecond) }, func(c *Config) { c.Master.RaftTimeout = Duration(50 * time.Millisecond) }, "master.raft_timeout", "at least 50ms"},
		{"slots", func(c *Config) { c.Master.Slots = 8 }, func(c *Config) { c.Master.Slots = 16 }, "master.slots", "from 16 to 65536"},
		{"secret required", func(c *Config) { c.Master.Secret = "" }, func(c *Config) {
			c.Master.Secret = ""
			c.Master.OperatorKey = strings.Repeat("o", 16)
			c.Master.NodeKeys = []NodeKey{{"r1", strings.Repeat("k", 16)}}
		}, "master.secret", "required unless node_keys"},
		{"secret length", func(c *Config) { c.Master.Secret = "short" }, func(c *Config) { c.Master.Secret = strings.Repeat("s", 16) }, "master.secret", "at least 16"},
		{"operator key without secret", func(c *Config) { c.Master.Secret = ""; c.Master.NodeKeys = []NodeKey{{"r1", strings.Repeat("k", 16)}} },
			func(c *Config) {}, "master.operator_key", "required without a secret"},
		{"node key length", func(c *Config) { c.Master.NodeKeys = []NodeKey{{"r1", "short"}} }, func(c *Config) { c.Master.NodeKeys = []NodeKey{{"r1", strings.Repeat("k", 16)}} },
			"master.node_keys[0].key", "at least 16"},
		{"node keys unique", func(c *Config) { c.Master.NodeKeys = []NodeKey{{"r1", testSecret}, {"r1", testSecret}} },
			func(c *Config) { c.Master.NodeKeys = []NodeKey{{"r1", testSecret}, {"r2", testSecret}} }, "master.node_keys[1].node", `node "r1" is also node_keys[0]`},
		{"self listed", func(c *Config) { c.Master.Node = "m4" }, func(c *Config) { c.Master.Node = "m2"; c.Master.Raft = ":9311" }, "master.peers", `(master.node "m4") is not listed`},
		{"raft matches entry", func(c *Config) { c.Master.Raft = "127.0.0.1:9311" }, func(c *Config) { c.Master.Raft = "0.0.0.0:9301" }, "master.raft", "does not match this replica's entry peers[0].raft"},
		{"peer names unique", func(c *Config) { c.Master.Peers[2].Name = "m2" }, func(c *Config) {}, "master.peers[2].name", `replica "m2" is also peers[1]`},
		{"peer raft dialable", func(c *Config) { c.Master.Peers[1].Raft = ":9311" }, func(c *Config) {}, "master.peers[1].raft", "not a wildcard"},
		{"peer raft unique", func(c *Config) { c.Master.Peers[2].Raft = "127.0.0.1:9311" }, func(c *Config) {}, "master.peers[2].raft", "also the raft address of peers[1]"},
		{"peer url", func(c *Config) { c.Master.Peers[1].URL = "http://127.0.0.1:9310" }, func(c *Config) { c.Master.Peers[1].URL = "wss://m2.example:443/ws" }, "master.peers[1].url", "not a management URL"},
	} {
		checkRule(t, masterConfig, tc)
	}
}

func TestParseMaster(t *testing.T) {
	c, err := Parse([]byte(`
master:
  node: m1
  data_dir: data/m1
  secret: ${env:MS}
  node_keys: [{node: r1, key: "${env:RK}"}]
`), ParseOptions{Dir: "/etc/sy", Getenv: func(k string) string {
		return map[string]string{"MS": testSecret, "RK": "r1-key-0123456789"}[k]
	}})
	if err != nil {
		t.Fatal(err)
	}
	m := c.Master
	if m == nil || m.Listen != "127.0.0.1:9300" || m.Raft != "127.0.0.1:9301" || m.DataDir != "/etc/sy/data/m1" ||
		time.Duration(m.Lease) != 4*time.Second || time.Duration(m.RaftTimeout) != time.Second || time.Duration(m.ForgetAfter) != 24*time.Hour || m.Slots != 4096 || m.Secret != testSecret ||
		len(m.NodeKeys) != 1 || m.NodeKeys[0].Key != "r1-key-0123456789" {
		t.Fatalf("master section: %+v", m)
	}
	if p := c.Validate(); len(p) != 0 {
		t.Fatalf("problems: %v", p)
	}
}
