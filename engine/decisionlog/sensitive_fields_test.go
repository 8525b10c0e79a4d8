package decisionlog

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestSensitiveValuesAreMaskedInEveryField: a credential the policy's builtins were handed
// is masked wherever the record would carry it, not only in the headers and the path: a
// policy that echoes the presented key in a deny reason, a label or a shadow's deny (deny
// contains sprintf("unknown key %s", [presented])) must not write it to the log, nor must an
// error, a state error or a filter's error that quotes it. Each masked place is listed in
// "masked".
func TestSensitiveValuesAreMaskedInEveryField(t *testing.T) {
	const key = "k3y-0f-the-client"
	r := &Record{
		DecisionID: "x", Time: time.Now(), Policy: "routes.k", Route: "k", Method: "POST", Path: "/k",
		Outcome: OutcomeDenied, Status: 403,
		Reasons: []string{"unknown client key " + key, "other"},
		Error:   "policy failed on " + key,
		State:   "redis: " + key,
		Labels:  map[string]any{"client": key, "n": 1, "nested": map[string]any{key: []any{"x" + key, "y"}}},
		Filters: []FilterResult{{Name: "f", Outcome: FilterError, Error: "guest: bad " + key}},
		Headers: []Header{{"X-Acme-Client", key}},
		Result:  Result{Evaluated: true, Deny: []string{"unknown client key " + key}, Status: 403},
		Shadow:  Shadow{Policy: "routes.ks", Deny: []string{"shadow: " + key}, Status: 403, Agree: true},
		// A short value masks nothing outside the request: the client chose it, and "ab"
		// would let it hide a reason of its own record.
		Sensitive: []string{key, "ab"},
	}
	r.Reasons = append(r.Reasons, "ab", "xabx")
	line := r.appendJSON(nil, defaultMask, nil, nil)
	if !json.Valid(line) {
		t.Fatalf("not JSON: %s", line)
	}
	if bytes.Contains(line, []byte("k3y-0f")) {
		t.Errorf("line leaks the key: %s", line)
	}
	var l struct {
		Reasons []string       `json:"reasons"`
		Labels  map[string]any `json:"labels"`
		Masked  []string       `json:"masked"`
	}
	if err := json.Unmarshal(line, &l); err != nil {
		t.Fatal(err)
	}
	if want := []string{"unknown client key ***", "other", "ab", "xabx"}; !slices.Equal(l.Reasons, want) {
		t.Errorf("reasons %q, want %q", l.Reasons, want)
	}
	if l.Labels["client"] != "***" || l.Labels["n"] != 1.0 {
		t.Errorf("labels %v", l.Labels)
	}
	if slices.Contains(l.Masked, "/reasons/2") {
		t.Errorf("a short client value masked a reason: %v", l.Masked)
	}
	for _, p := range []string{"/reasons/0", "/error", "/state_error", "/result/deny/0", "/labels", "/request/headers/X-Acme-Client", "/filters/0/error", "/shadow/deny/0"} {
		if !slices.Contains(l.Masked, p) {
			t.Errorf("masked %v lacks %s", l.Masked, p)
		}
	}

	// The same record with the shadow's error instead of its decision.
	r.Shadow = Shadow{Policy: "routes.ks", Error: "shadow saw " + key}
	line = r.appendJSON(nil, defaultMask, nil, nil)
	if !json.Valid(line) || bytes.Contains(line, []byte("k3y-0f")) || !bytes.Contains(line, []byte(`"/shadow/error"`)) {
		t.Errorf("shadow error: %s", line)
	}

	// Without sensitive values nothing changes, and the labels are the policy's own map.
	r2 := &Record{DecisionID: "y", Time: time.Now(), Reasons: []string{"x " + key}, Labels: map[string]any{"client": key}}
	if line := r2.appendJSON(nil, defaultMask, nil, nil); !bytes.Contains(line, []byte(`"reasons":["x `+key+`"]`)) || bytes.Contains(line, []byte(`"masked"`)) {
		t.Errorf("without sensitive values: %s", line)
	}
	if r.Labels["client"] != key {
		t.Errorf("the record's labels were changed: %v", r.Labels)
	}
}

// TestPolicyPathHoldsNoRawDEL: OPA's "path", written from the package name byte by byte,
// leaves out DEL as it leaves out the C0 controls ([log] decisions: no control appears raw).
func TestPolicyPathHoldsNoRawDEL(t *testing.T) {
	r := &Record{DecisionID: "x", Time: time.Now(), Policy: "routes.a\x7fb"}
	line := r.appendJSON(nil, defaultMask, nil, nil)
	if bytes.IndexByte(line, 0x7f) >= 0 {
		t.Errorf("raw DEL in %q", line)
	}
}

// TestMaskedLabelKeysStayApart: two label keys that hold a credential are masked into two
// entries, not one that drops the other.
func TestMaskedLabelKeysStayApart(t *testing.T) {
	const k1, k2 = "tok-aaaaaaaa-1", "tok-bbbbbbbb-2"
	v, ok := maskValue(map[string]any{k1: 1, k2: 2, "plain": 3}, []string{k1, k2})
	m, _ := v.(map[string]any)
	if !ok || len(m) != 3 || m["plain"] != 3 {
		t.Fatalf("masked labels %v (%v), want three entries", m, ok)
	}
	for k := range m {
		if strings.Contains(k, "tok-") {
			t.Fatalf("a key leaks: %v", m)
		}
	}
}

// TestPathMaskedByTheCaller: a path the caller masked by its route's rule (PathMasked) is
// listed in "masked" as one a Sensitive value masked is.
func TestPathMaskedByTheCaller(t *testing.T) {
	for _, c := range []struct {
		name   string
		masked bool
	}{{"masked", true}, {"as received", false}} {
		t.Run(c.name, func(t *testing.T) {
			r := &Record{DecisionID: "x", Time: time.Now(), Method: "POST", Path: "/hooks/tg/***", Outcome: OutcomeTooLarge, Status: 413, PathMasked: c.masked}
			line := r.appendJSON(nil, defaultMask, nil, nil)
			var doc struct {
				Masked []string `json:"masked"`
			}
			if err := json.Unmarshal(line, &doc); err != nil {
				t.Fatalf("%v: %s", err, line)
			}
			if got := slices.Contains(doc.Masked, "/request/path"); got != c.masked {
				t.Errorf("masked %v lists /request/path: %v, want %v", doc.Masked, got, c.masked)
			}
		})
	}
}
