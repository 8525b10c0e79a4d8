package webhook

import (
	"errors"
	"fmt"
)

// CheckOptions reports what is wrong with o for scheme before any request is seen: an unknown
// scheme, a negative tolerance, a tolerance for a scheme that signs no time, and for "hmac"
// an unknown algorithm or encoding, a missing signature header, a template that does not
// parse, does not sign {body}, or uses a header it is not given. Verify fails on exactly these too, so a call that passes CheckOptions cannot
// fail on them at request time. Secrets are not looked at.
func CheckOptions(scheme string, o *Options) error {
	known := false
	for _, s := range Schemes() {
		known = known || s == scheme
	}
	if !known {
		return fmt.Errorf("webhook/%s: %w", scheme, errUnknownScheme)
	}
	if err := checkTolerance(scheme, o); err != nil {
		return err
	}
	if scheme == "hmac" {
		if _, err := genericParamsOf(o); err != nil {
			return fmt.Errorf("webhook/%s: %w", scheme, err)
		}
	}
	return nil
}

// errNoTime is a tolerance given to a scheme whose signature covers no time: it would bound
// nothing, and a policy that sets one believes stale deliveries are refused when they are not.
var errNoTime = errors.New("opts.tolerance bounds nothing: the scheme signs no time (a dedupe key stops its replays)")

// checkTolerance refuses a negative tolerance, and any tolerance for a scheme that signs no
// time: github, shopify, twilio, square, pagerduty, and hmac without a timestamp header.
func checkTolerance(scheme string, o *Options) error {
	if o.Tolerance < 0 {
		return fmt.Errorf("webhook/%s: negative tolerance", scheme)
	}
	if o.Tolerance == 0 {
		return nil
	}
	switch scheme {
	case "github", "shopify", "twilio", "square", "pagerduty":
	case "hmac":
		if o.TimestampHeader != "" {
			return nil
		}
	default:
		return nil
	}
	return fmt.Errorf("webhook/%s: %w", scheme, errNoTime)
}
