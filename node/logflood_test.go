package node

import (
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-wamp/switchyard/client"
	"github.com/switchyard-wamp/switchyard/codec"
	"github.com/switchyard-wamp/switchyard/proxy"
)

// causeCount is what the log says about one cause: lines written and lines the
// summaries say were suppressed.
type causeCount struct {
	written    int
	suppressed int
	summaries  int
}

// countCause counts the lines whose message is msg and the summary lines for cause.
func countCause(lines []logLine, msg, cause string) causeCount {
	var c causeCount
	for _, l := range lines {
		switch {
		case l.msg == msg:
			c.written++
		case strings.HasPrefix(l.msg, "suppressed ") && l.attrs["cause"] == cause:
			c.summaries++
			var n int
			for _, ch := range l.attrs["suppressed"] {
				n = n*10 + int(ch-'0')
			}
			c.suppressed += n
		}
	}
	return c
}

// TestLogFloodIsBounded: a client that sends garbage over and over, or fails logins
// over and over, gets a few log lines per interval and cause, then one "suppressed N
// similar lines" line with the count; a blocked login writes one line, not two.
func TestLogFloodIsBounded(t *testing.T) {
	const burst, interval = 3, 2 * time.Second
	logs := newLogCapture()
	n := startNode(t, func(c *Config) {
		c.Logger = slog.New(logs)
		c.LogRate = LogRate{Burst: burst, Interval: interval}
		c.Auth = map[string]*proxy.RealmAuth{"realm1": {Tickets: map[string]proxy.TicketPrincipal{"joe": {Ticket: "s3cret", Role: "user"}}}}
	})
	start := time.Now()

	// Garbage: a rawsocket handshake with a bad magic byte, 200 times.
	const garbage = 200
	for range garbage {
		conn, err := net.Dial("tcp", n.ListenerAddr(1).String())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Write([]byte{0x00, 0x11, 0, 0}); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadAll(conn); err != nil {
			t.Fatalf("server did not close the connection: %v", err)
		}
		conn.Close()
	}
	// Failed logins: 10 wrong tickets, then 40 attempts the failure limiter blocks.
	const failures, blocked = 10, 40
	for range failures + blocked {
		_, err := client.Connect(ctxT(t), client.Config{URL: n.RawSocketURL(), Realm: "realm1", AuthID: "joe",
			Serializer: codec.MsgPack, AuthMethods: []string{"ticket"},
			OnChallenge: func(string, map[string]any) (string, error) { return "wrong", nil }})
		wampErr(t, err, "wamp.error.authentication_failed")
	}
	// A key's lines spread over at most this many intervals; the last of them ends
	// within one interval from now, with the summary of its suppressed lines.
	intervals := int(time.Since(start)/interval) + 1
	time.Sleep(interval + interval/2)

	var lines []logLine
	for _, l := range logs.snapshot() {
		if l.level >= slog.LevelInfo {
			lines = append(lines, l)
		}
	}
	for _, tc := range []struct {
		msg, cause string
		total      int
	}{
		{"netpoll: rawsocket bad magic, closing", "rawsocket bad magic", garbage},
		{"authentication failed", "authentication failed", failures},
		{"authentication: too many failures from this address, login refused",
			"authentication: too many failures from this address", blocked},
	} {
		c := countCause(lines, tc.msg, tc.cause)
		if c.written > burst*intervals || c.written+c.suppressed != tc.total || c.summaries == 0 {
			t.Errorf("%s: %d lines written (at most %d), %d suppressed in %d summaries; want %d in all and a summary",
				tc.cause, c.written, burst*intervals, c.suppressed, c.summaries, tc.total)
		}
	}
	for _, l := range lines {
		if l.msg == "session aborted" {
			t.Errorf("a failed or blocked login wrote a second line: %s", l)
		}
	}
	if len(lines) > 3*(burst+1)*intervals {
		t.Errorf("%d log lines for %d bad connections in %d intervals:%s", len(lines), garbage+failures+blocked,
			intervals, dumpLines(lines))
	}
	if t.Failed() {
		t.Logf("%d lines; the summaries:", len(lines))
		for _, l := range lines {
			if strings.HasPrefix(l.msg, "suppressed") {
				t.Log(l)
			}
		}
	}
}
