// Command gendoc writes docs/config.md, the configuration reference, from the struct
// tags of package config. Run from the repository root:
//
//	go run ./config/internal/gendoc -o docs/config.md
//
// or `go generate ./config`. Without -o it writes to standard output.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/switchyard-wamp/switchyard/config"
)

func main() {
	out := flag.String("o", "", "output file (default: standard output)")
	flag.Parse()
	doc := config.Markdown()
	var err error
	if *out == "" {
		_, err = os.Stdout.Write(doc)
	} else {
		err = os.WriteFile(*out, doc, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gendoc:", err)
		os.Exit(1)
	}
}
