// Package flatbuffers holds the Go code flatc generates from wamp.fbs, the WAMP-over-
// Flatbuffers message schema (see wamp.fbs for where its facts come from). The codec
// package reads and writes WAMP messages with it; nothing else should import it.
//
// The generated code (proto/) is committed, so that building needs no flatc; a test
// regenerates it when flatc is on PATH and fails if it differs.
package flatbuffers

//go:generate flatc --go --go-namespace proto -o . wamp.fbs
