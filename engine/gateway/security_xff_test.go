package gateway

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
)

// secXFFPolicy allows exactly one client address and says which address it saw.
const secXFFPolicy = `package routes.xff

default allow := false

allow if input.request.remote_ip == "203.0.113.7"

deny contains sprintf("remote_ip %s", [input.request.remote_ip]) if not allow

upstream_headers := {"X-Seen-Remote-Ip": input.request.remote_ip}
`

const secXFFConfig = `
[server]
listen = "127.0.0.1:0"
trusted_proxies = {{TRUSTED}}

[admin]
listen = "127.0.0.1:0"

[log]
decisions = "{{DIR}}/decisions.log"

[[route]]
name = "xff"
path = "/hooks/xff"
upstream = "{{UPSTREAM}}"
policy = "routes.xff"

[[route]]
name = "providers"
path = "/hooks/providers"
upstream = "{{UPSTREAM}}"
policy = "examples.ip_allowlist"
`

func secStartXFF(t *testing.T, trusted string) (*env, *upstream) {
	t.Helper()
	up := startUpstream(t)
	cfg := strings.NewReplacer("{{TRUSTED}}", trusted, "{{UPSTREAM}}", up.URL()).Replace(secXFFConfig)
	e := startEnv(t, cfg, map[string]string{
		"policies/routes/xff.rego":              secXFFPolicy,
		"policies/examples/ip_allowlist.rego":   secShipped(t, "examples/policies/ip_allowlist.rego"),
		"policies/ranges/data.json":             secShipped(t, "policies/ranges/data.json"),
		"policies/examples/ip_allowlist_x.json": `{"not": "data: only data.json files are"}`,
	}, Options{})
	return e, up
}

// TestSecurityXFFFromUntrustedPeer: the peer (127.0.0.1) is not a trusted proxy, so whatever
// X-Forwarded-For it sends is ignored and the policy sees the peer.
func TestSecurityXFFFromUntrustedPeer(t *testing.T) {
	e, up := secStartXFF(t, `["10.0.0.0/8"]`)
	for _, xff := range []string{"203.0.113.7", "10.0.0.1, 203.0.113.7", "203.0.113.7, 10.0.0.1", ""} {
		h := map[string]string{}
		if xff != "" {
			h["X-Forwarded-For"] = xff
		}
		r := e.do("POST", "/hooks/xff", []byte(`{}`), h)
		if r.Status != 403 || !strings.Contains(r.Body, "remote_ip 127.0.0.1") {
			t.Fatalf("XFF %q: status %d body %s; want 403 with remote_ip = the peer 127.0.0.1", xff, r.Status, r.Body)
		}
	}
	// A spoofed GitHub address gets no further than the peer's own.
	r := e.do("POST", "/hooks/providers", []byte(`{}`), map[string]string{"X-Forwarded-For": "140.82.112.5"})
	if r.Status != 403 || !strings.Contains(r.Body, "address 127.0.0.1 is not a published") {
		t.Fatalf("providers route: status %d body %s, want 403 for 127.0.0.1", r.Status, r.Body)
	}
	if n := len(up.requests()); n != 0 {
		t.Fatalf("upstream got %d requests", n)
	}
	for _, d := range awaitDecisionRecords(t, e.dir+"/decisions.log", 5) {
		if d["remote_ip"] != "127.0.0.1" {
			t.Fatalf("decision log remote_ip %v, want 127.0.0.1: %v", d["remote_ip"], d)
		}
	}
}

