# Ready route policy for Zoom webhooks; see docs/providers/zoom.md.
#
#	[secrets]
#	zoom = {env = "ZOOM_WEBHOOK_SECRET"}  # the app's secret token
#
#	[[route]]
#	name = "zoom"
#	path = "/hooks/zoom"
#	methods = ["POST"]
#	upstream = "http://127.0.0.1:3000"
#	policy = "routes.providers.zoom"
#
# A request is forwarded when its signature verifies with the secret named "zoom", once per
# dedupe key, and at most 600 a minute from one address: the decision the library
# data.hookwall.lib.providers.zoom describes, for the secret named "zoom".
package routes.providers.zoom

import data.hookwall.lib.providers.zoom as provider

default allow := false

allow if provider.allow("zoom")

deny := provider.reasons("zoom")

status := provider.status("zoom")

# Keyed and labelled once verified: a key from the body costs a JSON parse, spent on genuine
# requests only.
dedupe := provider.dedupe if provider.verified("zoom")

labels := provider.labels if provider.verified("zoom")

rate_limit := provider.rate_limit
