package proxy

import (
	"crypto/sha256"
	"crypto/tls"
)

// Channel binding types a WAMP-Cryptosign client may ask for in
// HELLO.Details.authextra.channel_binding.
const (
	bindTLSUnique   = "tls-unique"   // RFC 5929; TLS 1.2 only (TLS 1.3 has no tls-unique)
	bindTLSExporter = "tls-exporter" // RFC 9266; TLS 1.3 (and 1.2 with extended master secret)
)

// channelID returns the 32-byte channel id of kind for a TLS connection, or nil when the
// connection is not TLS or cannot provide that binding (then the handshake continues
// without channel binding, as the spec allows, and CHALLENGE does not name one).
// tls-unique is the SHA-256 of the TLS Finished message (RFC 5929's value, hashed to
// 32 bytes as Autobahn and Crossbar do); tls-exporter is the RFC 9266 exporter value.
func channelID(st *tls.ConnectionState, kind string) []byte {
	if st == nil {
		return nil
	}
	switch kind {
	case bindTLSUnique:
		if len(st.TLSUnique) == 0 {
			return nil
		}
		h := sha256.Sum256(st.TLSUnique)
		return h[:]
	case bindTLSExporter:
		b, err := st.ExportKeyingMaterial("EXPORTER-Channel-Binding", nil, 32)
		if err != nil {
			return nil
		}
		return b
	}
	return nil
}

// xor32 returns a XOR b for two 32-byte values.
func xor32(a, b []byte) []byte {
	out := make([]byte, len(a))
	for i := range a {
		out[i] = a[i] ^ b[i]
	}
	return out
}
