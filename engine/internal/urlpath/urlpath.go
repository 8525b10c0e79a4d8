// Package urlpath makes the path of an HTTP request-target canonical, so that the path a
// route is matched on, the path a policy reads, the path logged and the path an upstream
// receives are one and the same.
//
// The canonical form (RFC 3986 section 6.2.2, as Envoy's normalize_path and merge_slashes do it):
// percent-encodings of unreserved characters (ALPHA, DIGIT, "-", ".", "_", "~") are decoded,
// the others are kept with upper-case hex, characters a path may not carry raw are
// percent-encoded, "." and ".." segments are resolved (section 5.2.4) and runs of "/" are merged.
// An encoded "/" or "\" stays encoded: it is data inside a segment, not a separator.
//
// Each path gets a Class. Canonical and Normalized differ from the raw path in nothing an
// upstream could read as another path. Ambiguous means they do: dot segments, encoded dots,
// encoded slashes, backslashes, double percent-encoding, bytes that are not UTF-8 once
// decoded, and ";" (a servlet container strips "/hooks/internal;x=1" to "/hooks/internal",
// a route another server matched as a prefix); the gateway refuses these by default, or
// forwards the canonical form when told to, in which ";" is encoded ("%3B") so that no
// server reads a parameter into it. Invalid paths have no canonical form a server could agree on (a path not starting with
// "/", control bytes, malformed escapes, ".." above the root, a fragment, ".;" and "..;"
// segments) and are always refused.
//
// Clean allocates nothing while the caller's buffer has room: a path that is already
// canonical (the common case, found by one scan) is returned as is, any other is written into
// the buffer, which append grows when the path needs more. It is safe for
// concurrent use.
package urlpath

import (
	"bytes"
	"unicode/utf8"
)

// Class says how a raw path relates to its canonical form.
type Class uint8

// The classes, in increasing order of concern.
const (
	// Canonical: the raw path is its canonical form.
	Canonical Class = iota
	// Normalized: merged slashes, decoded unreserved characters, upper-cased hex or
	// percent-encoded raw characters; every server reads both forms as the same path.
	Normalized
	// Ambiguous: a server could read the raw path as another path than the canonical one.
	Ambiguous
	// Invalid: no canonical form; refused whatever the mode.
	Invalid
)

// Result is what Clean found.
type Result struct {
	// Path is the canonical path: the raw path itself when Class is Canonical, else in the
	// caller's buffer. Nil when Class is Invalid.
	Path  []byte
	Class Class
	// Reason says why the path is Ambiguous or Invalid (the first such finding); "" otherwise.
	// It never quotes the path.
	Reason string
}

// Reasons, for logs and tests.
const (
	ReasonNotOrigin      = "path does not start with /"
	ReasonControl        = "control byte in path"
	ReasonFragment       = "fragment in request target"
	ReasonBadEscape      = "malformed percent-encoding in path"
	ReasonClimb          = "path climbs above the root"
	ReasonDotParams      = "dot segment with parameters"
	ReasonDotSegment     = "dot segment in path"
	ReasonEncodedDot     = "encoded dot in path"
	ReasonEncodedSlash   = "encoded slash in path"
	ReasonBackslash      = "backslash in path"
	ReasonDoubleEncoding = "double percent-encoding in path"
	ReasonUTF8           = "path is not UTF-8 once decoded"
	ReasonParams         = "parameters in path"
)

// Byte classes of a raw path.
const (
	cPlain     = iota // a pchar kept as is (RFC 3986: unreserved, sub-delims, ":", "@") but "."
	cDot              // "."
	cSlash            // "/"
	cPercent          // "%"
	cEncode           // allowed by HTTP parsers but not raw in a URI: percent-encoded
	cControl          // CTL, space: invalid
	cHash             // "#": a fragment, invalid in a request-target
	cBackslash        // "\": ambiguous (a separator to some servers)
	cSemicolon        // ";": ambiguous (servlet containers strip ";params" from a segment)
)

