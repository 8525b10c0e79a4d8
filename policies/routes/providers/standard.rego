# Ready route policy for Standard Webhooks webhooks; see docs/providers/standard.md.
#
#	[secrets]
#	standard = {env = "STANDARD_WEBHOOK_SECRET"}  # the endpoint's secret, whsec_<base64>
#
#	[[route]]
#	name = "standard"
#	path = "/hooks/standard"
#	methods = ["POST"]
#	upstream = "http://127.0.0.1:3000"
#	policy = "routes.providers.standard"
#
# A request is forwarded when its signature verifies with the secret named "standard", once per
# dedupe key, and at most 600 a minute from one address: the decision the library
# data.hookwall.lib.providers.standard describes, for the secret named "standard".
package routes.providers.standard

import data.hookwall.lib.providers.standard as provider

default allow := false

allow if provider.allow("standard")

deny := provider.reasons("standard")

status := provider.status("standard")

# Keyed and labelled on the message id the signature check verified, so only once verified.
dedupe := provider.dedupe_of(provider.verify("standard"))

labels := provider.labels_of(provider.verify("standard"))

rate_limit := provider.rate_limit
