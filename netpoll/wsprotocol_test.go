package netpoll

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/gobwas/ws"
)

// maskedFrame builds a client frame by hand: b0 is the first header byte as sent (FIN,
// RSV1-3, opcode), so frames the ws package refuses to build can be sent too.
func maskedFrame(b0 byte, payload []byte) []byte {
	out := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		out = append(out, 0x80|byte(n))
	default:
		out = append(out, 0x80|126)
		out = binary.BigEndian.AppendUint16(out, uint16(n))
	}
	mask := [4]byte{0x12, 0x34, 0x56, 0x78}
	out = append(out, mask[:]...)
	for i, b := range payload {
		out = append(out, b^mask[i%4])
	}
	return out
}

// expectCloseCode reads frames until a close frame and checks its code, then expects
// the server to close the connection.
func expectCloseCode(t *testing.T, c *wsClient, want ws.StatusCode) {
	t.Helper()
	for {
		f := c.read(t)
		if f.Header.OpCode != ws.OpClose {
			continue // an echo of something sent before the bad frame
		}
		if code, _ := ws.ParseCloseFrameData(f.Payload); code != want {
			t.Fatalf("close code %d, want %d", code, want)
		}
		expectEOF(t, c.r)
		return
	}
}

// TestWSProtocolViolations sends each frame RFC 6455 forbids a client over a real socket:
// the server answers with close 1002 (protocol error), closes the connection, counts a
// protocol error, reports a non-clean close to the handler, and serves other clients.
func TestWSProtocolViolations(t *testing.T) {
	const fin = 0x80
	cases := []struct {
		name   string
		frames [][]byte
	}{
		{"rsv1", [][]byte{maskedFrame(fin|0x40|byte(ws.OpText), []byte("[1]"))}},
		{"rsv2", [][]byte{maskedFrame(fin|0x20|byte(ws.OpText), []byte("[1]"))}},
		{"rsv3", [][]byte{maskedFrame(fin|0x10|byte(ws.OpBinary), []byte("[1]"))}},
		{"unmasked", [][]byte{{fin | byte(ws.OpText), 3, '[', '1', ']'}}},
		{"fragmented-ping", [][]byte{maskedFrame(byte(ws.OpPing), []byte("x"))}},
		{"fragmented-close", [][]byte{maskedFrame(byte(ws.OpClose), []byte{3, 0xe8})}},
		{"ping-over-125", [][]byte{maskedFrame(fin|byte(ws.OpPing), bytes.Repeat([]byte("p"), 126))}},
		{"opcode-3", [][]byte{maskedFrame(fin|0x3, []byte("x"))}},
		{"opcode-7", [][]byte{maskedFrame(fin|0x7, nil)}},
		{"opcode-0xB", [][]byte{maskedFrame(fin|0xB, nil)}},
		{"opcode-0xF", [][]byte{maskedFrame(fin|0xF, nil)}},
		{"continuation-first", [][]byte{maskedFrame(fin|byte(ws.OpContinuation), []byte("[1]"))}},
		{"continuation-after-message", [][]byte{
			maskedFrame(fin|byte(ws.OpText), []byte("[1]")),
			maskedFrame(fin|byte(ws.OpContinuation), []byte("[2]")),
		}},
		{"text-inside-fragmented", [][]byte{
			maskedFrame(byte(ws.OpText), []byte("[1,")),
			maskedFrame(fin|byte(ws.OpText), []byte("[2]")),
		}},
		{"binary-inside-fragmented", [][]byte{
			maskedFrame(byte(ws.OpText), []byte("[1,")),
			maskedFrame(byte(ws.OpContinuation), []byte("2,")),
			maskedFrame(fin|byte(ws.OpBinary), []byte("[3]")),
		}},
	}
	h := newEchoHandler()
	s := startServer(t, Config{}, h)
	good := dialWS(t, s, "wamp.2.json")
	defer good.conn.Close()
	h.waitOpen(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dialWS(t, s, "wamp.2.json")
			defer c.conn.Close()
			h.waitOpen(t)
			before := s.Stats().ProtocolErrors
			for _, f := range tc.frames {
				if _, err := c.conn.Write(f); err != nil {
					t.Fatal(err)
				}
			}
			expectCloseCode(t, c, ws.StatusProtocolError)
			if err := h.waitClose(t); err == nil {
				t.Fatal("protocol violation reported as a clean close")
			}
			if got := s.Stats().ProtocolErrors; got != before+1 {
				t.Fatalf("ProtocolErrors %d -> %d, want one more", before, got)
			}
		})
	}
	good.write(t, ws.OpText, true, []byte("[1]"))
	if f := good.read(t); string(f.Payload) != "[1]" {
		t.Fatalf("healthy client: %q", f.Payload)
	}
}

