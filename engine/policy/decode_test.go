package policy

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
)

// decodeValues are what the decode corpus's headers pick each decision field's value from:
// good ones, wrong types, out-of-range numbers and durations of every form.
const decodeValues = `vals := {
	"t": true, "f": false, "str": "k", "empty": "", "num": 5, "zero": 0, "st": 429, "null": null,
	"obj": {"a": 1}, "dur": "1m", "hour": "24h", "baddur": "1x", "max": "2562047h", "over": "2562048h",
	"micro": "15µs", "mu": "15μs", "neg": "-1m", "frac": "1.5h", "lead": "01h", "zerodur": "0h",
	"mixed": "1h30m", "ten": "1000000000s", "nine": "999999999ns",
}
`

// decodeCorpus: the decision rules in the shapes decode reads them in. t.dec_unbuilt's
// obligations are object literals the compiled evaluator hands over unbuilt; t.dec_built's
// are built objects (or no object at all); t.dec_partial's literals lack fields.
var decodeCorpus = map[string]string{
	"unbuilt.rego": `package t.dec_unbuilt
` + decodeValues + `
default allow := false
allow := vals[input.request.headers["x-allow"]]
status := vals[input.request.headers["x-status"]]
rate_limit := {"key": vals[input.request.headers["x-rk"]], "limit": vals[input.request.headers["x-rl"]], "per": vals[input.request.headers["x-rp"]], "burst": vals[input.request.headers["x-rb"]]}
dedupe := {"ttl": vals[input.request.headers["x-dt"]], "key": vals[input.request.headers["x-dk"]]}
upstream_headers := {"X-A": vals[input.request.headers["x-uh"]]}
labels := {"l": vals[input.request.headers["x-lb"]]}
deny contains vals[input.request.headers["x-deny"]]
`,
	"built.rego": `package t.dec_built
` + decodeValues + `
allow := true
rate_limit := object.union({"key": vals[input.request.headers["x-rk"]], "limit": vals[input.request.headers["x-rl"]]}, {"per": vals[input.request.headers["x-rp"]]})
rate_limit := vals[input.request.headers["x-rb"]] if input.request.headers["x-rb"] == "str"
dedupe := object.union({"key": vals[input.request.headers["x-dk"]]}, {"ttl": vals[input.request.headers["x-dt"]]})
status := vals[input.request.headers["x-status"]]
`,
	"partial.rego": `package t.dec_partial
` + decodeValues + `
allow := true
rate_limit := {"key": vals[input.request.headers["x-rk"]], "limit": vals[input.request.headers["x-rl"]], "extra": 1}
dedupe := {"key": vals[input.request.headers["x-dk"]]}
`,
}

// decodeInputs: a good decision, then each decision header set to each value (or left out),
// then each pair of headers set to a bad value together, so that which error comes first
// is compared too.
func decodeInputs() []map[string]string {
	good := map[string]string{"x-allow": "t", "x-rk": "str", "x-rl": "num", "x-rp": "dur", "x-rb": "num", "x-dk": "str", "x-dt": "hour"}
	names := []string{"x-allow", "x-status", "x-rk", "x-rl", "x-rp", "x-rb", "x-dk", "x-dt", "x-uh", "x-lb", "x-deny"}
	values := []string{"", "t", "f", "str", "empty", "num", "zero", "st", "null", "obj", "dur", "hour", "baddur", "max",
		"over", "micro", "mu", "neg", "frac", "lead", "zerodur", "mixed", "ten", "nine"}
	with := func(set map[string]string) map[string]string {
		h := map[string]string{}
		for k, v := range good {
			h[k] = v
		}
		for k, v := range set {
			if v == "" {
				delete(h, k)
			} else {
				h[k] = v
			}
		}
		return h
	}
	out := []map[string]string{with(nil)}
	for _, n := range names {
		for _, v := range values {
			out = append(out, with(map[string]string{n: v}))
		}
	}
	for i, a := range names {
		for _, b := range names[i+1:] {
			for _, bad := range []string{"obj", "empty", "baddur"} {
				out = append(out, with(map[string]string{a: bad, b: bad}))
			}
		}
	}
	return out
}

