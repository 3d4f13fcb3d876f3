package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/switchyard-wamp/switchyard/config"
)

// runInit is `switchyard init [DIR]`: it writes DIR/switchyard.yaml (DIR defaults to
// "."), the commented embedded default with an example of every auth method. It never
// overwrites an existing file.
func runInit(args []string) error {
	fs := flag.NewFlagSet("init", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: switchyard init [DIR]\n\nWrites DIR/%s (DIR defaults to \".\"): the embedded default\nconfiguration, commented, with an example of every auth method.\n", config.InitFileName)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 1 {
		fs.Usage()
		return errors.New("init: at most one directory")
	}
	dir := "."
	if fs.NArg() == 1 {
		dir = fs.Arg(0)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("init: %w", err)
	}
	name := filepath.Join(dir, config.InitFileName)
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("init: %s already exists; not overwriting it", name)
	}
	if err != nil {
		return fmt.Errorf("init: %w", err)
	}
	if _, err := f.Write(config.InitFile()); err != nil {
		f.Close()
		return fmt.Errorf("init: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("init: %w", err)
	}
	fmt.Printf("wrote %s\ncheck it:  switchyard check %s\nrun it:    switchyard start --config %s\n", name, name, name)
	return nil
}

// runCheck is `switchyard check FILE...`: it loads each file as `switchyard start
// --config FILE` would (environment references and SWITCHYARD_* overrides included),
// validates it, and prints each problem as "path: message" or "FILE: ok". It returns an
// error (exit status 1) when any file has a problem.
func runCheck(args []string) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: switchyard check FILE...\n\nValidates node configuration files (YAML or JSON); prints each problem as\n\"path: message\" and exits 1 if there is any.\n")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errors.New("check: no file given")
	}
	bad := 0
	for _, name := range fs.Args() {
		if !checkFile(os.Stdout, name, os.Getenv) {
			bad++
		}
	}
	if bad > 0 {
		return fmt.Errorf("check: %d of %d files have problems", bad, fs.NArg())
	}
	return nil
}

// checkFile prints "FILE: ok", or a "FILE: N problem(s)" line followed by one
// "path: message" line per problem, to w; it reports whether the file is valid.
func checkFile(w io.Writer, name string, getenv func(string) string) bool {
	c, err := config.Load(name)
	var problems []config.Problem
	var le *config.LoadError
	switch {
	case errors.As(err, &le):
		problems = le.Problems
	case err != nil:
		fmt.Fprintf(w, "%s: %v\n", name, err)
		return false
	default:
		if err := c.ApplyEnv(getenv); err != nil {
			problems = append(problems, config.Problem{Message: "environment: " + err.Error()})
		}
		problems = append(problems, c.Validate()...)
	}
	if len(problems) == 0 {
		fmt.Fprintf(w, "%s: ok\n", name)
		return true
	}
	fmt.Fprintf(w, "%s: %d problem(s)\n", name, len(problems))
	for _, p := range problems {
		fmt.Fprintln(w, p.String())
	}
	return false
}
