// Package link carries frames between switchyard cluster nodes (proxies and routers) over
// persistent, authenticated TCP (or TLS) connections called links.
//
// A few links per node pair are shared by all client sessions: each frame is tagged with
// the session it is about, or with a list of target sessions when one payload goes to
// several sessions behind the same link (an EVENT fanned out to many subscribers on one
// proxy crosses once). The wire format, the handshake and the failure behaviour are
// written down in docs/cluster.md, section "Link frames".
//
// Concurrency model: links are few (a handful per node pair), so each link simply has one
// reader and one writer goroutine; with Config.Loops the reads run on the node's event
// loops instead (loop.go), beside its client connections. The reader parses frames in place in its
// read buffer and calls Handler.OnFrame directly, with no channel hop per frame (hence
// Frame.Payload is valid only during OnFrame). Send appends the encoded frame to the
// link's outbound buffer under a short mutex and wakes the writer only when that buffer
// goes from empty to non-empty; the writer swaps buffers and writes everything queued in
// one write call, so a busy link carries many frames per syscall. While a reader handles
// the frames of one read, what they make any link send is flushed once at the end of
// that read instead, by the reader itself with a non-blocking write (batch.go): a hop
// through a router costs no writer wake-up. Send never blocks: a
// link whose outbound queue exceeds Config.OutboundLimit is closed as overloaded and its
// handler told (OnLinkDown); nothing is ever dropped silently.
//
// Listen is the accepting side, Dial returns a Pool of links to one address that
// reconnect with backoff.
package link
