package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchyard-wamp/switchyard/config"
)

// TestInitCluster runs `switchyard init --cluster DIR` and checks every file it writes
// the way `switchyard check --role ROLE` does.
func TestInitCluster(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cluster")
	if err := runInit([]string{"--cluster", dir}); err != nil {
		t.Fatal(err)
	}
	secrets := map[string]bool{}
	for _, f := range []struct{ name, role string }{
		{"proxy1.yaml", config.RoleProxy}, {"proxy2.yaml", config.RoleProxy},
		{"router1.yaml", config.RoleRouter}, {"router2.yaml", config.RoleRouter}, {"router3.yaml", config.RoleRouter},
	} {
		p := filepath.Join(dir, f.name)
		var out bytes.Buffer
		if !checkFile(&out, p, f.role, func(string) string { return "" }) {
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
		if checkFile(&out, p, other, func(string) string { return "" }) || !strings.Contains(out.String(), "cluster.node:") {
			t.Errorf("check --role %s %s passed:\n%s", other, f.name, out.String())
		}
	}
	if len(secrets) != 1 {
		t.Errorf("the files hold %d different secrets", len(secrets))
	}

	// A second run overwrites nothing and writes nothing.
	os.Remove(filepath.Join(dir, "router3.yaml"))
	before, _ := os.ReadFile(filepath.Join(dir, "proxy1.yaml"))
	if err := runInit([]string{"--cluster", dir}); err == nil || !strings.Contains(err.Error(), "already exists") {
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
	if err := runInit([]string{"--cluster", dir2}); err != nil {
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
	if !checkFile(&out, p, "", func(string) string { return "" }) {
		t.Errorf("plain check: %s", out.String())
	}
	out.Reset()
	if checkFile(&out, p, config.RoleRouter, func(string) string { return "" }) || !strings.Contains(out.String(), "cluster: required by switchyard router") {
		t.Errorf("check --role router of a standalone file:\n%s", out.String())
	}
	if err := runCheck([]string{"--role", "master", p}); err == nil || !strings.Contains(err.Error(), `--role "master"`) {
		t.Errorf("unknown role: %v", err)
	}
}
