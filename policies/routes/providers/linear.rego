# Ready route policy for Linear webhooks; see docs/providers/linear.md.
#
#	[secrets]
#	linear = {env = "LINEAR_WEBHOOK_SECRET"}  # the webhook's signing secret
#
#	[[route]]
#	name = "linear"
#	path = "/hooks/linear"
#	methods = ["POST"]
#	upstream = "http://127.0.0.1:3000"
#	policy = "routes.providers.linear"
#
# A request is forwarded when its signature verifies with the secret named "linear", once per
# dedupe key, and at most 600 a minute from one address: the decision the library
# data.hookwall.lib.providers.linear describes, for the secret named "linear".
package routes.providers.linear

import data.hookwall.lib.providers.linear as provider

default allow := false

allow if provider.allow("linear")

deny := provider.reasons("linear")

status := provider.status("linear")

# Keyed and labelled once verified: a key from the body costs a JSON parse, spent on genuine
# requests only.
dedupe := provider.dedupe if provider.verified("linear")

labels := provider.labels if provider.verified("linear")

rate_limit := provider.rate_limit
