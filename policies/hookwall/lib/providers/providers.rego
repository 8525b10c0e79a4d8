# Package hookwall.lib.providers is the provider library: what the provider packages share. Each provider has its own
# package, data.hookwall.lib.providers.<name> (github, stripe, slack, shopify, twilio, standard,
# svix, square, paddle, pagerduty, sendgrid, discord, zoom, linear), with the same helpers:
#
#	verify(secret)             hookwall.webhook.verify's {"valid", "reason"} for input.request
#	verify_with(secret, opts)  the same with more builtin options, e.g. {"tolerance": "1m"}
#	verified(secret)           true when the signature verifies, else false
#	reasons(secret)            deny reasons: the failed check, a method the provider never uses
#	allow(secret)              verified and no reason: `allow if stripe.allow("stripe")`
#	status(secret)             401 for a bad signature, 405 for a wrong method, else undefined
#	dedupe_key                 "<provider>:<id or sha256>", from what the provider signs only
#	dedupe                     {"key": dedupe_key, "ttl": …}, ready for a route's dedupe rule
#	event                      the event name, where the provider sends one
#	labels                     {"event": event, "delivery": dedupe_key}, the keys defined
#	rate_limit                 600 a minute from one client address, keyed "<provider>:<ip>"
#
# standard and svix also have dedupe_key_of(result), dedupe_of(result) and labels_of(result),
# for a verify or verify_with result: keyed on the message id the builtin says the signature
# covers, whatever header prefix verify_with named. Their dedupe_key reads webhook-id and
# svix-id, the headers verify reads without a prefix.
#
# The ready route policies (data.routes.providers.<name>, policies/routes/providers/) are these
# rules for the secret named after the provider, each a line; a route policy of your own
# imports the provider's package and picks what it needs.
#
# secret is a [secrets] name, or a list of names during a rotation (any may match); its value
# never enters Rego. OPA caches a function's result per argument within one evaluation, so
# allow, deny and status calling verify("stripe") check the signature once.
#
# Keys read from the body use the raw body (json.unmarshal) instead of input.request.json:
# a reference to input.request.json makes the gateway parse the body of every request on
# every route whose package reads it, directly or through a package it uses. Route policies ask for body keys only once the signature verified.
package hookwall.lib.providers

# verify(scheme, secret, opts) checks input.request with opts plus the secret name(s).
verify(scheme, secret, opts) := hookwall.webhook.verify(scheme, input.request, object.union(opts, {"secret": secret}))

# reasons(result, methods) are the deny reasons for a verify result and the accepted methods.
reasons(result, methods) := {sprintf("signature: %s", [result.reason]) | not result.valid} | {sprintf("method %s is not accepted", [input.request.method]) | not input.request.method in methods}

# status(result, methods): a bad signature is an authentication failure (401); a signed
# request replayed with another method is refused as such (405).
status(result, methods) := 401 if {
	not result.valid
} else := 405 if {
	not input.request.method in methods
}

# key(provider, id) namespaces a natural id among the keys of one route (the gateway puts
# each route's keys apart).
key(provider, id) := concat(":", [provider, id]) if {
	is_string(id)
	id != ""
}

# body is the request body parsed as JSON; undefined when it is not JSON.
body := json.unmarshal(input.request.body) if json.is_valid(input.request.body)

# body_object is the body when it is a JSON object, else {}.
body_object := b if {
	b := body
	is_object(b)
} else := {}

# id_key(provider, path) keys a delivery on the id at path in the body, which the provider signs,
# or on the body's digest when the body has no such string: every verified delivery has a key,
# and every key is signed.
id_key(provider, path) := key(provider, id) if {
	id := object.get(body_object, path, "")
	is_string(id)
	id != ""
} else := key(provider, body_sha256)

# body_sha256 keys providers that sign the body but no id: a replay resends the same bytes,
# whatever unsigned id it carries, and so does a retry.
body_sha256 := crypto.sha256(input.request.body)

# uri_body_sha256 keys providers that sign the URL and the body (Twilio): the path and query
# as received, a newline (which neither holds raw), and the body.
uri_body_sha256 := crypto.sha256(concat("\n", [input.request.uri, input.request.body]))

# public_url is the scheme://host[:port] that URL-signing providers (Twilio, Square) signed:
# data.hookwall.config.public_url behind TLS termination or a proxy, else the request's own.
public_url := u if {
	u := data.hookwall.config.public_url
	is_string(u)
	u != ""
} else := concat("", [input.request.scheme, "://", input.request.host])

# rate_limit(provider) bounds one client address to 600 requests a minute on a provider's
# routes; a provider's retries and bursts stay well below it.
rate_limit(provider) := {"key": concat(":", [provider, input.request.remote_ip]), "limit": 600, "per": "1m"}