var byteClass = func() (t [256]uint8) {
	for i := range t {
		t[i] = cEncode
	}
	for i := 0; i < 0x21; i++ {
		t[i] = cControl
	}
	t[0x7f] = cControl
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_~!$&'()*+,;=:@") {
		t[c] = cPlain
	}
	t['.'], t['/'], t['%'], t['#'], t['\\'], t[';'] = cDot, cSlash, cPercent, cHash, cBackslash, cSemicolon
	return t
}()

// Clean returns raw's canonical form; dst's storage is used when it differs (pass a reused
// buffer, length ignored). raw is the path part of a request-target (before any "?").
func Clean(dst, raw []byte) Result {
	if len(raw) == 0 || raw[0] != '/' {
		return Result{Class: Invalid, Reason: ReasonNotOrigin}
	}
	if isCanonical(raw) {
		return Result{Path: raw, Class: Canonical}
	}
	return clean(dst[:0], raw)
}

// isCanonical is the fast scan: only plain bytes, dots and single slashes, no dot segment.
func isCanonical(raw []byte) bool {
	seg := 1
	for i := 1; i < len(raw); i++ {
		switch byteClass[raw[i]] {
		case cPlain, cDot:
		case cSlash:
			if i == seg || raw[seg] == '.' && dotLike(raw[seg:i]) {
				return false // empty segment ("//") or a dot segment
			}
			seg = i + 1
		default:
			return false
		}
	}
	return seg == len(raw) || raw[seg] != '.' || !dotLike(raw[seg:])
}

// encodeSemicolons percent-encodes the n raw ";" of out in place (growing it by 2n): a
// server that strips ";params" and one that does not then read one path, the one the
// route and the policy judged.
func encodeSemicolons(out []byte, n int) []byte {
	end := len(out)
	for range 2 * n {
		out = append(out, 0)
	}
	w := len(out)
	for i := end - 1; i >= 0; i-- {
		if c := out[i]; c == ';' {
			w -= 3
			out[w], out[w+1], out[w+2] = '%', '3', 'B'
		} else {
			w--
			out[w] = c
		}
	}
	return out
}

// dotLike reports whether a segment starting with "." is ".", "..", or one of them with
// parameters (".;x", "..;x"), which servers that strip parameters read as a dot segment.
func dotLike(seg []byte) bool {
	return len(seg) == 1 || seg[1] == ';' || seg[1] == '.' && (len(seg) == 2 || seg[2] == ';')
}

const upperHex = "0123456789ABCDEF"

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func unreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

// finding raises r's class to c with reason why, keeping the first reason of the highest class.
func (r *Result) finding(c Class, why string) {
	if c > r.Class {
		r.Class = c
		if c >= Ambiguous {
			r.Reason = why
		}
	}
}

