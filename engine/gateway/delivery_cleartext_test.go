package gateway

import (
	"database/sql"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/hookwall/hookwall/engine/delivery"
	"github.com/hookwall/hookwall/engine/internal/testutil"
)

// writeStoredRow writes a pending delivery id of the route github into the gateway's SQLite
// file behind its back, as someone who can write the file would: its row and its body in one
// transaction, as the gateway writes them. The running gateway writes the file too: the
// write waits for its lock rather than fail.
func writeStoredRow(t *testing.T, e *env, id string, headers, body []byte) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(e.dir, "hookwall-deliveries.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Now().UnixNano()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`INSERT INTO deliveries (seq, id, route, dest, decision_id, received_at, method, uri, state, attempts, base, next_at, updated_at)
		VALUES (1000, ?, 'github', 0, ?, ?, 'POST', '/hooks/github', 'pending', 0, 0, ?, ?)`, id, id+"-decision", now, now, now); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`INSERT INTO delivery_bodies (seq, headers, body) VALUES (1000, ?, ?)`, headers, body); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// A queued route with encryption_keys and sign: someone who can write the SQLite file
// inserts a delivery in the clear for that route, as a forgery would be. The gateway never
// sends it (the upstream would take the route's signature as proof it came through the
// gateway): it is made dead when claimed, its reason saying what happened and what to do,
// logged and counted without its body; replayed, it is refused again. The webhooks the
// gateway sealed itself are delivered as ever.
func TestQueuedRefusesADeliveryWrittenInTheClear(t *testing.T) {
	up := startUpstream(t)
	up.setHandler(func(ctx *fasthttp.RequestCtx) { ctx.SetStatusCode(503) }) // keeps the real one pending: its retries read the file
	cfg := slowSignedQueue(up, "\nencryption_keys = [\"dkey\"]", "\ndkey = {file = \"d.key\"}")
	e := startEnv(t, cfg, map[string]string{"policies/github.rego": queuedPolicy, "github.secret": "s3cret",
		"d.key": strings.Repeat("ab", 32), "wh.secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, Options{})
	body := `{"real":1}`
	if r := e.do("POST", "/hooks/github", []byte(body), signed(body, "")); r.Status != 202 {
		t.Fatalf("status %d", r.Status)
	}
	testutil.WaitFor(t, func() bool { return len(up.requests()) >= 1 })

	headers := delivery.EncodeHeaders([]delivery.Header{{Name: "Content-Type", Value: "application/json"}, {Name: "X-GitHub-Event", Value: "push"}})
	writeStoredRow(t, e, "forged-1", headers, []byte(`{"FORGED":"transfer all funds"}`))

	refusedLines := func() []map[string]any {
		var out []map[string]any
		for _, m := range decisionLines(t, e, "dead") {
			if m["delivery_id"] == "forged-1" {
				out = append(out, m)
			}
		}
		return out
	}
	forged := func() *recorded {
		for _, got := range up.requests() {
			if strings.Contains(string(got.Body), "FORGED") {
				return &got
			}
		}
		return nil
	}
	testutil.WaitFor(t, func() bool { return len(refusedLines()) == 1 || forged() != nil })
	if got := forged(); got != nil {
		t.Fatalf("the upstream got the delivery written in the clear, as the route's, signed %q", got.Header.Get("webhook-signature"))
	}
	line := refusedLines()[0]
	if msg, _ := line["error"].(string); !strings.Contains(msg, "stored in the clear, though [delivery] encryption_keys is set: not delivered") ||
		!strings.Contains(msg, "hookwall deliveries rekey") || !strings.Contains(msg, "purge it") {
		t.Fatalf("dead line: %v", line)
	}
	if m := httpGet(t, e.admin+"/metrics"); !strings.Contains(m, `hookwall_delivery_refused_total{reason="cleartext",route="github"} 1`) {
		t.Fatalf("metrics lack the refusal:\n%s", m)
	}
	if s := e.logBuf.String(); !strings.Contains(s, "delivery refused") || !strings.Contains(s, "delivery_id=forged-1") || !strings.Contains(s, "reason=cleartext") {
		t.Fatalf("no warning naming the refused delivery:\n%s", s)
	}

	// Replayed (by mistake, or by someone who can reach the admin API), it is refused again.
	req, _ := http.NewRequest("POST", e.admin+"/-/deliveries/forged-1/replay", nil)
	req.Header.Set("Hookwall-Admin", "1")
	r, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != 200 {
		t.Fatalf("replay: %d", r.StatusCode)
	}
	testutil.WaitFor(t, func() bool { return len(refusedLines()) == 2 })

	up.setHandler(nil) // the gateway's own delivery goes through
	testutil.WaitFor(t, func() bool {
		for _, m := range decisionLines(t, e, "delivered") {
			if m["route"] == "github" {
				return true
			}
		}
		return false
	})
	if got := forged(); got != nil {
		t.Fatalf("the upstream got the delivery written in the clear once replayed, signed %q", got.Header.Get("webhook-signature"))
	}
	logged, _ := os.ReadFile(filepath.Join(e.dir, "decisions.log"))
	if strings.Contains(string(logged), "FORGED") || strings.Contains(e.logBuf.String(), "FORGED") {
		t.Fatal("a log holds the refused delivery's body")
	}
}

// A gateway without encryption_keys, its queued route signed, over a store holding a sealed
// delivery (sealed by this gateway before its keys were taken out, or by another gateway of
// its fleet): the ciphertext is never sent nor signed, the delivery is not made dead but
// held, pending, and the hold is logged and counted.
func TestQueuedHoldsSealedWithoutKeys(t *testing.T) {
	up := startUpstream(t)
	up.setHandler(func(ctx *fasthttp.RequestCtx) { ctx.SetStatusCode(503) }) // keeps the real one pending: its retries read the file
	cfg := slowSignedQueue(up, "", "")
	e := startEnv(t, cfg, map[string]string{"policies/github.rego": queuedPolicy, "github.secret": "s3cret",
		"wh.secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, Options{})
	body := `{"real":1}` // a webhook of its own, which goes through
	if r := e.do("POST", "/hooks/github", []byte(body), signed(body, "")); r.Status != 202 {
		t.Fatalf("status %d", r.Status)
	}
	testutil.WaitFor(t, func() bool { return len(up.requests()) >= 1 })
	writeStoredRow(t, e, "sealed-1", delivery.EncodeHeaders([]delivery.Header{{Name: ":sealed2", Value: "dkey"}}), []byte("CIPHERTEXT"))
	testutil.WaitFor(t, func() bool {
		return strings.Contains(httpGet(t, e.admin+"/metrics"), `hookwall_delivery_refused_total{reason="sealed_no_key",route="github"}`)
	})
	up.setHandler(nil)
	testutil.WaitFor(t, func() bool { return len(decisionLines(t, e, "delivered")) == 1 })
	for _, got := range up.requests() {
		if strings.Contains(string(got.Body), "CIPHERTEXT") {
			t.Fatalf("the upstream got the sealed delivery's ciphertext, signed %q", got.Header.Get("webhook-signature"))
		}
	}
	if len(decisionLines(t, e, "dead")) != 0 {
		t.Fatal("the sealed delivery was made dead")
	}
	if s := e.logBuf.String(); !strings.Contains(s, "delivery_id=sealed-1") || !strings.Contains(s, "reason=sealed_no_key") || !strings.Contains(s, `put that key back in [delivery] encryption_keys`) {
		t.Fatalf("no warning naming the held delivery:\n%s", s)
	}
}

// slowSignedQueue is queuedConfig for up with 100 pending, signed with the secret wh, its
// retries 200 ms apart (a delivery the upstream refuses stays pending, each retry reading the
// file), and delivery and secrets added to [delivery] and [secrets].
func slowSignedQueue(up *upstream, delivery, secrets string) string {
	cfg := strings.ReplaceAll(queuedConfig, "max_pending = {{MAX}}", "max_pending = 100"+delivery)
	cfg = strings.ReplaceAll(cfg, `retry = ["50ms", "50ms", "50ms"]`, `retry = ["200ms", "200ms", "200ms", "200ms", "200ms", "200ms", "200ms", "200ms", "200ms", "200ms"]`+"\n"+`sign = "wh"`)
	cfg = strings.ReplaceAll(cfg, `github = {file = "github.secret"}`, "github = {file = \"github.secret\"}"+secrets+"\nwh = {file = \"wh.secret\"}")
	return strings.ReplaceAll(cfg, "{{UPSTREAM}}", up.URL())
}
