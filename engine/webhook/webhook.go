package webhook

import (
	"errors"
	"fmt"
	"time"
)

// Header reads one request header by lower-case name; "" when absent. Repeated
// values are joined with ", ".
type Header interface{ Get(lowerName string) string }

// Request is the request as received. Body is the exact raw bytes. Verify only
// reads its fields and keeps none of them.
type Request struct {
	Method     string
	Scheme     string // "http" | "https" as received by the gateway
	Host       string // Host header as received
	RequestURI string // path + optional "?" + raw query, exactly as received
	Header     Header
	Body       []byte
}

// Options configures one verification. The zero value of every field except
// Secrets has a usable default.
type Options struct {
	// Secrets are the candidate keys (rotation: any may match), as raw config
	// values; the scheme decodes them. None configured gives the Result reason
	// "no secret configured".
	Secrets [][]byte
	// Tolerance bounds the distance between a signed timestamp and Now, in both
	// directions. 0 means the scheme's default: 5m, Paddle 5s. Negative is an error.
	Tolerance time.Duration
	// Now is the verification time; zero means time.Now().
	Now time.Time
	// URL is the public base URL "scheme://host[:port]" the provider signed
	// (Twilio, Square, generic {url}); the path and query come from
	// Request.RequestURI. Empty means Request.Scheme + "://" + Request.Host.
	URL string

	// Algorithm is the generic "hmac" digest: sha1, sha256 (default) or sha512.
	Algorithm string
	// SigHeader is the lower-case header carrying the signature ("hmac", required).
	SigHeader string
	// Prefix is stripped from the signature header value ("hmac", e.g. "sha256=").
	// For "standard" a non-empty Prefix replaces the header-name prefix
	// ("webhook-" or "svix-", auto-detected otherwise).
	Prefix string
	// Encoding of the signature: hex (default) or base64 ("hmac").
	Encoding string
	// Template is the signed string ("hmac"), with placeholders {timestamp},
	// {id}, {body} and {url}; default "{body}".
	Template string
	// TimestampHeader and IDHeader name the headers that fill {timestamp} and
	// {id} ("hmac"); each is refused unless its placeholder is in the Template
	// (a header that is required and never signed proves nothing). A
	// TimestampHeader is checked against Tolerance (Unix seconds).
	TimestampHeader, IDHeader string

	// MACs, when set, keeps keyed HMAC states for the next verification with the same key.
	MACs *MACs
}

// Result is the outcome for a well-formed call. Reason is empty when Valid.
type Result struct {
	Valid  bool
	Reason string
	// ID is the message id the signature covers, set only when Valid and only by the schemes
	// that sign one in a header ("standard": the id header of the prefix it verified). A
	// dedupe key taken from here is the id that was verified: a header read by the policy
	// itself may be another one, which the sender did not sign.
	ID string
}

// errUnknownScheme is wrapped by the error Verify returns for a scheme name
// that Schemes does not list.
var errUnknownScheme = errors.New("unknown scheme")

// Stable reason prefixes; a reason may add detail after them.
const (
	reasonNoSecret = "no secret configured"
	reasonStale    = "timestamp outside tolerance"
	reasonMismatch = "signature mismatch"
)

const defaultTolerance = 5 * time.Minute

// Schemes returns the scheme names Verify accepts, sorted. The caller owns the
// returned slice.
func Schemes() []string {
	return []string{
		"discord", "github", "hmac", "linear", "paddle", "pagerduty", "sendgrid",
		"shopify", "slack", "square", "standard", "stripe", "twilio", "zoom",
	}
}

// Verify checks r under scheme. An unknown scheme or unusable Options is an
// error (the caller turns it into a Rego error, hence a 500); a request that
// fails any check is Result{Valid: false, Reason: …}, never an error.
func Verify(scheme string, r *Request, o *Options) (Result, error) {
	if r == nil || o == nil {
		return Result{}, fmt.Errorf("webhook/%s: nil request or options", scheme)
	}
	if err := checkSchemeOptions(scheme, o); err != nil {
		return Result{}, err
	}
	v := verifier{r: r, o: o, h: r.Header}
	if v.h == nil {
		v.h = noHeader{}
	}
	var (
		res Result
		err error
	)
	switch scheme {
	case "github":
		res, err = v.github()
	case "stripe":
		res, err = v.stripe()
	case "slack":
		res, err = v.slackLike(hdrSlackSig, hdrSlackTS)
	case "zoom":
		res, err = v.slackLike(hdrZoomSig, hdrZoomTS)
	case "shopify":
		res, err = v.shopify()
	case "twilio":
		res, err = v.twilio()
	case "standard":
		res, err = v.standard()
	case "square":
		res, err = v.square()
	case "paddle":
		res, err = v.paddle()
	case "pagerduty":
		res, err = v.pagerduty()
	case "sendgrid":
		res, err = v.sendgrid()
	case "discord":
		res, err = v.discord()
	case "linear":
		res, err = v.linear()
	case "hmac":
		res, err = v.generic()
	default:
		return Result{}, fmt.Errorf("webhook/%s: %w", scheme, errUnknownScheme)
	}
	if err != nil {
		return Result{}, fmt.Errorf("webhook/%s: %w", scheme, err)
	}
	return res, nil
}

// verifier carries one call's inputs through the scheme methods.
type verifier struct {
	r *Request
	o *Options
	h Header
}

type noHeader struct{}

func (noHeader) Get(string) string { return "" }

func invalid(reason string) Result { return Result{Reason: reason} }

func validResult() Result { return Result{Valid: true} }

// now is the verification instant.
func (v *verifier) now() time.Time {
	if v.o.Now.IsZero() {
		return time.Now()
	}
	return v.o.Now
}

// tolerance is Options.Tolerance or the scheme default def.
func (v *verifier) tolerance(def time.Duration) time.Duration {
	if v.o.Tolerance == 0 {
		return def
	}
	return v.o.Tolerance
}

// fresh reports whether t lies within the tolerance of now, either side.
func (v *verifier) fresh(t time.Time, def time.Duration) bool {
	d := v.now().Sub(t)
	tol := v.tolerance(def)
	return d <= tol && d >= -tol
}
