package server

import (
	"errors"
	"io"
	"net"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/hookwall/hookwall/engine/decisionlog"
	"github.com/hookwall/hookwall/engine/internal/input"
)

// refuseJSON parses the body into input.request.json when the route's policy reads it, and
// answers a body over the JSON limits (413 or 422) before any filter or rule runs. It
// reports whether it answered.
func refuseJSON(ctx *fasthttp.RequestCtx, c *input.Captured, rec *decisionlog.Record) bool {
	err := c.ParseJSON()
	if err == nil {
		return false // before errors.As: its target would escape, an allocation per request
	}
	var je *input.JSONError
	if !errors.As(err, &je) {
		return false
	}
	writeError(ctx, je.Status, je.Reason)
	rec.Outcome, rec.Status, rec.Error = decisionlog.OutcomeError, je.Status, je.Reason
	if je.Status == fasthttp.StatusRequestEntityTooLarge {
		rec.Outcome = decisionlog.OutcomeTooLarge
	}
	return true
}

// Kinds of the errors fasthttp reports for a request it could not read. Its messages
// quote what they refused (a header line, a header or trailer value, the request target
// with its query), so only the kind is ever logged.
const (
	kindBodyTooLarge = "body too large"
	kindHeaderTooBig = "header block too large"
	kindTimeout      = "read timeout"
	kindChunked      = "invalid chunked body"
	kindLength       = "duplicate content-length"
	kindCoding       = "unsupported transfer-encoding"
	kindIncomplete   = "incomplete request"
	kindMalformed    = "malformed request"
)

// wireErrorKind returns the kind of a read error: a fixed text, never a part of the request.
func wireErrorKind(err error) string {
	var small *fasthttp.ErrSmallBuffer
	var chunk fasthttp.ErrBrokenChunk
	var nerr net.Error
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		return kindBodyTooLarge
	case errors.As(err, &small):
		return kindHeaderTooBig
	case errors.As(err, &nerr) && nerr.Timeout():
		return kindTimeout
	case errors.As(err, &chunk):
		return kindChunked
	case errors.Is(err, fasthttp.ErrDuplicateContentLength):
		return kindLength
	case errors.Is(err, fasthttp.ErrUnsupportedTransferEncoding):
		return kindCoding
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return kindIncomplete
	}
	for e := err; e != nil; e = errors.Unwrap(e) {
		if msg := e.Error(); strings.HasPrefix(msg, "tls: ") {
			// A refused handshake: crypto/tls's own text, from before any request byte was
			// read (no error of the HTTP parser starts so).
			return msg
		}
	}
	return kindMalformed
}

// redactArgs returns a logger's arguments with nothing of a request left in them: errors
// become their kind, and strings and byte slices (a request target, a header line) a
// placeholder. Numbers and network addresses stay.
func redactArgs(args []any) []any {
	out := make([]any, len(args))
	for i, a := range args {
		switch a := a.(type) {
		case error:
			out[i] = wireErrorKind(a)
		case net.Addr, net.IP, int, int64, uint32, uint64, float64, time.Duration, bool:
			out[i] = a
		default:
			out[i] = "(redacted)"
		}
	}
	return out
}
