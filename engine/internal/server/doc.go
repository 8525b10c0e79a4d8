// Package server is the public listener: it routes each request, runs the route's pipeline
// (filters → policy → obligations → upstream → filters' response phase) on the live snapshot,
// and writes one decision-log record.
//
// The pipeline is one list of stages (stages.go), each a func(*Server, *exchange) that reads
// and writes the request's exchange and says whether it ended the request. The order is
// fixed in code; configuration only picks what runs inside a stage. A dry run (Evaluate) runs
// the same list and stops before the decision is acted on. Every failure is answered, never
// propagated: a panic in a request becomes a 500 and a log line with its stack and stage,
// and the process lives. Nothing that refers to fasthttp's request buffers outlives the
// handler: the Rego input and the log record hold copies.
package server
