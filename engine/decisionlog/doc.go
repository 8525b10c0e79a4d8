// Package decisionlog writes one JSON line per request: what was decided, why, and how long
// each stage took.
//
// Field names follow OPA's decision log where they map: decision_id, timestamp, path (the
// queried package, "routes/github"), result (the live decision: allow, deny and, when it
// refused, status), labels (the policy's labels rule), metrics (timer_rego_query_eval_ns,
// timer_server_handler_ns), bundles ({"policies": {"revision": …}}) and masked (JSON pointers
// of the masked values). hookwall's own fields are route, policy, revision (the snapshot),
// remote_ip, outcome, status, reasons, error, state_error, delivery_id and attempts (queued
// routes), request (method, path, headers and, when captured, body or, sealed, body_sealed
// and body_key, then body_bytes, and body_truncated when the body was cut to the configured
// size), filters, shadow and timings_us.
//
// Log never blocks and never fails a request: a record is encoded on the caller's goroutine
// and appended to a batch of at most 8192 records, which one writer goroutine takes whole
// and writes in one call, when it passes 256 KiB and at least every FlushInterval; a request
// wakes the writer once a batch, not once a record. When the batch is full the record is
// dropped and counted; when a write fails (a full disk included), its batch is lost and the
// failure counted (Stats).
//
// Header values that carry credentials (Authorization, cookies, every known signature header,
// and any name containing "signature", "secret", "token", "api-key", "apikey", "password" or
// "hmac") are always masked, plus the names in Options.Mask, and a header of any name whose
// value carries one of the record's Sensitive values (the credentials the policy's builtins
// were handed). The body is logged only when the
// caller captured it (Record.CaptureBody, [log] body), truncated to the configured size: in
// the clear, or, with Options.Seal, sealed (body_sealed and body_key; Unseal opens a line).
//
// Reopen supports logrotate's "move the file, then signal" (SIGUSR1 in cmd/hookwall); the
// log does not rotate by itself. Subscribe feeds live views (the admin status page) from the
// writer goroutine, never from the request path.
package decisionlog
