# The reference webhook workload (README "Performance"): a GitHub route with
# signature verification, an event allowlist, a 4-CIDR source allowlist, dedupe on the
# delivery id and a rate limit keyed by source IP.
package bench.reference

events := {"push", "ping", "pull_request", "release"}

# Where GitHub's hooks come from, plus loopback for the benchmark's own clients.
sources := ["140.82.112.0/20", "143.55.64.0/20", "192.30.252.0/22", "127.0.0.0/8"]

sig := hookwall.webhook.verify("github", input.request, {"secret": "github"})

from_source if {
	some cidr in sources
	net.cidr_contains(cidr, input.request.remote_ip)
}

default allow := false

allow if {
	sig.valid
	input.request.headers["x-github-event"] in events
	from_source
}

dedupe := {"key": input.request.headers["x-github-delivery"], "ttl": "1h"}

rate_limit := {"key": input.request.remote_ip, "limit": 100000000, "per": "1m"}
