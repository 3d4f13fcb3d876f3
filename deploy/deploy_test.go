package deploy

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/switchyard-wamp/switchyard/config"
)

// pending are config keys and environment overrides (path prefixes) the manifests may
// use before the schema has them: the checks that need them are skipped and reported.
// None now: the master's section, cluster.masters and SWITCHYARD_MASTER_* are checked
// like every other key.
var pending = []string{}

func isPending(s string) bool {
	for _, p := range pending {
		if s == p || strings.HasPrefix(s, p+".") || strings.HasPrefix(s, p+"[") ||
			(strings.HasSuffix(p, "_") && strings.HasPrefix(s, p)) {
			return true
		}
	}
	return false
}

// skipped collects what could not be checked, reported at the end of each test.
type skipped struct {
	mu    sync.Mutex
	items []string
}

func (s *skipped) add(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if item := fmt.Sprintf(format, args...); !slices.Contains(s.items, item) {
		s.items = append(s.items, item)
	}
}

func (s *skipped) report(t *testing.T) {
	for _, it := range s.items {
		t.Logf("SKIPPED (not in this build's schema or commands yet): %s", it)
	}
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// binary builds cmd/switchyard once per test run.
func binary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "switchyard-deploy-test")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "switchyard")
		out, err := exec.Command("go", "build", "-o", binPath, "../cmd/switchyard").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v: %s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

var flagLine = regexp.MustCompile(`(?m)^\s+-{1,2}([A-Za-z0-9][A-Za-z0-9-]*)`)

// flagsOf returns the flags `switchyard sub -h` lists; ok is false when the binary has
// no such command.
func flagsOf(t *testing.T, sub string) (flags []string, ok bool) {
	t.Helper()
	out, _ := exec.Command(binary(t), sub, "-h").CombinedOutput()
	if strings.Contains(string(out), "unknown command") {
		return nil, false
	}
	for _, m := range flagLine.FindAllStringSubmatch(string(out), -1) {
		flags = append(flags, m[1])
	}
	if len(flags) == 0 {
		t.Fatalf("switchyard %s -h lists no flags:\n%s", sub, out)
	}
	return flags, true
}

// checkCommand checks a switchyard command line (without the binary): the command
// exists and every --flag is one of its flags. It returns the flags' values by name.
func checkCommand(t *testing.T, where string, args []string, skip *skipped) map[string]string {
	t.Helper()
	if len(args) == 0 {
		t.Fatalf("%s: no switchyard command", where)
	}
	flags, ok := flagsOf(t, args[0])
	if !ok {
		if args[0] == "master" {
			skip.add("%s: command %q and its flags %v", where, args[0], args[1:])
			return nil
		}
		t.Fatalf("%s: switchyard has no command %q", where, args[0])
	}
	vals := map[string]string{}
	for i := 1; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			t.Errorf("%s: %q is not a flag of switchyard %s (positional arguments are not used here)", where, a, args[0])
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !slices.Contains(flags, name) {
			t.Errorf("%s: switchyard %s has no flag --%s (it has %v)", where, args[0], name, flags)
			continue
		}
		if !hasVal && i+1 < len(args) {
			i++
			val = args[i]
		}
		vals[name] = val
	}
	return vals
}

// portOf returns the port of a host:port address ("" if there is none).
func portOf(addr string) string {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	return p
}

