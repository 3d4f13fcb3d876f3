package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite docs/config.md")

func noEnv(string) string { return "" }

func parse(t *testing.T, src string, f Format) *Config {
	t.Helper()
	c, err := Parse([]byte(src), ParseOptions{Format: f, Getenv: noEnv})
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, src)
	}
	return c
}

// loadProblems parses src and returns its load problems as "path: message" strings.
func loadProblems(t *testing.T, src string, f Format, getenv func(string) string) []string {
	t.Helper()
	_, err := Parse([]byte(src), ParseOptions{Format: f, Getenv: getenv})
	var le *LoadError
	if !errors.As(err, &le) {
		t.Fatalf("Parse(%q): err = %v, want a *LoadError", src, err)
	}
	var out []string
	for _, p := range le.Problems {
		out = append(out, p.String())
	}
	return out
}

func TestDefault(t *testing.T) {
	c := Default()
	if c.Version != 1 || c.Node.LogLevel != "info" || c.Node.OutboundLimit != 4<<20 ||
		time.Duration(c.Node.ShutdownGrace) != 2*time.Second || c.Node.Admin != "" || c.Node.Loops != 0 {
		t.Errorf("node defaults: %+v", c.Node)
	}
	if len(c.Listeners) != 2 {
		t.Fatalf("listeners: %+v", c.Listeners)
	}
	u, r := c.Listeners[0], c.Listeners[1]
	if u.Address != ":8080" || u.Kind != KindUniversal || u.Path != "/ws" || u.MaxMessageSize != 1<<20 ||
		time.Duration(u.PingInterval) != 10*time.Second || time.Duration(u.PingTimeout) != 5*time.Second ||
		!reflect.DeepEqual(u.Serializers, []string{"json", "msgpack", "cbor", "ubjson", "flatbuffers"}) ||
		!reflect.DeepEqual(u.Auth, []string{"anonymous"}) || u.TLS != nil {
		t.Errorf("universal listener: %+v", u)
	}
	if r.Address != ":8081" || r.Kind != KindRawSocket {
		t.Errorf("rawsocket listener: %+v", r)
	}
	if len(c.Realms) != 1 || c.Realms[0].Name != "realm1" || c.Realms[0].Auth.Anonymous == nil ||
		c.Realms[0].Auth.Anonymous.Role != "anonymous" || c.Realms[0].Roles[0].Permissions[0].Match != "prefix" {
		t.Errorf("realms: %+v", c.Realms)
	}
	if p := c.Validate(); len(p) != 0 {
		t.Errorf("Default().Validate() = %v", p)
	}
	// Each call is a fresh value.
	c.Listeners[0].Serializers[0] = "x"
	if Default().Listeners[0].Serializers[0] != "json" {
		t.Error("Default shares memory between calls")
	}
}

func TestInitFileIsDefault(t *testing.T) {
	c := parse(t, string(InitFile()), FormatYAML)
	if !reflect.DeepEqual(c, Default()) {
		t.Errorf("init file loads to\n%+v\nwant Default()\n%+v", c, Default())
	}
	if p := c.Validate(); len(p) != 0 {
		t.Errorf("init file: %v", p)
	}
	if bytes.Contains(InitFile(), []byte("#?")) {
		t.Error("init file still holds example markers")
	}
}

func TestEmptyFileIsDefault(t *testing.T) {
	for _, src := range []string{"", "\n# only a comment\n", "{}", "version: 1"} {
		if c := parse(t, src, FormatAuto); !reflect.DeepEqual(c, Default()) {
			t.Errorf("%q: %+v, want Default()", src, c)
		}
	}
}

