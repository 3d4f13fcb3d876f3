package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchyard-wamp/switchyard/config"
)

// checkOK is checkFile with an empty environment.
func checkOK(out *bytes.Buffer, name, role string) bool {
	_, ok := checkFile(out, name, role, func(string) string { return "" })
	return ok
}

// TestInitCluster runs `switchyard init --cluster DIR` and checks every file it writes
// the way `switchyard check --role ROLE` does.
func TestInitCluster(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cluster")
	if err := runInit([]string{"--cluster", "--masters", "0", dir}); err != nil {
		t.Fatal(err)
	}
	secrets := map[string]bool{}
	for _, f := range []struct{ name, role string }{
		{"proxy1.yaml", config.RoleProxy}, {"proxy2.yaml", config.RoleProxy},
		{"router1.yaml", config.RoleRouter}, {"router2.yaml", config.RoleRouter}, {"router3.yaml", config.RoleRouter},
	} {
		p := filepath.Join(dir, f.name)
		var out bytes.Buffer
		if !checkOK(&out, p, f.role) {
			t.Errorf("switchyard check --role %s %s:\n%s", f.role, f.name, out.String())
		}
		st, err := os.Stat(p)
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v (it holds the secret) %v", f.name, st.Mode(), err)
		}
		c, err := config.Load(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Cluster.Secret) != 64 {
			t.Errorf("%s: secret %q is not 32 bytes in hex", f.name, c.Cluster.Secret)
		}
		secrets[c.Cluster.Secret] = true
		// The other role is refused.
		other := config.RoleRouter
		if f.role == config.RoleRouter {
			other = config.RoleProxy
		}
		out.Reset()
		if checkOK(&out, p, other) || !strings.Contains(out.String(), "cluster.node:") {
			t.Errorf("check --role %s %s passed:\n%s", other, f.name, out.String())
		}
	}
	if len(secrets) != 1 {
		t.Errorf("the files hold %d different secrets", len(secrets))
	}

	// A second run overwrites nothing and writes nothing.
	os.Remove(filepath.Join(dir, "router3.yaml"))
	before, _ := os.ReadFile(filepath.Join(dir, "proxy1.yaml"))
	if err := runInit([]string{"--cluster", "--masters", "0", dir}); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("second init: %v", err)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "proxy1.yaml")); !bytes.Equal(before, after) {
		t.Error("proxy1.yaml overwritten")
	}
	if _, err := os.Stat(filepath.Join(dir, "router3.yaml")); !os.IsNotExist(err) {
		t.Error("a refused init wrote router3.yaml")
	}
	// A second cluster gets its own secret.
	dir2 := filepath.Join(t.TempDir(), "c2")
	if err := runInit([]string{"--cluster", "--masters", "0", dir2}); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(filepath.Join(dir2, "router1.yaml"))
	if err != nil || secrets[c.Cluster.Secret] {
		t.Errorf("second cluster: %v, same secret %v", err, secrets[c.Cluster.Secret])
	}
}

// TestCheckRole: a standalone file fails --role, passes without it.
func TestCheckRole(t *testing.T) {
	dir := t.TempDir()
	if err := runInit([]string{dir}); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, config.InitFileName)
	var out bytes.Buffer
	if !checkOK(&out, p, "") {
		t.Errorf("plain check: %s", out.String())
	}
	out.Reset()
	if checkOK(&out, p, config.RoleRouter) || !strings.Contains(out.String(), "cluster: required by switchyard router") {
		t.Errorf("check --role router of a standalone file:\n%s", out.String())
	}
	if err := runCheck([]string{"--role", "master", p}); err == nil || !strings.Contains(err.Error(), `--role "master"`) {
		t.Errorf("unknown role: %v", err)
	}
}

