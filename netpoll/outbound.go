package netpoll

import (
	"encoding/binary"
	"sync"

	"github.com/switchyard-wamp/switchyard/codec"
	"github.com/switchyard-wamp/switchyard/internal/readbatch"
)

const (
	// writeChunk: the loop hands its write buffer to gnet whenever it grows past this,
	// so the per-loop buffer stays small while one write still carries many frames.
	writeChunk = 64 << 10
	// maxKeptBuf: buffers (pooled nodes, loop buffers) grown past this are dropped
	// after use instead of being kept, so one huge message does not pin memory.
	maxKeptBuf = 1 << 20
)

// outNode is one framed message (or control frame) in a Conn's outbound queue.
type outNode struct {
	next *outNode
	buf  []byte
	msg  bool  // a WAMP message (counted in MessagesOut), not a control frame
	slot uint8 // its codec.TypeSlot (counted in MessageCounts on the loop)
}

var nodePool = sync.Pool{New: func() any { return &outNode{buf: make([]byte, 0, 256)} }}

func getNode() *outNode { return nodePool.Get().(*outNode) }

// putNodes returns a taken list of nodes to the pool.
func putNodes(n *outNode) {
	for n != nil {
		next := n.next
		putNode(n)
		n = next
	}
}

func putNode(n *outNode) {
	n.next = nil
	n.msg = false
	n.slot = 0
	if cap(n.buf) > maxKeptBuf {
		n.buf = make([]byte, 0, 256)
	}
	n.buf = n.buf[:0]
	nodePool.Put(n)
}

// Send frames msg for this conn's transport (WebSocket server frame header, batched
// framing, or RawSocket 4-byte header) and queues a copy (in the conn's append buffer,
// appendbuf.go, or its node queue); the end of the read batch or the conn's event loop
// writes it. Safe for concurrent use from any goroutine, including Handler callbacks of any
// conn. It never blocks and never calls into Handler. Messages from one goroutine are
// written in the order of their Send calls.
//
// It returns ErrClosed if the conn is closing or closed (also when msg exceeds a
// RawSocket client's announced maximum length: that is logged and the conn closed), and
// ErrSlowConsumer if the queue went over Config.OutboundHardLimit or the conn was
// closed by the slow-consumer policy (see slowconsumer.go).
func (c *Conn) Send(msg []byte) error {
	if st := c.state.Load(); st != stActive {
		return stateErr(st)
	}
	if c.transport == transportRawSocket && len(msg) > c.peerMax {
		if c.srv.warnOK("message over the rawsocket client's max length", c.remote) {
			c.srv.log.Warn("netpoll: message over the rawsocket client's max length, closing",
				"remote", c.remote.String(), "size", len(msg), "max", c.peerMax)
		}
		c.Close()
		return ErrClosed
	}
	if c.q.Load() == nil && c.alock.CompareAndSwap(false, true) {
		return c.sendAppend(msg) // appendbuf.go
	}
	n := getNode()
	n.msg = true
	n.slot = uint8(codec.TypeSlot(codec.PeekType(c.ser, msg)))
	n.buf = c.appendFrame(n.buf[:0], msg)
	return c.enqueue(n)
}

// appendFrame appends msg framed for this conn's transport: a RawSocket header, a
// WebSocket frame (compressed when negotiated and worth it) or a batched frame.
func (c *Conn) appendFrame(b, msg []byte) []byte {
	switch {
	case c.transport == transportRawSocket:
		b = append(b, rsRegular, byte(len(msg)>>16), byte(len(msg)>>8), byte(len(msg)))
		return append(b, msg...)
	case c.deflate && len(msg) >= c.ln.Compression.MinSize:
		return c.appendCompressed(b, msg)
	case !c.batched:
		b = appendWSHeader(b, c.wsOpcode, len(msg))
		return append(b, msg...)
	case c.ser == codec.JSON:
		b = appendWSHeader(b, c.wsOpcode, len(msg)+1)
		b = append(b, msg...)
		return append(b, jsonBatchSep)
	default:
		b = appendWSHeader(b, c.wsOpcode, len(msg)+4)
		b = binary.BigEndian.AppendUint32(b, uint32(len(msg)))
		return append(b, msg...)
	}
}

