// Command eventallow is a hookwall filter that forwards only webhook event
// types its config allows, read from a request header (X-GitHub-Event by
// default). Anything else, a missing header included, gets 403, and so does a
// request with the header more than once: the upstream would get every copy,
// and the policy would see them joined ("push, delete"). It reports the event
// type to the policy as the label `event`.
//
// Config (the [[filter]] `config` string, JSON):
//
//	{"header": "X-GitHub-Event", "allow": ["push", "pull_request", "ping"]}
//
// `allow` must name at least one type; `header` defaults to X-GitHub-Event
// (Stripe-style senders put the type in the body: use a policy rule there).
//
//go:generate env GOOS=wasip1 GOARCH=wasm go build -trimpath -buildmode=c-shared -o eventallow.wasm .
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/hookwall/hookwall/sdk"
)

// maxEventLen bounds the event type echoed into the label; real types are
// short, and the label ends up in the policy input.
const maxEventLen = 128

type config struct {
	Header string   `json:"header"`
	Allow  []string `json:"allow"`
}

// The parsed config of this instance; written once by Configure.
var (
	header  string
	allowed map[string]bool
)

func init() {
	sdk.Configure(configure)
	sdk.Handle(handle)
}

func main() {}

func configure(raw []byte) error {
	c := config{Header: "X-GitHub-Event"}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return fmt.Errorf("eventallow: config: %w", err)
	}
	if c.Header == "" {
		return errors.New("eventallow: config: empty header")
	}
	if len(c.Allow) == 0 {
		return errors.New("eventallow: config: allow must list at least one event type")
	}
	header, allowed = c.Header, make(map[string]bool, len(c.Allow))
	for _, a := range c.Allow {
		allowed[a] = true
	}
	return nil
}

func handle(req sdk.Request, _ sdk.Response) bool {
	// Exactly one value: with two, the check would pass on one of them and the
	// upstream act on the other.
	vals := req.HeaderValues(header)
	if len(vals) > 1 {
		return sdk.Deny(403, "more than one event type\n")
	}
	var ev string
	if len(vals) == 1 {
		ev = vals[0]
	}
	if ev == "" || len(ev) > maxEventLen {
		return sdk.Deny(403, "event type missing\n")
	}
	sdk.SetLabel("event", ev)
	if !allowed[ev] {
		return sdk.Deny(403, "event type not allowed\n")
	}
	return true
}
