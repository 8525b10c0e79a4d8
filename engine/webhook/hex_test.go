package webhook

import (
	"bytes"
	"encoding/hex"
	"testing"
)

// TestDecodeHexMatchesEncodingHex: decodeHex (encoding/hex's Decode on a view of the string)
// decodes a signature as encoding/hex does, refuses one with a bad character anywhere, and
// refuses a string whose length is not twice the destination's.
func TestDecodeHexMatchesEncodingHex(t *testing.T) {
	sig := "0123456789abcdefABCDEF0123456789abcdefABCDEF0123456789abcdef0a1B"
	want, _ := hex.DecodeString(sig)
	got := make([]byte, len(sig)/2)
	if !decodeHex(got, sig) || !bytes.Equal(got, want) {
		t.Fatalf("decodeHex(%q) = %x; want %x", sig, got, want)
	}
	for i := range sig {
		for _, c := range []byte{'g', 'G', ' ', 0, 0x80, 0xff, '/', ':', '@', '`'} {
			bad := []byte(sig)
			bad[i] = c
			if decodeHex(got, string(bad)) {
				t.Fatalf("decodeHex(%q) accepted a bad character at %d", bad, i)
			}
		}
	}
	if decodeHex(got, sig[1:]) || decodeHex(got[:1], sig) {
		t.Fatal("decodeHex accepted a string of the wrong length")
	}
}
