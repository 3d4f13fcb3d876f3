package config

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
)

// Markdown renders the configuration reference (docs/config.md) from the struct tags of
// Config, followed by the file `switchyard init` writes and one file of
// `switchyard init --cluster`. The output is deterministic;
// safe for concurrent use.
func Markdown() []byte {
	var b bytes.Buffer
	b.WriteString(`# switchyard configuration reference

<!-- Generated from the struct tags in config/config.go by ` + "`go generate ./config`" + `
(or ` + "`go test ./config -update`" + `). Do not edit by hand. -->

A node reads one configuration file, YAML or JSON (the same schema), given with
` + "`switchyard start --config FILE`" + `. Without a file, ` + "`switchyard start`" + ` runs the embedded
default shown at the end of this page. ` + "`switchyard init [DIR]`" + ` writes that default as a
commented ` + "`DIR/switchyard.yaml`" + `, with a commented-out example of every listener option
and auth method; ` + "`switchyard check FILE`" + ` prints every problem of a file as ` + "`path: message`" + `.

Rules:

- A key left out takes its default (the **default** column). An explicit value, even
  ` + "`0`" + ` or ` + "`\"\"`" + `, is kept and checked. ` + "`listeners`" + ` and ` + "`realms`" + ` left out take the
  embedded default lists.
- An unknown key is an error that names its path, e.g.
  ` + "`realms[0].roles[0].permissions[0]: unknown key \"mtch\" (did you mean \"match\"?)`" + `.
- Durations are Go duration strings: ` + "`500ms`, `10s`, `1m30s`, `168h`" + `.
- Secrets (fields marked *secret*) may be written ` + "`\"${env:NAME}\"`" + `: the value is read from
  the environment variable NAME when the file is loaded; an unset variable is an error.
- File names (fields marked *file*) are relative to the directory of the config file.
- Environment overrides (below) win over the file, and the command-line flags of
  ` + "`switchyard start`" + ` (` + "`--log-level`, `--admin`" + ` of router and proxy) win over both.
- ` + "`cluster`" + ` left out: a standalone node (` + "`switchyard start`" + `). With it, the file describes one
  node of a cluster (` + "`switchyard router`" + ` or ` + "`switchyard proxy`" + `); the example at the end of
  this page comes from ` + "`switchyard init --cluster DIR`" + `. ` + "`switchyard check --role router|proxy`" + `
  also checks that each file suits that command, and files checked together that all
  have a ` + "`cluster`" + ` section must agree as the nodes of one cluster (unique node names; the
  same secret, slots, links_per_peer, routers, link TLS and spreads).

## Reload (SIGHUP)

` + "`kill -HUP <pid>`" + ` makes ` + "`switchyard start --config FILE`" + ` read FILE again. A file that does
not validate, or a TLS file that cannot be loaded, is refused with a log line and the
running configuration stays in force. Otherwise:

- ` + "`realms`" + `: roles, auth, authenticators, authorizers and history apply to handshakes and
  sessions that start afterwards; established sessions of realms still listed keep running.
- A realm added to the file is served at once.
- A realm left out of the file is removed: a HELLO to it gets ABORT
  ` + "`wamp.error.no_such_realm`" + ` (never a WELCOME by another auth method), and its sessions get
  GOODBYE ` + "`wamp.close.close_realm`" + ` and leave; a client that has not answered and closed
  within 5 s has its connection closed. Listing the realm again brings it back empty.
- ` + "`listeners[].tls`" + ` files are read again: new TLS handshakes get the new certificate.
- Everything else (` + "`node`" + `, listeners' addresses, kinds, sizes and timeouts) needs a restart.
  A reload that changes them logs, at Warn, the changed keys (e.g. ` + "`listeners[0].address`" + `)
  that were not applied.

## Environment overrides

A non-empty variable replaces the field's value. ` + "`{i}`" + ` is a list index:
` + "`SWITCHYARD_LISTENERS_0_ADDRESS`" + ` overrides ` + "`listeners[0].address`" + `. An override does not
create a block the file leaves out (a listener's ` + "`tls`" + `).

| variable | field |
|---|---|
`)
	for _, e := range EnvVars() {
		fmt.Fprintf(&b, "| `%s` | `%s` |\n", e.Name, e.Path)
	}
	b.WriteString("\n## Keys\n")
	renderStruct(&b, reflect.TypeFor[Config](), "")
	b.WriteString("\n## The default configuration (`switchyard init`)\n\n```yaml\n")
	b.Write(InitFile())
	b.WriteString("```\n")
	b.WriteString("\n## A cluster node (`switchyard init --cluster`)\n\n" +
		"`switchyard init --cluster DIR` writes a local example cluster: `master1.yaml` (the master,\n" +
		"management on 127.0.0.1:9300; `--masters 3` writes three replicas, `--masters 0` none and a\n" +
		"static membership), `proxy1.yaml`, `proxy2.yaml` (client listeners on 127.0.0.1:8080 and\n" +
		"127.0.0.1:8090) and `router1.yaml` .. `router3.yaml` (links on 127.0.0.1:9201 .. 9203, no\n" +
		"client listeners), with a generated secret. Here are `master1.yaml` and `router1.yaml`, with\n" +
		"the secret read from the environment instead:\n\n```yaml\n")
	for _, f := range ClusterInitFilesMasters("", 1) {
		if f.Name == "master1.yaml" {
			b.Write(f.Data)
			b.WriteString("```\n\n```yaml\n")
		}
		if f.Name == "router1.yaml" {
			b.Write(f.Data)
		}
	}
	b.WriteString("```\n\nWith `--masters 0` the nodes list the routers instead (static membership):\n\n```yaml\n")
	for _, f := range ClusterInitFiles("") {
		if f.Name == "router1.yaml" {
			if i := bytes.Index(f.Data, []byte("\ncluster:")); i >= 0 {
				if j := bytes.Index(f.Data[i:], []byte("\n\n")); j >= 0 {
					b.Write(f.Data[i+1 : i+j+1])
				}
			}
		}
	}
	b.WriteString("```\n")
	return b.Bytes()
}

