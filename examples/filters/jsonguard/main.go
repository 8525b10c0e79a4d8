// Command jsonguard is a hookwall filter that stops JSON bombs before any
// parser sees them: it streams the request body through a JSON tokenizer
// that holds one byte per nesting level, never the document, and checks
// size, nesting depth and the total number of object keys.
//
//   - body larger than max_bytes (Content-Length or counted): 413
//   - nesting deeper than max_depth, more than max_keys keys, or not JSON: 422
//   - otherwise the request goes on with the label json_ok=true
//   - an empty body goes on with json_ok=false (nothing to parse)
//
// A denial answers with a JSON error body and also sets the label
// json_error (too_big, too_deep, too_many_keys, invalid).
//
// Config (the [[filter]] `config` string, JSON; every field optional):
//
//	{"max_depth": 32, "max_bytes": 1048576, "max_keys": 10000}
//
//go:generate env GOOS=wasip1 GOARCH=wasm go build -trimpath -buildmode=c-shared -o jsonguard.wasm .
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/hookwall/hookwall/sdk"
)

type config struct {
	MaxDepth int   `json:"max_depth"`
	MaxBytes int64 `json:"max_bytes"`
	MaxKeys  int   `json:"max_keys"`
}

var defaults = config{MaxDepth: 32, MaxBytes: 1 << 20, MaxKeys: 10000}

// Upper bounds on the config, so a typo cannot disable the guard.
const (
	limitDepth = 10000
	limitBytes = 1 << 30
	limitKeys  = 10_000_000
)

// chunk is the read size; the body is never held whole in guest memory.
const chunk = 16 << 10

// Per-instance state: the scanner and read buffer are reused by every
// request the instance serves.
var (
	scan *scanner
	buf  = make([]byte, chunk)
)

func init() {
	sdk.Configure(configure)
	sdk.Handle(handle)
}

func main() {}

func configure(raw []byte) error {
	c := defaults
	if len(bytes.TrimSpace(raw)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			return fmt.Errorf("jsonguard: config: %w", err)
		}
	}
	if c.MaxDepth < 1 || c.MaxDepth > limitDepth || c.MaxBytes < 1 || c.MaxBytes > limitBytes || c.MaxKeys < 0 || c.MaxKeys > limitKeys {
		return fmt.Errorf("jsonguard: config: limits out of range (1 ≤ max_depth ≤ %d, 1 ≤ max_bytes ≤ %d, 0 ≤ max_keys ≤ %d)", limitDepth, limitBytes, limitKeys)
	}
	scan = newScanner(c.MaxDepth, c.MaxKeys, c.MaxBytes)
	return nil
}

func handle(req sdk.Request, resp sdk.Response) bool {
	scan.reset()
	// A declared length over the limit is refused without reading a byte.
	if cl := req.Header("Content-Length"); cl != "" {
		if n, err := strconv.ParseInt(cl, 10, 64); err == nil && n > scan.maxBytes {
			return deny(resp, resultTooBig)
		}
	}
	for {
		n, eof := req.ReadBody(buf)
		if r := scan.write(buf[:n]); r != resultOK {
			return deny(resp, r)
		}
		if eof {
			break
		}
	}
	if scan.n == 0 {
		sdk.SetLabel("json_ok", "false")
		return true
	}
	if r := scan.close(); r != resultOK {
		return deny(resp, r)
	}
	sdk.SetLabel("json_ok", "true")
	return true
}

func deny(resp sdk.Response, r result) bool {
	status, msg := 422, `{"error":"body is not valid JSON"}`
	switch r {
	case resultTooBig:
		status, msg = 413, `{"error":"body too large"}`
	case resultTooDeep:
		msg = `{"error":"JSON nested too deeply"}`
	case resultTooManyKeys:
		msg = `{"error":"JSON has too many keys"}`
	}
	sdk.SetLabel("json_ok", "false")
	sdk.SetLabel("json_error", r.String())
	resp.SetStatusCode(status)
	resp.SetHeader("Content-Type", "application/json")
	resp.SetBody([]byte(msg))
	return false
}