// TestDockerfile: a multi-stage build of a static binary (CGO_ENABLED=0), a non-root
// USER in the final stage, and a command whose flags exist and whose ports are exposed.
func TestDockerfile(t *testing.T) {
	var skip skipped
	defer skip.report(t)
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var froms int
	var static bool
	var user string
	var expose, entry, cmd []string
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		kw, rest, _ := strings.Cut(line, " ")
		switch strings.ToUpper(kw) {
		case "FROM":
			froms++
			user = "" // USER is per stage
		case "RUN":
			static = static || (strings.Contains(rest, "CGO_ENABLED=0") && strings.Contains(rest, "go build"))
		case "USER":
			user = rest
		case "EXPOSE":
			expose = strings.Fields(rest)
		case "ENTRYPOINT", "CMD":
			var list []string
			if err := yaml.Unmarshal([]byte(rest), &list); err != nil {
				t.Fatalf("%s is not in exec form: %s", kw, rest)
			}
			if strings.ToUpper(kw) == "CMD" {
				cmd = list
			} else {
				entry = list
			}
		}
	}
	if froms < 2 {
		t.Errorf("not a multi-stage build (%d FROM)", froms)
	}
	if !static {
		t.Error("no RUN with CGO_ENABLED=0 go build: the binary must be static")
	}
	if u, _, _ := strings.Cut(user, ":"); u == "" || u == "0" || u == "root" {
		t.Errorf("final stage runs as %q, want a non-root USER", user)
	}
	if !slices.Equal(entry, []string{"/switchyard"}) {
		t.Errorf("ENTRYPOINT %v, want [/switchyard]", entry)
	}
	vals := checkCommand(t, "Dockerfile CMD", cmd, &skip)
	for _, f := range []string{"listen", "admin"} {
		if p := portOf(vals[f]); p == "" || !slices.Contains(expose, p) {
			t.Errorf("CMD --%s %q: port not in EXPOSE %v", f, vals[f], expose)
		}
	}
}

// TestSystemdUnit: the unit's commands run switchyard with flags it has; reload is
// SIGHUP and stop drains with SIGUSR2.
func TestSystemdUnit(t *testing.T) {
	var skip skipped
	defer skip.report(t)
	b, err := os.ReadFile("systemd/switchyard.service")
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{}
	section := ""
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[':
			section = strings.Trim(line, "[]")
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("bad line %q", line)
			}
			keys[section+"."+k] = v
		}
	}
	start := strings.Fields(keys["Service.ExecStart"])
	if len(start) < 2 || filepath.Base(start[0]) != "switchyard" {
		t.Fatalf("ExecStart %q does not run switchyard", keys["Service.ExecStart"])
	}
	vals := checkCommand(t, "ExecStart", start[1:], &skip)
	if _, ok := vals["config"]; !ok {
		t.Error("ExecStart has no --config")
	}
	if !strings.Contains(keys["Service.ExecReload"], "-HUP") || !strings.Contains(keys["Service.ExecStop"], "-USR2") {
		t.Errorf("ExecReload %q / ExecStop %q: want SIGHUP and the SIGUSR2 drain", keys["Service.ExecReload"], keys["Service.ExecStop"])
	}
	if keys["Service.DynamicUser"] != "yes" && keys["Service.User"] == "" {
		t.Error("the unit runs as root: want DynamicUser=yes or User=")
	}
	if keys["Install.WantedBy"] == "" {
		t.Error("no [Install] WantedBy")
	}
}

// object is one Kubernetes object of the manifests.
type object struct {
	file string
	m    map[string]any
}

func (o object) kind() string { s, _ := o.m["kind"].(string); return s }
func (o object) name() string { return str(o.m, "metadata", "name") }

// get walks nested maps by keys.
func get(v any, path ...string) any {
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func str(v any, path ...string) string { s, _ := get(v, path...).(string); return s }

func list(v any, path ...string) []any { l, _ := get(v, path...).([]any); return l }

func loadManifests(t *testing.T) []object {
	t.Helper()
	files, err := filepath.Glob("k8s/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in k8s/: %v", err)
	}
	var objs []object
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(b), -1) {
			if strings.TrimSpace(doc) == "" {
				continue
			}
			var m map[string]any
			if err := yaml.UnmarshalStrict([]byte(doc), &m); err != nil {
				t.Fatalf("%s document %d: %v", f, i, err)
			}
			if m["apiVersion"] == nil || m["kind"] == nil || str(m, "metadata", "name") == "" {
				t.Fatalf("%s document %d: no apiVersion, kind or metadata.name", f, i)
			}
			objs = append(objs, object{f, m})
		}
	}
	return objs
}

