# Real signed requests from engine/webhook/testdata/webhook-vectors.json (each test names its
# vector) through the ready policy data.routes.providers.github and the production builtin.
#
# This directory is hidden from policy loaders on purpose: these tests need the vectors'
# secrets in [secrets] and a clock pinned to the vectors' time, which the Go runner
# engine/policy/providers_test.go supplies (secret "github" holds the provider's vector secret).
package routes.providers.vectors.github_test

import data.hookwall.lib.providers.github

# clock is the vectors' "now" (Unix seconds); the Go runner pins the verify clock to it.
clock := 1700000000

# Vector github-docs-hello-world (expect valid).
test_github_docs_hello_world if {
	d := data.routes.providers.github with input as {"request": req_github_docs_hello_world}
	d.allow == true
	d.deny == set()
	not d.status
	d.rate_limit == {"key": "github:192.0.2.10", "limit": 600, "per": "1m"}
	d.dedupe == {"key": "github:dffd6021bb2bd5b0af676290809ec3a53191dd81c7f70a4b28688a362182986f", "ttl": "24h"}
	d.labels.delivery == "github:dffd6021bb2bd5b0af676290809ec3a53191dd81c7f70a4b28688a362182986f"
}

req_github_docs_hello_world := {
	"method": "POST",
	"scheme": "http",
	"host": "gateway.internal:8080",
	"path": "/hooks/github",
	"uri": "/hooks/github",
	"headers": {
		"x-hub-signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
	},
	"body": "Hello, World!",
	"remote_ip": "192.0.2.10",
}

# Vector github-docs-tampered-body (expect invalid: body changed).
test_github_docs_tampered_body if {
	d := data.routes.providers.github with input as {"request": req_github_docs_tampered_body}
	d.allow == false
	d.status == 401
	count(d.deny) == 1
	some reason in d.deny
	startswith(reason, "signature: signature mismatch")
	not d.dedupe
	not d.labels
}

req_github_docs_tampered_body := {
	"method": "POST",
	"scheme": "http",
	"host": "gateway.internal:8080",
	"path": "/hooks/github",
	"uri": "/hooks/github",
	"headers": {
		"x-hub-signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
	},
	"body": "Hello, World?",
	"remote_ip": "192.0.2.10",
}

# Vector github-docs-hello-world again, with a delivery id: the header is not signed, so the
# signature still verifies, and the key stays the digest of the signed body. A captured
# delivery replayed with a fresh X-GitHub-Delivery is the same delivery.
test_github_delivery_id_is_not_the_dedupe_key if {
	every id in ["72d3162e-cc78-11e3-81ab-4c9367dc0958", "fresh"] {
		d := data.routes.providers.github with input as {"request": object.union(req_github_docs_hello_world, {"headers": {
			"x-hub-signature-256": req_github_docs_hello_world.headers["x-hub-signature-256"],
			"x-github-delivery": id,
			"x-github-event": "push",
		}})}
		d.allow == true
		d.dedupe == {"key": "github:dffd6021bb2bd5b0af676290809ec3a53191dd81c7f70a4b28688a362182986f", "ttl": "24h"}
		d.labels == {"event": "push", "delivery": "github:dffd6021bb2bd5b0af676290809ec3a53191dd81c7f70a4b28688a362182986f"}
	}
}

# Vector github-docs-wrong-secret (expect invalid): the signed request checked with another secret.
test_github_docs_wrong_secret if {
	r := github.verify("github_wrong") with input as {"request": req_github_docs_hello_world}
	r == {"valid": false, "reason": "signature mismatch"}
}

# Vector octokit-webhooks-methods-foo-bar and github-docs-hello-world under a rotation: a list
# of secret names accepts a request signed with either.
test_github_rotation_accepts_either_secret if {
	github.verified(["github", "github_octokit"]) with input as {"request": req_octokit_webhooks_methods_foo_bar}
	github.verified(["github", "github_octokit"]) with input as {"request": req_github_docs_hello_world}
	not github.verified("github") with input as {"request": req_octokit_webhooks_methods_foo_bar}
}

# The same request signed over "{\"foo\":\"bar\"}" (octokit-webhooks-methods-foo-bar).
req_octokit_webhooks_methods_foo_bar := object.union(req_github_docs_hello_world, {
	"body": "{\"foo\":\"bar\"}",
	"headers": {"x-hub-signature-256": "sha256=4864d2759938a15468b5df9ade20bf161da9b4f737ea61794142f3484236bda3"},
})
