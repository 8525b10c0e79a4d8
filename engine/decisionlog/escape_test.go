package decisionlog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// escapedByJSON is s as encoding/json escapes a string with HTML escaping off, without the
// quotes, and with its short forms \b and \f spelled \u0008 and \u000c, as the log spells
// every control byte but \n, \r and \t, and DEL and the C1 controls (U+0080 to U+009F),
// which encoding/json leaves as they are, spelled \u007f to \u009f. The oracle
// appendStringBody must match byte for byte.
func escapedByJSON(t *testing.T, s []byte) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(string(s)); err != nil {
		t.Fatal(err)
	}
	q := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	q = q[1 : len(q)-1]
	var out []byte
	for i := 0; i < len(q); i++ {
		switch {
		case q[i] == 0x7f:
			out = append(out, `\u007f`...)
			continue
		case q[i] == 0xc2 && i+1 < len(q) && q[i+1] >= 0x80 && q[i+1] <= 0x9f:
			out = append(out, fmt.Sprintf(`\u%04x`, q[i+1])...)
			i++
			continue
		case q[i] != '\\':
			out = append(out, q[i])
			continue
		}
		i++
		switch q[i] {
		case 'b':
			out = append(out, `\u0008`...)
		case 'f':
			out = append(out, `\u000c`...)
		default:
			out = append(out, '\\', q[i])
		}
	}
	return out
}

// checkEscape fails t unless both forms of appendStringBody encode s as encoding/json does.
// The prefix in b checks that what was there is kept.
func checkEscape(t *testing.T, s []byte) {
	t.Helper()
	want := append([]byte("<"), escapedByJSON(t, s)...)
	if got := appendStringBody([]byte("<"), string(s)); !bytes.Equal(got, want) {
		t.Fatalf("string %q:\n got %q\nwant %q", s, got, want)
	}
	if got := appendStringBody([]byte("<"), s); !bytes.Equal(got, want) {
		t.Fatalf("[]byte %q:\n got %q\nwant %q", s, got, want)
	}
}

// notPlain is every ASCII byte the plainASCII table escapes, and the first byte past ASCII.
func notPlain() []byte {
	var out []byte
	for c := 0; c <= utf8.RuneSelf; c++ {
		if c == utf8.RuneSelf || !plainASCII[c] {
			out = append(out, byte(c))
		}
	}
	return out
}

// TestEscapeMaskMatchesTable: the word test flags a byte exactly when the table does not
// call it plain, at every lane, and the lowest flag is the first such byte.
func TestEscapeMaskMatchesTable(t *testing.T) {
	for c := 0; c < 256; c++ {
		plain := c < utf8.RuneSelf && plainASCII[c]
		for lane := 0; lane < 8; lane++ {
			for _, fill := range []byte{'a', 0x20, 0x7e, '=', '%', '[', '?', '{', '<', '&'} {
				w := bytes.Repeat([]byte{fill}, 8)
				w[lane] = byte(c)
				m := escapeMask(load64(w, 0))
				if plain && m != 0 {
					t.Fatalf("byte %#x in lane %d (fill %q): mask %#x, want 0", c, lane, fill, m)
				}
				if !plain && (m == 0 || firstFlagged(m) != lane) {
					t.Fatalf("byte %#x in lane %d (fill %q): mask %#x, want lowest flag in lane %d", c, lane, fill, m, lane)
				}
			}
		}
	}
}

// TestEscapeEveryPosition puts each byte that needs escaping, and multi-byte runes, at every
// position of plain strings of every length up to three words, so word boundaries and the
// tail after the last whole word are all crossed.
func TestEscapeEveryPosition(t *testing.T) {
	var specials []string
	for _, c := range notPlain() {
		specials = append(specials, string([]byte{c}))
	}
	specials = append(specials, "\xff", "\xc3", "\xe2\x80", "é", "€", "😀", "\u2028", "\u2029", "\u2027",
		"\ufffd", "\xed\xa0\x80" /* a surrogate */, "\xf4\x90\x80\x80" /* past U+10FFFF */, "\x7f")
	for n := 0; n <= 24; n++ {
		for pos := 0; pos <= 16 && pos <= n; pos++ {
			for _, sp := range specials {
				for _, fill := range []string{"a", "\x7f", "é"} {
					base := strings.Repeat(fill, n)[:n] // may cut a rune: invalid UTF-8 at the end
					checkEscape(t, []byte(base[:pos]+sp+base[pos:]))
					// two specials: the second one after the first word's flag
					if pos+9 <= n {
						checkEscape(t, []byte(base[:pos]+sp+base[pos:pos+9]+sp+base[pos+9:]))
					}
				}
			}
		}
	}
}