// k8sVar expands $(NAME) references of container env values as the kubelet does,
// with a stand-in for downward-API values.
func k8sVar(s string, env map[string]string) string {
	return regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`).ReplaceAllStringFunc(s, func(m string) string {
		if v, ok := env[m[2:len(m)-1]]; ok {
			return v
		}
		return m
	})
}

// TestKubernetesManifests parses every manifest and checks the cluster they describe:
// a master StatefulSet of 3 replicas with a volume claim for its Raft data, router and
// proxy Deployments, Services that select them and name ports they declare, probes on
// /healthz and /readyz of the admin port; every command and flag exists in the built
// binary, every SWITCHYARD_* override and every config key exists in the schema (the
// ConfigMap files are parsed and validated by the config package), and every port the
// configs listen on is a declared container port.
func TestKubernetesManifests(t *testing.T) {
	var skip skipped
	defer skip.report(t)
	objs := loadManifests(t)
	byKind := map[string][]object{}
	for _, o := range objs {
		byKind[o.kind()] = append(byKind[o.kind()], o)
	}
	configMaps := map[string]object{}
	for _, o := range byKind["ConfigMap"] {
		configMaps[o.name()] = o
	}
	envVars := map[string]bool{}
	for _, e := range config.EnvVars() {
		envVars[e.Name] = true
	}

	roles := map[string]object{}
	for _, w := range append(slices.Clone(byKind["StatefulSet"]), byKind["Deployment"]...) {
		where := w.file + " " + w.kind() + " " + w.name()
		spec := get(w.m, "spec", "template", "spec")
		containers := list(spec, "containers")
		if len(containers) != 1 {
			t.Fatalf("%s: %d containers, want 1", where, len(containers))
		}
		c := containers[0]
		var args []string
		for _, a := range list(c, "args") {
			args = append(args, a.(string))
		}
		if len(args) == 0 {
			t.Fatalf("%s: no args (the switchyard command)", where)
		}
		role := args[0]
		roles[role] = w
		flagVals := checkCommand(t, where+" args", args, &skip)

		// Ports by name, and the env as the pod sees it.
		ports := map[string]string{}
		for _, p := range list(c, "ports") {
			ports[str(p, "name")] = fmt.Sprint(get(p, "containerPort"))
		}
		env := map[string]string{}
		for _, e := range list(c, "env") {
			name, val := str(e, "name"), str(e, "value")
			if get(e, "valueFrom") != nil {
				val = "x-" + strings.ToLower(name) // downward API or Secret: a stand-in
				switch ref := str(e, "valueFrom", "fieldRef", "fieldPath"); {
				case ref == "status.podIP":
					val = "10.0.0.7"
				case ref == "metadata.name" && w.kind() == "StatefulSet":
					val = w.name() + "-0" // a StatefulSet's pods are NAME-0, NAME-1, ...
				}
				if get(e, "valueFrom", "secretKeyRef") != nil {
					val = "0123456789abcdef0123456789abcdef"
				}
			}
			env[name] = k8sVar(val, env)
			if strings.HasPrefix(name, "SWITCHYARD_") && !envVars[name] {
				switch {
				case isPending(name):
					skip.add("%s: environment override %s", where, name)
				case name == "SWITCHYARD_CLUSTER_SECRET": // a ${env:...} reference, checked below
				default:
					t.Errorf("%s: %s is not an environment override of the config (config.EnvVars)", where, name)
				}
			}
		}

		// Probes: /healthz and /readyz on a declared port.
		for probe, path := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz"} {
			if got := str(c, probe, "httpGet", "path"); got != path {
				t.Errorf("%s: %s path %q, want %s", where, probe, got, path)
			}
			if p := fmt.Sprint(get(c, probe, "httpGet", "port")); ports[p] == "" && !slices.Contains(mapsValues(ports), p) {
				t.Errorf("%s: %s port %q is not a container port", where, probe, p)
			}
		}
		if pre := list(c, "lifecycle", "preStop", "exec", "command"); pre != nil {
			var cmd []string
			for _, a := range pre {
				cmd = append(cmd, a.(string))
			}
			if cmd[0] != "/switchyard" {
				t.Errorf("%s: preStop runs %q, the image has /switchyard only", where, cmd[0])
			} else if vals := checkCommand(t, where+" preStop", cmd[1:], &skip); vals != nil {
				if p := portOf(vals["admin"]); p != "" && p != ports["admin"] {
					t.Errorf("%s: preStop drains admin port %s, the admin container port is %s", where, p, ports["admin"])
				}
			}
		}

		// The mounted config file: parsed and validated by the config package.
		file := flagVals["config"]
		if file == "" && role != "master" {
			t.Fatalf("%s: no --config", where)
		}
		if file == "" {
			file = args[slices.Index(args, "--config")+1]
		}
		var cmName string
		for _, m := range list(c, "volumeMounts") {
			if strings.HasPrefix(file, str(m, "mountPath")+"/") {
				for _, v := range list(spec, "volumes") {
					if str(v, "name") == str(m, "name") {
						cmName = str(v, "configMap", "name")
					}
				}
			}
		}
		cm, ok := configMaps[cmName]
		if !ok {
			t.Fatalf("%s: --config %s is not in a mounted ConfigMap of the manifests", where, file)
		}
		data := str(cm.m, "data", filepath.Base(file))
		if data == "" {
			t.Fatalf("%s: ConfigMap %s has no key %s", where, cmName, filepath.Base(file))
		}
		listen := checkConfig(t, where, data, env, &skip)
		for _, a := range listen {
			if p := portOf(a); p != "" && p != "0" && !slices.Contains(mapsValues(ports), p) {
				t.Errorf("%s: the config listens on %s, port not declared in the container ports %v", where, a, ports)
			}
		}
		for name := range env {
			if strings.Contains(data, "${env:"+name+"}") {
				delete(env, name)
			}
		}
		for _, ref := range regexp.MustCompile(`\$\{env:([A-Za-z0-9_]+)\}`).FindAllStringSubmatch(data, -1) {
			if _, ok := env[ref[1]]; !ok && !slices.ContainsFunc(list(c, "env"), func(e any) bool { return str(e, "name") == ref[1] }) {
				t.Errorf("%s: the config references ${env:%s}, the container does not set it", where, ref[1])
			}
		}
	}

	// The cluster's shape.
	master, ok := roles["master"]
	if !ok || master.kind() != "StatefulSet" {
		t.Fatal("no master StatefulSet (args: master ...)")
	}
	if r := get(master.m, "spec", "replicas"); fmt.Sprint(r) != "3" {
		t.Errorf("master replicas %v, want 3", r)
	}
	claims := list(master.m, "spec", "volumeClaimTemplates")
	if len(claims) == 0 {
		t.Error("master has no volumeClaimTemplates for its Raft data")
	}
	for _, cl := range claims {
		mounted := false
		for _, m := range list(get(master.m, "spec", "template", "spec"), "containers")[0].(map[string]any)["volumeMounts"].([]any) {
			mounted = mounted || str(m, "name") == str(cl, "metadata", "name")
		}
		if !mounted {
			t.Errorf("volume claim %s is not mounted", str(cl, "metadata", "name"))
		}
	}
	for _, role := range []string{"router", "proxy"} {
		if w, ok := roles[role]; !ok || w.kind() != "Deployment" {
			t.Errorf("no %s Deployment", role)
		}
	}
	// Services select a workload and target its ports.
	for _, s := range byKind["Service"] {
		sel, _ := get(s.m, "spec", "selector").(map[string]any)
		var target *object
		for _, w := range roles {
			labels, _ := get(w.m, "spec", "template", "metadata", "labels").(map[string]any)
			match := len(sel) > 0
			for k, v := range sel {
				match = match && labels[k] == v
			}
			if match {
				target = &w
			}
		}
		if target == nil {
			t.Errorf("Service %s selects no workload", s.name())
			continue
		}
		c := list(get(target.m, "spec", "template", "spec"), "containers")[0]
		names := map[string]bool{}
		for _, p := range list(c, "ports") {
			names[str(p, "name")] = true
			names[fmt.Sprint(get(p, "containerPort"))] = true
		}
		for _, p := range list(s.m, "spec", "ports") {
			if tp := fmt.Sprint(get(p, "targetPort")); !names[tp] {
				t.Errorf("Service %s: targetPort %s is not a port of %s", s.name(), tp, target.name())
			}
		}
	}
	if sn := str(master.m, "spec", "serviceName"); !slices.ContainsFunc(byKind["Service"], func(o object) bool { return o.name() == sn }) {
		t.Errorf("master serviceName %q is not a Service", sn)
	}
}

func mapsValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

var unknownKey = regexp.MustCompile(`^unknown key "([^"]+)"`)

