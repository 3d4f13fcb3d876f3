package link

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"net"
)

// protocolVersion is sent in the hello; both sides must speak the same one.
const protocolVersion = 1

// nonceLen is the length of each side's random handshake nonce.
const nonceLen = 32

// proofLabel starts every HMAC input, so that a proof made for the link handshake is
// good for nothing else.
const proofLabel = "switchyard link v1 proof"

// hello is one side's decoded hello.
type hello struct {
	version    uint16
	name, role string
	nonce      []byte
}

// makeHello encodes this side's hello payload with a fresh nonce.
func makeHello(cfg *Config) ([]byte, error) {
	b := binary.BigEndian.AppendUint16(nil, protocolVersion)
	b = append(b, 0, byte(len(cfg.Node)))
	b = append(b, cfg.Node...)
	b = append(b, byte(len(cfg.Role)))
	b = append(b, cfg.Role...)
	nonce := make([]byte, nonceLen)
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("link: nonce: %w", err)
	}
	return append(b, nonce...), nil
}

// parseHello decodes a hello payload.
func parseHello(p []byte) (hello, error) {
	var h hello
	bad := fmt.Errorf("%w: malformed hello", ErrAuth)
	if len(p) < 4 {
		return h, bad
	}
	h.version = binary.BigEndian.Uint16(p)
	if h.version != protocolVersion {
		return h, fmt.Errorf("%w: peer speaks link protocol %d, we speak %d", ErrAuth, h.version, protocolVersion)
	}
	if p[2] != 0 {
		return h, bad
	}
	n := int(p[3])
	p = p[4:]
	if len(p) < n+1 {
		return h, bad
	}
	h.name, p = string(p[:n]), p[n:]
	n = int(p[0])
	p = p[1:]
	if len(p) != n+nonceLen {
		return h, bad
	}
	h.role, h.nonce = string(p[:n]), p[n:]
	return h, nil
}

// proof is side's ('D' dialer, 'L' listener) HMAC-SHA256 over both hellos, dialer's
// first. Both nonces and both names are in the hellos, so a proof is good for this
// handshake only (no replay), and the side byte makes a reflected proof fail.
func proof(secret []byte, side byte, dialerHello, listenerHello []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(proofLabel))
	m.Write([]byte{side})
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(dialerHello)))
	m.Write(n[:])
	m.Write(dialerHello)
	m.Write(listenerHello)
	return m.Sum(nil)
}

// checkPeer rejects a hello that echoes ours (a connection to ourselves or a reflection).
func checkPeer(cfg *Config, mine []byte, peer hello) error {
	if peer.name == cfg.Node {
		return fmt.Errorf("%w: peer claims our own node name %q", ErrAuth, peer.name)
	}
	if hmac.Equal(peer.nonce, mine[len(mine)-nonceLen:]) {
		return fmt.Errorf("%w: peer echoed our nonce", ErrAuth)
	}
	return nil
}

// verifyProof checks the peer's proof when this side has a secret. Without a secret the
// TLS handshake has already authenticated the peer (checked by Config.withDefaults).
func verifyProof(cfg *Config, got []byte, side byte, dh, lh []byte) error {
	if len(cfg.Secret) == 0 {
		return nil
	}
	if !hmac.Equal(got, proof(cfg.Secret, side, dh, lh)) {
		return fmt.Errorf("%w: wrong cluster secret proof", ErrAuth)
	}
	return nil
}

// myProof is this side's proof, empty without a secret.
func myProof(cfg *Config, side byte, dh, lh []byte) []byte {
	if len(cfg.Secret) == 0 {
		return nil
	}
	return proof(cfg.Secret, side, dh, lh)
}

// dialerHandshake runs the dialer's side: hello, read hello, prove, read proof. The
// caller has set the connection's deadline.
func dialerHandshake(c net.Conn, cfg *Config) (PeerInfo, error) {
	mine, err := makeHello(cfg)
	if err != nil {
		return PeerInfo{}, err
	}
	if err := writeCtl(c, kindHello, mine); err != nil {
		return PeerInfo{}, err
	}
	theirs, err := readCtl(c, kindHello)
	if err != nil {
		return PeerInfo{}, err
	}
	h, err := parseHello(theirs)
	if err != nil {
		return PeerInfo{}, err
	}
	if err := checkPeer(cfg, mine, h); err != nil {
		return PeerInfo{}, err
	}
	if err := writeCtl(c, kindAuth, myProof(cfg, 'D', mine, theirs)); err != nil {
		return PeerInfo{}, err
	}
	got, err := readCtl(c, kindAuth)
	if err != nil {
		return PeerInfo{}, err
	}
	if err := verifyProof(cfg, got, 'L', mine, theirs); err != nil {
		return PeerInfo{}, err
	}
	return PeerInfo{Node: h.name, Role: h.role}, nil
}

// listenerHandshake runs the listener's side: read hello, hello, read proof, verify,
// prove. The dialer proves first, so a peer without the secret gets our hello and a
// close, never a proof of ours. The caller has set the connection's deadline.
func listenerHandshake(c net.Conn, cfg *Config) (PeerInfo, error) {
	theirs, err := readCtl(c, kindHello)
	if err != nil {
		return PeerInfo{}, err
	}
	h, err := parseHello(theirs)
	if err != nil {
		return PeerInfo{}, err
	}
	mine, err := makeHello(cfg)
	if err != nil {
		return PeerInfo{}, err
	}
	if err := checkPeer(cfg, mine, h); err != nil {
		return PeerInfo{}, err
	}
	if err := writeCtl(c, kindHello, mine); err != nil {
		return PeerInfo{}, err
	}
	got, err := readCtl(c, kindAuth)
	if err != nil {
		return PeerInfo{}, err
	}
	if err := verifyProof(cfg, got, 'D', theirs, mine); err != nil {
		return PeerInfo{}, err
	}
	if err := writeCtl(c, kindAuth, myProof(cfg, 'L', theirs, mine)); err != nil {
		return PeerInfo{}, err
	}
	return PeerInfo{Node: h.name, Role: h.role}, nil
}

// maxCtlLen bounds a handshake frame.
const maxCtlLen = 4096

// writeCtl writes one handshake frame (session 0) in one write.
func writeCtl(c net.Conn, kind Kind, payload []byte) error {
	if _, err := c.Write(appendFrame(nil, kind, 0, payload)); err != nil {
		return fmt.Errorf("link: handshake write: %w", err)
	}
	return nil
}

// readCtl reads one handshake frame of the given kind and returns its payload.
func readCtl(c net.Conn, want Kind) ([]byte, error) {
	var lb [4]byte
	if _, err := io.ReadFull(c, lb[:]); err != nil {
		return nil, fmt.Errorf("link: handshake read: %w", err)
	}
	n := binary.BigEndian.Uint32(lb[:])
	if n > maxCtlLen {
		return nil, fmt.Errorf("%w: handshake frame of %d bytes", ErrAuth, n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(c, body); err != nil {
		return nil, fmt.Errorf("link: handshake read: %w", err)
	}
	var f Frame
	if _, err := parseFrame(body, &f, nil); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrAuth, err)
	}
	if f.Kind == kindClose {
		return nil, fmt.Errorf("%w: peer closed: %q", ErrAuth, f.Payload)
	}
	if f.Kind != want || f.Targets != nil || f.Session != 0 {
		return nil, fmt.Errorf("%w: expected frame kind %d, got %d", ErrAuth, want, f.Kind)
	}
	return f.Payload, nil
}