// TestDecodeMatchesTopdown: the decision read from the rules the compiled evaluator found (one
// pass over them, obligations read field by field) is the decision read from topdown's
// package object, errors and the order they are found in included, for every decision rule
// good, of the wrong type, out of range, missing, and bad two at a time.
func TestDecodeMatchesTopdown(t *testing.T) {
	set, err := LoadModules(context.Background(), decodeCorpus, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ins := decodeInputs()
	for _, pkg := range []string{"t.dec_unbuilt", "t.dec_built", "t.dec_partial"} {
		q := prepareCompiled(t, set, pkg)
		errs := map[string]int{}
		var obligations int
		for _, h := range ins {
			req := requestValue("POST", "/", h, "")
			req.Insert(ast_remote_ip, ast_remote_val)
			d, err := evalBoth(t, q, doc(req), nil)
			if err != nil {
				msg := err.Error()
				errs[msg[strings.Index(msg, "rule"):]]++
			} else if d.RateLimit != nil && d.Dedupe != nil {
				obligations++
			}
		}
		t.Logf("%s: %d inputs, %d decided with both obligations, %d kinds of error", pkg, len(ins), obligations, len(errs))
		if pkg != "t.dec_partial" && (obligations == 0 || len(errs) < 20) {
			t.Errorf("%s: the inputs reach too few outcomes (%d with obligations, %d kinds of error)", pkg, obligations, len(errs))
		}
		if pkg == "t.dec_partial" && errs[`rule rate_limit.per must be a duration string such as "1m", got undefined`] == 0 {
			t.Errorf("%s: a missing field was not an error", pkg)
		}
	}
}

// TestDurationOfMatchesParseDuration: a decision's durations read as time.ParseDuration reads
// them, the forms wholeUnits answers itself and those it leaves to ParseDuration alike.
func TestDurationOfMatchesParseDuration(t *testing.T) {
	var cases []string
	for _, unit := range []string{"h", "m", "s", "ms", "us", "µs", "μs", "ns", "", "H", "d", "hh", "mss", "u", "µ", "1h", "h1", " "} {
		for _, n := range []string{"0", "1", "01", "5", "24", "60", "999", "2562047", "2562048", "153722867", "153722868",
			"9223372036", "999999999", "1000000000", "0000000001", "00000000001", "9223372036854775807", "9223372036854775808",
			"1.5", ".5", "-1", "+1", "1e3", "", " 1", "1_0"} {
			cases = append(cases, n+unit)
		}
	}
	// Every whole number of each unit up to the edge of the range, at a few magnitudes.
	for _, u := range []struct {
		name string
		d    time.Duration
	}{{"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}, {"ms", time.Millisecond}, {"us", time.Microsecond}, {"ns", 1}} {
		limit := int64(math.MaxInt64) / int64(u.d)
		for _, n := range []int64{limit - 1, limit, limit + 1, 999999999, 100000000} {
			cases = append(cases, fmt.Sprintf("%d%s", n, u.name))
		}
	}
	answered := 0
	for _, s := range cases {
		want, err := time.ParseDuration(s)
		got, ok := durationOf(ast.StringTerm(s))
		if ok != (err == nil) || got != want {
			t.Errorf("durationOf(%q) = %v, %v; ParseDuration: %v, %v", s, got, ok, want, err)
		}
		if d, ok := wholeUnits(s); ok {
			answered++
			if err != nil || d != want {
				t.Errorf("wholeUnits(%q) = %v; ParseDuration: %v, %v", s, d, want, err)
			}
		}
	}
	for _, s := range []string{"1h", "24h", "1m", "30s", "500ms", "15µs"} {
		if _, ok := wholeUnits(s); !ok {
			t.Errorf("wholeUnits(%q) leaves a common duration to ParseDuration", s)
		}
	}
	t.Logf("%d durations, %d answered by wholeUnits", len(cases), answered)
}

// TestUpstreamHeadersAreChecked: a policy's upstream_headers must name HTTP tokens the
// gateway does not own on the forwarded request, with values free of control characters but
// tab; any other is a malformed decision (the request fails closed), not a header line sent
// upstream.
func TestUpstreamHeadersAreChecked(t *testing.T) {
	for _, c := range []struct {
		name, value string
		ok          bool
	}{
		{"X-Tenant", "acme", true},
		{"x-signature-checked", "", true},
		{"Connection", "close", false},
		{"upgrade", "h2c", false},
		{"Keep-Alive", "1", false},
		{"Proxy-Authorization", "Basic x", false},
		{"TE", "trailers", false},
		{"Transfer-Encoding", "chunked", false},
		{"Content-Length", "0", false},
		{"Host", "evil.example", false},
		{"X Bad", "v", false},
		{"X-Tag-a: b", "v", false},
		{"", "v", false},
		{"X-A", "a\r\nGET /admin HTTP/1.1", false},
		{"X-A", "a\nb", false},
		{"X-A", "a\x00b", false},
		{"X-A", "a\tb", true},
		{"X-A", "a\vb", false},
		{"X-A", "a\x01b", false},
		{"X-A", "a\x1bb", false},
		{"X-A", "a\x7fb", false},
		{"X-A", "caf\u00e9", true},
		{"X-Real-IP", "203.0.113.9", true},
		{"X-Request-Id", "forged", false},
		{"x-forwarded-for", "1.2.3.4", false},
		{"X-Forwarded-Host", "evil.example", false},
		{"X-Forwarded-Proto", "https", false},
		{"Hookwall-Delivery-Id", "dlv_forged", false},
		{"hookwall-attempt", "1", false},
	} {
		obj := ast.NewObject(ast.Item(ast.StringTerm(c.name), ast.StringTerm(c.value)))
		hs, err := decodeHeaders("t.p", obj)
		if c.ok != (err == nil) || c.ok && (len(hs) != 1 || hs[0].Name != c.name || hs[0].Value != c.value) {
			t.Errorf("upstream_headers {%q: %q}: %v %v, want accepted %v", c.name, c.value, hs, err, c.ok)
		}
	}
}