// appendCompressed appends msg as one compressed WebSocket frame (RSV1 set) framed for
// this conn's batching: the compression is shared with other conns sending the same
// bytes in the same framing (see deflate.go).
func (c *Conn) appendCompressed(b, msg []byte) []byte {
	mode := modePlain
	if c.batched {
		mode = modeBinaryBatch
		if c.ser == codec.JSON {
			mode = modeJSONBatch
		}
	}
	d, payload := compressed(c.ln.Compression.Level, mode, msg, &c.srv.deflate)
	start := len(b)
	b = appendWSHeader(b, c.wsOpcode, len(payload))
	b[start] |= 0x40 // RSV1: a compressed message
	b = append(b, payload...)
	d.put()
	return b
}

func stateErr(st int32) error {
	if st == stSlow {
		return ErrSlowConsumer
	}
	return ErrClosed
}

// enqueue pushes a framed node, enforcing OutboundHardLimit (the soft limit is the
// loop's business: a burst may go over it), and when the queue was empty leaves the conn
// to the end of the open read batch, which writes it (direct.go; lock-free, safe from
// any goroutine).
func (c *Conn) enqueue(n *outNode) error {
	size := int64(len(n.buf))
	if q := c.queued.Add(size); q > int64(c.srv.cfg.OutboundHardLimit) {
		c.queued.Add(-size)
		putNode(n)
		c.slowConsumer(q, "hard_limit")
		return ErrSlowConsumer
	}
	for {
		old := c.q.Load()
		n.next = old
		if c.q.CompareAndSwap(old, n) {
			if old == nil {
				readbatch.Defer(&c.bm)
			}
			return nil
		}
	}
}

// drain runs on the loop: it takes the append buffer and the whole node queue (FIFO
// order restored) and appends every frame to the loop's write buffer, handing it to gnet
// once (or once per writeChunk). The unwritten end of a direct write goes first, then the
// frames already in the buffer (pongs, handshake replies). The loop holds the write
// token.
func (c *Conn) drain() {
	c.writeRest()
	if c.closedLoop {
		return
	}
	ap, fifo, _ := c.takeOut(true)
	if ap != nil {
		c.drainBuf(*ap)
		putAppend(ap)
		if c.closedLoop {
			return
		}
	}
	if fifo == nil {
		c.write()
		return
	}
	bytes, msgs := c.countOut(fifo)
	c.queued.Add(-int64(bytes))
	c.loop.msgsOut.Add(uint64(msgs))
	for n := fifo; n != nil; {
		next := n.next
		c.drainBuf(n.buf)
		putNode(n)
		if c.closedLoop {
			return
		}
		n = next
	}
	c.write()
}

// drainBuf appends b (whole frames) to the loop's write buffer, handing the buffer to
// gnet once it passes writeChunk; a big b is written after what is buffered, without a
// copy. Loop only, holding the write token.
func (c *Conn) drainBuf(b []byte) {
	ls := c.loop
	if len(b) >= writeChunk {
		c.write()
		if c.closedLoop {
			return
		}
		ls.bytesOut.Add(uint64(len(b)))
		c.kernHint += int64(len(b))
		_, _ = c.gc.Write(b)
		return
	}
	ls.wbuf = append(ls.wbuf, b...)
	if len(ls.wbuf) >= writeChunk {
		c.write()
	}
}

// appendWSHeader appends an unmasked (server) WebSocket header for a final frame.
func appendWSHeader(b []byte, op byte, n int) []byte {
	b = append(b, 0x80|op)
	switch {
	case n <= 125:
		return append(b, byte(n))
	case n <= 0xFFFF:
		return append(b, 126, byte(n>>8), byte(n))
	default:
		b = append(b, 127)
		return binary.BigEndian.AppendUint64(b, uint64(n))
	}
}

// appendCloseFrame appends a WebSocket close frame (code 0: no body).
func appendCloseFrame(b []byte, code uint16) []byte {
	if code == 0 {
		return append(b, 0x80|opClose, 0)
	}
	return append(b, 0x80|opClose, 2, byte(code>>8), byte(code))
}
