package config

import (
	_ "embed"
	"regexp"
)

// initSource is the template of `switchyard init`: the default configuration with
// commented-out examples, whose lines are marked "#? " so that tests can switch them on.
//
//go:embed init.yaml
var initSource []byte

// InitFileName is the name `switchyard init` writes in its directory.
const InitFileName = "switchyard.yaml"

var exampleMark = regexp.MustCompile(`(?m)^(\s*)#\? ?`)

// InitFile returns the commented YAML configuration `switchyard init` writes: it loads
// to a Config equal to Default(), and carries a commented-out example of every listener
// option and auth method. Each call returns a new slice; safe for concurrent use.
func InitFile() []byte {
	return exampleMark.ReplaceAll(initSource, []byte("$1# "))
}

// initExamples returns the init file with its examples switched on (for tests).
func initExamples() []byte {
	return exampleMark.ReplaceAll(initSource, []byte("$1"))
}
