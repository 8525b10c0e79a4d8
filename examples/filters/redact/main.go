// Command redact is a hookwall filter that masks personal data in the body
// forwarded upstream: e-mail addresses and payment card numbers. The policy
// still sees the body as received (signatures cover those bytes); only the
// upstream gets the redacted copy. It reports the number of masked items as
// the label `redacted`.
//
//	{"email":"alice@example.com","card":"4111 1111 1111 1111"}
//	→ {"email":"*****@*******.com","card":"**** **** **** 1111"}
//
// Masks keep the length, so the body stays valid JSON and needs no copy.
// A JSON body is one with a JSON Content-Type, or any body that is one valid
// JSON text whatever its Content-Type (senders label JSON text/plain, or not
// at all): in it only string literals are examined, so a number is never
// masked into something that is not JSON, and text is matched between JSON
// escapes, never across them. Other bodies are scanned as plain text
// (percent-encoded forms are not decoded); they are not JSON to begin with.
//
// An upstream that re-verifies the sender's signature will reject a
// redacted body: use this filter where hookwall is the verifier.
//
// Config (the [[filter]] `config` string, JSON; every field optional):
//
//	{"emails": true, "cards": true}
//
//go:generate env GOOS=wasip1 GOARCH=wasm go build -trimpath -buildmode=c-shared -o redact.wasm .
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/hookwall/hookwall/sdk"
)

type config struct {
	Emails *bool `json:"emails"`
	Cards  *bool `json:"cards"`
}

// The instance's redactor; written once by Configure.
var red redactor

func init() {
	sdk.Configure(configure)
	sdk.Handle(handle)
}

func main() {}

func configure(raw []byte) error {
	var c config
	if len(bytes.TrimSpace(raw)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			return fmt.Errorf("redact: config: %w", err)
		}
	}
	red = redactor{emails: c.Emails == nil || *c.Emails, cards: c.Cards == nil || *c.Cards}
	if !red.emails && !red.cards {
		return errors.New("redact: config: nothing to redact (emails and cards both off)")
	}
	return nil
}

func handle(req sdk.Request, _ sdk.Response) bool {
	body := req.Body()
	var n int
	if isJSON(req.Header("Content-Type")) || json.Valid(body) {
		n = red.json(body)
	} else {
		n = red.text(body)
	}
	if n > 0 {
		req.SetBody(body) // the masked buffer, edited in place
	}
	sdk.SetLabel("redacted", strconv.Itoa(n))
	return true
}

// isJSON matches application/json and the +json types, with parameters.
func isJSON(ct string) bool {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = strings.ToLower(strings.TrimSpace(ct))
	return ct == "application/json" || strings.HasSuffix(ct, "+json")
}
