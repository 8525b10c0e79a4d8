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
#	policy = "providers.zoom"
#
# A request is forwarded when its signature verifies with the secret named "zoom", once per
# natural delivery key, and at most 600 a minute from one address.
package providers.zoom

import data.hookwall.providers.zoom

default allow := false

allow if zoom.allow("zoom")

deny contains reason if some reason in zoom.reasons("zoom")

status := zoom.status("zoom")

# Keyed once verified: a key from the body costs a JSON parse, spent on genuine requests only.
dedupe := zoom.dedupe if zoom.verified("zoom")

rate_limit := {"key": concat(":", ["zoom", input.request.remote_ip]), "limit": 600, "per": "1m"}

labels["event"] := zoom.event if zoom.verified("zoom")

labels["delivery"] := zoom.dedupe_key if zoom.verified("zoom")
