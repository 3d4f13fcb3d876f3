package link

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/switchyard-wamp/switchyard/internal/readbatch"
)

// readLoop reads frames until the connection fails or a frame is bad, parsing them in
// place in its buffer and delivering user frames to the handler. The frames of one read
// form a batch (batch.go): what they make other links send is flushed once, at its end.
// It returns why it stopped.
//
// The read deadline (DeadAfter after the last data) is moved only when a quarter of
// DeadAfter has passed since it was last set, not on every read; when it fires early
// because of that, it is moved to DeadAfter after the last data and the read goes on.
func (l *Link) readLoop() error {
	buf := make([]byte, readBufSize)
	r, w := 0, 0
	var f Frame
	var tbuf []uint64
	inBatch := false
	defer func() {
		if inBatch {
			readbatch.End()
		}
	}()
	lastData := time.Now()
	deadlineSet := lastData
	if err := l.conn.SetReadDeadline(lastData.Add(l.cfg.DeadAfter)); err != nil {
		return fmt.Errorf("link: read: %w", err)
	}
	for {
		k, err := l.frames(buf[r:w], &f, &tbuf)
		r += k
		if err != nil {
			return err
		}
		if inBatch {
			inBatch = false
			readbatch.End()
		}
		// Make room: the pending frame (or at least its length) must fit after r.
		need := 4
		if w-r >= 4 {
			need = 4 + int(binary.BigEndian.Uint32(buf[r:]))
		}
		switch {
		case r == w:
			r, w = 0, 0
			if len(buf) > readBufSize {
				buf = make([]byte, readBufSize)
			}
		case need > len(buf):
			nb := make([]byte, need)
			w = copy(nb, buf[r:w])
			r, buf = 0, nb
		case r+need > len(buf) || len(buf)-w < minReadRoom:
			w = copy(buf, buf[r:w])
			r = 0
		}
		k, err = l.conn.Read(buf[w:])
		w += k
		l.reads.Add(1)
		if k > 0 {
			readbatch.Begin()
			inBatch = true
			lastData = time.Now()
			if lastData.Sub(deadlineSet) > l.cfg.DeadAfter/4 {
				deadlineSet = lastData
				if err := l.conn.SetReadDeadline(lastData.Add(l.cfg.DeadAfter)); err != nil {
					return fmt.Errorf("link: read: %w", err)
				}
			}
		}
		if err != nil && k == 0 {
			switch {
			case errors.Is(err, os.ErrDeadlineExceeded):
				if silent := time.Since(lastData); silent < l.cfg.DeadAfter {
					// Set before the last data arrived: move it and read on.
					deadlineSet = lastData
					if err := l.conn.SetReadDeadline(lastData.Add(l.cfg.DeadAfter)); err != nil {
						return fmt.Errorf("link: read: %w", err)
					}
					continue
				}
				return fmt.Errorf("%w: nothing received for %v", ErrDead, l.cfg.DeadAfter)
			case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
				return fmt.Errorf("%w: connection ended", ErrPeerClosed)
			}
			return fmt.Errorf("link: read: %w", err)
		}
	}
}

// frames delivers the complete frames at the start of buf (control frames to control,
// the others to the handler) and returns how many bytes they took; f and tbuf are the
// caller's scratch.
func (l *Link) frames(buf []byte, f *Frame, tbuf *[]uint64) (int, error) {
	r := 0
	for len(buf)-r >= 4 {
		n := int(binary.BigEndian.Uint32(buf[r:]))
		if n > maxFrameLen {
			return r, fmt.Errorf("%w: frame of %d bytes", errProtocol, n)
		}
		if len(buf)-r < 4+n {
			break
		}
		body := buf[r+4 : r+4+n]
		r += 4 + n
		var err error
		if *tbuf, err = parseFrame(body, f, *tbuf); err != nil {
			return r, err
		}
		l.framesIn.Add(1)
		l.bytesIn.Add(uint64(4 + n))
		if f.Kind < FirstUserKind {
			if err := l.control(f); err != nil {
				return r, err
			}
			continue
		}
		if l.isClosed.Load() {
			return r, l.Err()
		}
		l.h.OnFrame(l, f)
	}
	return r, nil
}

// control handles a link-protocol frame after the handshake.
func (l *Link) control(f *Frame) error {
	switch f.Kind {
	case kindPing:
		l.sendCtl(kindPong, f.Payload)
	case kindPong:
		if len(f.Payload) == 8 || len(f.Payload) == 16 { // a heartbeat's, or a fence's
			sent := int64(binary.BigEndian.Uint64(f.Payload))
			l.rtt.Store(time.Now().UnixNano() - sent)
		}
		if len(f.Payload) == 16 {
			l.fenceAnswered(binary.BigEndian.Uint64(f.Payload[8:]))
		}
	case kindClose:
		return fmt.Errorf("%w: %s", ErrPeerClosed, f.Payload)
	default:
		return fmt.Errorf("%w: unexpected frame kind %d after the handshake", errProtocol, f.Kind)
	}
	return nil
}
