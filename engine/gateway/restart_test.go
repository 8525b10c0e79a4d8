package gateway

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hookwall/hookwall/engine/config"
	"github.com/hookwall/hookwall/engine/decisionlog"
	"github.com/hookwall/hookwall/engine/delivery"
	"github.com/hookwall/hookwall/engine/internal/testutil"
)

// TestRestartOnlyNamesEachSection: a change to a key the running gateway applies only at
// start ([server], [admin], [state], [log], [watch] with its thresholds, [delivery], [demo])
// is refused, naming the key and never its value; a change to the routes alone is not.
// (TestReloadRouteAddedWithoutRestart shows a refusal end to end.)
func TestRestartOnlyNamesEachSection(t *testing.T) {
	base := func() *config.Config { return &config.Config{File: "gateway.toml"} }
	for _, c := range []struct {
		key    string
		change func(*config.Config)
	}{
		{"server.listen", func(c *config.Config) { c.Server.Listen = "127.0.0.1:1" }},
		{"admin.token", func(c *config.Config) { c.Admin.Token = "s3cret-token" }},
		{"state.backend", func(c *config.Config) { c.State.Backend = config.StateBackend("redis") }},
		{"log.level", func(c *config.Config) { c.Log.Level = "debug" }},
		{"watch.window", func(c *config.Config) { c.Watch.Window = config.Duration(time.Minute) }},
		{"watch.min_events", func(c *config.Config) { c.Watch.MinEvents = 3 }},
		{"delivery.max_pending", func(c *config.Config) { c.Delivery.MaxPending = 10 }},
		{"demo.sink", func(c *config.Config) { c.Demo.Sink = "127.0.0.1:9" }},
	} {
		cur := base()
		c.change(cur)
		err := restartOnly(base(), cur)
		if err == nil || !strings.Contains(err.Error(), ": "+c.key+" changed: these need a restart") {
			t.Errorf("changing %s: %v, want a refusal naming it", c.key, err)
			continue
		}
		if strings.Contains(err.Error(), "s3cret-token") {
			t.Errorf("changing %s: the refusal quotes the value: %v", c.key, err)
		}
	}
	cur := base()
	cur.Routes = append(cur.Routes, config.Route{Name: "added"})
	if err := restartOnly(base(), cur); err != nil {
		t.Errorf("a route added: %v, want it applied", err)
	}
}

// TestReloadEncryptionKeyValueNeedsRestart: the decision log and the delivery store seal with
// the keyring made at start, so a new value of a secret that [delivery] encryption_keys names
// is refused as needing a restart, naming the secret and never a value, and what the gateway
// writes after the refusal still opens with the key it started with.
func TestReloadEncryptionKeyValueNeedsRestart(t *testing.T) {
	key := func() string {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		return base64.StdEncoding.EncodeToString(b)
	}
	oldKey, newKey := key(), key()
	up := startUpstream(t)
	cfg := strings.NewReplacer("{{UPSTREAM}}", up.URL(), "{{POLICIES}}", "", `decisions = "off"`, "decisions = \"{{DIR}}/decisions.log\"\nbody = 1000").Replace(reloadConfig) + `
[secrets]
k1 = { file = "k1.key" }

[delivery]
encryption_keys = ["k1"]
`
	e := startEnv(t, cfg, map[string]string{"policies/routes/flip.rego": flipAllow, "k1.key": oldKey}, Options{})
	rev0 := e.g.Status().Revision
	testutil.ReplaceFile(t, e.path("k1.key"), newKey)
	code, ans := e.adminReload()
	if code != 422 || !strings.Contains(ans["error"], "gateway.toml: secrets.k1 changed: the value of a delivery.encryption_keys key needs a restart; nothing of this change was applied") {
		t.Fatalf("reload after k1's value changed: %d %v, want 422 naming secrets.k1 and the restart", code, ans)
	}
	if strings.Contains(ans["error"], oldKey) || strings.Contains(ans["error"], newKey) {
		t.Errorf("the refusal quotes a key: %v", ans)
	}
	if st := e.g.Status(); st.Revision != rev0 || !strings.Contains(st.LastError, "secrets.k1 changed") {
		t.Errorf("status after the refusal: revision %s (was %s), last error %q", st.Revision, rev0, st.LastError)
	}
	if st := e.mustPost("/hooks/flip"); st != 200 {
		t.Fatalf("after the refused reload: %d, want 200", st)
	}
	started, err := delivery.NewKeyring([]delivery.Key{{ID: "k1", Value: []byte(oldKey)}})
	if err != nil {
		t.Fatal(err)
	}
	var data []byte
	testutil.WaitUntil(t, 3*time.Second, "no sealed record", func() bool {
		data, _ = os.ReadFile(e.path("decisions.log"))
		return bytes.Contains(data, []byte("body_sealed"))
	})
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if _, _, _, err := decisionlog.Unseal(sc.Bytes(), started); err != nil {
			t.Errorf("a record written after the refused reload does not open with the key the gateway started with: %v", err)
		}
	}
}
