package main

import (
	"testing"

	"github.com/switchyard-wamp/switchyard/config"
)

func TestStoreSettingsReachTheNode(t *testing.T) {
	cfg := config.Default()
	cfg.Realms[0].History = []config.History{{URI: "com.log.", Match: "prefix", Limit: 50}}
	cfg.Realms[0].Limits.RetainedTopics = 7
	if p := cfg.Validate(); len(p) > 0 {
		t.Fatal(p)
	}
	nc, err := nodeConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	st := nc.Store["realm1"]
	if len(st.History) != 1 || st.History[0].URI != "com.log." || st.History[0].Match != "prefix" ||
		st.History[0].Limit != 50 || st.RetainedTopics != 7 || st.HistoryTopics != 10000 {
		t.Fatalf("%+v", st)
	}
}
