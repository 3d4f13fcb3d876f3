package engine

import "github.com/switchyard-wamp/switchyard/codec"

// pptKeys are the payload passthru mode options (ppt_scheme, ppt_serializer, ppt_cipher,
// ppt_keyid). The router forwards them untouched from PUBLISH to EVENT, CALL to
// INVOCATION and YIELD to RESULT, and never looks into the payload they describe.
const pptKeys = codec.KeyPptScheme | codec.KeyPptSerializer | codec.KeyPptCipher | codec.KeyPptKeyID

// forwardPpt copies src's passthru options onto dst.
func forwardPpt(dst, src *codec.Details) {
	if src.Has&pptKeys == 0 {
		return
	}
	dst.Has |= src.Has & pptKeys
	dst.PptScheme, dst.PptSerializer = src.PptScheme, src.PptSerializer
	dst.PptCipher, dst.PptKeyID = src.PptCipher, src.PptKeyID
}