// TestEscapeCases: hand-picked strings at the edges of a word: runes and U+2028/9 across a
// word's end, cut and invalid sequences, and specials right after a whole word.
func TestEscapeCases(t *testing.T) {
	for _, s := range []string{
		"", "a", "abcdefg", "abcdefgh", "abcdefghi", "0123456789abcdef0123456789abcdef",
		"sha256=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		"application/json; charset=\"utf-8\"", `C:\path\to`, "<script>alert(1)&</script>",
		"line\nbreak\r\n\ttab", "\x00\x01\x1f\x20\x7e\x7f\x80\xff",
		"1234567\u2028", "123456\u2029x", "12345678\u2028\u2029\u2028", // U+2028/9 across a word's end
		"1234567é", "1234567€xx", "123456€", "12345😀", "1234567😀", "abcdefgé", // runes across words
		"\xe2\x80", "1234567\xe2", "1234567\xe2\x80", "abcdefg\xf0\x9f\x98", // cut runes at the end
		"\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xf8\x88\x80\x80\x80", // invalid sequences
		"日本語のテキストと ascii mixed text", strings.Repeat("é", 20), strings.Repeat("\u2028", 5),
		"abcdefgh\"", "abcdefgh\\", "abcdefghijklmno\"", "\"abcdefghijklmnop", "abcdefg&hijklmn>",
	} {
		checkEscape(t, []byte(s))
	}
}

// FuzzAppendStringBody: any bytes encode as encoding/json encodes them.
func FuzzAppendStringBody(f *testing.F) {
	for _, s := range []string{
		"", "plain ascii text, longer than a word", "a\"b\\c\n\r\t\x00<>&\u2028\xff" + "é",
		"sha256=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		"1234567\u2028", "1234567😀", "abcdefg\xf0\x9f\x98", "\x7f\x7f\x7f\x7f\x7f\x7f\x7f\x7f\x7f",
		"\u009b2J\u009b31m", "1234567\u0085",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, s []byte) { checkEscape(t, s) })
}

// githubPushStrings are the strings a GitHub push record escapes: its ids, route and the
// request's path and headers, their names as fasthttp gives them.
var githubPushStrings = []string{
	"a7f194196d680824000000000001e040", "github", "routes.github", "3111596f8a21", "7ea65f2e8539",
	"140.82.115.12", "allowed", "POST", "/hooks/github",
	"Host", "hooks.example.com", "User-Agent", "GitHub-Hookshot/0f5b2b5", "Content-Length", "7412",
	"Accept", "*/*", "Content-Type", "application/json", "X-Github-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958",
	"X-Github-Event", "push", "X-Github-Hook-Id", "292430182",
	"X-Github-Hook-Installation-Target-Id", "79929171", "X-Github-Hook-Installation-Target-Type", "repository",
	"X-Hub-Signature", "sha1=7d38cdd689735b008b3c702edd92eea23791c5f6",
	"X-Hub-Signature-256", "sha256=d57c68ca6f92289e6987922ff26938930f6e66a2d161ef06abdf1859230aa23c",
	"guard", "next",
}

func BenchmarkAppendStringBody(b *testing.B) {
	n := 0
	for _, s := range githubPushStrings {
		n += len(s)
	}
	buf := make([]byte, 0, 4096)
	b.SetBytes(int64(n))
	b.ReportAllocs()
	for b.Loop() {
		buf = buf[:0]
		for _, s := range githubPushStrings {
			buf = appendStringBody(buf, s)
		}
	}
}

