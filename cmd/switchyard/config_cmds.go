package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/switchyard-wamp/switchyard/config"
)

// runInit is `switchyard init [--cluster] [DIR]`: it writes DIR/switchyard.yaml (DIR
// defaults to "."), the commented embedded default with an example of every auth method;
// with --cluster, the files of a local example cluster instead (see writeClusterInit).
// It never overwrites an existing file.
func runInit(args []string) error {
	fs := flag.NewFlagSet("init", flag.ContinueOnError)
	cluster := fs.Bool("cluster", false, "write a local example cluster (a master, 2 proxies, 3 routers) instead")
	masters := fs.Int("masters", 1, "with --cluster: master replicas (1 or 3; 0: none, the nodes list the routers)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `Usage: switchyard init [--cluster [--masters N]] [DIR]

Writes DIR/%s (DIR defaults to "."): the embedded default
configuration, commented, with an example of every auth method.

With --cluster, writes a local example cluster on loopback instead, one file per node:
master1.yaml (the master, management on ws://127.0.0.1:9300/ws; --masters 3: three
replicas, on 9300, 9310, 9320), proxy1.yaml and proxy2.yaml (clients on 127.0.0.1:8080
and 127.0.0.1:8090) and router1.yaml .. router3.yaml (links on 127.0.0.1:9201 .. 9203),
sharing a generated cluster secret. The nodes follow the master's map; with
--masters 0 there is no master and every node lists the routers (static membership).
Existing files are never overwritten.
`, config.InitFileName)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 1 {
		fs.Usage()
		return errors.New("init: at most one directory")
	}
	dir := "."
	if fs.NArg() == 1 {
		dir = fs.Arg(0)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("init: %w", err)
	}
	if *cluster {
		if *masters < 0 || *masters > config.MaxMasterPeers {
			return fmt.Errorf("init: --masters %d: want 0 to %d (1 or 3 usually)", *masters, config.MaxMasterPeers)
		}
		return writeClusterInit(os.Stdout, dir, *masters)
	}
	name := filepath.Join(dir, config.InitFileName)
	if err := writeNew(name, config.InitFile()); err != nil {
		return fmt.Errorf("init: %w", err)
	}
	fmt.Printf("wrote %s\ncheck it:  switchyard check %s\nrun it:    switchyard start --config %s\n", name, name, name)
	return nil
}

// writeClusterInit writes the files of config.ClusterInitFilesMasters into dir with a
// fresh random secret (32 bytes from crypto/rand, in hex) written into every file, which
// are therefore created with mode 0600. It writes nothing when any of the files exists.
func writeClusterInit(w io.Writer, dir string, masters int) error {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("init: cluster secret: %w", err)
	}
	files := config.ClusterInitFilesMasters(hex.EncodeToString(key), masters)
	for _, f := range files {
		if _, err := os.Lstat(filepath.Join(dir, f.Name)); err == nil {
			return fmt.Errorf("init: %s already exists; not overwriting it (nor writing the other cluster files)", filepath.Join(dir, f.Name))
		}
	}
	var mastersFiles, routers, proxies []string
	for _, f := range files {
		name := filepath.Join(dir, f.Name)
		if err := writeNew(name, f.Data); err != nil {
			return fmt.Errorf("init: %w", err)
		}
		switch {
		case strings.HasPrefix(f.Name, "master"):
			mastersFiles = append(mastersFiles, name)
		case strings.HasPrefix(f.Name, config.RoleRouter):
			routers = append(routers, name)
		default:
			proxies = append(proxies, name)
		}
	}
	fmt.Fprintf(w, "wrote %s (one shared, generated cluster secret: keep the files private)\n", strings.Join(slices.Concat(mastersFiles, proxies, routers), ", "))
	fmt.Fprintf(w, "check them:\n  switchyard check --role router %s\n", strings.Join(routers, " "))
	fmt.Fprintf(w, "  switchyard check --role proxy %s\n", strings.Join(proxies, " "))
	if len(mastersFiles) > 0 {
		fmt.Fprintln(w, "run them, the master first:")
		for _, m := range mastersFiles {
			fmt.Fprintf(w, "  switchyard master --config %s\n", m)
		}
	} else {
		fmt.Fprintln(w, "run them, routers first:")
	}
	for _, r := range routers {
		fmt.Fprintf(w, "  switchyard router --config %s\n", r)
	}
	for _, p := range proxies {
		fmt.Fprintf(w, "  switchyard proxy --config %s\n", p)
	}
	fmt.Fprintln(w, "clients connect to ws://127.0.0.1:8080/ws or ws://127.0.0.1:8090/ws (RawSocket on the same ports)")
	return nil
}

// writeNew creates name with data (mode 0600), failing if it exists.
func writeNew(name string, data []byte) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%s already exists; not overwriting it", name)
	}
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// runCheck is `switchyard check [--role router|proxy] FILE...`: it loads each file as
// `switchyard start --config FILE` would (environment references and SWITCHYARD_*
// overrides included), validates it, and prints each problem as "path: message" or
// "FILE: ok". With --role it also checks that each file can run that cluster role
// (config.ClusterRole). Files given together that all have a cluster section are taken
// as the nodes of one cluster and must agree (config.CompareClusterFiles). It returns an
// error (exit status 1) when any file has a problem.
func runCheck(args []string) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	role := fs.String("role", "", "also check that each file suits this cluster command: router or proxy")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: switchyard check [--role router|proxy] FILE...\n\nValidates node configuration files (YAML or JSON); prints each problem as\n\"path: message\" and exits 1 if there is any. Files that all have a cluster\nsection are also checked to agree as the nodes of one cluster.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errors.New("check: no file given")
	}
	if *role != "" && *role != config.RoleRouter && *role != config.RoleProxy {
		return fmt.Errorf("check: --role %q: want %s or %s", *role, config.RoleRouter, config.RoleProxy)
	}
	bad := 0
	var names []string
	var cfgs []*config.Config
	for _, name := range fs.Args() {
		c, ok := checkFile(os.Stdout, name, *role, os.Getenv)
		if !ok {
			bad++
		}
		if c != nil && c.Cluster != nil {
			names, cfgs = append(names, name), append(cfgs, c)
		}
	}
	if len(cfgs) > 1 && len(cfgs) == fs.NArg() && !checkClusterFiles(os.Stdout, names, cfgs) {
		return fmt.Errorf("check: the %d files do not describe one cluster", len(cfgs))
	}
	if bad > 0 {
		return fmt.Errorf("check: %d of %d files have problems", bad, fs.NArg())
	}
	return nil
}

// checkClusterFiles prints whether the nodes' files, checked together, agree as one
// cluster must (config.CompareClusterFiles), and reports whether they do.
func checkClusterFiles(w io.Writer, names []string, cfgs []*config.Config) bool {
	problems := config.CompareClusterFiles(names, cfgs)
	if len(problems) == 0 {
		fmt.Fprintf(w, "cluster of %d files: ok\n", len(cfgs))
		return true
	}
	fmt.Fprintf(w, "cluster of %d files: %d problem(s)\n", len(cfgs), len(problems))
	for _, p := range problems {
		fmt.Fprintln(w, p.String())
	}
	return false
}

// checkFile prints "FILE: ok", or a "FILE: N problem(s)" line followed by one
// "path: message" line per problem, to w; it returns the configuration (nil when it
// did not load) and whether it is valid. A non-empty role (config.RoleRouter,
// config.RoleProxy) also checks ClusterRole.
func checkFile(w io.Writer, name, role string, getenv func(string) string) (*config.Config, bool) {
	c, err := config.Load(name)
	var problems []string
	var le *config.LoadError
	switch {
	case errors.As(err, &le):
		// Report what did not decode and, in the same run, what Validate finds in the
		// rest (a user fixes every problem at once, not one pass per kind).
		for _, p := range le.Problems {
			problems = append(problems, p.String())
		}
		if le.Partial != nil {
			if err := le.Partial.ApplyEnv(getenv); err != nil {
				problems = append(problems, "environment: "+err.Error())
			}
			for _, p := range le.ValidatePartial() {
				problems = append(problems, p.String())
			}
			problems = append(problems, roleProblems(le.Partial, role)...)
		}
	case err != nil:
		fmt.Fprintf(w, "%s: %v\n", name, err)
		return nil, false
	default:
		if err := c.ApplyEnv(getenv); err != nil {
			problems = append(problems, "environment: "+err.Error())
		}
		for _, p := range c.Validate() {
			problems = append(problems, p.String())
		}
		problems = append(problems, roleProblems(c, role)...)
	}
	if len(problems) == 0 {
		fmt.Fprintf(w, "%s: ok\n", name)
		return c, true
	}
	fmt.Fprintf(w, "%s: %d problem(s)\n", name, len(problems))
	for _, p := range problems {
		fmt.Fprintln(w, p)
	}
	return c, false
}

// roleProblems is c.ClusterRole(role) as a list of problems (none when role is empty).
func roleProblems(c *config.Config, role string) []string {
	if role == "" {
		return nil
	}
	if err := c.ClusterRole(role); err != nil {
		return []string{err.Error()}
	}
	return nil
}
