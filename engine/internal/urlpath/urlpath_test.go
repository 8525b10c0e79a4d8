package urlpath

import (
	"bytes"
	"net/url"
	"path"
	"strings"
	"testing"
)

// pathCases are raw paths with their canonical form and class; the reason is checked for the
// classes that carry one.
var pathCases = []struct {
	raw, want string
	class     Class
	reason    string
}{
	{"/", "/", Canonical, ""},
	{"/hooks/github", "/hooks/github", Canonical, ""},
	{"/hooks/github/", "/hooks/github/", Canonical, ""},
	{"/a/b.c/...d/.e/e.", "/a/b.c/...d/.e/e.", Canonical, ""},
	{"/a:b@c/!$&'()*+,=-_~", "/a:b@c/!$&'()*+,=-_~", Canonical, ""},
	{"/caf%C3%A9", "/caf%C3%A9", Canonical, ""},

	{"/app//admin", "/app/admin", Normalized, ""},
	{"//app///admin//", "/app/admin/", Normalized, ""},
	{"/app/%61dmin", "/app/admin", Normalized, ""},
	{"/app/%41%7e%2d%5F", "/app/A~-_", Normalized, ""},
	{"/a%3bb%3Ac", "/a%3Bb%3Ac", Normalized, ""},
	{"/caf%c3%a9", "/caf%C3%A9", Normalized, ""},
	{"/caf\xc3\xa9", "/caf%C3%A9", Normalized, ""},
	{"/a\"<>^`{|}", "/a%22%3C%3E%5E%60%7B%7C%7D", Normalized, ""},
	{"/%20", "/%20", Canonical, ""},

	{"/app/x/../admin", "/app/admin", Ambiguous, ReasonDotSegment},
	{"/app/./admin", "/app/admin", Ambiguous, ReasonDotSegment},
	{"/app/admin/.", "/app/admin/", Ambiguous, ReasonDotSegment},
	{"/app/admin/..", "/app/", Ambiguous, ReasonDotSegment},
	{"/a//../b", "/b", Ambiguous, ReasonDotSegment},
	{"/hooks/github/%2e%2e/public", "/hooks/public", Ambiguous, ReasonEncodedDot},
	{"/hooks/github/%2E./public", "/hooks/public", Ambiguous, ReasonEncodedDot},
	{"/file%2Ejson", "/file.json", Ambiguous, ReasonEncodedDot},
	{"/hooks/github/..%2f..%2fpublic/x", "/hooks/github/..%2F..%2Fpublic/x", Ambiguous, ReasonEncodedSlash},
	{"/a%2Fb", "/a%2Fb", Ambiguous, ReasonEncodedSlash},
	{"/a\\..\\b", "/a%5C..%5Cb", Ambiguous, ReasonBackslash},
	{"/a%5cb", "/a%5Cb", Ambiguous, ReasonBackslash},
	{"/a/%252e%252e/b", "/a/%252e%252e/b", Ambiguous, ReasonDoubleEncoding},
	// The hex digits after the encoded "%" are escapes of their own: "%252F" once decoded.
	{"/hook/a%25%32%46b", "/hook/a%252Fb", Ambiguous, ReasonDoubleEncoding},
	{"/hook/a%25%32F", "/hook/a%252F", Ambiguous, ReasonDoubleEncoding},
	{"/a/%25%7A%7A", "/a/%25zz", Normalized, ""},
	{"/a/%25zz", "/a/%25zz", Canonical, ""},
	{"/a/%25", "/a/%25", Canonical, ""},
	{"/hooks/internal;x=1", "/hooks/internal%3Bx=1", Ambiguous, ReasonParams},
	{"/a;b/c;d;e", "/a%3Bb/c%3Bd%3Be", Ambiguous, ReasonParams},
	{"/a;/b//c;", "/a%3B/b/c%3B", Ambiguous, ReasonParams},
	{"/x/;", "/x/%3B", Ambiguous, ReasonParams},
	{"/%C0%AE%C0%AE/x", "/%C0%AE%C0%AE/x", Ambiguous, ReasonUTF8},
	{"/%e0%80%ae", "/%E0%80%AE", Ambiguous, ReasonUTF8},
	{"/%ed%a0%80", "/%ED%A0%80", Ambiguous, ReasonUTF8},
	{"/%c3", "/%C3", Ambiguous, ReasonUTF8},
	{"/\xc0\xae", "/%C0%AE", Ambiguous, ReasonUTF8},

	{"", "", Invalid, ReasonNotOrigin},
	{"a/b", "", Invalid, ReasonNotOrigin},
	{"/..", "", Invalid, ReasonClimb},
	{"/../x", "", Invalid, ReasonClimb},
	{"/a/../../x", "", Invalid, ReasonClimb},
	{"/%2e%2e/x", "", Invalid, ReasonClimb},
	{"/a/..;/b", "", Invalid, ReasonDotParams},
	{"/a/.;x/b", "", Invalid, ReasonDotParams},
	{"/a/%2e;x/b", "", Invalid, ReasonDotParams},
	{"/a/%00", "", Invalid, ReasonControl},
	{"/a/%0d%0aX: y", "", Invalid, ReasonControl},
	{"/a/%7f", "", Invalid, ReasonControl},
	{"/a\x00b", "", Invalid, ReasonControl},
	{"/a\tb", "", Invalid, ReasonControl},
	{"/a b", "", Invalid, ReasonControl},
	{"/a#b", "", Invalid, ReasonFragment},
	{"/a%", "", Invalid, ReasonBadEscape},
	{"/a%2", "", Invalid, ReasonBadEscape},
	{"/a%2/b", "", Invalid, ReasonBadEscape},
	{"/a%zzb", "", Invalid, ReasonBadEscape},
}

