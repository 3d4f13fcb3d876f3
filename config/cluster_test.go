package config

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

const testSecret = "0123456789abcdef0123456789abcdef"

// routerConfig is Default() made router1 of a three-router cluster.
func routerConfig() *Config {
	c := Default()
	c.Cluster = &Cluster{
		Node: "router1", Link: "127.0.0.1:9201", Secret: testSecret, Slots: 4096, LinksPerPeer: 2, LinkReads: "loops",
		Routers: []ClusterRouter{{"router1", "127.0.0.1:9201"}, {"router2", "127.0.0.1:9202"}, {"router3", "127.0.0.1:9203"}},
	}
	return c
}

func TestValidateCluster(t *testing.T) {
	dir := t.TempDir()
	writeTLSFiles(t, dir, "c.pem", "k.pem", "ca.pem")
	writeTLSFiles(t, filepath.Join(dir, "other"), "c.pem", "k.pem", "ca.pem")
	os.WriteFile(filepath.Join(dir, "junk.pem"), []byte("not pem"), 0o600)
	withTLS := func(c *Config) *LinkTLS {
		c.Cluster.TLS = &LinkTLS{CertFile: filepath.Join(dir, "c.pem"), KeyFile: filepath.Join(dir, "k.pem"),
			CAFile: filepath.Join(dir, "ca.pem"), MinVersion: "1.3"}
		return c.Cluster.TLS
	}
	proxy := func(c *Config) { c.Cluster.Node, c.Cluster.Link = "proxy1", "" }
	for _, tc := range []ruleCase{
		{"node required", func(c *Config) { c.Cluster.Node = "" }, proxy, "cluster.node", "required"},
		{"node characters", func(c *Config) { c.Cluster.Node = "proxy 1" }, func(c *Config) { proxy(c); c.Cluster.Node = "proxy-1.eu_west" }, "cluster.node", "only letters, digits"},
		{"node length", func(c *Config) { c.Cluster.Node = strings.Repeat("n", 65) }, func(c *Config) { proxy(c); c.Cluster.Node = strings.Repeat("n", 64) }, "cluster.node", "longer than 64"},
		{"link parses", func(c *Config) { proxy(c); c.Cluster.Link = "9101" }, func(c *Config) { proxy(c); c.Cluster.Link = "127.0.0.1:9101" }, "cluster.link", "not host:port"},
		{"link port", func(c *Config) { proxy(c); c.Cluster.Link = ":0" }, func(c *Config) { proxy(c); c.Cluster.Link = ":9101" }, "cluster.link", "from 1 to 65535"},
		{"router needs link", func(c *Config) { c.Cluster.Link = "" }, func(c *Config) {}, "cluster.link", "required: this node is routers[0] (link 127.0.0.1:9201)"},
		{"router link matches entry", func(c *Config) { c.Cluster.Link = "127.0.0.1:9202" }, func(c *Config) { c.Cluster.Link = ":9201" },
			"cluster.link", `"127.0.0.1:9202" does not match this node's entry routers[0].link "127.0.0.1:9201"`},
		{"router link host", func(c *Config) { c.Cluster.Link = "10.0.0.1:9201" }, func(c *Config) { c.Cluster.Link = "0.0.0.0:9201" }, "cluster.link", "does not match"},
		{"secret required", func(c *Config) { c.Cluster.Secret = "" }, func(c *Config) { c.Cluster.Secret = ""; withTLS(c) }, "cluster.secret", "required unless tls is set"},
		{"secret length", func(c *Config) { c.Cluster.Secret = "short" }, func(c *Config) { c.Cluster.Secret = strings.Repeat("s", 16) }, "cluster.secret", "at least 16 characters"},
		{"slots low", func(c *Config) { c.Cluster.Slots = 8 }, func(c *Config) { c.Cluster.Slots = 16 }, "cluster.slots", "from 16 to 65536, got 8"},
		{"slots high", func(c *Config) { c.Cluster.Slots = 65537 }, func(c *Config) { c.Cluster.Slots = 65536 }, "cluster.slots", "got 65537"},
		{"links per peer", func(c *Config) { c.Cluster.LinksPerPeer = 0 }, func(c *Config) { c.Cluster.LinksPerPeer = 64 }, "cluster.links_per_peer", "from 1 to 64"},
		{"routers required", func(c *Config) { proxy(c); c.Cluster.Routers = nil }, func(c *Config) { proxy(c); c.Cluster.Routers = c.Cluster.Routers[1:] }, "cluster.routers", "at least one router"},
		{"router name required", func(c *Config) { c.Cluster.Routers[2].Name = "" }, func(c *Config) { c.Cluster.Routers[2].Name = "r3" }, "cluster.routers[2].name", "required"},
		{"router name characters", func(c *Config) { c.Cluster.Routers[2].Name = "r/3" }, func(c *Config) { c.Cluster.Routers[2].Name = "R3" }, "cluster.routers[2].name", "only letters"},
		{"router names unique", func(c *Config) { c.Cluster.Routers[2].Name = "router2" }, func(c *Config) { c.Cluster.Routers[2].Name = "router4" },
			"cluster.routers[2].name", `router "router2" is also routers[1]`},
		{"router link required", func(c *Config) { c.Cluster.Routers[1].Link = "" }, func(c *Config) { c.Cluster.Routers[1].Link = "localhost:9202" }, "cluster.routers[1].link", "required"},
		{"router link parses", func(c *Config) { c.Cluster.Routers[1].Link = "localhost" }, func(c *Config) { c.Cluster.Routers[1].Link = "[::1]:9202" }, "cluster.routers[1].link", "not host:port"},
		{"router link dialable", func(c *Config) { c.Cluster.Routers[1].Link = ":9202" }, func(c *Config) { c.Cluster.Routers[1].Link = "router2.internal:9202" },
			"cluster.routers[1].link", "not a wildcard"},
		{"router link wildcard ip", func(c *Config) { c.Cluster.Routers[1].Link = "0.0.0.0:9202" }, func(c *Config) {}, "cluster.routers[1].link", "not a wildcard"},
		{"router links unique", func(c *Config) { c.Cluster.Routers[2].Link = "127.0.0.1:9202" }, func(c *Config) { c.Cluster.Routers[2].Link = "127.0.0.2:9202" },
			"cluster.routers[2].link", `"127.0.0.1:9202" is also the link of routers[1]`},
		{"tls cert", func(c *Config) { withTLS(c).CertFile = "" }, func(c *Config) { withTLS(c) }, "cluster.tls.cert_file", "required"},
		{"tls pair", func(c *Config) { withTLS(c).KeyFile = filepath.Join(dir, "other", "k.pem") }, func(c *Config) { withTLS(c) }, "cluster.tls.cert_file", "do not load as a pair"},
		{"tls ca required", func(c *Config) { withTLS(c).CAFile = "" }, func(c *Config) { withTLS(c) }, "cluster.tls.ca_file", "required"},
		{"tls ca pem", func(c *Config) { withTLS(c).CAFile = filepath.Join(dir, "junk.pem") }, func(c *Config) { withTLS(c) }, "cluster.tls.ca_file", "no PEM certificate"},
		{"tls min version", func(c *Config) { withTLS(c).MinVersion = "1.1" }, func(c *Config) { withTLS(c).MinVersion = "1.2" }, "cluster.tls.min_version", `"1.1" is not one of 1.2, 1.3`},
		{"realm spread", func(c *Config) { c.Realms[0].Spread = -1 }, func(c *Config) { c.Realms[0].Spread = 0 }, "realms[0].spread", "must be from 0 to 1024"},
		{"spread within slots", func(c *Config) { c.Cluster.Slots = 16; c.Realms[0].Spread = 17 }, func(c *Config) { c.Cluster.Slots = 16; c.Realms[0].Spread = 16 },
			"realms[0].spread", "from 0 to 16 (cluster.slots), got 17"},
		{"role spread", func(c *Config) { c.Realms[0].Roles[0].Spread = 1025 }, func(c *Config) { c.Realms[0].Roles[0].Spread = 1024 }, "realms[0].roles[0].spread", "got 1025"},
		{"a proxy needs listeners", func(c *Config) { proxy(c); c.Listeners = nil }, func(c *Config) { c.Listeners = nil }, "listeners", "no listeners"},
	} {
		checkRule(t, routerConfig, tc)
	}
}

