package decisionlog

import (
	"encoding/base64"
	"encoding/json"
	"math/bits"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Outcome is what became of a request: a Record's "outcome" field. A typed string, so a
// misspelt outcome does not compile.
type Outcome string

// Outcome values of a Record.
const (
	OutcomeAllowed     Outcome = "allowed"
	OutcomeDenied      Outcome = "denied"
	OutcomeFiltered    Outcome = "filtered" // a filter ended the request
	OutcomeDuplicate   Outcome = "duplicate"
	OutcomeInFlight    Outcome = "in_flight"
	OutcomeRateLimited Outcome = "rate_limited"
	OutcomeError       Outcome = "error"
	OutcomeNoRoute     Outcome = "no_route"
	OutcomeBadMethod   Outcome = "method_not_allowed"
	OutcomeTooLarge    Outcome = "too_large"
	OutcomeUpstream    Outcome = "upstream_error"
	OutcomeUnavailable Outcome = "unavailable"
	OutcomeBlocked     Outcome = "blocked" // the watcher blocked the client (429 before any rule)
	// A queued route's request stored for delivery (202), and the delivery's final outcome
	// (a later record with the same decision_id and its delivery_id).
	OutcomeQueued    Outcome = "queued"
	OutcomeDelivered Outcome = "delivered"
	OutcomeDead      Outcome = "dead"
)

// Header is one request header as logged.
type Header struct{ Name, Value string }

// FilterOutcome is what one filter did with a request: a FilterResult's "outcome" field.
type FilterOutcome string

// FilterOutcome values.
const (
	FilterNext    FilterOutcome = "next"    // passed the request on
	FilterDenied  FilterOutcome = "denied"  // answered it, ending the request
	FilterError   FilterOutcome = "error"   // failed (on_error decides what follows)
	FilterSkipped FilterOutcome = "skipped" // failed with on_error = "skip": as if absent
)

// FilterResult is what one filter did.
type FilterResult struct {
	Name    string
	Outcome FilterOutcome
	Error   string
	Micros  int64
}

// Result is the live policy's decision, logged as OPA's "result" field.
type Result struct {
	// Evaluated is false when the policy did not run (no route, a filter ended the request,
	// an evaluation error): the record then has no "result".
	Evaluated bool
	Allow     bool
	// Deny is the policy's deny set; Status is its status, logged only when it denied.
	Deny   []string
	Status int
}

// Shadow is a shadow policy's decision on the same input (the "shadow" field).
type Shadow struct {
	// Policy is the shadow package; "" means no shadow ran and the field is left out.
	Policy string
	Allow  bool
	Deny   []string
	Status int
	// Error is the shadow's evaluation error; Agree is then false.
	Error string
	// Agree reports whether the shadow would have answered as the live policy did: both
	// forward, or both refuse with the same status.
	Agree bool
}

// Record is one decision-log line. Strings are copied by the caller; a Record may be reused
// once Log returns.
type Record struct {
	DecisionID string
	Time       time.Time
	Route      string
	Policy     string // the route's package, "routes.github"
	Revision   string // the snapshot's revision (config, policies and filters)
	// PolicyRevision is the revision of the policy set, logged as OPA's bundles field.
	PolicyRevision string
	RemoteIP       string
	Method         string
	Path           string
	Outcome        Outcome
	Status         int
	Reasons        []string
	Error          string
	Labels         map[string]any
	Filters        []FilterResult
	Headers        []Header
	// Sensitive are credentials the request carried under header names the mask may not
	// know (the key a policy gave hookwall.apikey.verify, say): a header whose value is one
	// of them, or holds one of at least minSensitive bytes, is masked whatever its name.
	Sensitive []string
	// PathMasked says the caller logged Path masked (a key its route's policy reads from
	// the path, masked by the route's rule when no Sensitive value masks it): "masked" lists
	// "/request/path".
	PathMasked bool
	// Body is the start of the request body as received ([log] body bytes at most) and
	// BodySize its full length; Body is nil when body capture is off.
	Body     []byte
	BodySize int
	bodyBuf  []byte
	State    string // state-backend failure, when one happened
	// DeliveryID is a queued delivery's id; Attempts its attempts so far (final outcomes).
	DeliveryID string
	Attempts   int
	Result     Result
	Shadow     Shadow

	PolicyMicros, FilterMicros, UpstreamMicros, TotalMicros int64
}

// Reset clears r for reuse, keeping slice capacity.
func (r *Record) Reset() {
	buf := r.bodyBuf[:0]
	if cap(buf) > 64<<10 {
		buf = nil // one large capture must not pin its buffer in a pool
	}
	*r = Record{Reasons: r.Reasons[:0], Filters: r.Filters[:0], Headers: r.Headers[:0], bodyBuf: buf}
}

// CaptureBody copies up to limit bytes of body into r.Body, reusing r's buffer, and notes
// the full length. A limit <= 0 captures nothing.
func (r *Record) CaptureBody(body []byte, limit int) {
	if limit <= 0 {
		return
	}
	n := min(len(body), limit)
	r.bodyBuf = append(r.bodyBuf[:0], body[:n]...)
	if r.bodyBuf == nil {
		r.bodyBuf = []byte{}
	}
	r.Body, r.BodySize = r.bodyBuf, len(body)
}

// AppendJSON appends r as one JSON object and a newline, masking with the default mask; a
// captured body is in the clear.
func (r *Record) AppendJSON(b []byte) []byte { return r.appendJSON(b, defaultMask, nil, nil) }

// appendJSON encodes r, its captured body sealed with s when s is set, its time through st
// (nil: formatted afresh). Field names follow OPA's decision log where they map
// (decision_id, timestamp, path, result, labels, metrics, bundles, masked); the rest are
// hookwall's.
func (r *Record) appendJSON(b []byte, m *Mask, s Sealer, st *stamps) []byte {
	b = append(b, `{"decision_id":`...)
	b = AppendString(b, r.DecisionID)
	b = append(b, `,"timestamp":"`...)
	b = st.append(b, r.Time)
	b = append(b, '"')
	if r.Policy != "" {
		// OPA's path is the queried document, slash-separated: "routes/github".
		b = append(b, `,"path":"`...)
		for i := 0; i < len(r.Policy); i++ {
			if c := r.Policy[i]; c == '.' {
				b = append(b, '/')
			} else if c >= 0x20 && c != '"' && c != '\\' && c < 0x7f { // no DEL, as appendStringBody
				b = append(b, c)
			}
		}
		b = append(b, '"')
		b = append(b, `,"policy":`...)
		b = AppendString(b, r.Policy)
	}
	if r.Revision != "" {
		b = append(b, `,"revision":`...)
		b = AppendString(b, r.Revision)
	}
	if r.PolicyRevision != "" {
		b = append(b, `,"bundles":{"policies":{"revision":`...)
		b = AppendString(b, r.PolicyRevision)
		b = append(b, "}}"...)
	}
	b = append(b, `,"route":`...)
	b = AppendString(b, r.Route)
	b = append(b, `,"remote_ip":`...)
	b = AppendString(b, r.RemoteIP)
	b = append(b, `,"outcome":`...)
	b = AppendString(b, string(r.Outcome))
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(r.Status), 10)
	// A credential the policy's builtins were handed is masked wherever the record carries
	// it: a policy may echo it in a reason, a label or a shadow's deny, an error may quote
	// it. extra lists the JSON pointers masked outside the request, for "masked".
	sens := r.Sensitive
	var extra []string
	b = append(b, `,"reasons":`...)
	b = appendMaskedStrings(b, r.Reasons, sens, "/reasons/", &extra)
	if r.Result.Evaluated {
		b = append(b, `,"result":{"allow":`...)
		b = strconv.AppendBool(b, r.Result.Allow)
		b = append(b, `,"deny":`...)
		b = appendMaskedStrings(b, r.Result.Deny, sens, "/result/deny/", &extra)
		if !r.Result.Allow || len(r.Result.Deny) > 0 {
			b = append(b, `,"status":`...)
			b = strconv.AppendInt(b, int64(r.Result.Status), 10)
		}
		b = append(b, '}')
	}
	if r.Error != "" {
		b = append(b, `,"error":`...)
		b = appendMaskedString(b, r.Error, sens, "/error", &extra)
	}
	if r.State != "" {
		b = append(b, `,"state_error":`...)
		b = appendMaskedString(b, r.State, sens, "/state_error", &extra)
	}
	if r.DeliveryID != "" {
		b = append(b, `,"delivery_id":`...)
		b = AppendString(b, r.DeliveryID)
		if r.Attempts > 0 {
			b = append(b, `,"attempts":`...)
			b = strconv.AppendInt(b, int64(r.Attempts), 10)
		}
	}
	b = append(b, `,"labels":`...)
	labels := r.Labels
	if len(labels) > 0 && len(sens) > 0 {
		if v, ok := maskValue(labels, sens); ok {
			labels = v.(map[string]any)
			extra = append(extra, "/labels")
		}
	}
	if len(labels) == 0 {
		b = append(b, "{}"...)
	} else if lb, err := json.Marshal(labels); err == nil {
		b = AppendControlsEscaped(b, lb)
	} else {
		b = append(b, "{}"...)
	}
	b = append(b, `,"request":{"method":`...)
	b = AppendString(b, r.Method)
	b = append(b, `,"path":`...)
	masked := 0
	path, pathMasked := maskSensitive(r.Path, r.Sensitive)
	pathMasked = pathMasked || r.PathMasked
	b = AppendString(b, path)
	if pathMasked {
		masked++
	}
	var maskedBits uint64 // which of the first 64 headers were masked, for "masked" below
	if len(r.Headers) > 0 {
		b = append(b, `,"headers":{`...)
		for i, h := range r.Headers {
			if i > 0 {
				b = append(b, ',')
			}
			hide, key := m.lookup(h.Name)
			hide = hide || carriesSensitive(h.Value, r.Sensitive)
			if key != "" {
				b = append(b, key...)
			} else {
				b = AppendString(b, h.Name)
				b = append(b, ':')
			}
			if hide {
				b = append(b, `"***"`...)
				masked++
				if i < 64 {
					maskedBits |= 1 << i
				}
			} else {
				b = AppendString(b, h.Value)
			}
		}
		b = append(b, '}')
	}
	if r.Body != nil {
		if s != nil {
			b = r.appendSealedBody(b, s)
		} else {
			b = append(b, `,"body":`...)
			b = AppendString(b, r.Body)
		}
		b = append(b, `,"body_bytes":`...)
		b = strconv.AppendInt(b, int64(r.BodySize), 10)
		if r.BodySize > len(r.Body) {
			b = append(b, `,"body_truncated":true`...)
		}
	}
	b = append(b, '}')
	if len(r.Filters) > 0 {
		b = append(b, `,"filters":[`...)
		for i, f := range r.Filters {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"name":`...)
			b = AppendString(b, f.Name)
			b = append(b, `,"outcome":`...)
			b = AppendString(b, string(f.Outcome))
			if f.Error != "" {
				b = append(b, `,"error":`...)
				fe := f.Error
				if m, ok := maskSensitive(fe, sens); ok {
					// The pointer is made only then: a filter error on an allowed request
					// (on_error = "skip") allocates nothing here.
					fe = m
					extra = append(extra, "/filters/"+strconv.Itoa(i)+"/error")
				}
				b = AppendString(b, fe)
			}
			b = append(b, `,"us":`...)
			b = strconv.AppendInt(b, f.Micros, 10)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if s := &r.Shadow; s.Policy != "" {
		b = append(b, `,"shadow":{"policy":`...)
		b = AppendString(b, s.Policy)
		if s.Error != "" {
			b = append(b, `,"error":`...)
			b = appendMaskedString(b, s.Error, sens, "/shadow/error", &extra)
		} else {
			b = append(b, `,"allow":`...)
			b = strconv.AppendBool(b, s.Allow)
			b = append(b, `,"deny":`...)
			b = appendMaskedStrings(b, s.Deny, sens, "/shadow/deny/", &extra)
			if !s.Allow || len(s.Deny) > 0 {
				b = append(b, `,"status":`...)
				b = strconv.AppendInt(b, int64(s.Status), 10)
			}
		}
		b = append(b, `,"agree":`...)
		b = strconv.AppendBool(b, s.Agree)
		b = append(b, '}')
	}
	if masked > 0 || len(extra) > 0 {
		// OPA lists what it masked as JSON pointers into the logged document.
		b = append(b, `,"masked":[`...)
		n := 0
		if pathMasked {
			b = append(b, `"/request/path"`...)
			n++
		}
		for i, h := range r.Headers {
			if i < 64 && maskedBits&(1<<i) == 0 || i >= 64 && !m.Masks(h.Name) && !carriesSensitive(h.Value, r.Sensitive) {
				continue
			}
			if n > 0 {
				b = append(b, ',')
			}
			n++
			b = append(b, `"/request/headers/`...)
			b = appendStringBody(b, pointerEscape(h.Name))
			b = append(b, '"')
		}
		for _, p := range extra {
			if n > 0 {
				b = append(b, ',')
			}
			n++
			b = AppendString(b, p)
		}
		b = append(b, ']')
	}
	b = append(b, `,"metrics":{"timer_rego_query_eval_ns":`...)
	b = strconv.AppendInt(b, r.PolicyMicros*1000, 10)
	b = append(b, `,"timer_server_handler_ns":`...)
	b = strconv.AppendInt(b, r.TotalMicros*1000, 10)
	b = append(b, `},"timings_us":{"policy":`...)
	b = strconv.AppendInt(b, r.PolicyMicros, 10)
	b = append(b, `,"filters":`...)
	b = strconv.AppendInt(b, r.FilterMicros, 10)
	b = append(b, `,"upstream":`...)
	b = strconv.AppendInt(b, r.UpstreamMicros, 10)
	b = append(b, `,"total":`...)
	b = strconv.AppendInt(b, r.TotalMicros, 10)
	b = append(b, "}}\n"...)
	return b
}

// stamps remembers the last formatted second of the records' times: a busy log writes
// thousands of records a second, and formatting a time's date and clock is most of
// what a record's time costs. Safe for concurrent use; the zero value is ready.
type stamps struct{ last atomic.Pointer[stamp] }

// stamp is one second, formatted as RFC 3339 up to the seconds: "2006-01-02T15:04:05".
type stamp struct {
	sec  int64
	text [len("2006-01-02T15:04:05")]byte
}

// append appends t in UTC as time.RFC3339Nano formats it. A nil st formats afresh.
func (st *stamps) append(b []byte, t time.Time) []byte {
	t = t.UTC()
	if st == nil {
		return t.AppendFormat(b, time.RFC3339Nano)
	}
	sec := t.Unix()
	p := st.last.Load()
	if p == nil || p.sec != sec {
		if y := t.Year(); y < 0 || y > 9999 { // not four digits: the text has another length
			return t.AppendFormat(b, time.RFC3339Nano)
		}
		p = &stamp{sec: sec}
		t.AppendFormat(p.text[:0], "2006-01-02T15:04:05")
		st.last.Store(p)
	}
	b = append(b, p.text[:]...)
	if ns := t.Nanosecond(); ns != 0 {
		// RFC3339Nano's fraction: nine digits without their trailing zeros.
		var d [10]byte
		d[0] = '.'
		for i := 9; i > 0; i-- {
			d[i] = byte('0' + ns%10)
			ns /= 10
		}
		n := len(d)
		for d[n-1] == '0' {
			n--
		}
		b = append(b, d[:n]...)
	}
	return append(b, 'Z')
}

// sealedAAD prefixes the decision id in what a sealed body is bound to: a body sealed for
// one decision does not open as another's, nor as a stored delivery (bound to its id).
const sealedAAD = "hookwall decision log\x00"

// appendSealedBody appends `,"body_sealed":"<base64>","body_key":"<id>"`: r.Body sealed
// with s, bound to r's decision id. The tail of b is the scratch space (the bound data,
// then the sealed bytes, then their base64, moved down over both), so a warm buffer
// allocates nothing here.
func (r *Record) appendSealedBody(b []byte, s Sealer) []byte {
	start := len(b)
	b = append(append(b, sealedAAD...), r.DecisionID...)
	aadEnd := len(b)
	b, keyID := s.AppendSeal(b, r.Body, b[start:aadEnd])
	sealedEnd := len(b)
	b = base64.StdEncoding.AppendEncode(b, b[aadEnd:sealedEnd])
	n := len(b) - sealedEnd
	const field = `,"body_sealed":"`
	b = append(b[:start], field...) // the scratch before the base64 is longer than field
	b = b[:start+len(field)+copy(b[start+len(field):start+len(field)+n], b[sealedEnd:sealedEnd+n])]
	b = append(b, `","body_key":`...)
	return AppendString(b, keyID)
}

// pointerEscape escapes a JSON-pointer reference token (RFC 6901).
func pointerEscape(s string) string {
	if strings.IndexByte(s, '~') < 0 && strings.IndexByte(s, '/') < 0 { // ContainsAny builds a set per call
		return s
	}
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
}

func appendStrings(b []byte, ss []string) []byte {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendString(b, s)
	}
	return append(b, ']')
}

const hexDigits = "0123456789abcdef"

// AppendString appends s as a JSON string, as the log writes one: invalid UTF-8 becomes
// U+FFFD, and the C0 controls, DEL and the C1 controls are escaped. An answer that quotes
// what a record quotes (a deny reason) uses it too, so it is JSON whatever the client sent.
func AppendString[T string | []byte](b []byte, s T) []byte {
	b = append(b, '"')
	b = appendStringBody(b, s)
	return append(b, '"')
}

// plainASCII marks the ASCII bytes a JSON string holds as they are. The log is not HTML:
// '<', '>' and '&' go as they are (escaped, each took six bytes, and a header of them made a
// line six times its size). DEL is escaped, as the C0 and C1 controls are, so that printing
// the log to a terminal prints no control a client sent. escapeMask flags at least this set,
// a word at a time.
var plainASCII = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != 0x7f
	}
	return t
}()