func TestClean(t *testing.T) {
	for _, c := range pathCases {
		raw := []byte(c.raw)
		r := Clean(make([]byte, 0, 4), raw)
		if string(r.Path) != c.want || r.Class != c.class || (c.class >= Ambiguous) && r.Reason != c.reason {
			t.Errorf("Clean(%q) = %q class %d reason %q; want %q class %d reason %q", c.raw, r.Path, r.Class, r.Reason, c.want, c.class, c.reason)
		}
		if r.Class < Ambiguous && r.Reason != "" {
			t.Errorf("Clean(%q): reason %q for class %d", c.raw, r.Reason, r.Class)
		}
		checkInvariants(t, raw, r)
	}
}

// A canonical path costs one scan and no allocation; so does a normalised one once the
// buffer has grown.
func TestCleanAllocatesNothing(t *testing.T) {
	buf := make([]byte, 0, 256)
	for _, c := range pathCases {
		raw := []byte(c.raw)
		if n := testing.AllocsPerRun(100, func() { _ = Clean(buf, raw) }); n != 0 {
			t.Errorf("Clean(%q): %v allocs, want 0", c.raw, n)
		}
	}
}

func FuzzClean(f *testing.F) {
	for _, c := range pathCases {
		f.Add([]byte(c.raw))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		checkInvariants(t, raw, Clean(nil, raw))
	})
}

