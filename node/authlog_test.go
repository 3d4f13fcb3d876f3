package node

import (
	"log/slog"
	"testing"

	"github.com/switchyard-wamp/switchyard/client"
	"github.com/switchyard-wamp/switchyard/proxy"
)

// TestFailedLoginLogsTheRealReason: a failed login writes exactly one log line, and it
// names the real reason (unknown authid or wrong secret), while the client gets the
// same ABORT for both.
func TestFailedLoginLogsTheRealReason(t *testing.T) {
	logs := newLogCapture()
	n := startNode(t, func(c *Config) {
		c.Logger = slog.New(logs)
		c.Auth = map[string]*proxy.RealmAuth{"realm1": {
			Tickets: map[string]proxy.TicketPrincipal{"joe": {Ticket: "s3cret", Role: "user"}},
			CRA:     map[string]proxy.CRAPrincipal{"ann": {Secret: "plain-secret", Role: "user"}},
		}}
	})
	for _, tc := range []struct {
		authid, method, want string
	}{
		{"nobody", "ticket", "unknown authid"},
		{"joe", "ticket", "wrong signature or secret"},
		{"nobody", "wampcra", "unknown authid"},
		{"ann", "wampcra", "wrong signature or secret"},
	} {
		logs.take()
		_, err := client.Connect(ctxT(t), client.Config{URL: n.RawSocketURL(), Realm: "realm1", AuthID: tc.authid,
			AuthMethods: []string{tc.method}, OnChallenge: func(string, map[string]any) (string, error) {
				return "not-it", nil
			}})
		wampErr(t, err, "wamp.error.authentication_failed")
		var lines []logLine
		for _, l := range logs.take() {
			if l.level >= slog.LevelInfo {
				lines = append(lines, l)
			}
		}
		if len(lines) != 1 || lines[0].msg != "authentication failed" || lines[0].attrs["reason"] != tc.want ||
			lines[0].attrs["authid"] != tc.authid || lines[0].attrs["method"] != tc.method {
			t.Errorf("%s with %s: want one line \"authentication failed\" reason=%q, got:%s",
				tc.authid, tc.method, tc.want, dumpLines(lines))
		}
	}
}
