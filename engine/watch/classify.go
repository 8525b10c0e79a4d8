package watch

import (
	"strings"

	"github.com/hookwall/hookwall/engine/decisionlog"
)

// Class is a reason class of an outcome.
type Class uint8

// Classes, in the order a request refused for several reasons is classed (the first that
// applies). ClassAllowed counts forwarded requests.
const (
	ClassSignature Class = iota
	ClassTimestamp
	ClassReplay
	ClassRateLimit
	ClassToken
	ClassPolicy
	ClassMalformed // refused by the gateway for what the client sent, before any rule
	ClassAllowed
	numClasses
)

// refusals is the number of refusal classes (every class but ClassAllowed), in the order of
// engine/config's watch classes ([watch.class.<name>]).
const refusals = int(ClassAllowed)

var classNames = [numClasses]string{"signature", "timestamp", "replay", "rate_limit", "token", "policy", "malformed", "allowed"}

// String returns the class's name as in [watch.class.<name>] and the anomaly's kind.
func (c Class) String() string {
	if c < numClasses {
		return classNames[c]
	}
	return "unknown"
}

// classify returns the class of a decided request from its decision-log outcome, status
// and deny reasons. ok is false for outcomes that say nothing about the source (the
// gateway's own errors, no route, a request already refused as blocked). It does not
// allocate.
func classify(outcome decisionlog.Outcome, status int, reasons []string) (c Class, ok bool) {
	switch outcome {
	case decisionlog.OutcomeTooLarge:
		return ClassMalformed, true
	case decisionlog.OutcomeError:
		// A 4xx error is the request's own (framing, JSON the gateway refuses, an encoded
		// body); a 5xx is the gateway's or its dependencies'.
		return ClassMalformed, status >= 400 && status < 500
	case decisionlog.OutcomeAllowed:
		return ClassAllowed, true
	case decisionlog.OutcomeRateLimited:
		return ClassRateLimit, true
	case decisionlog.OutcomeDuplicate, decisionlog.OutcomeInFlight:
		return ClassReplay, true
	case decisionlog.OutcomeFiltered:
		return ClassPolicy, true
	case decisionlog.OutcomeDenied:
		c = ClassPolicy
		for _, r := range reasons {
			c = min(c, reasonClass(r))
		}
		return c, true
	}
	return 0, false
}

// reasonClass reads a deny reason's prefix as the ready policies write them: "signature: …"
// (from hookwall.webhook.verify, whose stale-timestamp reasons start "timestamp"),
// "timestamp: …", "replay: …", "rate limit…", and token or API-key reasons.
func reasonClass(r string) Class {
	switch {
	case strings.HasPrefix(r, "signature"):
		rest := strings.TrimLeft(strings.TrimPrefix(r, "signature"), ": ")
		if strings.HasPrefix(rest, "timestamp") || strings.HasPrefix(rest, "malformed timestamp") {
			return ClassTimestamp
		}
		return ClassSignature
	case strings.HasPrefix(r, "timestamp"):
		return ClassTimestamp
	case strings.HasPrefix(r, "replay"), strings.HasPrefix(r, "duplicate"):
		return ClassReplay
	case strings.HasPrefix(r, "rate limit"), strings.HasPrefix(r, "rate_limit"):
		return ClassRateLimit
	case strings.HasPrefix(r, "token"), strings.HasPrefix(r, "oauth"), strings.HasPrefix(r, "jwt"),
		strings.Contains(r, " token"), strings.Contains(r, "API key"), strings.Contains(r, "api key"):
		return ClassToken
	}
	return ClassPolicy
}
