// Package profiles captures pprof profiles of a running switchyard process: the
// --cpuprofile/--memprofile/--mutexprofile/--blockprofile/--trace flags shared by every
// long-running subcommand (through github.com/pkg/profile), and the /debug/pprof
// endpoints of the admin listener, which is off by default and never on a public port.
//
// The folder also keeps captured profiles, their notes (NOTES.md), and the scripts that
// refresh the PGO profile the release build uses (cmd/switchyard/default.pgo).
package profiles

import (
	"errors"
	"flag"
	"fmt"
	"html"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/pkg/profile"
)

// Flags are the profiling flags of one subcommand. The zero value profiles nothing.
type Flags struct {
	CPU, Mem, Mutex, Block, Trace string
}

// Register adds the flags to fs. Not safe for concurrent use.
func (f *Flags) Register(fs *flag.FlagSet) {
	fs.StringVar(&f.CPU, "cpuprofile", "", "write a CPU profile to `FILE` until the command ends")
	fs.StringVar(&f.Mem, "memprofile", "", "write a heap profile to `FILE` when the command ends")
	fs.StringVar(&f.Mutex, "mutexprofile", "", "write a mutex contention profile to `FILE`")
	fs.StringVar(&f.Block, "blockprofile", "", "write a goroutine blocking profile to `FILE`")
	fs.StringVar(&f.Trace, "trace", "", "write an execution trace to `FILE`")
}

// Start begins the one profile the flags ask for and returns the function that ends it
// and writes the file. pkg/profile runs one profile at a time, so asking for two is an
// error. With no flag set, Start does nothing. Not safe for concurrent use.
func (f *Flags) Start() (stop func() error, err error) {
	type choice struct {
		file, name string
		mode       func(*profile.Profile)
	}
	var chosen []choice
	for _, c := range []choice{
		{f.CPU, "cpu.pprof", profile.CPUProfile},
		{f.Mem, "mem.pprof", profile.MemProfile},
		{f.Mutex, "mutex.pprof", profile.MutexProfile},
		{f.Block, "block.pprof", profile.BlockProfile},
		{f.Trace, "trace.out", profile.TraceProfile},
	} {
		if c.file != "" {
			chosen = append(chosen, c)
		}
	}
	switch len(chosen) {
	case 0:
		return func() error { return nil }, nil
	case 1:
	default:
		return nil, errors.New("profiles: one profile at a time (--cpuprofile, --memprofile, --mutexprofile, --blockprofile or --trace)")
	}
	c := chosen[0]
	// pkg/profile writes a fixed file name into a directory: use a private one next to
	// the target and move the file into place when the profile stops.
	dir, err := os.MkdirTemp(filepath.Dir(c.file), ".profile-")
	if err != nil {
		return nil, fmt.Errorf("profiles: %w", err)
	}
	p := profile.Start(c.mode, profile.ProfilePath(dir), profile.NoShutdownHook, profile.Quiet)
	return func() error {
		p.Stop()
		defer os.RemoveAll(dir)
		if err := os.Rename(filepath.Join(dir, c.name), c.file); err != nil {
			return fmt.Errorf("profiles: %w", err)
		}
		return nil
	}, nil
}

// AdminHandler returns the handler of the admin listener: an index of its endpoints at
// "/" (unless extra has "/{$}", the caller's own root page), /debug/pprof/ (index, cmdline, profile, symbol, trace and the named profiles) plus
// extra handlers by path. Safe for concurrent use.
func AdminHandler(extra map[string]http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	paths := []string{"/debug/pprof/"}
	for path, h := range extra {
		mux.Handle(path, h)
		if path != "/{$}" {
			paths = append(paths, path)
		}
	}
	if _, own := extra["/{$}"]; own {
		return mux // the caller's page is the root (it links the endpoints itself)
	}
	slices.Sort(paths)
	index := adminIndex(paths)
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(index)
	})
	return mux
}

// adminIndex is the page at the admin root: a link to each endpoint.
func adminIndex(paths []string) []byte {
	var b strings.Builder
	b.WriteString("<!doctype html><html><head><meta charset=\"utf-8\"><title>switchyard admin</title></head><body><h1>switchyard admin</h1><ul>")
	for _, p := range paths {
		fmt.Fprintf(&b, "<li><a href=\"%s\">%s</a></li>", html.EscapeString(p), html.EscapeString(p))
	}
	b.WriteString("</ul></body></html>\n")
	return []byte(b.String())
}

// ServeAdmin listens on addr (an internal address such as 127.0.0.1:9090) and serves h
// until the returned server is closed. It returns once the listener is bound.
func ServeAdmin(addr string, h http.Handler) (*http.Server, net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("admin listener: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return srv, ln.Addr(), nil
}
