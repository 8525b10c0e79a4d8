package gateway

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"
	"testing"
	"time"
)

// TestDedupeKeysAreTheRoutes: a Standard Webhooks sender gives every endpoint the same
// message id. Two routes, each with its own secret and upstream, receive the same message:
// each forwards its copy once (the key is the route's), and a replay to either is a
// duplicate.
func TestDedupeKeysAreTheRoutes(t *testing.T) {
	orders, billing := startUpstream(t), startUpstream(t)
	files := providerPolicyFiles(t)
	keys := map[string][]byte{"orders": []byte("orders-secret-0123456789"), "billing": []byte("billing-secret-0123456789")}
	cfg := quietHead + "[secrets]\n"
	for name, k := range keys {
		files[name+".secret"] = "whsec_" + base64.StdEncoding.EncodeToString(k)
		files["policies/routes/"+name+".rego"] = fmt.Sprintf(`package routes.%[1]s

import data.hookwall.lib.providers.standard as provider

default allow := false

allow if provider.allow(%[1]q)

status := provider.status(%[1]q)

dedupe := provider.dedupe if provider.verified(%[1]q)
`, name)
		cfg += fmt.Sprintf("%s = {file = %q}\n", name, name+".secret")
	}
	for name, up := range map[string]*upstream{"orders": orders, "billing": billing} {
		cfg += fmt.Sprintf("[[route]]\nname = %q\npath = \"/hooks/%s\"\nupstream = %q\npolicy = \"routes.%s\"\n", name, name, up.URL(), name)
	}
	e := startEnv(t, cfg, files, Options{Logger: discardLogger()})
	body := []byte(`{"type":"invoice.paid","data":{"id":"inv_1"}}`)
	ts := time.Now().Unix()
	send := func(route string) resp {
		m := hmac.New(sha256.New, keys[route])
		fmt.Fprintf(m, "%s.%d.%s", "msg_2Lz7", ts, body)
		return e.do("POST", "/hooks/"+route, body, map[string]string{"webhook-id": "msg_2Lz7", "webhook-timestamp": strconv.FormatInt(ts, 10),
			"webhook-signature": "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil)), "Content-Type": "application/json"})
	}
	for _, route := range []string{"orders", "billing"} {
		if r := send(route); r.Status != 200 || r.Header.Get("Hookwall-Duplicate") != "" {
			t.Errorf("%s's own delivery of the message: status %d, duplicate %q; want it forwarded", route, r.Status, r.Header.Get("Hookwall-Duplicate"))
		}
	}
	for _, route := range []string{"orders", "billing"} {
		if r := send(route); r.Header.Get("Hookwall-Duplicate") != "true" {
			t.Errorf("a replay to %s: status %d, not a duplicate", route, r.Status)
		}
	}
	if len(orders.requests()) != 1 || len(billing.requests()) != 1 {
		t.Errorf("upstreams got %d and %d requests, want 1 each", len(orders.requests()), len(billing.requests()))
	}
}
