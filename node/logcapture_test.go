package node

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
)

// logLine is one captured slog record: level, message and attributes (as text).
type logLine struct {
	level slog.Level
	msg   string
	attrs map[string]string
}

func (l logLine) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %q", l.level, l.msg)
	for k, v := range l.attrs {
		fmt.Fprintf(&b, " %s=%q", k, v)
	}
	return b.String()
}

// logCapture is a slog.Handler that keeps every record, so a test can count and inspect
// the lines the node writes. Safe for concurrent use.
type logCapture struct {
	mu    sync.Mutex
	lines []logLine
	attrs []slog.Attr // from WithAttrs
	root  *logCapture // where lines go (self for the root)
}

func newLogCapture() *logCapture {
	c := &logCapture{}
	c.root = c
	return c
}

func (c *logCapture) Enabled(context.Context, slog.Level) bool { return true }

func (c *logCapture) Handle(_ context.Context, r slog.Record) error {
	l := logLine{level: r.Level, msg: r.Message, attrs: map[string]string{}}
	for _, a := range c.attrs {
		l.attrs[a.Key] = a.Value.String()
	}
	r.Attrs(func(a slog.Attr) bool {
		l.attrs[a.Key] = a.Value.Resolve().String()
		return true
	})
	c.root.mu.Lock()
	c.root.lines = append(c.root.lines, l)
	c.root.mu.Unlock()
	return nil
}

func (c *logCapture) WithAttrs(as []slog.Attr) slog.Handler {
	return &logCapture{attrs: append(append([]slog.Attr(nil), c.attrs...), as...), root: c.root}
}

func (c *logCapture) WithGroup(string) slog.Handler { return c }

// take returns the lines captured so far and forgets them.
func (c *logCapture) take() []logLine {
	c.root.mu.Lock()
	defer c.root.mu.Unlock()
	out := c.root.lines
	c.root.lines = nil
	return out
}

// snapshot returns the lines captured so far.
func (c *logCapture) snapshot() []logLine {
	c.root.mu.Lock()
	defer c.root.mu.Unlock()
	return append([]logLine(nil), c.root.lines...)
}

func dumpLines(ls []logLine) string {
	var b strings.Builder
	for _, l := range ls {
		b.WriteString("\n  " + l.String())
	}
	return b.String()
}