// checkInvariants holds a result to the contract, with Go's net/url and path as the
// reference decoder and resolver.
func checkInvariants(t *testing.T, raw []byte, r Result) {
	t.Helper()
	if r.Class == Invalid {
		if r.Path != nil || r.Reason == "" {
			t.Fatalf("%q: invalid with path %q, reason %q", raw, r.Path, r.Reason)
		}
		return
	}
	p := r.Path
	// The canonical form starts with "/", has no empty and no dot segment, and only pchars
	// and upper-case escapes of characters that are not unreserved.
	if len(p) == 0 || p[0] != '/' || bytes.Contains(p, []byte("//")) {
		t.Fatalf("%q: canonical %q does not start with / or has //", raw, p)
	}
	for _, seg := range strings.Split(string(p[1:]), "/") {
		if seg == "." || seg == ".." {
			t.Fatalf("%q: canonical %q has a dot segment", raw, p)
		}
	}
	for i := 0; i < len(p); i++ {
		switch c := p[i]; byteClass[c] {
		case cPlain, cDot, cSlash:
		case cPercent:
			if i+2 >= len(p) || !strings.ContainsRune(upperHex, rune(p[i+1])) || !strings.ContainsRune(upperHex, rune(p[i+2])) {
				t.Fatalf("%q: canonical %q has a bad escape at %d", raw, p, i)
			}
			if v, _ := url.PathUnescape(string(p[i : i+3])); len(v) == 1 && unreserved(v[0]) {
				t.Fatalf("%q: canonical %q keeps an unreserved character encoded", raw, p)
			}
			i += 2
		default:
			t.Fatalf("%q: canonical %q has a raw %q", raw, p, c)
		}
	}
	// Idempotent: the canonical form is its own canonical form, and is ambiguous only for
	// what canonicalisation keeps (encoded separators, double encoding, non-UTF-8).
	again := Clean(nil, p)
	if string(again.Path) != string(p) {
		t.Fatalf("%q: canonical %q becomes %q", raw, p, again.Path)
	}
	if r.Class != Ambiguous && again.Class != Canonical {
		// What the route and the policy judged (not ambiguous) must be what is forwarded:
		// the canonical form, cleaned again, may not turn out ambiguous.
		t.Fatalf("%q: class %d, but its canonical %q is of class %d (%s)", raw, r.Class, p, again.Class, again.Reason)
	}
	switch again.Class {
	case Canonical:
	case Ambiguous:
		if again.Reason != ReasonEncodedSlash && again.Reason != ReasonBackslash && again.Reason != ReasonDoubleEncoding && again.Reason != ReasonUTF8 {
			t.Fatalf("%q: canonical %q is ambiguous: %s", raw, p, again.Reason)
		}
	default:
		t.Fatalf("%q: canonical %q is of class %d", raw, p, again.Class)
	}
	// Canonical means unchanged; Normalized means changed; Ambiguous may be either ("%2F").
	if r.Class == Canonical && string(p) != string(raw) || r.Class == Normalized && string(p) == string(raw) {
		t.Fatalf("%q: class %d, canonical %q", raw, r.Class, p)
	}
	if r.Class == Canonical && len(raw) > 0 && &r.Path[0] != &raw[0] {
		t.Fatalf("%q: a canonical path must be returned as is", raw)
	}

	// Ambiguous exactly when a server decoding the raw path could read another path than the
	// canonical one: a dot segment, an encoded dot, slash or backslash, a raw backslash, an
	// escape hidden under "%25", or bytes that are not UTF-8.
	decRaw, err1 := url.PathUnescape(string(raw))
	decCanon, err2 := url.PathUnescape(string(p))
	if err1 != nil || err2 != nil {
		t.Fatalf("%q: not invalid, yet net/url cannot decode it (%v) or its canonical %q (%v)", raw, err1, p, err2)
	}
	lower := strings.ToLower(string(raw))
	matters := strings.Contains(lower, "%2e") || strings.Contains(lower, "%2f") || strings.Contains(lower, "%5c") ||
		strings.Contains(string(raw), "\\") || strings.Contains(string(raw), ";") || doubleEscape(decRaw) || !utf8Valid(decRaw)
	for _, seg := range strings.Split(decRaw, "/") {
		matters = matters || seg == "." || seg == ".."
	}
	if matters != (r.Class == Ambiguous) {
		t.Fatalf("%q: class %d (%s), but a difference that matters is %v", raw, r.Class, r.Reason, matters)
	}
	if !matters {
		// Both decode to the same segments, and path.Clean has nothing left to resolve.
		if segments(decRaw) != segments(decCanon) {
			t.Fatalf("%q: decodes to %q, canonical %q to %q", raw, decRaw, p, decCanon)
		}
		if c := path.Clean(decCanon); c != strings.TrimSuffix(decCanon, "/") && c != decCanon {
			t.Fatalf("%q: canonical %q decodes to %q, which path.Clean makes %q", raw, p, decCanon, c)
		}
	} else if !strings.Contains(lower, "%2f") && !strings.Contains(lower, "%5c") && !strings.Contains(string(raw), "\\") && !doubleEscape(decRaw) {
		// Dots resolved as path.Clean resolves them (it keeps no trailing slash).
		if c := path.Clean(decRaw); c != strings.TrimSuffix(decCanon, "/") && c != decCanon {
			t.Fatalf("%q: canonical %q decodes to %q; path.Clean of the decoded raw path is %q", raw, p, decCanon, c)
		}
	}
}

func segments(p string) string {
	var out []string
	for _, s := range strings.Split(p, "/") {
		if s != "" {
			out = append(out, s)
		}
	}
	return strings.Join(out, "\x00")
}

// doubleEscape reports whether decoded, a path decoded once, holds an escape: the raw path
// hid one under "%25", whatever the escapes of its hex digits ("%25%32%46").
func doubleEscape(decoded string) bool {
	const hex = "0123456789abcdefABCDEF"
	for i := 0; i+2 < len(decoded); i++ {
		if decoded[i] == '%' && strings.IndexByte(hex, decoded[i+1]) >= 0 && strings.IndexByte(hex, decoded[i+2]) >= 0 {
			return true
		}
	}
	return false
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\ufffd") == s }

// BenchmarkClean: the fast scan of a canonical path (every request's cost) and the slow path
// of a normalised one.
func BenchmarkClean(b *testing.B) {
	buf := make([]byte, 0, 256)
	for _, raw := range []string{"/hooks/github", "/hooks/github//x/%61"} {
		p := []byte(raw)
		b.Run(raw, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = Clean(buf, p)
			}
		})
	}
}
