# Ready route policy for Svix webhooks; see docs/providers/svix.md.
#
#	[secrets]
#	svix = {env = "SVIX_WEBHOOK_SECRET"}  # the endpoint's signing secret, whsec_<base64>
#
#	[[route]]
#	name = "svix"
#	path = "/hooks/svix"
#	methods = ["POST"]
#	upstream = "http://127.0.0.1:3000"
#	policy = "routes.providers.svix"
#
# A request is forwarded when its signature verifies with the secret named "svix", once per
# dedupe key, and at most 600 a minute from one address: the decision the library
# data.hookwall.lib.providers.svix describes, for the secret named "svix".
package routes.providers.svix

import data.hookwall.lib.providers.svix as provider

default allow := false

allow if provider.allow("svix")

deny := provider.reasons("svix")

status := provider.status("svix")

# Keyed and labelled on the message id the signature check verified, so only once verified.
dedupe := provider.dedupe_of(provider.verify("svix"))

labels := provider.labels_of(provider.verify("svix"))

rate_limit := provider.rate_limit
