package client

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/url"

	"github.com/switchyard-wamp/switchyard/codec"
)

// RawSocket frame types (the low 3 bits of the first header byte).
const (
	rsMessage = 0
	rsPing    = 1
	rsPong    = 2
)

// rsMaxFrame is the largest length a RawSocket frame header can carry.
const rsMaxFrame = 1<<24 - 1

// rsLengthNibble returns the smallest length exponent n (max length 2^(9+n)) that covers
// size, capped at 15 (16 MiB).
func rsLengthNibble(size int) byte {
	var n byte
	for n < 15 && 1<<(9+n) < size {
		n++
	}
	return n
}

func dialRawSocket(ctx context.Context, u *url.URL, useTLS bool, ser codec.Serializer, o *dialOptions) (*Transport, error) {
	if o.batched {
		return nil, fmt.Errorf("rawsocket: there is no batched RawSocket mode")
	}
	network, addr := "tcp", u.Host
	if u.Scheme == "rs+unix" {
		network, addr = "unix", u.Path
		if addr == "" {
			return nil, fmt.Errorf("rawsocket: URL %q needs a socket path", u.Redacted())
		}
	} else if u.Port() == "" {
		return nil, fmt.Errorf("rawsocket: URL %q needs a port", u.Redacted())
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("rawsocket: dial %s: %w", addr, err)
	}
	if useTLS {
		cfg := &tls.Config{}
		if o.tls != nil {
			cfg = o.tls.Clone()
		}
		if cfg.ServerName == "" {
			cfg.ServerName = u.Hostname()
		}
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, fmt.Errorf("rawsocket: TLS handshake with %s: %w", u.Host, err)
		}
		conn = tc
	}
	t, err := rawSocketHandshake(ctx, conn, ser, o.maxMsg)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return t, nil
}

// rawSocketHandshake runs the client side of the RawSocket handshake on conn.
func rawSocketHandshake(ctx context.Context, conn net.Conn, ser codec.Serializer, maxMsg int) (*Transport, error) {
	done := ctxDeadline(ctx, conn)
	nib := rsLengthNibble(maxMsg)
	hello := [4]byte{0x7F, nib<<4 | byte(ser), 0, 0}
	if _, err := conn.Write(hello[:]); err != nil {
		_ = done()
		return nil, handshakeErr(ctx, err)
	}
	var reply [4]byte
	if _, err := io.ReadFull(conn, reply[:]); err != nil {
		_ = done()
		return nil, handshakeErr(ctx, err)
	}
	if err := done(); err != nil {
		return nil, fmt.Errorf("rawsocket: handshake: %w", err)
	}
	switch {
	case reply[0] != 0x7F:
		return nil, fmt.Errorf("rawsocket: bad handshake reply % x (not a RawSocket router?)", reply)
	case reply[1]&0x0F == 0:
		return nil, &RawSocketError{Code: reply[1] >> 4}
	case reply[1]&0x0F != byte(ser):
		return nil, fmt.Errorf("rawsocket: router replied with serializer %d, asked for %d", reply[1]&0x0F, ser)
	case reply[2] != 0 || reply[3] != 0:
		return nil, fmt.Errorf("rawsocket: handshake reply has reserved bytes set: % x", reply)
	}
	t := newTransport(conn, bufio.NewReaderSize(conn, 16<<10), ser)
	t.maxIn = 1 << (9 + int(nib))
	t.maxOut = 1 << (9 + int(reply[1]>>4))
	return t, nil
}

func handshakeErr(ctx context.Context, err error) error {
	if cerr := ctxErr(ctx); cerr != nil {
		err = cerr
	}
	return fmt.Errorf("rawsocket: handshake: %w", err)
}

// writeRSLocked writes buf[start:] as one frame of type typ, the 4-byte header going
// before start. Unless raw, the router's announced maximum applies. t.wmu must be held.
func (t *Transport) writeRSLocked(buf []byte, start int, typ byte, raw bool) error {
	n := len(buf) - start
	if n > rsMaxFrame || (!raw && t.maxOut > 0 && n > t.maxOut) {
		return ErrMessageTooLarge
	}
	buf[start-4], buf[start-3], buf[start-2], buf[start-1] = typ, byte(n>>16), byte(n>>8), byte(n)
	_, err := t.conn.Write(buf[start-4:])
	return t.noteWriteErr(err)
}

// readRSMessage reads frames until a message frame, answering pings with pongs.
func (t *Transport) readRSMessage() ([]byte, error) {
	for {
		h := t.hbuf[:4]
		if _, err := io.ReadFull(t.r, h); err != nil {
			return nil, err
		}
		typ := h[0]
		n := int(h[1])<<16 | int(h[2])<<8 | int(h[3])
		if typ > rsPong {
			return nil, errProtocol("rawsocket: bad frame type byte 0x%02x", typ)
		}
		if n > t.maxIn {
			return nil, errProtocol("rawsocket: frame of %d bytes exceeds the announced maximum %d", n, t.maxIn)
		}
		buf, err := t.readFull(t.rbuf[:0], n)
		t.rbuf = buf
		if err != nil {
			return nil, err
		}
		switch typ {
		case rsMessage:
			return buf, nil
		case rsPing:
			t.wmu.Lock()
			if t.werr == nil {
				t.wbuf = append(append(t.wbuf[:0], 0, 0, 0, 0), buf...)
				_ = t.writeRSLocked(t.wbuf, 4, rsPong, true)
			}
			t.wmu.Unlock()
		}
	}
}