// BenchmarkAppendJSONGitHubPush encodes a GitHub push's record as the Logger does: its mask
// (warm) and the shared time stamps.
func BenchmarkAppendJSONGitHubPush(b *testing.B) {
	p := githubPushStrings
	r := &Record{
		DecisionID: p[0], Time: time.Date(2026, 12, 5, 2, 12, 4, 929974309, time.UTC),
		Route: p[1], Policy: p[2], Revision: p[3], PolicyRevision: p[4], RemoteIP: p[5],
		Outcome: Outcome(p[6]), Status: 200, Method: p[7], Path: p[8],
		Result:       Result{Evaluated: true, Allow: true},
		Filters:      []FilterResult{{Name: "guard", Outcome: FilterNext, Micros: 2}},
		PolicyMicros: 5, FilterMicros: 3, UpstreamMicros: 225, TotalMicros: 242,
	}
	for i := 9; i+1 < len(p)-2; i += 2 {
		r.Headers = append(r.Headers, Header{p[i], p[i+1]})
	}
	m := NewMask(nil)
	var st stamps
	buf := r.appendJSON(nil, m, nil, &st)
	b.ReportAllocs()
	for b.Loop() {
		buf = r.appendJSON(buf[:0], m, nil, &st)
	}
}

// TestNoControlReachesATerminal: a record whose header, reason and label carry DEL, C0 and
// C1 controls (U+009B is a terminal's CSI) is one line of valid JSON holding none of them
// raw, and reads back as it was.
func TestNoControlReachesATerminal(t *testing.T) {
	evil := "\u009b2J\u009b31mall verified\u009b0m\x7f\x1b[2J"
	r := &Record{DecisionID: "x", Time: time.Now(), Route: "r", Method: "POST", Path: "/", Outcome: OutcomeDenied, Status: 403,
		Reasons: []string{evil}, Labels: map[string]any{"event": evil}, Headers: []Header{{Name: "X-Event", Value: evil}}}
	line := bytes.TrimSuffix(r.appendJSON(nil, NewMask(nil), nil, nil), []byte("\n"))
	if bytes.ContainsAny(line, "\x7f\x1b\n") || bytes.Contains(line, []byte("\u009b")) {
		t.Fatalf("a control reached the line raw: %q", line)
	}
	var back struct {
		Reasons []string          `json:"reasons"`
		Labels  map[string]string `json:"labels"`
	}
	if err := json.Unmarshal(line, &back); err != nil {
		t.Fatalf("%v: %s", err, line)
	}
	if back.Reasons[0] != evil || back.Labels["event"] != evil {
		t.Errorf("read back %q and %q, want %q", back.Reasons[0], back.Labels["event"], evil)
	}
}

// stuckWriter blocks every write until release closes.
type stuckWriter struct{ release chan struct{} }

func (w stuckWriter) Write(p []byte) (int, error) { <-w.release; return len(p), nil }

// TestQueueIsBoundedInBytes: while the writer is stuck (a log shipper that stopped reading
// stdout), records of 15 KiB headers fill the queue up to its byte bound, not its count:
// the rest are dropped and counted.
func TestQueueIsBoundedInBytes(t *testing.T) {
	w := stuckWriter{release: make(chan struct{})}
	l := New(w, nil, Options{})
	defer func() { close(w.release); _ = l.Close() }()
	rec := &Record{DecisionID: "x", Time: time.Now(), Route: "r", Method: "POST", Path: "/", Outcome: OutcomeNoRoute, Status: 404,
		Headers: []Header{{Name: "X-Pad", Value: strings.Repeat("<", 15<<10)}}}
	l.Log(rec)
	time.Sleep(3 * FlushInterval) // the writer takes it and blocks
	for range queueLen {
		l.Log(rec)
	}
	l.mu.Lock()
	held := len(l.batch)
	l.mu.Unlock()
	if held > queueBytes {
		t.Errorf("the queue holds %d MiB, over its %d MiB bound", held>>20, queueBytes>>20)
	}
	if d := l.Stats().Dropped; d < queueLen/4 {
		t.Errorf("%d records dropped, want the ones past the byte bound (about %d)", d, queueLen-queueBytes/(16<<10))
	}
}
