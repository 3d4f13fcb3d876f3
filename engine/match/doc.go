// Package match holds WAMP pattern-based subscriptions and registrations (Advanced
// Profile, match "prefix" and "wildcard") and answers, for a concrete topic or procedure
// URI, which patterns match it. Exact-match URIs live in the engine's hash tables, not here.
//
// # Semantics
//
// Prefix. The spec defines prefix matching on the URI string, not on whole components:
// "any event with a topic that has SUBSCRIBE.Topic as a prefix will match the
// subscription", and its examples include "com.myapp.topic.emergency-low" as a match of
// the prefix "com.myapp.topic.emergency" (the registration text likewise lists
// "com.myapp.myobject1-mysubobject1" for "com.myapp.myobject1"). Crossbar.io implements it
// with a character trie (pytrie StringTrie, longest_prefix_value). So here the prefix
// "com.myapp" matches "com.myapp", "com.myapp.foo" and also "com.myapp2"; it does not match
// "com.myap". The empty prefix matches every URI.
//
// Wildcard. "Wildcard-matching allows to provide wildcards for whole URI components": an
// empty component of the pattern matches any one component, the others must be equal, and
// the URI must have exactly as many components as the pattern ("com.myapp..userevent"
// matches "com.myapp.foo.userevent", not "com.myapp.foo.userevent.bar").
//
// Best (the dealer's choice). The spec: "a call is routed to one and only one best matched
// RPC registration": exact first (the caller's job, outside this package), then "the
// registration with the longest prefix match. Longest means it has more URI components
// matched", then "the registration with the longest portion of URI components matched
// before each wildcard", compared portion by portion ('a1.b2.c3..e5' beats 'a1.b2..d4.e5';
// 'a1.b2..d4.e5..g7' beats 'a1.b2..d4..f6.g7'). Decisions:
//   - Any matching prefix beats any matching wildcard.
//   - Among prefixes the longest pattern string wins. All prefixes matching one URI are
//     prefixes of each other, so this is a total order, and it agrees with "more URI
//     components" whenever the component counts differ.
//   - Among wildcards, comparing the literal runs before each wildcard one by one is the
//     same as comparing the patterns component by component from the left and preferring,
//     at the first position where they differ, the literal component over the wildcard.
//     The tree walk tries the literal edge before the wildcard edge at every level, so the
//     first wildcard pattern it reaches is the winner.
//   - A pattern that holds several values (a shared registration, or two subscriptions on
//     one pattern) yields its oldest value from Best and all of them from Match.
//
// # Structure and cost
//
// Two token trees, one per kind, keyed by URI component. A node's children live in an
// immutable small slice (copied on write) until there are 16, then in an xsync.MapOf keyed
// by the xxhash of the component with a collision chain, as in the engine's exact tables.
// Wildcard patterns use a separate "empty" edge per node and end at the node of their last
// component. A prefix pattern is stored at the node of its first n-1 components, keyed by
// its last (possibly partial) component, the "tail": at depth d a lookup checks the tails
// of its node that are byte prefixes of the URI's d-th component (a scan when there are
// few tails, else one hash probe per tail length present, tracked in a bitmask). A lookup
// thus costs a few hash probes per URI component, independent of the number of patterns.
//
// Result cache. A Tree made by New keeps a direct-mapped cache (default 4096 slots, see
// WithCacheSize) of atomic pointers indexed by the xxhash of the URI; a slot holds the
// URI (collision check), the generation it was computed at and the immutable result.
// Every Insert or Remove that changes the tree bumps the generation, which invalidates the
// whole cache at once; stale slots are overwritten on the next miss. A hit allocates
// nothing; a miss allocates the result and overwrites the slot. The cache is bounded by
// construction and needs no eviction.
//
// # Concurrency
//
// Match, AppendMatches, Best and Len are safe for concurrent use and never lock: every
// node's child set, tail set and value list is published through an atomic pointer and is
// either immutable or a concurrent map. Insert and Remove serialize on a mutex, and each
// takes effect for readers at one atomic store (new interior nodes are empty until the
// pattern's value list is stored; pruning only detaches empty nodes), so a concurrent
// lookup sees the tree before or after a write, and a lookup that starts after a write
// returned sees it.
//
// Patterns and URIs are not validated here: callers check URI syntax first.
package match
