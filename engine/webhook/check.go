package webhook

import "fmt"

// CheckOptions reports what is wrong with o for scheme before any request is seen: an unknown
// scheme, a negative tolerance, and for "hmac" an unknown algorithm or encoding, a missing
// signature header, a template that does not parse, does not sign {body}, or uses a header it
// is not given. Verify fails on exactly these too, so a call that passes CheckOptions cannot
// fail on them at request time. Secrets are not looked at.
func CheckOptions(scheme string, o *Options) error {
	known := false
	for _, s := range Schemes() {
		known = known || s == scheme
	}
	if !known {
		return fmt.Errorf("webhook/%s: %w", scheme, errUnknownScheme)
	}
	if o.Tolerance < 0 {
		return fmt.Errorf("webhook/%s: negative tolerance", scheme)
	}
	if scheme == "hmac" {
		if _, err := genericParamsOf(o); err != nil {
			return fmt.Errorf("webhook/%s: %w", scheme, err)
		}
	}
	return nil
}
