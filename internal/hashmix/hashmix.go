// Package hashmix holds the one bit mixer the rendezvous hashes of switchyard share:
// placement (slot -> router), the owner of a registration across routers (span) and the
// consistent-hash invoke policy (engine). Their weights must stay identical between
// releases and nodes, so there is one copy.
package hashmix

// Mix64 is the SplitMix64 finalizer: a bijection on uint64 whose every output bit
// depends on every input bit, so that the weights of different candidates for one key
// are independent. Safe for concurrent use; no allocation.
func Mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