// TestSecurityXFFFromTrustedProxy: the peer is a trusted proxy, so the right-most address
// of X-Forwarded-For that is not itself trusted is the client.
func TestSecurityXFFFromTrustedProxy(t *testing.T) {
	e, up := secStartXFF(t, `["127.0.0.1", "10.0.0.0/8"]`)
	cases := []struct {
		xff, client string
	}{
		{"203.0.113.7", "203.0.113.7"},
		{"203.0.113.7, 10.1.2.3", "203.0.113.7"}, // through a second, trusted, proxy
		{" 203.0.113.7 ,10.1.2.3 ", "203.0.113.7"},
		// The client wrote the left part itself: the proxy appended its real address.
		{"203.0.113.7, 198.51.100.9", "198.51.100.9"},
		{"", "127.0.0.1"},
		{"not-an-ip", "127.0.0.1"},
	}
	for _, tc := range cases {
		h := map[string]string{}
		if tc.xff != "" {
			h["X-Forwarded-For"] = tc.xff
		}
		before := len(up.requests())
		r := e.do("POST", "/hooks/xff", []byte(`{}`), h)
		if tc.client == "203.0.113.7" {
			if r.Status != 200 {
				t.Fatalf("XFF %q: status %d body %s, want 200", tc.xff, r.Status, r.Body)
			}
			got := up.requests()[before]
			if ip := got.Header.Get("X-Seen-Remote-Ip"); ip != tc.client {
				t.Fatalf("XFF %q: policy saw %q, want %q", tc.xff, ip, tc.client)
			}
			if xff := got.Header.Get("X-Forwarded-For"); xff != strings.TrimSpace(tc.xff)+", 127.0.0.1" && xff != tc.xff+", 127.0.0.1" {
				t.Fatalf("XFF %q: upstream X-Forwarded-For %q, want the peer appended", tc.xff, xff)
			}
			continue
		}
		if r.Status != 403 || !strings.Contains(r.Body, "remote_ip "+tc.client) {
			t.Fatalf("XFF %q: status %d body %s, want 403 with remote_ip %s", tc.xff, r.Status, r.Body, tc.client)
		}
	}

	// The shipped provider ranges, through the shipped example policy: an address inside
	// each shipped range passes, documentation addresses do not.
	expect := map[string]int{"203.0.113.7": 403, "2001:db8::1": 403}
	var ranges struct {
		GitHub struct{ Hooks []string }    `json:"github"`
		Stripe struct{ Webhooks []string } `json:"stripe"`
	}
	if err := json.Unmarshal([]byte(secShipped(t, "policies/ranges/data.json")), &ranges); err != nil {
		t.Fatal(err)
	}
	for _, c := range append(ranges.GitHub.Hooks, ranges.Stripe.Webhooks...) {
		p := netip.MustParsePrefix(c)
		ip := p.Addr()
		if p.Bits() < ip.BitLen() {
			ip = ip.Next()
		}
		expect[ip.String()] = 200
	}
	for ip, want := range expect {
		r := e.do("POST", "/hooks/providers", []byte(`{}`), map[string]string{"X-Forwarded-For": ip})
		if r.Status != want {
			t.Fatalf("providers route, client %s: status %d body %s, want %d", ip, r.Status, r.Body, want)
		}
	}
}

// TestSecurityXFFRepeatedHeader: a client's own X-Forwarded-For line, followed by the one a
// trusted proxy added as a separate header line, must not let the client choose its address.
// Header names are matched in any case (the gateway does not normalise them).
func TestSecurityXFFRepeatedHeader(t *testing.T) {
	e, up := secStartXFF(t, `["127.0.0.1"]`)
	raw := func(lines ...string) string {
		return "POST /hooks/xff HTTP/1.1\r\nHost: x\r\n" + strings.Join(lines, "\r\n") + "\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
	}
	status, body := secRawRequest(t, e, raw("X-Forwarded-For: 203.0.113.7", "X-Forwarded-For: 198.51.100.9"))
	if status != 403 || !strings.Contains(body, "remote_ip 198.51.100.9") {
		t.Fatalf("status %d body %s; want 403 with remote_ip 198.51.100.9 (the proxy's line, not the client's)", status, body)
	}
	status, body = secRawRequest(t, e, raw("X-Forwarded-For: 198.51.100.9", "x-forwarded-for: 203.0.113.7"))
	if status != 200 {
		t.Fatalf("lower-case line from the trusted proxy: status %d body %s, want 200 for 203.0.113.7", status, body)
	}
	reqs := up.requests()
	got := reqs[len(reqs)-1].Header
	if xff := got.Values("X-Forwarded-For"); len(xff) != 1 || xff[0] != "198.51.100.9, 203.0.113.7, 127.0.0.1" {
		t.Fatalf("upstream X-Forwarded-For lines %q, want one line with every hop and the peer", xff)
	}
	if ip := got.Get("X-Seen-Remote-Ip"); ip != "203.0.113.7" {
		t.Fatalf("policy saw %q", ip)
	}
}

// TestClientCannotSendTheDeliveryHeaders: Hookwall-Delivery-Id and Hookwall-Attempt are the
// gateway's, written on a queued route's deliveries only. An upstream told to dedupe on the
// delivery id must not get one a client chose on a direct route (a forged id, or a real one
// from a 202 answer, which would make the genuine delivery look like a duplicate), in any
// case, on one line or several.
func TestClientCannotSendTheDeliveryHeaders(t *testing.T) {
	e, up := secStartXFF(t, `["127.0.0.1"]`)
	status, body := secRawRequest(t, e, "POST /hooks/xff HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.7\r\n"+
		"Hookwall-Delivery-Id: dlv_forged\r\nhookwall-delivery-id: dlv_again\r\nHOOKWALL-ATTEMPT: 1\r\n"+
		"Content-Length: 2\r\nConnection: close\r\n\r\n{}")
	if status != 200 {
		t.Fatalf("status %d body %s, want 200", status, body)
	}
	reqs := up.requests()
	if len(reqs) != 1 {
		t.Fatalf("upstream got %d requests, want 1", len(reqs))
	}
	for _, name := range []string{"Hookwall-Delivery-Id", "Hookwall-Attempt"} {
		if v := reqs[0].Header.Values(name); len(v) != 0 {
			t.Errorf("the upstream of a direct route got the client's %s %q", name, v)
		}
	}
}