// TestValidateClusterAllAtOnce: every problem of the section in one run, in schema order.
func TestValidateClusterAllAtOnce(t *testing.T) {
	c := routerConfig()
	c.Cluster.Node, c.Cluster.Secret, c.Cluster.Slots = "", "", 1
	c.Cluster.Routers[1] = ClusterRouter{"router1", "nowhere"}
	c.Realms[0].Spread = -2
	var got []string
	for _, p := range c.Validate() {
		got = append(got, p.Path)
	}
	want := []string{"realms[0].spread", "cluster.node", "cluster.secret", "cluster.slots", "cluster.routers[1].name", "cluster.routers[1].link"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("problems at %q, want %q", got, want)
	}
}

func TestClusterRole(t *testing.T) {
	c := routerConfig()
	if err := c.ClusterRole(RoleRouter); err != nil || !c.IsRouter() {
		t.Errorf("router1 as router: %v (IsRouter %v)", err, c.IsRouter())
	}
	if err := c.ClusterRole(RoleProxy); err == nil || !strings.HasPrefix(err.Error(), `cluster.node: "router1" is listed in cluster.routers`) {
		t.Errorf("router1 as proxy: %v", err)
	}
	c.Cluster.Node, c.Cluster.Link = "proxy1", ""
	if err := c.ClusterRole(RoleProxy); err != nil || c.IsRouter() {
		t.Errorf("proxy1 as proxy: %v", err)
	}
	if err := c.ClusterRole(RoleRouter); err == nil || !strings.HasPrefix(err.Error(), `cluster.node: "proxy1" is not listed in cluster.routers`) {
		t.Errorf("proxy1 as router: %v", err)
	}
	if err := Default().ClusterRole(RoleRouter); err == nil || !strings.HasPrefix(err.Error(), "cluster: required by switchyard router") {
		t.Errorf("standalone as router: %v", err)
	}
	if err := c.ClusterRole("master"); err == nil {
		t.Error("unknown role accepted")
	}
	if Default().IsRouter() || Default().RouterNames() != nil {
		t.Error("a standalone node is no router")
	}
	if got := routerConfig().RouterNames(); !reflect.DeepEqual(got, []string{"router1", "router2", "router3"}) {
		t.Errorf("RouterNames = %v", got)
	}
}