func TestYAMLAndJSONAreEquivalent(t *testing.T) {
	yml := `
node: {log_level: debug, shutdown_grace: 1m30s}
listeners:
  - address: "127.0.0.1:9000"
    kind: websocket
    path: /wamp
    serializers: [cbor]
    max_message_size: 1e6
realms:
  - name: com.example
    roles:
      - name: user
        permissions:
          - {uri: com.example.api., match: prefix, allow: {call: true}, disclose: {caller: true}}
    auth:
      anonymous: {role: user}
`
	jsn := `{"node": {"log_level": "debug", "shutdown_grace": "1m30s"},
 "listeners": [{"address": "127.0.0.1:9000", "kind": "websocket", "path": "/wamp",
   "serializers": ["cbor"], "max_message_size": 1000000}],
 "realms": [{"name": "com.example",
   "roles": [{"name": "user", "permissions": [{"uri": "com.example.api.", "match": "prefix",
     "allow": {"call": true}, "disclose": {"caller": true}}]}],
   "auth": {"anonymous": {"role": "user"}}}]}`
	a, b := parse(t, yml, FormatYAML), parse(t, jsn, FormatJSON)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("YAML\n%+v\nJSON\n%+v", a, b)
	}
	if c := parse(t, jsn, FormatAuto); !reflect.DeepEqual(a, c) {
		t.Error("auto-detected JSON differs")
	}
	if a.Listeners[0].MaxMessageSize != 1000000 || a.Listeners[0].PingInterval != Duration(10*time.Second) {
		t.Errorf("listener: %+v", a.Listeners[0])
	}
	// encoding/json round trip of a whole config (what a master would ship to nodes).
	for _, c := range []*Config{Default(), a} {
		j, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		if back := parse(t, string(j), FormatJSON); !reflect.DeepEqual(back, c) {
			t.Errorf("JSON round trip:\n%s\n%+v", j, back)
		}
	}
}

func TestLoadByExtension(t *testing.T) {
	dir := t.TempDir()
	for name, src := range map[string]string{
		"a.yaml": "node: {loops: 3}", "a.yml": "node: {loops: 3}",
		"a.json": `{"node": {"loops": 3}}`, "a.conf": `{"node": {"loops": 3}}`,
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := Load(p)
		if err != nil || c.Node.Loops != 3 {
			t.Errorf("%s: %v %+v", name, err, c)
		}
	}
	// JSON syntax in a .json file reports line and column.
	p := filepath.Join(dir, "bad.json")
	os.WriteFile(p, []byte("{\n \"node\": {,}\n}"), 0o644)
	_, err := Load(p)
	if err == nil || !strings.Contains(err.Error(), "line 2") || !strings.HasPrefix(err.Error(), p+": ") {
		t.Errorf("bad JSON: %v", err)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestUnknownKeys(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"verison: 1", `: unknown key "verison" (did you mean "version"?)`},
		{"node: {log_lvl: info}", `node: unknown key "log_lvl" (did you mean "log_level"?)`},
		{"listeners: [{address: ':1'}, {address: ':2', tls: {cert: x}}]", `listeners[1].tls: unknown key "cert"`},
		{"realms:\n- name: r\n  roles:\n  - name: a\n  - name: b\n    permissions:\n    - uri: x\n      mtch: exact\n",
			`realms[0].roles[1].permissions[0]: unknown key "mtch" (did you mean "match"?)`},
		{`{"realms": [{"name": "r", "auth": {"tickets": []}}]}`, `realms[0].auth: unknown key "tickets" (did you mean "ticket"?)`},
		{"realms: [{name: r, zzzzzzzz: 1}]", `realms[0]: unknown key "zzzzzzzz"`},
	} {
		got := strings.Join(loadProblems(t, tc.src, FormatAuto, noEnv), "\n")
		if !strings.Contains(got, tc.want) && !(strings.HasPrefix(tc.want, ": ") && strings.HasPrefix(got, tc.want[2:])) {
			t.Errorf("%q:\n got %s\nwant %s", tc.src, got, tc.want)
		}
	}
}

func TestTypeErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"node: {loops: many}", `node.loops: expected an integer, got the string "many"`},
		{"node: {loops: 1.5}", `node.loops: expected an integer, got 1.5`},
		{"node: {shutdown_grace: 10}", `node.shutdown_grace: expected a string, got the number 10`},
		{"node: {shutdown_grace: 10x}", `node.shutdown_grace: invalid duration "10x"`},
		{"listeners: [{address: ':1', ping_timeout: soon}]", `listeners[0].ping_timeout: invalid duration "soon"`},
		{"listeners: {address: ':1'}", `listeners: expected a list, got a mapping`},
		{"listeners: [{address: ':1', serializers: json}]", `listeners[0].serializers: expected a list`},
		{"realms: [{name: yes}]", `realms[0].name: expected a string, got the boolean true (quote it)`},
		{"realms: [{name: r, roles: [{name: a, permissions: [{uri: x, allow: {call: 1}}]}]}]",
			`realms[0].roles[0].permissions[0].allow.call: expected true or false`},
		{"node: [1]", "node: expected a mapping, got a list"},
		{"- 1", "top level, got a list"},
		{"node: {loops: 1", "YAML:"},
		{"listeners: [~]", "listeners[0]: empty list element"},
	} {
		got := strings.Join(loadProblems(t, tc.src, FormatAuto, noEnv), "\n")
		if !strings.Contains(got, tc.want) {
			t.Errorf("%q:\n got %s\nwant %s", tc.src, got, tc.want)
		}
	}
}

