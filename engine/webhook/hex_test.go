package webhook

import (
	"bytes"
	"encoding/hex"
	"testing"
)

// TestDecodeHexMatchesEncodingHex: decodeHex (a table look-up per character) accepts exactly
// the strings encoding/hex accepts, every pair of bytes among them, and decodes them alike;
// a signature-length string with one bad character anywhere is refused.
func TestDecodeHexMatchesEncodingHex(t *testing.T) {
	var pair [2]byte
	for a := range 256 {
		for b := range 256 {
			pair[0], pair[1] = byte(a), byte(b)
			s := string(pair[:])
			want, err := hex.DecodeString(s)
			var got [1]byte
			if ok := decodeHex(got[:], s); ok != (err == nil) || (ok && got[0] != want[0]) {
				t.Fatalf("decodeHex(%q) = %x, %v; encoding/hex: %x, %v", s, got, ok, want, err)
			}
		}
	}
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
