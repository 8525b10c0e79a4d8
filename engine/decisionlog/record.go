package decisionlog

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Outcome values of a Record.
const (
	OutcomeAllowed     = "allowed"
	OutcomeDenied      = "denied"
	OutcomeFiltered    = "filtered" // a filter ended the request
	OutcomeDuplicate   = "duplicate"
	OutcomeInFlight    = "in_flight"
	OutcomeRateLimited = "rate_limited"
	OutcomeError       = "error"
	OutcomeNoRoute     = "no_route"
	OutcomeBadMethod   = "method_not_allowed"
	OutcomeTooLarge    = "too_large"
	OutcomeUpstream    = "upstream_error"
	OutcomeUnavailable = "unavailable"
)

// Header is one request header as logged.
type Header struct{ Name, Value string }

// FilterResult is what one filter did.
type FilterResult struct {
	Name    string
	Outcome string // "next", "denied", "error", "skipped"
	Error   string
	Micros  int64
}

// Record is one decision-log line. Strings are copied by the caller; a Record may be reused
// once Log returns.
type Record struct {
	DecisionID string
	Time       time.Time
	Route      string
	Policy     string
	Revision   string
	RemoteIP   string
	Method     string
	Path       string
	Outcome    string
	Status     int
	Reasons    []string
	Error      string
	Labels     map[string]any
	Filters    []FilterResult
	Headers    []Header
	State      string // state-backend failure, when one happened

	PolicyMicros, FilterMicros, UpstreamMicros, TotalMicros int64
}

// Reset clears r for reuse, keeping slice capacity.
func (r *Record) Reset() {
	*r = Record{Reasons: r.Reasons[:0], Filters: r.Filters[:0], Headers: r.Headers[:0]}
}

// AppendJSON appends r as one JSON object and a newline.
func (r *Record) AppendJSON(b []byte) []byte {
	b = append(b, `{"decision_id":`...)
	b = appendString(b, r.DecisionID)
	b = append(b, `,"timestamp":"`...)
	b = r.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","route":`...)
	b = appendString(b, r.Route)
	if r.Policy != "" {
		b = append(b, `,"policy":`...)
		b = appendString(b, r.Policy)
	}
	if r.Revision != "" {
		b = append(b, `,"revision":`...)
		b = appendString(b, r.Revision)
	}
	b = append(b, `,"remote_ip":`...)
	b = appendString(b, r.RemoteIP)
	b = append(b, `,"method":`...)
	b = appendString(b, r.Method)
	b = append(b, `,"path":`...)
	b = appendString(b, r.Path)
	b = append(b, `,"outcome":`...)
	b = appendString(b, r.Outcome)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(r.Status), 10)
	b = append(b, `,"reasons":[`...)
	for i, s := range r.Reasons {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	b = append(b, ']')
	if r.Error != "" {
		b = append(b, `,"error":`...)
		b = appendString(b, r.Error)
	}
	if r.State != "" {
		b = append(b, `,"state_error":`...)
		b = appendString(b, r.State)
	}
	b = append(b, `,"labels":`...)
	if len(r.Labels) == 0 {
		b = append(b, "{}"...)
	} else if lb, err := json.Marshal(r.Labels); err == nil {
		b = append(b, lb...)
	} else {
		b = append(b, "{}"...)
	}
	if len(r.Filters) > 0 {
		b = append(b, `,"filters":[`...)
		for i, f := range r.Filters {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"name":`...)
			b = appendString(b, f.Name)
			b = append(b, `,"outcome":`...)
			b = appendString(b, f.Outcome)
			if f.Error != "" {
				b = append(b, `,"error":`...)
				b = appendString(b, f.Error)
			}
			b = append(b, `,"us":`...)
			b = strconv.AppendInt(b, f.Micros, 10)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if len(r.Headers) > 0 {
		b = append(b, `,"headers":{`...)
		for i, h := range r.Headers {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, h.Name)
			b = append(b, ':')
			if Sensitive(h.Name) {
				b = append(b, `"***"`...)
			} else {
				b = appendString(b, h.Value)
			}
		}
		b = append(b, '}')
	}
	b = append(b, `,"timings_us":{"policy":`...)
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

var sensitiveExact = map[string]bool{
	"authorization": true, "proxy-authorization": true, "cookie": true, "set-cookie": true,
	"x-hub-signature": true, "x-hub-signature-256": true, "x-shopify-hmac-sha256": true,
	"x-twilio-email-event-webhook-signature": true, "x-signature-ed25519": true,
	"x-zm-signature": true, "x-api-key": true,
}

// Sensitive reports whether a header's value is masked in the log. name is lower-case.
func Sensitive(name string) bool {
	name = strings.ToLower(name)
	if sensitiveExact[name] {
		return true
	}
	for _, s := range []string{"signature", "secret", "token", "api-key", "apikey", "password", "hmac"} {
		if strings.Contains(name, s) {
			return true
		}
	}
	return false
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
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
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