// TestWSCloseCodes: the server echoes a valid close code from the client (an empty close
// with an empty one) and answers a code that must not be sent (reserved, out of range,
// or a 1-byte payload) with 1002.
func TestWSCloseCodes(t *testing.T) {
	h := newEchoHandler()
	s := startServer(t, Config{}, h)
	for _, tc := range []struct {
		payload []byte
		want    ws.StatusCode
	}{
		{nil, 0}, // no code: the echo has none either
		{[]byte{0x03, 0xe8}, 1000},
		{[]byte{0x03, 0xe9}, 1001},
		{[]byte{0x03, 0xea}, 1002},
		{append([]byte{0x03, 0xef}, "bad utf8"...), 1007},
		{[]byte{0x03, 0xf6}, 1014},
		{[]byte{0x0b, 0xb8}, 3000},
		{[]byte{0x13, 0x87}, 4999},
		{[]byte{0x03}, ws.StatusProtocolError},       // a 1-byte payload
		{[]byte{0x03, 0xe7}, ws.StatusProtocolError}, // 999
		{[]byte{0x03, 0xec}, ws.StatusProtocolError}, // 1004 reserved
		{[]byte{0x03, 0xed}, ws.StatusProtocolError}, // 1005 must not be sent
		{[]byte{0x03, 0xee}, ws.StatusProtocolError}, // 1006 must not be sent
		{[]byte{0x03, 0xf7}, ws.StatusProtocolError}, // 1015 must not be sent
		{[]byte{0x07, 0xd0}, ws.StatusProtocolError}, // 2000
		{[]byte{0x0b, 0xb7}, ws.StatusProtocolError}, // 2999
		{[]byte{0x13, 0x88}, ws.StatusProtocolError}, // 5000
		{[]byte{0xff, 0xff}, ws.StatusProtocolError},
	} {
		c := dialWS(t, s, "wamp.2.json")
		h.waitOpen(t)
		if _, err := c.conn.Write(maskedFrame(0x80|byte(ws.OpClose), tc.payload)); err != nil {
			t.Fatal(err)
		}
		t.Run(fmt.Sprintf("%x-%d", tc.payload, tc.want), func(t *testing.T) {
			expectCloseCode(t, c, tc.want)
		})
		h.waitClose(t)
		c.conn.Close()
	}
}

// TestWSTruncatedBinaryBatch: a binary batched message whose length prefix is cut or
// claims more than the frame holds is closed with 1007 (invalid data), after the
// complete messages before it were delivered.
func TestWSTruncatedBinaryBatch(t *testing.T) {
	h := newEchoHandler()
	s := startServer(t, Config{}, h)
	for name, msg := range map[string][]byte{
		"short-prefix": append([]byte{0, 0, 0, 2, 0x91, 0x01}, 0, 0),
		"long-length":  append([]byte{0, 0, 0, 2, 0x91, 0x01}, 0, 0, 0, 9, 0x91),
	} {
		t.Run(name, func(t *testing.T) {
			c := dialWS(t, s, "wamp.2.msgpack.batched")
			defer c.conn.Close()
			h.waitOpen(t)
			c.write(t, ws.OpBinary, true, msg)
			expectCloseCode(t, c, ws.StatusInvalidFramePayloadData)
			if err := h.waitClose(t); err == nil || errors.Is(err, ErrClosed) {
				t.Fatalf("truncated batch close reported as %v", err)
			}
		})
	}
}
