package webhook

import (
	"errors"
	"fmt"
)

// CheckOptions reports what is wrong with o for scheme before any request is seen: an unknown
// scheme, a negative tolerance, a tolerance for a scheme that signs no time, an option the
// scheme never reads ("hmac"'s own for a named scheme, a url for a scheme that signs none),
// and for "hmac" an unknown algorithm or encoding, a missing signature header, a template
// that does not parse, does not sign {body}, does not sign what it is given a url or a
// timestamp or id header for, or uses a header it is not given. Verify fails on exactly
// these too, so a call that passes CheckOptions cannot fail on them at request time. Secrets
// are not looked at.
func CheckOptions(scheme string, o *Options) error {
	known := false
	for _, s := range Schemes() {
		known = known || s == scheme
	}
	if !known {
		return fmt.Errorf("webhook/%s: %w", scheme, errUnknownScheme)
	}
	if err := checkSchemeOptions(scheme, o); err != nil {
		return err
	}
	if scheme == "hmac" {
		if _, err := genericParamsOf(o); err != nil {
			return fmt.Errorf("webhook/%s: %w", scheme, err)
		}
	}
	return nil
}

// checkSchemeOptions is what Verify and CheckOptions both check of o for a known scheme:
// the tolerance, and that the scheme reads every option given.
func checkSchemeOptions(scheme string, o *Options) error {
	if err := checkTolerance(scheme, o); err != nil {
		return err
	}
	return checkRead(scheme, o)
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

// errNotRead is an option given to a scheme that never reads it.
var errNotRead = errors.New("not read by this scheme")

// checkRead refuses an option the scheme never reads: a policy that sets one believes it has
// an effect (its own signature header read, its public URL signed) that it has not. A named
// scheme reads its provider's headers and format, never "hmac"'s options but for standard's
// header-name prefix; only twilio and square sign a URL among them ("hmac" does when its
// template has {url}: genericParamsOf).
func checkRead(scheme string, o *Options) error {
	if scheme == "hmac" {
		return nil
	}
	for _, f := range [...]struct{ name, v string }{
		{"algorithm", o.Algorithm}, {"header", o.SigHeader}, {"prefix", o.Prefix}, {"encoding", o.Encoding},
		{"template", o.Template}, {"timestamp_header", o.TimestampHeader}, {"id_header", o.IDHeader},
	} {
		if f.v != "" && !(f.name == "prefix" && scheme == "standard") {
			return fmt.Errorf("webhook/%s: opts.%s is %w: only \"hmac\" reads it (%s reads what its provider sends)", scheme, f.name, errNotRead, scheme)
		}
	}
	if o.URL != "" && scheme != "twilio" && scheme != "square" {
		return fmt.Errorf("webhook/%s: opts.url is %w: it signs no URL (twilio and square do)", scheme, errNotRead)
	}
	return nil
}
