package proxy

import (
	"crypto/ed25519"
	"encoding/hex"
	"testing"
)

// BenchmarkCryptosignHandshake is the router's work for one WAMP-Cryptosign login: make
// the challenge, then verify the client's Ed25519 signature (the handshake rate per core
// is 1/ns-op).
func BenchmarkCryptosignHandshake(b *testing.B) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	ra := &RealmAuth{Cryptosign: map[string]CryptosignPrincipal{"d": {AuthorizedKeys: []ed25519.PublicKey{pub}, Role: "r"}}}
	extra := map[string]any{"pubkey": hex.EncodeToString(pub)}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		p, ok, err := ra.challengeFor("cryptosign", "d", extra)
		if err != nil || !ok {
			b.Fatal(err)
		}
		b.StopTimer() // signing is the client's part
		sig := hex.EncodeToString(ed25519.Sign(priv, p.nonce))
		b.StartTimer()
		if !p.verify(sig) {
			b.Fatal("signature rejected")
		}
	}
}

func TestCryptosignRejectsForeignChallenge(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	ra := &RealmAuth{Cryptosign: map[string]CryptosignPrincipal{"d": {AuthorizedKeys: []ed25519.PublicKey{pub}, Role: "r"}}}
	p1, _, _ := ra.challengeFor("cryptosign", "d", map[string]any{"pubkey": hex.EncodeToString(pub)})
	p2, _, _ := ra.challengeFor("cryptosign", "d", map[string]any{"pubkey": hex.EncodeToString(pub)})
	// A signature of another challenge (a replay) does not verify.
	if p1.verify(hex.EncodeToString(ed25519.Sign(priv, p2.nonce))) {
		t.Fatal("replayed signature accepted")
	}
	if !p1.verify(hex.EncodeToString(ed25519.Sign(priv, p1.nonce))) {
		t.Fatal("good signature rejected")
	}
}
