// Package server is the public listener: it routes each request, runs the route's pipeline
// (filters → policy → obligations → upstream → filters' response phase) on the live snapshot,
// and writes one decision-log record.
//
// The stage order is fixed in code; configuration only picks what runs inside a
// stage. Every failure is answered, never propagated: a panic in a request becomes a 500 and
// a log line with its stack, and the process lives. Nothing that refers to fasthttp's request
// buffers outlives the handler: the Rego input and the log record hold copies.
package server