// TestCheckClusterFiles: files checked together are compared as one cluster.
func TestCheckClusterFiles(t *testing.T) {
	dir := t.TempDir()
	if err := runInit([]string{"--cluster", "--masters", "0", dir}); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if len(files) != 5 {
		t.Fatalf("files %v", files)
	}
	if err := runCheck(files); err != nil {
		t.Fatalf("the init --cluster files together: %v", err)
	}
	// router2 with other slots: each file is valid alone, not together.
	p := filepath.Join(dir, "router2.yaml")
	data, _ := os.ReadFile(p)
	os.WriteFile(p, bytes.Replace(data, []byte("slots: 4096"), []byte("slots: 1024"), 1), 0o600)
	if err := runCheck([]string{p}); err != nil {
		t.Fatalf("router2.yaml alone: %v", err)
	}
	if err := runCheck(files); err == nil || !strings.Contains(err.Error(), "do not describe one cluster") {
		t.Errorf("files disagreeing on slots: %v", err)
	}
	var out bytes.Buffer
	var cfgs []*config.Config
	for _, f := range files {
		c, _ := checkFile(&out, f, "", func(string) string { return "" })
		cfgs = append(cfgs, c)
	}
	out.Reset()
	if checkClusterFiles(&out, files, cfgs) || !strings.Contains(out.String(), "cluster.slots: 1024 in "+p) {
		t.Errorf("output:\n%s", out.String())
	}
}

// TestCheckReportsEveryProblemAtOnce: a file with an unknown key, a value of the wrong
// type and values Validate refuses gets all of them from one `switchyard check`, and the
// field that did not decode is not reported twice.
func TestCheckReportsEveryProblemAtOnce(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bad.yaml")
	data := `version: 1
node:
  log_level: verbose
  loglevel: info
listeners:
  - address: [":0"]
    kind: bogus
    serializers: [json, xml]
`
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if checkOK(&out, p, "") {
		t.Fatalf("check passed:\n%s", out.String())
	}
	got := out.String()
	for _, want := range []string{
		`node: unknown key "loglevel"`,            // decode: unknown key
		"listeners[0].address: expected a string", // decode: wrong type
		"node.log_level:",                         // Validate: enum
		"listeners[0].serializers[1]:",            // Validate: enum
	} {
		if !strings.Contains(got, want) {
			t.Errorf("check output lacks %q:\n%s", want, got)
		}
	}
	if n := strings.Count(got, "listeners[0].address"); n != 1 {
		t.Errorf("listeners[0].address reported %d times:\n%s", n, got)
	}
}

// TestInitClusterMasters: `switchyard init --cluster` writes a master (three with
// --masters 3) and nodes that follow it; every file checks, the master files as masters.
func TestInitClusterMasters(t *testing.T) {
	for _, n := range []string{"1", "3"} {
		dir := filepath.Join(t.TempDir(), "cluster")
		var args []string
		if n != "1" {
			args = []string{"--masters", n}
		}
		if err := runInit(append(append([]string{"--cluster"}, args...), dir)); err != nil {
			t.Fatal(err)
		}
		files, _ := filepath.Glob(filepath.Join(dir, "master*.yaml"))
		if fmt.Sprint(len(files)) != n {
			t.Fatalf("--masters %s: master files %v", n, files)
		}
		var urls []string
		for _, f := range files {
			c, err := loadMasterFile(f)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			urls = append(urls, "ws://"+c.Master.Listen+"/ws")
		}
		for _, f := range []struct{ name, role string }{
			{"proxy1.yaml", config.RoleProxy}, {"router3.yaml", config.RoleRouter},
		} {
			p := filepath.Join(dir, f.name)
			var out bytes.Buffer
			if !checkOK(&out, p, f.role) {
				t.Errorf("switchyard check --role %s %s:\n%s", f.role, f.name, out.String())
			}
			c, err := config.Load(p)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(c.Cluster.Masters) != fmt.Sprint(urls) || len(c.Cluster.Routers) != 0 {
				t.Errorf("%s: masters %v (want %v), routers %v", f.name, c.Cluster.Masters, urls, c.Cluster.Routers)
			}
		}
	}
	if err := runInit([]string{"--cluster", "--masters", "9", t.TempDir()}); err == nil {
		t.Error("--masters 9 accepted")
	}
}
