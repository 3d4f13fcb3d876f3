package main

import (
	"fmt"
	"reflect"

	"github.com/switchyard-wamp/switchyard/config"
)

// restartChanges lists, as field paths, what differs between the running configuration
// and a reloaded one that SIGHUP does not apply: the node section and the listeners
// (address, kind, path, serializers, sizes, timeouts, auth; a TLS block added or
// removed). A listener's TLS files and min_version are reloaded, so they are not listed;
// nor are realms, which a reload applies. Safe for concurrent use on values nobody
// mutates.
func restartChanges(running, next *config.Config) []string {
	var out []string
	out = append(out, fieldChanges("node", reflect.ValueOf(running.Node), reflect.ValueOf(next.Node))...)
	if len(running.Listeners) != len(next.Listeners) {
		return append(out, fmt.Sprintf("listeners (%d -> %d)", len(running.Listeners), len(next.Listeners)))
	}
	for i := range running.Listeners {
		a, b := running.Listeners[i], next.Listeners[i]
		p := fmt.Sprintf("listeners[%d]", i)
		if (a.TLS == nil) != (b.TLS == nil) {
			out = append(out, p+".tls")
		}
		a.TLS, b.TLS = nil, nil // the files are reloaded (node.Reload)
		out = append(out, fieldChanges(p, reflect.ValueOf(a), reflect.ValueOf(b))...)
	}
	return out
}

// fieldChanges lists the fields (by their config key) of structs a and b that differ.
func fieldChanges(prefix string, a, b reflect.Value) []string {
	var out []string
	for i := range a.NumField() {
		if !reflect.DeepEqual(a.Field(i).Interface(), b.Field(i).Interface()) {
			out = append(out, prefix+"."+configKey(a.Type().Field(i)))
		}
	}
	return out
}

// configKey is the key of field f in the config file (its json tag name).
func configKey(f reflect.StructField) string {
	name := f.Tag.Get("json")
	for i := range len(name) {
		if name[i] == ',' {
			return name[:i]
		}
	}
	if name == "" {
		return f.Name
	}
	return name
}