func TestAbsentKeysTakeDefaults(t *testing.T) {
	c := parse(t, "listeners: [{address: ':9'}, {address: ':10', max_message_size: 0, tls: {cert_file: c, key_file: k}}]\nrealms: [{name: r, auth: {cookie: {}, wampcra: [{authid: a, secret: s, role: x}]}, roles: [{name: x, permissions: [{uri: a.b}]}]}]", FormatYAML)
	l := c.Listeners[0]
	if l.Kind != KindUniversal || l.Path != "/ws" || l.MaxMessageSize != 1<<20 || len(l.Serializers) != 5 || l.Auth != nil || l.TLS != nil {
		t.Errorf("listener defaults: %+v", l)
	}
	if c.Listeners[1].MaxMessageSize != 0 || c.Listeners[1].TLS.MinVersion != "1.2" {
		t.Errorf("explicit zero or nested default lost: %+v", c.Listeners[1])
	}
	r := c.Realms[0]
	if r.Auth.Anonymous != nil || r.Authorizer != nil || r.Auth.Cookie.Name != "cbtid" ||
		r.Auth.WAMPCRA[0].Iterations != 1000 || r.Auth.WAMPCRA[0].KeyLen != 32 || r.Roles[0].Permissions[0].Match != "exact" {
		t.Errorf("realm defaults: %+v", r)
	}
	if c.Node != Default().Node {
		t.Errorf("node: %+v", c.Node)
	}
}

func TestApplyEnv(t *testing.T) {
	env := map[string]string{
		"SWITCHYARD_LOG_LEVEL":                    "debug",
		"SWITCHYARD_LOOPS":                        "4",
		"SWITCHYARD_SHUTDOWN_GRACE":               "7s",
		"SWITCHYARD_ADMIN":                        "127.0.0.1:9090",
		"SWITCHYARD_LISTENERS_1_ADDRESS":          ":9191",
		"SWITCHYARD_LISTENERS_0_PING_INTERVAL":    "1m",
		"SWITCHYARD_LISTENERS_0_TLS_CERT_FILE":    "ignored: listener 0 has no tls block",
		"SWITCHYARD_LISTENERS_0_MAX_MESSAGE_SIZE": "65536",
	}
	c := Default()
	if err := c.ApplyEnv(func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Node.LogLevel, want.Node.Loops, want.Node.ShutdownGrace, want.Node.Admin = "debug", 4, Duration(7*time.Second), "127.0.0.1:9090"
	want.Listeners[1].Address = ":9191"
	want.Listeners[0].PingInterval = Duration(time.Minute)
	want.Listeners[0].MaxMessageSize = 65536
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got %+v\nwant %+v", c, want)
	}

	c = Default()
	err := c.ApplyEnv(func(k string) string {
		return map[string]string{"SWITCHYARD_LOOPS": "lots", "SWITCHYARD_LISTENERS_1_PING_TIMEOUT": "5"}[k]
	})
	if err == nil || !strings.Contains(err.Error(), "SWITCHYARD_LOOPS (overrides node.loops)") ||
		!strings.Contains(err.Error(), "SWITCHYARD_LISTENERS_1_PING_TIMEOUT (overrides listeners[1].ping_timeout)") {
		t.Errorf("bad values: %v", err)
	}
	if len(EnvVars()) == 0 || EnvVars()[0].Path != "node.log_level" {
		t.Errorf("EnvVars: %+v", EnvVars())
	}
}

