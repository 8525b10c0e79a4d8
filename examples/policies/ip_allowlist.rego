# Accept webhooks only from the provider's published sender addresses.
#
# The ranges are policy data: policies/ranges/data.json (data.ranges), dated in its "updated"
# field and refreshed with `hookwall ranges update`. input.request.remote_ip is the TCP peer,
# or, when the peer is listed in [server] trusted_proxies, the right-most X-Forwarded-For
# address that is not itself trusted: behind a load balancer, list the balancer there, or
# every request seems to come from it. An IP allowlist narrows who can reach the route; it is
# no substitute for the signature check, which proves who wrote the body.
package examples.ip_allowlist

default allow := false

allow if from_github

allow if from_stripe

deny contains sprintf("address %s is not a published GitHub or Stripe webhook sender", [input.request.remote_ip]) if {
	not from_github
	not from_stripe
}

from_github if {
	some cidr in data.ranges.github.hooks
	net.cidr_contains(cidr, input.request.remote_ip)
}

from_stripe if {
	some cidr in data.ranges.stripe.webhooks
	net.cidr_contains(cidr, input.request.remote_ip)
}

labels := {"sender": "github"} if from_github

labels := {"sender": "stripe"} if from_stripe