func TestSpreadOf(t *testing.T) {
	r := DefaultRealms()[0]
	if r.Spread != 1 || r.SpreadOf("anonymous") != 1 || r.SpreadOf("other") != 1 {
		t.Fatalf("default spread: %d", r.Spread)
	}
	r.Spread = 0
	if r.SpreadOf("x") != 1 {
		t.Error("spread 0 is 1")
	}
	r.Spread, r.Roles[0].Spread = 4, 3
	if r.SpreadOf("anonymous") != 3 || r.SpreadOf("backend") != 4 {
		t.Errorf("role %d, other %d", r.SpreadOf("anonymous"), r.SpreadOf("backend"))
	}
	c := Default()
	c.Realms = append(c.Realms, r)
	c.Realms[1].Name = "realm2"
	if c.SpreadOf("realm2", "anonymous") != 3 || c.SpreadOf("realm2", "x") != 4 || c.SpreadOf("realm1", "anonymous") != 1 || c.SpreadOf("nowhere", "x") != 1 {
		t.Errorf("Config.SpreadOf: %d %d %d", c.SpreadOf("realm2", "anonymous"), c.SpreadOf("realm2", "x"), c.SpreadOf("realm1", "anonymous"))
	}
}

// TestParseCluster reads the section from YAML: defaults, secret references, relative
// files, environment overrides and unknown keys.
func TestParseCluster(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "router2.yaml")
	src := `listeners: []
realms:
  - name: realm1
    spread: 2
    roles: [{name: anonymous, spread: 3, permissions: [{uri: "", match: prefix, allow: {call: true}}]}]
    auth: {anonymous: {}}
cluster:
  node: router2
  link: 127.0.0.1:9202
  secret: "${env:TEST_CLUSTER_SECRET}"
  routers:
    - {name: router1, link: "127.0.0.1:9201"}
    - {name: router2, link: "127.0.0.1:9202"}
  tls: {cert_file: tls/node.crt, key_file: tls/node.key, ca_file: /etc/ca.pem}
`
	os.WriteFile(p, []byte(src), 0o600)
	t.Setenv("TEST_CLUSTER_SECRET", testSecret)
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	cl := c.Cluster
	if cl == nil || cl.Node != "router2" || cl.Secret != testSecret || cl.Slots != 4096 || cl.LinksPerPeer != 2 ||
		len(cl.Routers) != 2 || cl.Routers[1] != (ClusterRouter{"router2", "127.0.0.1:9202"}) {
		t.Fatalf("cluster: %+v", cl)
	}
	if cl.TLS.CertFile != filepath.Join(dir, "tls/node.crt") || cl.TLS.CAFile != "/etc/ca.pem" || cl.TLS.MinVersion != "1.3" {
		t.Errorf("tls: %+v", cl.TLS)
	}
	if c.Listeners != nil || c.Realms[0].SpreadOf("anonymous") != 3 || c.Realms[0].SpreadOf("x") != 2 {
		t.Errorf("listeners %v, spread %d", c.Listeners, c.Realms[0].SpreadOf("anonymous"))
	}
	// One file can serve several routers: the environment names the node.
	env := map[string]string{"SWITCHYARD_CLUSTER_NODE": "router1", "SWITCHYARD_CLUSTER_LINK": "127.0.0.1:9201"}
	if err := c.ApplyEnv(func(k string) string { return env[k] }); err != nil || cl.Node != "router1" || cl.Link != "127.0.0.1:9201" {
		t.Errorf("env: %v %+v", err, cl)
	}
	// Standalone: no section, and the environment does not create one.
	d := Default()
	if err := d.ApplyEnv(func(k string) string { return env[k] }); err != nil || d.Cluster != nil {
		t.Errorf("env created a cluster section: %+v", d.Cluster)
	}

	got := strings.Join(loadProblems(t, "cluster: {node: a, slot: 3, routers: [{name: r, address: x}]}", FormatYAML, noEnv), "\n")
	for _, want := range []string{`cluster: unknown key "slot" (did you mean "slots"?)`, `cluster.routers[0]: unknown key "address"`} {
		if !strings.Contains(got, want) {
			t.Errorf("got %s\nwant %s", got, want)
		}
	}
	got = strings.Join(loadProblems(t, "cluster: {secret: '${env:NOPE}'}", FormatYAML, noEnv), "\n")
	if !strings.Contains(got, "cluster.secret: environment variable NOPE") {
		t.Errorf("unset secret: %s", got)
	}
}