func TestEnvSecretReferences(t *testing.T) {
	src := `realms:
- name: r
  roles: [{name: u}]
  auth:
    ticket: [{authid: joe, ticket: "${env:JOE_TICKET}", role: u}, {authid: ann, ticket: "plain", role: u}]
    wampcra: [{authid: pete, secret: "${env:PETE}", role: u}]
`
	env := map[string]string{"JOE_TICKET": "s3cret", "PETE": "pw"}
	c, err := Parse([]byte(src), ParseOptions{Getenv: func(k string) string { return env[k] }})
	if err != nil {
		t.Fatal(err)
	}
	if a := c.Realms[0].Auth; a.Ticket[0].Ticket != "s3cret" || a.Ticket[1].Ticket != "plain" || a.WAMPCRA[0].Secret != "pw" {
		t.Errorf("resolved: %+v", a)
	}
	got := strings.Join(loadProblems(t, src, FormatYAML, noEnv), "\n")
	for _, want := range []string{
		"realms[0].auth.ticket[0].ticket: environment variable JOE_TICKET (referenced as ${env:JOE_TICKET}) is not set",
		"realms[0].auth.wampcra[0].secret: environment variable PETE",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("unset: got %s\nwant %s", got, want)
		}
	}
	got = strings.Join(loadProblems(t, `listeners: [{address: "${env:ADDR}"}]`, FormatYAML, noEnv), "\n")
	if !strings.Contains(got, "listeners[0].address: ${env:ADDR}: environment references are resolved only in secret fields") {
		t.Errorf("non-secret field: %s", got)
	}
}

func TestRelativeFilesFollowTheConfigFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "n.yaml")
	os.WriteFile(p, []byte("listeners: [{address: ':1', tls: {cert_file: tls/c.pem, key_file: /abs/k.pem}}]\nrealms: [{name: r, auth: {cookie: {file: cookies.dat}}}]"), 0o644)
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if tl := c.Listeners[0].TLS; tl.CertFile != filepath.Join(dir, "tls/c.pem") || tl.KeyFile != "/abs/k.pem" || tl.ClientCAFile != "" {
		t.Errorf("tls: %+v", tl)
	}
	if f := c.Realms[0].Auth.Cookie.File; f != filepath.Join(dir, "cookies.dat") {
		t.Errorf("cookie file: %s", f)
	}
}

// TestInitExamples switches on every commented-out example of the init file: with its
// TLS files and secrets in place it must load and validate.
func TestInitExamples(t *testing.T) {
	dir := t.TempDir()
	writeTLSFiles(t, filepath.Join(dir, "tls"), "server.crt", "server.key", "client-ca.crt")
	p := filepath.Join(dir, "switchyard.yaml")
	if err := os.WriteFile(p, initExamples(), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"JOE_TICKET", "PETER_SECRET", "BACKEND1_SECRET"} {
		t.Setenv(k, "x-"+k)
	}
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Listeners) != 4 || len(c.Realms) != 2 {
		t.Fatalf("examples not switched on: %d listeners, %d realms", len(c.Listeners), len(c.Realms))
	}
	a := c.Realms[1].Auth
	if len(a.Ticket) != 1 || len(a.WAMPCRA) != 2 || len(a.Cryptosign) != 1 || len(a.TLS) != 1 ||
		a.Cookie == nil || a.Authenticator == nil || c.Realms[1].Authorizer == nil || a.Ticket[0].Ticket != "x-JOE_TICKET" {
		t.Errorf("realm2 auth: %+v", a)
	}
	if p := c.Validate(); len(p) != 0 {
		t.Errorf("examples: %v", p)
	}
}

// TestInitCheckRoundTrip does what `switchyard init` then `switchyard check` do.
func TestInitCheckRoundTrip(t *testing.T) {
	p := filepath.Join(t.TempDir(), InitFileName)
	if err := os.WriteFile(p, InitFile(), 0o600); err != nil {
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
		t.Fatal(p)
	}
	if !reflect.DeepEqual(c, Default()) {
		t.Error("init file does not load to Default()")
	}
}

func TestDocsUpToDate(t *testing.T) {
	const path = "../docs/config.md"
	want := Markdown()
	if *update {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("docs/config.md is out of date (%v): regenerate it with `go generate ./config` or `go test ./config -update`", err)
	}
}