// appendStringBody appends s JSON-escaped, without the quotes.
func appendStringBody[T string | []byte](b []byte, s T) []byte {
	start := 0
	for i := 0; i < len(s); {
		// Most strings logged need no escaping at all: skip them 8 bytes at a time, to the
		// first byte that may need it.
		if n := len(s) - i; n >= 8 {
			// Not from a byte >= 0x80: text that is not ASCII would fail at every rune.
			if w := load64(s, i); w&0x80 == 0 {
				m := escapeMask(w)
				if m == 0 {
					i += 8
					continue
				}
				i += firstFlagged(m)
			}
		} else if len(s) >= 8 {
			// The tail: the string's last 8 bytes, less those before i. A borrow from those
			// may flag a plain s[i]; the byte test below lets it through.
			m := escapeMask(load64(s, len(s)-8)) >> (8 * (8 - n))
			if m == 0 {
				break
			}
			i += firstFlagged(m)
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if plainASCII[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := decodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r >= 0x80 && r <= 0x9f { // a C1 control: U+009B is a terminal's CSI
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '0', '0', hexDigits[r>>4], hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			// Valid JSON, but they end lines in JavaScript: escape them like encoding/json.
			b = append(b, s[start:i]...)
			b = append(b, `\u202`...)
			b = append(b, hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(b, s[start:]...)
}

// AppendControlsEscaped appends js, JSON encoding/json wrote, with DEL and the C1 controls
// it leaves as they are spelled \u007f to \u009f, as the log spells them: U+009B is a
// terminal's CSI, and a record, an admin answer or the CLI's output of one is read on
// terminals. Outside its strings JSON is ASCII without them, so every one is inside a
// string, where the escape means the same.
func AppendControlsEscaped(b, js []byte) []byte {
	start := 0
	for i := 0; i < len(js); i++ {
		switch {
		case js[i] == 0x7f:
			b = append(append(b, js[start:i]...), `\u007f`...)
			start = i + 1
		case js[i] == 0xc2 && i+1 < len(js) && js[i+1] >= 0x80 && js[i+1] <= 0x9f:
			c := js[i+1]
			b = append(append(b, js[start:i]...), '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			i++
			start = i + 1
		}
	}
	return append(b, js[start:]...)
}

// lanes1 and lanesHi repeat 0x01 and 0x80 in each byte of a word.
const (
	lanes1  = 0x0101010101010101
	lanesHi = 0x8080808080808080
)

// escapeMask sets the high bit of each byte of w (little-endian: the lowest byte first) that
// plainASCII does not call plain. A byte >= 0x80 flags itself; the others wrap their byte in
// one of the subtractions below, whose borrow may flag bytes above too but never one below:
// the lowest flag is the first byte to escape.
func escapeMask(w uint64) uint64 {
	ctl := w - 0x20*lanes1             // < 0x20
	bs := (w ^ '\\'*lanes1) - lanes1   // '\\'
	del := (w ^ 0x7f*lanes1) - lanes1  // DEL
	quote := (w ^ '"'*lanes1) - lanes1 // '"'
	return (w | ctl | bs | del | quote) & lanesHi
}

// firstFlagged is the byte index of escapeMask's lowest flagged lane.
func firstFlagged(m uint64) int { return bits.TrailingZeros64(m) >> 3 }

// load64 reads s[i:i+8] little-endian, as binary.LittleEndian.Uint64 would (the compiler
// makes one load of it), for a string as for a []byte.
func load64[T string | []byte](s T, i int) uint64 {
	s = s[i : i+8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

func decodeRune[T string | []byte](s T) (rune, int) {
	var buf [utf8.UTFMax]byte
	n := copy(buf[:], s)
	return utf8.DecodeRune(buf[:n])
}

// minSensitive is the shortest sensitive value looked for inside a longer header value
// ("Bearer <key>"); a shorter one masks only a header that is exactly it, so that a client
// that sends a one-letter key cannot hide every header from the log.
const minSensitive = 8

// maskSensitive returns p with every sensitive value of at least minSensitive bytes in it
// replaced by "***" (a key sent as a path segment of a prefix route, or quoted in a reason or
// label), and whether it held one. A shorter value is left: the client chose it, and a short
// one ("1", "push") would let it hide words of its own record. It allocates only when it masks.
func maskSensitive(p string, sensitive []string) (string, bool) {
	found := false
	for _, s := range sensitive {
		if masks(p, s) {
			p, found = strings.ReplaceAll(p, s, "***"), true
		}
	}
	return p, found
}

// HoldsSensitive reports whether p holds one of the sensitive values the log masks inside a
// string (maskSensitive): a caller that logs p can tell whether the log will mask it.
func HoldsSensitive(p string, sensitive []string) bool {
	for _, s := range sensitive {
		if masks(p, s) {
			return true
		}
	}
	return false
}

// masks reports whether maskSensitive masks the sensitive value s in p.
func masks(p, s string) bool { return len(s) >= minSensitive && strings.Contains(p, s) }

// carriesSensitive reports whether a header value v carries one of the sensitive values.
func carriesSensitive(v string, sensitive []string) bool {
	for _, s := range sensitive {
		if v == s || masks(v, s) {
			return true
		}
	}
	return false
}

// appendMaskedString appends s as a JSON string, masked (maskSensitive); when it masked
// anything, ptr is added to extra.
func appendMaskedString(b []byte, s string, sensitive []string, ptr string, extra *[]string) []byte {
	if len(sensitive) > 0 {
		if m, ok := maskSensitive(s, sensitive); ok {
			*extra = append(*extra, ptr)
			s = m
		}
	}
	return AppendString(b, s)
}

// appendMaskedStrings is appendStrings with each string masked (maskSensitive); ptr followed by
// the index of each one masked is added to extra.
func appendMaskedStrings(b []byte, ss []string, sensitive []string, ptr string, extra *[]string) []byte {
	if len(sensitive) == 0 {
		return appendStrings(b, ss)
	}
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		if m, ok := maskSensitive(s, sensitive); ok {
			*extra = append(*extra, ptr+strconv.Itoa(i))
			s = m
		}
		b = AppendString(b, s)
	}
	return append(b, ']')
}

// maskValue returns v, a label value as the policy gave it (JSON: maps, slices, strings,
// numbers, booleans, nil), with every string in it masked (maskSensitive), keys included, and
// whether it masked anything. v itself is never changed: a map or slice that holds a masked
// string is copied.
func maskValue(v any, sensitive []string) (any, bool) {
	switch t := v.(type) {
	case string:
		return maskSensitive(t, sensitive)
	case map[string]any:
		var out map[string]any
		for k, e := range t {
			mk, kok := maskSensitive(k, sensitive)
			me, eok := maskValue(e, sensitive)
			if !kok && !eok {
				continue
			}
			if out == nil {
				out = make(map[string]any, len(t))
				for k2, e2 := range t {
					out[k2] = e2
				}
			}
			if kok {
				delete(out, k)
				// Two keys masked alike stay two entries: "***", "***#2", …
				for n, base := 2, mk; ; n++ {
					if _, taken := out[mk]; !taken {
						break
					}
					mk = base + "#" + strconv.Itoa(n)
				}
			}
			out[mk] = me
		}
		if out == nil {
			return v, false
		}
		return out, true
	case []any:
		var out []any
		for i, e := range t {
			if me, ok := maskValue(e, sensitive); ok {
				if out == nil {
					out = append([]any(nil), t...)
				}
				out[i] = me
			}
		}
		if out == nil {
			return v, false
		}
		return out, true
	}
	return v, false
}