// clean is the slow path: segment by segment into out, which starts empty.
func clean(out, raw []byte) Result {
	r := Result{Class: Normalized}
	out = append(out, '/')
	nonASCII, semis, pct := false, 0, false
	for i := 1; i <= len(raw); {
		j := i
		for j < len(raw) && raw[j] != '/' {
			j++
		}
		start := len(out)
		for k := i; k < j; k++ {
			c := raw[k]
			switch byteClass[c] {
			case cPlain, cDot:
				out = append(out, c)
			case cControl:
				return Result{Class: Invalid, Reason: ReasonControl}
			case cHash:
				return Result{Class: Invalid, Reason: ReasonFragment}
			case cBackslash:
				r.finding(Ambiguous, ReasonBackslash)
				out = append(out, '%', '5', 'C')
			case cSemicolon:
				// Kept raw until the segment's dot check (".;x" is refused); encoded at the end.
				r.finding(Ambiguous, ReasonParams)
				semis++
				out = append(out, c)
			case cEncode:
				nonASCII = nonASCII || c >= 0x80
				out = append(out, '%', upperHex[c>>4], upperHex[c&0xf])
			case cPercent:
				if k+2 >= j {
					return Result{Class: Invalid, Reason: ReasonBadEscape}
				}
				hi, ok1 := unhex(raw[k+1])
				lo, ok2 := unhex(raw[k+2])
				if !ok1 || !ok2 {
					return Result{Class: Invalid, Reason: ReasonBadEscape}
				}
				v := hi<<4 | lo
				k += 2
				switch {
				case v < 0x20 || v == 0x7f:
					return Result{Class: Invalid, Reason: ReasonControl}
				case v == '.':
					r.finding(Ambiguous, ReasonEncodedDot)
					out = append(out, v)
				case unreserved(v):
					out = append(out, v)
				case v == '/':
					r.finding(Ambiguous, ReasonEncodedSlash)
					out = append(out, '%', '2', 'F')
				case v == '\\':
					r.finding(Ambiguous, ReasonBackslash)
					out = append(out, '%', '5', 'C')
				default:
					// An encoded "%": double encoding is looked for in the output, where
					// the hex digits after it may come from escapes of their own
					// ("%25%32%46" is "%252F").
					pct = pct || v == '%'
					nonASCII = nonASCII || v >= 0x80
					out = append(out, '%', upperHex[v>>4], upperHex[v&0xf])
				}
			}
		}
		seg := out[start:]
		last := j == len(raw)
		switch {
		case len(seg) > 0 && seg[0] == '.' && dotLike(seg):
			if len(seg) > 2 || len(seg) == 2 && seg[1] == ';' {
				return Result{Class: Invalid, Reason: ReasonDotParams}
			}
			r.finding(Ambiguous, ReasonDotSegment)
			out = out[:start] // out ends with "/"
			if len(seg) == 2 {
				if start == 1 {
					return Result{Class: Invalid, Reason: ReasonClimb}
				}
				out = out[:bytes.LastIndexByte(out[:start-1], '/')+1]
			}
		case len(seg) == 0 && !last:
			// an empty segment: merged with the next
		case !last:
			out = append(out, '/')
		}
		i = j + 1
	}
	if nonASCII && !validUTF8(out) {
		r.finding(Ambiguous, ReasonUTF8)
	}
	if pct && doubleEncoded(out) {
		r.finding(Ambiguous, ReasonDoubleEncoding)
	}
	if semis > 0 { // a dot segment may have taken some away with its segment
		if n := bytes.Count(out, []byte{';'}); n > 0 {
			out = encodeSemicolons(out, n)
		}
	}
	r.Path = out
	if r.Class == Normalized && bytes.Equal(out, raw) {
		// The scan sends every escape here: canonical ones ("%C3%A9") come back unchanged.
		r.Class, r.Path = Canonical, raw
	}
	return r
}

// doubleEncoded reports whether the canonical path holds "%25" then two hex digits: decoded
// once it is another escape, which an upstream that decodes twice reads as its character.
func doubleEncoded(p []byte) bool {
	for {
		i := bytes.Index(p, []byte("%25"))
		if i < 0 || i+4 >= len(p) {
			return false
		}
		if _, ok := unhex(p[i+3]); ok {
			if _, ok := unhex(p[i+4]); ok {
				return true
			}
		}
		p = p[i+3:]
	}
}

// validUTF8 reports whether the canonical path, percent-decoded, is UTF-8 (overlong forms,
// surrogates and cut sequences are not). It checks one sequence at a time: no allocation.
func validUTF8(p []byte) bool {
	var seq [utf8.UTFMax]byte
	n, want := 0, 0
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '%' && i+2 < len(p) {
			hi, _ := unhex(p[i+1])
			lo, _ := unhex(p[i+2])
			c, i = hi<<4|lo, i+2
		}
		if want == 0 {
			switch {
			case c < 0x80:
				continue
			case c&0xe0 == 0xc0:
				want = 2
			case c&0xf0 == 0xe0:
				want = 3
			case c&0xf8 == 0xf0:
				want = 4
			default:
				return false
			}
			seq[0], n = c, 1
			continue
		}
		seq[n] = c
		if n++; n == want {
			if !utf8.Valid(seq[:n]) {
				return false
			}
			want = 0
		}
	}
	return want == 0
}
