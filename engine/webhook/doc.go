// Package webhook verifies the signatures that webhook providers put on their
// requests. It is pure Go over the standard library: the Rego builtin
// hookwall.webhook.verify is a thin adapter over [Verify].
//
// # Contract
//
// [Verify] checks one request under one named scheme (see [Schemes]):
//
//   - The signature is checked over the exact raw bytes in [Request].Body; nothing
//     is normalised, re-encoded or trimmed.
//   - [Options].Secrets is a rotation set: the request is valid when any secret
//     matches. Secrets are raw config values; each scheme decodes its own format
//     (Standard Webhooks "whsec_<base64>", SendGrid base64 DER or PEM public key,
//     Discord hex public key; every other scheme uses the bytes as the HMAC key).
//   - Every scheme with a timestamp rejects timestamps further than the tolerance
//     from [Options].Now in either direction (5m by default, Paddle 5s).
//   - URL-signed schemes (Twilio, Square, and {url} in the generic template) sign
//     [Options].URL followed by [Request].RequestURI; without URL the request's own
//     scheme and Host are used, and a Host that is not host[:port] is malformed.
//   - A request that fails verification is a [Result] with Valid false and a Reason,
//     never an error. The Reason starts with one of the stable prefixes
//     "no secret configured", "missing header ", "malformed ",
//     "timestamp outside tolerance" or "signature mismatch".
//   - An unknown scheme or unusable [Options] (undecodable key, bad algorithm,
//     template or URL, a tolerance for a scheme that signs no time, an option the
//     scheme never reads) is an error prefixed "webhook/<scheme>: ".
//   - Neither reasons nor errors ever contain secret bytes or signature values.
//   - Digest comparisons are constant-time (crypto/hmac.Equal).
//
// Verify does not retain or modify the request, the options or any slice in them,
// and is safe for concurrent use. The package holds no mutable state.
//
// Replay protection beyond the timestamp window (a delivery seen twice within the
// window) is not this package's job: the gateway's dedupe obligation covers it.
package webhook
