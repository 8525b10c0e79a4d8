package webhook

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
	"time"
	"unsafe"

	"github.com/hookwall/hookwall/engine/internal/httpsyntax"
)

func missing(header string) Result { return Result{Reason: "missing header " + header} }

func malformed(what string) Result { return Result{Reason: "malformed " + what} }

// maxSigLen bounds the decoded size of every MAC signature (SHA-512).
const maxSigLen = 64

// errEmptySecret keeps a misconfigured empty secret from becoming an HMAC key
// that anybody can sign with.
var errEmptySecret = errors.New("empty secret")

// hmacKeys returns the configured secrets used as raw HMAC keys. ok is false
// when none are configured.
func (v *verifier) hmacKeys() (keys [][]byte, ok bool, err error) {
	for i, k := range v.o.Secrets {
		if len(k) == 0 {
			return nil, false, fmt.Errorf("secret %d: %w", i, errEmptySecret)
		}
	}
	return v.o.Secrets, len(v.o.Secrets) > 0, nil
}

// macs computes the MAC of the message that write produces under every key and
// reports whether match accepts any of them. sum is only valid during match.
func macs(p *MACs, keys [][]byte, alg *hashAlg, write func(hash.Hash), match func(sum []byte) bool) bool {
	for _, k := range keys {
		m, pool := p.get(alg, k)
		write(m.h)
		ok := match(m.h.Sum(m.sum[:0]))
		if pool != nil {
			pool.Put(m)
		}
		if ok {
			return true
		}
	}
	return false
}

// writeString feeds s to h; hash writes never fail.
func writeString(h hash.Hash, s string) { _, _ = io.WriteString(h, s) }

// parseUnix parses a non-negative decimal integer of at most 18 digits, the
// only timestamp syntax the providers send.
func parseUnix(s string) (int64, bool) {
	if len(s) == 0 || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// checkUnixSeconds parses ts (Unix seconds) and checks it against the tolerance.
// what names the header for the malformed reason.
func (v *verifier) checkUnixSeconds(ts, what string, def time.Duration) (Result, bool) {
	n, ok := parseUnix(ts)
	if !ok {
		return malformed(what), false
	}
	if !v.fresh(time.Unix(n, 0), def) {
		return invalid(reasonStale), false
	}
	return Result{}, true
}

// decodeHex decodes s into dst, which must be exactly len(s)/2 long: encoding/hex's table
// decoder, on a view of s (no copy of the signature to a byte slice).
func decodeHex(dst []byte, s string) bool {
	if len(s) != 2*len(dst) {
		return false
	}
	_, err := hex.Decode(dst, unsafe.Slice(unsafe.StringData(s), len(s)))
	return err == nil
}

// decodeHexSig decodes a hex signature of at most maxSigLen bytes into buf.
func decodeHexSig(buf *[maxSigLen]byte, s string) ([]byte, bool) {
	if len(s)%2 != 0 || len(s) > 2*maxSigLen || len(s) == 0 {
		return nil, false
	}
	dst := buf[:len(s)/2]
	return dst, decodeHex(dst, s)
}

// decodeB64Sig decodes a standard base64 signature (padded or not) of at most
// maxSigLen bytes into buf, copying through a stack array so the string is not
// converted on the heap.
func decodeB64Sig(buf *[maxSigLen]byte, s string) ([]byte, bool) {
	const maxEnc = (maxSigLen + 2) / 3 * 4
	if len(s) == 0 || len(s) > maxEnc {
		return nil, false
	}
	var src [maxEnc]byte
	n := copy(src[:], s)
	enc := base64.StdEncoding
	if n%4 != 0 {
		enc = base64.RawStdEncoding
	}
	// DecodedLen counts padding as data, so decode with that much room.
	var dst [maxEnc / 4 * 3]byte
	m, err := enc.Decode(dst[:], src[:n])
	if err != nil || m > maxSigLen {
		return nil, false
	}
	return buf[:copy(buf[:], dst[:m])], true
}

// trimSpace trims ASCII spaces and tabs, which some senders put after list
// separators.
func trimSpace(s string) string {
	return strings.Trim(s, " \t")
}

// requestURL returns the base ("scheme://host[:port]", no trailing slash) and
// the path+query that URL-signed schemes sign. A bad Options.URL is an error; a
// request without a Host header, or with one that is not host[:port] (and no
// Options.URL), is a Result.
func (v *verifier) requestURL() (base string, res Result, ok bool, err error) {
	if u := v.o.URL; u != "" {
		if !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") {
			return "", Result{}, false, errors.New("url option must start with http:// or https://")
		}
		u = strings.TrimSuffix(u, "/")
		if strings.IndexByte(u[strings.Index(u, "//")+2:], '/') >= 0 || strings.ContainsAny(u, "?#") {
			return "", Result{}, false, errors.New("url option must be scheme://host[:port] without a path")
		}
		return u, Result{}, true, nil
	}
	if v.r.Scheme != "http" && v.r.Scheme != "https" {
		return "", Result{}, false, errors.New("request scheme unknown and no url option")
	}
	if v.r.Host == "" {
		return "", missing("host"), false, nil
	}
	// A Host with a path, query, fragment or userinfo would move part of the signed URL out
	// of the request target routed by. The gateway's listener refuses such a Host before any
	// policy runs (server framing); this holds for the library's other callers too.
	if !httpsyntax.IsHost(v.r.Host) {
		return "", malformed("host"), false, nil
	}
	return v.r.Scheme + "://" + v.r.Host, Result{}, true, nil
}
