package policy

import (
	"context"
	"strings"
	"testing"
)

// BenchmarkRuleCost adds the decision rules of the demo policy one at a time, so the cost of
// each kind of rule shows in ns/op and allocs/op.
func BenchmarkRuleCost(b *testing.B) {
	head := "package routes.github\nsig := hookwall.webhook.verify(\"github\", input.request, {\"secret\": \"github\"})\nevent := input.request.headers[\"x-github-event\"]\nevents := {\"ping\", \"push\", \"pull_request\", \"issues\", \"release\"}\n"
	variants := map[string]string{
		"0-allow-true":   "package routes.github\nallow := true\n",
		"1-verify":       head + "allow if sig.valid\n",
		"2-verify-event": head + "allow if { sig.valid; event in events }\n",
		"3-+deny":        head + "allow if { sig.valid; event in events }\ndeny contains sprintf(\"signature: %s\", [sig.reason]) if not sig.valid\n",
		"4-+status":      head + "allow if { sig.valid; event in events }\ndeny contains sprintf(\"signature: %s\", [sig.reason]) if not sig.valid\nstatus := 401 if not sig.valid\n",
		"5-+dedupe":      head + "allow if { sig.valid; event in events }\ndeny contains sprintf(\"signature: %s\", [sig.reason]) if not sig.valid\nstatus := 401 if not sig.valid\ndedupe := {\"key\": concat(\":\", [\"github\", d]), \"ttl\": \"24h\"} if { d := input.request.headers[\"x-github-delivery\"] }\n",
		"6-+ratelimit":   head + "allow if { sig.valid; event in events }\ndeny contains sprintf(\"signature: %s\", [sig.reason]) if not sig.valid\nstatus := 401 if not sig.valid\ndedupe := {\"key\": concat(\":\", [\"github\", d]), \"ttl\": \"24h\"} if { d := input.request.headers[\"x-github-delivery\"] }\nrate_limit := {\"key\": concat(\":\", [\"github\", input.request.remote_ip]), \"limit\": 600, \"per\": \"1m\"}\n",
		"7-+labels":      head + "allow if { sig.valid; event in events }\ndeny contains sprintf(\"signature: %s\", [sig.reason]) if not sig.valid\nstatus := 401 if not sig.valid\ndedupe := {\"key\": concat(\":\", [\"github\", d]), \"ttl\": \"24h\"} if { d := input.request.headers[\"x-github-delivery\"] }\nrate_limit := {\"key\": concat(\":\", [\"github\", input.request.remote_ip]), \"limit\": 600, \"per\": \"1m\"}\nlabels := {\"event\": event, \"delivery\": input.request.headers[\"x-github-delivery\"]} if sig.valid\n",
	}
	body := `{"ref":"refs/heads/main","pad":"` + strings.Repeat("x", 2000) + `"}`
	req := requestValue("POST", "/hooks/github", map[string]string{
		"X-Hub-Signature-256": "sha256=" + hmacHex("hookwall-demo-secret", body),
		"X-GitHub-Event":      "push",
		"X-GitHub-Delivery":   "72d3162e-cc78-11e3-81ab-4c9367dc0958",
	}, body)
	req.Insert(ast_remote_ip, ast_remote_val)
	in := doc(req)
	for _, name := range []string{"0-allow-true", "1-verify", "2-verify-event", "3-+deny", "4-+status", "5-+dedupe", "6-+ratelimit", "7-+labels"} {
		set, err := LoadModules(context.Background(), map[string]string{"p.rego": variants[name]}, nil, Options{Secrets: secretMap{"github": []byte("hookwall-demo-secret")}})
		if err != nil {
			b.Fatal(err)
		}
		q, err := set.Prepare(context.Background(), "routes.github")
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				d, err := q.Eval(context.Background(), in, nil)
				if err != nil || !d.Allow {
					b.Fatal(err)
				}
			}
		})
	}
}
