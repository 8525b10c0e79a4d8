// Package input builds the Rego input document (design §3.2) straight from a fasthttp request
// as an ast.Value, with no JSON round trip and no intermediate Go maps.
//
// The document is built from the request as received, before any filter runs, so
// input.request.body is the exact raw bytes that signatures cover. Every string in it is a
// copy: the value stays valid after the fasthttp handler returns and may be logged or kept.
package input
