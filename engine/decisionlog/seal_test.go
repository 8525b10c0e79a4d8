package decisionlog_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hookwall/hookwall/engine/decisionlog"
	"github.com/hookwall/hookwall/engine/delivery"
)

// A sealed body leaves no byte of itself in the line, opens back exactly (large bodies and
// bytes that are not UTF-8 included), is bound to its decision id, and a header or label
// that imitates the sealed fields does not mislead Unseal.
func TestSealedBodyRoundTrip(t *testing.T) {
	kr, err := delivery.NewKeyring([]delivery.Key{{ID: "k1", Value: []byte(strings.Repeat("ab", 32))}})
	if err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("PLAINTEXT\x00\xff\"\\<"), 8000)
	decoy := `"body_sealed":"AAAA","body_key":"k1"`
	var buf bytes.Buffer
	l := decisionlog.New(&buf, nil, decisionlog.Options{Seal: kr})
	for i, body := range [][]byte{[]byte(""), []byte("PLAINTEXT card 4111"), big} {
		r := &decisionlog.Record{DecisionID: "dec-" + string(rune('a'+i)), Time: time.Now(), Route: "r", Outcome: decisionlog.OutcomeAllowed,
			Headers: []decisionlog.Header{{Name: "X-Decoy", Value: decoy}}, Labels: map[string]any{"decoy": decoy}}
		r.CaptureBody(body, len(body)+1)
		l.Log(r)
	}
	l.Log(&decisionlog.Record{DecisionID: "dec-none", Time: time.Now(), Outcome: decisionlog.OutcomeDenied}) // no capture
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(buf.Bytes(), []byte("PLAINTEXT")) || bytes.Contains(buf.Bytes(), []byte(`"body":`)) {
		t.Fatalf("a sealed log holds the body:\n%.400s", buf.Bytes())
	}
	lines := bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n"))
	if len(lines) != 4 {
		t.Fatalf("%d lines", len(lines))
	}
	for i, want := range [][]byte{[]byte(""), []byte("PLAINTEXT card 4111"), big} {
		out, sb, body, err := decisionlog.Unseal(lines[i], kr)
		if err != nil || sb == nil || sb.KeyID != "k1" || !bytes.Equal(body, want) {
			t.Fatalf("line %d: %v %+v, body %d bytes, want %d", i, err, sb, len(body), len(want))
		}
		var l struct {
			Labels  map[string]string
			Request struct {
				Headers    map[string]string
				Body       *string
				BodySealed *string `json:"body_sealed"`
				BodyBytes  int     `json:"body_bytes"`
			}
		}
		if err := json.Unmarshal(out, &l); err != nil || l.Request.Body == nil || l.Request.BodySealed != nil ||
			l.Request.BodyBytes != len(want) || l.Request.Headers["X-Decoy"] != decoy || l.Labels["decoy"] != decoy {
			t.Fatalf("line %d opened: %v\n%.300s", i, err, out)
		}
		if i == 1 && *l.Request.Body != "PLAINTEXT card 4111" {
			t.Fatalf("opened body %q", *l.Request.Body)
		}
	}
	if out, sb, body, err := decisionlog.Unseal(lines[3], kr); err != nil || sb != nil || body != nil || !bytes.Equal(out, lines[3]) {
		t.Fatalf("a line without a body: %v %v %q", err, sb, out)
	}
	// Moved to another decision, a sealed body does not open.
	moved := bytes.Replace(lines[1], []byte(`"decision_id":"dec-b"`), []byte(`"decision_id":"dec-a"`), 1)
	if _, sb, _, err := decisionlog.Unseal(moved, kr); err == nil || sb == nil || sb.DecisionID != "dec-a" || !strings.Contains(err.Error(), `sealed with key "k1" but does not open with it`) {
		t.Fatalf("a body moved to another decision: %v", err)
	}
	other, _ := delivery.NewKeyring([]delivery.Key{{ID: "k2", Value: []byte(strings.Repeat("cd", 32))}})
	if _, _, _, err := decisionlog.Unseal(lines[1], other); err == nil || !strings.Contains(err.Error(), `sealed with key "k1", which is not in encryption_keys`) {
		t.Fatalf("without the key: %v", err)
	}
}
