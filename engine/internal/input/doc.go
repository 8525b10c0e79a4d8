// Package input builds the Rego input document straight from a fasthttp request
// as an ast.Value, with no JSON round trip and no intermediate Go maps.
//
// input.request is captured when the request arrives, before any filter runs, so
// input.request.body is the exact raw bytes that signatures cover. A capture (Captured)
// copies the request's fields flat into its Builder's arena; the OPA object is built from
// it only when asked for, and single fields and headers can be read without it. Every
// string is a copy: it stays valid when fasthttp reuses the request's buffers, until the
// Builder's next Reset.
//
// The capture is linear in the header block: repeated names are joined once, after it, and
// past 16 names they are found through a hash index. input.request.json is parsed from
// the body straight into the Rego value, within limits (JSONLimits, and a heap budget
// relative to the body); a body over them is a *JSONError carrying the status to refuse it
// with (Captured.ParseJSON).
//
// input.request.path is the canonical path the gateway routed on (Meta.Path; see
// engine/internal/urlpath), input.request.uri the request-target exactly as received.
package input