func TestProblemString(t *testing.T) {
	if s := (Problem{Path: "a.b", Message: "m"}).String(); s != "a.b: m" {
		t.Error(s)
	}
	if s := (Problem{Message: "m"}).String(); s != "m" {
		t.Error(s)
	}
	e := &LoadError{File: "f.yaml", Problems: []Problem{{"a", "x"}, {"b", "y"}}}
	if e.Error() != "f.yaml: a: x\nf.yaml: b: y" {
		t.Error(e.Error())
	}
}

func FuzzLoad(f *testing.F) {
	f.Add(InitFile())
	f.Add(initExamples())
	j, _ := json.Marshal(Default())
	f.Add(j)
	f.Add([]byte(`{"realms": [{"name": "r", "auth": {"ticket": [{"ticket": "${env:X}"}]}}]}`))
	f.Add([]byte("listeners: [~, 1, {tls: []}]\nnode: {loops: 1e99}"))
	f.Add([]byte("&a [*a]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, format := range []Format{FormatAuto, FormatYAML, FormatJSON} {
			c, err := Parse(data, ParseOptions{Format: format, Getenv: func(k string) string { return k }})
			if err == nil {
				loadRoundTrip(t, c)
				_ = c.Validate()
				_ = c.ApplyEnv(func(k string) string { return "1" })
			} else if c != nil {
				t.Fatal("config and error")
			}
		}
		// JSON is YAML too: a file both readers accept means the same configuration.
		cj, errj := Parse(data, ParseOptions{Format: FormatJSON, Getenv: func(k string) string { return k }})
		cy, erry := Parse(data, ParseOptions{Format: FormatYAML, Getenv: func(k string) string { return k }})
		if errj == nil && erry == nil && !reflect.DeepEqual(cj, cy) {
			t.Fatalf("%q reads differently as JSON and as YAML:\n%+v\n%+v", data, cj, cy)
		}
	})
}

// loadRoundTrip: a loaded configuration written back as JSON and as YAML loads again to
// the same configuration (no field lost, renamed or changed on the way).
func loadRoundTrip(t *testing.T, c *Config) {
	t.Helper()
	// The loader reads both [] and a left-out list as nil, but a left-out list with a
	// default (listeners, realms, serializers) takes the default: write nil lists as []
	// so that they keep meaning "empty".
	w := reflect.New(reflect.TypeOf(*c))
	w.Elem().Set(reflect.ValueOf(*c))
	emptyLists(w.Elem())
	j, err := json.Marshal(w.Interface())
	if err != nil {
		t.Fatalf("json.Marshal(%+v): %v", c, err)
	}
	legs := []struct {
		f    Format
		data []byte
	}{{FormatJSON, j}}
	// The YAML writer refuses some strings JSON carries (DEL, U+007F, is a control
	// character to it); the loader is not at fault there, so that leg is skipped.
	if y, err := yaml.JSONToYAML(j); err == nil {
		legs = append(legs, struct {
			f    Format
			data []byte
		}{FormatYAML, y})
	}
	for _, in := range legs {
		// Secrets were resolved by the first Parse; the second must not resolve again.
		c2, err := Parse(in.data, ParseOptions{Format: in.f, Getenv: func(k string) string { return "UNRESOLVED:" + k }})
		if err != nil {
			t.Fatalf("%s written back does not load: %v\n%s", in.f, err, in.data)
		}
		if !reflect.DeepEqual(c, c2) {
			t.Fatalf("%s round trip changed the configuration:\n%s\n%+v\n%+v", in.f, in.data, c, c2)
		}
	}
}

// emptyLists replaces the nil slices reachable from v (through structs, pointers and
// slices, copying what it changes) with empty ones.
func emptyLists(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			p := reflect.New(v.Type().Elem())
			p.Elem().Set(v.Elem())
			emptyLists(p.Elem())
			v.Set(p)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				emptyLists(v.Field(i))
			}
		}
	case reflect.Slice:
		if v.IsNil() {
			v.Set(reflect.MakeSlice(v.Type(), 0, 0))
			return
		}
		s := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		reflect.Copy(s, v)
		for i := range s.Len() {
			emptyLists(s.Index(i))
		}
		v.Set(s)
	}
}
