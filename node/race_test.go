//go:build race

package node

// raceEnabled: the race detector makes sync.Pool drop a share of what is Put, so pool
// memos (the shared compression of a fan-out) hit less often.
const raceEnabled = true
