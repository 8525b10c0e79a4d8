// Package decisionlog writes one JSON line per request: what was decided, why, and how long
// each stage took.
//
// Log never blocks and never fails a request: records are encoded on the caller's goroutine
// into pooled buffers and handed to one writer goroutine through a bounded queue; when the
// queue is full or the disk fails, the record is dropped and counted (Stats). The writer
// batches lines and flushes at least every FlushInterval.
//
// Header values that carry credentials (Authorization, cookies, every known signature header,
// and any name containing "signature", "secret", "token" or "api-key") are masked before
// encoding; the body is never logged.
package decisionlog