// renderStruct writes the table of struct t at path, then the sections of its nested
// structs.
func renderStruct(b *bytes.Buffer, t reflect.Type, path string) {
	title := "`" + path + "`"
	if path == "" {
		title = "top level"
	}
	fmt.Fprintf(b, "\n### %s\n\n| key | type | default | description |\n|---|---|---|---|\n", title)
	type sub struct {
		t    reflect.Type
		path string
	}
	var subs []sub
	for i := range t.NumField() {
		f := t.Field(i)
		name := jsonName(f)
		if name == "" {
			continue
		}
		p := join(path, name)
		typ, def := "", "—"
		if d, ok := f.Tag.Lookup("default"); ok {
			def = "`" + d + "`"
			if d == "" {
				def = "`\"\"`"
			}
		}
		ft := f.Type
		switch {
		case ft == reflect.TypeFor[Duration]():
			typ = "duration"
		case ft.Kind() == reflect.String:
			typ = "string"
		case ft.Kind() == reflect.Int:
			typ = "integer"
		case ft.Kind() == reflect.Bool:
			typ = "boolean"
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.String:
			typ = "list of strings"
			if d, ok := f.Tag.Lookup("default"); ok {
				def = "`[" + strings.ReplaceAll(d, ",", ", ") + "]`"
			}
		case ft.Kind() == reflect.Slice:
			typ = fmt.Sprintf("list of mappings (`%s[]`)", p)
			subs = append(subs, sub{ft.Elem(), p + "[]"})
		case ft.Kind() == reflect.Pointer:
			typ = fmt.Sprintf("mapping (`%s`)", p)
			def = "off"
			subs = append(subs, sub{ft.Elem(), p})
		case ft.Kind() == reflect.Struct:
			typ = fmt.Sprintf("mapping (`%s`)", p)
			def = "see its keys"
			subs = append(subs, sub{ft, p})
		}
		if path == "" && (name == "listeners" || name == "realms") {
			def = "built in"
		}
		desc := f.Tag.Get("doc")
		if e := f.Tag.Get("enum"); e != "" {
			desc += " One of: `" + strings.ReplaceAll(e, ",", "`, `") + "`."
		}
		if f.Tag.Get("secret") == "true" {
			desc += " *secret*: may be `${env:NAME}`."
		}
		if f.Tag.Get("file") == "true" {
			desc += " *file*: relative to the config file."
		}
		if e := f.Tag.Get("env"); e != "" {
			desc += " Env: `" + e + "`."
		}
		fmt.Fprintf(b, "| `%s` | %s | %s | %s |\n", name, typ, def, strings.ReplaceAll(desc, "|", "\\|"))
	}
	for _, s := range subs {
		renderStruct(b, s.t, s.path)
	}
}
