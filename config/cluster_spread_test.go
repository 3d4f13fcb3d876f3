package config

import (
	"testing"

	"github.com/switchyard-wamp/switchyard/cluster/placement"
)

// TestClusterInitSpreadsOverAllRouters: in the example of `switchyard init --cluster`,
// the anonymous sessions of realm1 land on all three routers, a third on each (what the
// files' comments promise), as every node computes it from its own file.
func TestClusterInitSpreadsOverAllRouters(t *testing.T) {
	for _, f := range ClusterInitFiles(testSecret) {
		c, err := Parse(f.Data, ParseOptions{Getenv: noEnv})
		if err != nil {
			t.Fatal(err)
		}
		m := placement.New(c.Cluster.Slots, c.RouterNames())
		spread := c.Realms[0].SpreadOf("anonymous")
		count := map[string]int{}
		for session := uint64(1); session <= 3000; session++ {
			count[m.Place(c.Realms[0].Name, "anonymous", spread, session)]++
		}
		for _, r := range c.RouterNames() {
			if count[r] != 1000 {
				t.Errorf("%s: router %s gets %d of 3000 anonymous sessions of realm1, want 1000 (%v)", f.Name, r, count[r], count)
			}
		}
	}
}
