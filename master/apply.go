package master

import (
	"encoding/json"
	"sort"
	"strings"

	"github.com/switchyard-wamp/switchyard/config"
)

// SharedKeys are the config file keys a cluster config version carries: what every
// node applies alike. Listeners, node settings and the cluster section stay per node.
var SharedKeys = []string{"realms"}

// ValidateShared checks a cluster config (the JSON form of the shared keys of a config
// file) with the checks of `switchyard check`, as if every node offered every auth
// method its realms configure; it returns the report ("path: message" lines) or "" when
// the config is usable. Safe for concurrent use.
func ValidateShared(cfg map[string]any) string {
	var bad []string
	for k := range cfg {
		if !contains(SharedKeys, k) {
			bad = append(bad, k+": not a shared key (a cluster config holds "+strings.Join(SharedKeys, ", ")+"; the rest stays in each node's file)")
		}
	}
	if _, ok := cfg["realms"]; !ok {
		bad = append(bad, "realms: required")
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return strings.Join(bad, "\n")
	}
	// One listener offering every method the realms configure (auth left out).
	doc := map[string]any{"listeners": []any{map[string]any{"address": "127.0.0.1:1"}}}
	for k, v := range cfg {
		doc[k] = v
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return err.Error()
	}
	c, err := config.Parse(b, config.ParseOptions{Format: config.FormatJSON,
		Getenv: func(string) string { return "" }})
	if err != nil {
		return err.Error()
	}
	var lines []string
	for _, p := range c.Validate() {
		lines = append(lines, p.String())
	}
	return strings.Join(lines, "\n")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
