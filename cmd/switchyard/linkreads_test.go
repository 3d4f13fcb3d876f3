package main

import (
	"testing"

	"github.com/switchyard-wamp/switchyard/config"
)

// cluster.link_reads reaches the node: loops (the default) leaves LinkGoroutines off,
// goroutines turns it on.
func TestClusterLinkReads(t *testing.T) {
	for reads, want := range map[string]bool{"loops": false, "goroutines": true} {
		cfg := &config.Config{Cluster: &config.Cluster{Node: "router1", Secret: "0123456789abcdef0123", LinkReads: reads}}
		c, err := clusterCommon(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if c.LinkGoroutines != want {
			t.Errorf("link_reads %q: LinkGoroutines %v, want %v", reads, c.LinkGoroutines, want)
		}
	}
}
