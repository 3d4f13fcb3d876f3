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
		p, ok, err := ra.challengeFor("cryptosign", "d", extra, nil)
		if err != nil || !ok {
			b.Fatal(err)
		}
		b.StopTimer() // signing is the client's part
		sig := hex.EncodeToString(ed25519.Sign(priv, p.signed))
		b.StartTimer()
		if !p.verify(sig) {
			b.Fatal("signature rejected")
		}
	}
}

func TestCryptosignRejectsForeignChallenge(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	ra := &RealmAuth{Cryptosign: map[string]CryptosignPrincipal{"d": {AuthorizedKeys: []ed25519.PublicKey{pub}, Role: "r"}}}
	p1, _, _ := ra.challengeFor("cryptosign", "d", map[string]any{"pubkey": hex.EncodeToString(pub)}, nil)
	p2, _, _ := ra.challengeFor("cryptosign", "d", map[string]any{"pubkey": hex.EncodeToString(pub)}, nil)
	// A signature of another challenge (a replay) does not verify.
	if p1.verify(hex.EncodeToString(ed25519.Sign(priv, p2.signed))) {
		t.Fatal("replayed signature accepted")
	}
	if !p1.verify(hex.EncodeToString(ed25519.Sign(priv, p1.signed))) {
		t.Fatal("good signature rejected")
	}
}

// TestCryptosignSpecVectors checks verify against the WAMP spec's WAMP-Cryptosign test
// vectors (rfc/text/advanced/ap_35_authentication_cryptosign.md), with and without a
// TLS channel id: the client signs challenge XOR channel_id and sends signature||message.
func TestCryptosignSpecVectors(t *testing.T) {
	const cid = "62e935ae755f3d48f80d4d59f6121358c435722a67e859cc0caa8b539027f2ff"
	for i, v := range []struct{ channelID, key, challenge, signature string }{
		{"", "4d57d97a68f555696620a6d849c0ce582568518d729eb753dc7c732de2804510",
			"ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
			"b32675b221f08593213737bef8240e7c15228b07028e19595294678c90d11c0cae80a357331bfc5cc9fb71081464e6e75013517c2cf067ad566a6b7b728e5d03ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"},
		{"", "d511fe78e23934b3dadb52fcd022974b80bd92bccc7c5cf404e46cc0a8a2f5cd",
			"b26c1f87c13fc1da14997f1b5a71995dff8fbe0a62fae8473c7bdbd05bfb607d",
			"d4209ad10d5aff6bfbc009d7e924795de138a63515efc7afc6b01b7fe5201372190374886a70207b042294af5bd64ce725cd8dceb344e6d11c09d1aaaf4d660fb26c1f87c13fc1da14997f1b5a71995dff8fbe0a62fae8473c7bdbd05bfb607d"},
		{cid, "4d57d97a68f555696620a6d849c0ce582568518d729eb753dc7c732de2804510",
			"ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
			"9b6f41540c9b95b4b7b281c3042fa9c54cef43c842d62ea3fd6030fcb66e70b3e80d49d44c29d1635da9348d02ec93f3ed1ef227dfb59a07b580095c2b82f80f9d16ca518aa0c2b707f2b2a609edeca73bca8dd59817a633f35574ac6fd80d00"},
		{cid, "6e1fde9cf9e2359a87420b65a87dc0c66136e66945196ba2475990d8a0c3a25b",
			"b05e6b8ad4d69abf74aa3be3c0ee40ae07d66e1895b9ab09285a2f1192d562d2",
			"ee3c7644fd8070532bc1fde3d70d742267da545d8c8f03e63bda63f1ad4214f4d2c4bfdb4eb9526def42deeb7e31602a6ff99eba893e0a4ad4d45892ca75e608d2b75e24a189a7f78ca776ba36fc53f6c3e31c32f251f2c524f0a44202f2902d"},
	} {
		seed, _ := hex.DecodeString(v.key)
		ch, _ := hex.DecodeString(v.challenge)
		p := &pendingAuth{method: "cryptosign", pubkey: ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey), signed: ch}
		if v.channelID != "" {
			id, _ := hex.DecodeString(v.channelID)
			p.signed = xor32(ch, id)
		}
		if !p.verify(v.signature) {
			t.Errorf("vector %d: spec signature rejected", i)
		}
		if p.verify(v.signature[:128]) != true {
			t.Errorf("vector %d: bare 64-byte signature rejected", i)
		}
		p.signed = ch
		if v.channelID != "" && p.verify(v.signature) {
			t.Errorf("vector %d: channel-bound signature accepted without the binding", i)
		}
	}
}