// TestClusterInitFiles loads every file of `switchyard init --cluster` as the commands
// would: each validates, suits its role, and the files agree on what must be shared.
func TestClusterInitFiles(t *testing.T) {
	dir := t.TempDir()
	files := ClusterInitFiles(testSecret)
	var names []string
	cfgs := map[string]*Config{}
	for _, f := range files {
		names = append(names, f.Name)
		p := filepath.Join(dir, f.Name)
		if err := os.WriteFile(p, f.Data, 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Load(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.ApplyEnv(noEnv); err != nil {
			t.Fatal(err)
		}
		if p := c.Validate(); len(p) != 0 {
			t.Errorf("%s: %v", f.Name, p)
		}
		role := RoleProxy
		if strings.HasPrefix(f.Name, "router") {
			role = RoleRouter
		}
		if err := c.ClusterRole(role); err != nil {
			t.Errorf("%s as %s: %v", f.Name, role, err)
		}
		if c.Cluster.Node+".yaml" != f.Name || c.Cluster.Secret != testSecret {
			t.Errorf("%s: node %q, secret %q", f.Name, c.Cluster.Node, c.Cluster.Secret)
		}
		cfgs[f.Name] = c
	}
	if want := []string{"proxy1.yaml", "proxy2.yaml", "router1.yaml", "router2.yaml", "router3.yaml"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("files %v, want %v", names, want)
	}
	for name, addr := range map[string]string{"proxy1.yaml": "127.0.0.1:8080", "proxy2.yaml": "127.0.0.1:8090"} {
		l := cfgs[name].Listeners
		if len(l) != 1 || l[0].Address != addr || l[0].Kind != KindUniversal || cfgs[name].Cluster.Link != "" {
			t.Errorf("%s: listeners %+v, link %q", name, l, cfgs[name].Cluster.Link)
		}
	}
	for i, name := range []string{"router1.yaml", "router2.yaml", "router3.yaml"} {
		c := cfgs[name]
		if len(c.Listeners) != 0 || c.Cluster.Link != "127.0.0.1:920"+string(rune('1'+i)) {
			t.Errorf("%s: listeners %+v, link %q", name, c.Listeners, c.Cluster.Link)
		}
	}
	// What the nodes compute placement from is the same everywhere.
	ref := cfgs["proxy1.yaml"]
	for name, c := range cfgs {
		if !reflect.DeepEqual(c.Cluster.Routers, ref.Cluster.Routers) || c.Cluster.Slots != ref.Cluster.Slots ||
			!reflect.DeepEqual(c.Realms, ref.Realms) {
			t.Errorf("%s differs from proxy1.yaml in routers, slots or realms", name)
		}
	}
	if s := ref.Realms[0].SpreadOf("anonymous"); s != 3 {
		t.Errorf("realm1 anonymous spread %d, want 3", s)
	}
	// Without a secret the files reference the environment.
	for _, f := range ClusterInitFiles("") {
		if !strings.Contains(string(f.Data), `secret: "${env:SWITCHYARD_CLUSTER_SECRET}"`) {
			t.Errorf("%s: no secret reference", f.Name)
		}
		c, err := Parse(f.Data, ParseOptions{Getenv: func(k string) string {
			return map[string]string{"SWITCHYARD_CLUSTER_SECRET": testSecret}[k]
		}})
		if err != nil || c.Cluster.Secret != testSecret || len(c.Validate()) != 0 {
			t.Errorf("%s with the secret in the environment: %v", f.Name, err)
		}
	}
}

func TestCompareClusterFiles(t *testing.T) {
	load := func() ([]string, []*Config) {
		var names []string
		var cfgs []*Config
		for _, f := range ClusterInitFiles(testSecret) {
			c, err := Parse(f.Data, ParseOptions{Getenv: noEnv})
			if err != nil {
				t.Fatal(err)
			}
			names, cfgs = append(names, f.Name), append(cfgs, c)
		}
		return names, cfgs
	}
	names, cfgs := load()
	if p := CompareClusterFiles(names, cfgs); len(p) != 0 {
		t.Fatalf("init --cluster files disagree: %v", p)
	}
	// Router order does not matter.
	slices.Reverse(cfgs[3].Cluster.Routers)
	if p := CompareClusterFiles(names, cfgs); len(p) != 0 {
		t.Fatalf("reordered routers: %v", p)
	}
	for _, tc := range []struct {
		name      string
		mut       func(c []*Config)
		path, msg string
	}{
		{"node names", func(c []*Config) { c[4].Cluster.Node = "router2" }, "cluster.node", `router2.yaml and router3.yaml both name this node "router2"`},
		{"secret", func(c []*Config) { c[1].Cluster.Secret = strings.Repeat("x", 32) }, "cluster.secret", "proxy2.yaml's differs from proxy1.yaml's"},
		{"slots", func(c []*Config) { c[2].Cluster.Slots = 1024 }, "cluster.slots", "1024 in router1.yaml, 4096 in proxy1.yaml"},
		{"links per peer", func(c []*Config) { c[2].Cluster.LinksPerPeer = 3 }, "cluster.links_per_peer", "3 in router1.yaml"},
		{"tls", func(c []*Config) { c[2].Cluster.TLS = &LinkTLS{} }, "cluster.tls", "set in only one of router1.yaml and proxy1.yaml"},
		{"router link", func(c []*Config) { c[3].Cluster.Routers[0].Link = "127.0.0.1:9999" }, "cluster.routers", "router2.yaml lists"},
		{"router missing", func(c []*Config) { c[1].Cluster.Routers = c[1].Cluster.Routers[:2] }, "cluster.routers", "proxy2.yaml lists [router1=127.0.0.1:9201 router2=127.0.0.1:9202]"},
		{"masters", func(c []*Config) { c[2].Cluster.Masters = []string{"ws://127.0.0.1:9300/ws"} }, "cluster.masters", "router1.yaml names [ws://127.0.0.1:9300/ws], proxy1.yaml names []"},
		{"role spread", func(c []*Config) { c[3].Realms[0].Roles[0].Spread = 2 }, "realms[0].roles[0].spread", `realm realm1, authrole "anonymous": spread 2 in router2.yaml, 3 in proxy1.yaml`},
		{"realm spread", func(c []*Config) { c[1].Realms[0].Spread = 2 }, "realms[0].spread", `authrole "": spread 2 in proxy2.yaml, 1 in proxy1.yaml`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			names, cfgs := load()
			tc.mut(cfgs)
			var got []string
			found := false
			for _, p := range CompareClusterFiles(names, cfgs) {
				got = append(got, p.String())
				found = found || p.Path == tc.path && strings.Contains(p.Message, tc.msg)
			}
			if !found {
				t.Errorf("want %s: ...%s...; got %q", tc.path, tc.msg, got)
			}
			for _, g := range got {
				if strings.Contains(g, testSecret) {
					t.Errorf("secret printed: %s", g)
				}
			}
		})
	}
}