// checkConfig parses a config file of a ConfigMap with the config package, applies the
// container's environment overrides and validates it. Problems on keys the schema does
// not have yet (pending) are reported as skipped; any other problem fails. It returns
// the addresses the config listens on.
func checkConfig(t *testing.T, where, data string, env map[string]string, skip *skipped) []string {
	t.Helper()
	master := regexp.MustCompile(`(?m)^master:`).MatchString(data)
	getenv := func(k string) string { return env[k] }
	cfg, err := config.Parse([]byte(data), config.ParseOptions{Format: config.FormatYAML, Getenv: getenv})
	var le *config.LoadError
	if errors.As(err, &le) {
		pendingOnly := true
		for _, p := range le.Problems {
			if m := unknownKey.FindStringSubmatch(p.Message); m != nil && isPending(strings.TrimPrefix(p.Path+"."+m[1], ".")) {
				skip.add("%s: config key %s", where, strings.TrimPrefix(p.Path+"."+m[1], "."))
			} else {
				pendingOnly = false
				t.Errorf("%s: config %s", where, p)
			}
		}
		if pendingOnly {
			// Check what the schema knows: the file without the pending keys.
			var tree map[string]any
			if err := yaml.Unmarshal([]byte(data), &tree); err != nil {
				t.Fatal(err)
			}
			delete(tree, "master")
			if cl, ok := tree["cluster"].(map[string]any); ok {
				delete(cl, "masters")
				if _, ok := tree["master"]; !ok && cl["routers"] == nil {
					// Without masters the schema wants the static membership.
					// A router is one of them (it registers itself with the master).
					r := map[string]any{"name": "stand-in-router", "link": "10.0.0.9:9201"}
					if env["SWITCHYARD_CLUSTER_LINK"] != "" {
						r = map[string]any{"name": env["SWITCHYARD_CLUSTER_NODE"], "link": env["SWITCHYARD_CLUSTER_LINK"]}
					}
					cl["routers"] = []any{r}
					skip.add("%s: cluster.routers stood in for cluster.masters to validate the rest", where)
				}
			}
			stripped, _ := yaml.Marshal(tree)
			if cfg, err = config.Parse(stripped, config.ParseOptions{Format: config.FormatYAML, Getenv: getenv}); err != nil {
				t.Errorf("%s: config without the pending keys: %v", where, err)
				return nil
			}
		} else {
			return nil
		}
	} else if err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	if err := cfg.ApplyEnv(getenv); err != nil {
		t.Errorf("%s: environment: %v", where, err)
	}
	var listen []string
	for _, p := range cfg.Validate() {
		if isPending(p.Path) {
			skip.add("%s: validation of %s (%s)", where, p.Path, p.Message)
			continue
		}
		t.Errorf("%s: config %s", where, p)
	}
	if cfg.Node.Admin != "" {
		listen = append(listen, cfg.Node.Admin)
	} else {
		t.Errorf("%s: node.admin is empty: the probes need the admin listener", where)
	}
	if !master { // a master serves no client listener (the defaults fill them in)
		for _, l := range cfg.Listeners {
			listen = append(listen, l.Address)
		}
	}
	if cfg.Cluster != nil && cfg.Cluster.Link != "" {
		listen = append(listen, cfg.Cluster.Link)
	}
	for _, k := range []string{"SWITCHYARD_MASTER_LISTEN", "SWITCHYARD_MASTER_RAFT"} {
		if v := env[k]; v != "" {
			listen = append(listen, v)
		}
	}
	if m := regexp.MustCompile(`(?m)^\s+listen:\s*"?([^"\s]+)`).FindStringSubmatch(data); m != nil {
		listen = append(listen, m[1]) // master.listen (read from the text while the schema lacks it)
	}
	return listen
}
