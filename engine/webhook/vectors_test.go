package webhook

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
)

// vectorsPath is the repository's copy of the published vectors.
const vectorsPath = "testdata/webhook-vectors.json"

// vector mirrors one entry of webhook-vectors.json. Decoding rejects unknown
// fields, so a key added to the file fails the test until it is looked at.
type vector struct {
	Provider    string            `json:"provider"`
	Name        string            `json:"name"`
	Source      string            `json:"source"`
	Published   bool              `json:"published"`
	Expect      string            `json:"expect"`
	Reason      string            `json:"reason"`
	Note        string            `json:"note"`
	Secret      *string           `json:"secret"`
	PublicKey   *string           `json:"public_key"`
	KeyFormat   string            `json:"key_format"`
	PrivateSeed string            `json:"private_seed"`
	Body        string            `json:"body"`
	Now         *int64            `json:"now"`
	ToleranceS  *int64            `json:"tolerance_s"`
	URL         string            `json:"url"`
	Headers     map[string]string `json:"headers"`
}

func loadVectors(t testing.TB) []vector {
	t.Helper()
	raw, err := os.ReadFile(vectorsPath)
	if err != nil {
		t.Fatalf("test vectors: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var vs []vector
	if err := dec.Decode(&vs); err != nil {
		t.Fatalf("test vectors: %v", err)
	}
	return vs
}

// vectorScheme maps a vector's provider to the scheme that verifies it.
func vectorScheme(provider string) string {
	switch provider {
	case "standard-webhooks", "svix":
		return "standard"
	case "ed25519-rfc8032":
		return "discord"
	}
	return provider
}

// wantReason is the reason prefix each invalid vector must produce, so a
// vector cannot pass for the wrong reason (a stale vector failing on its
// signature would hide a broken tolerance check).
var wantReason = map[string]string{
	"github-docs-tampered-body":          reasonMismatch,
	"github-docs-wrong-secret":           reasonMismatch,
	"stripe-dotnet-outdated-timestamp":   reasonStale,
	"stripe-dotnet-tampered-body":        reasonMismatch,
	"stripe-v0-only-must-fail":           reasonMismatch + " (no v1 signature)",
	"slack-tampered-body":                reasonMismatch,
	"slack-expired":                      reasonStale,
	"go-shopify-empty-body":              reasonMismatch,
	"go-shopify-unquoted-body":           reasonMismatch,
	"twilio-tampered-param":              reasonMismatch,
	"twilio-wrong-url":                   reasonMismatch,
	"standard-webhooks-tampered-sig":     reasonMismatch,
	"standard-webhooks-future-timestamp": reasonStale,
	"standard-webhooks-v2-prefix":        reasonMismatch + " (no v1 signature)",
	"svix-tampered-body":                 reasonMismatch,
	"square-sdk-url-mismatch":            reasonMismatch,
	"square-sdk-wrong-key":               reasonMismatch,
	"paddle-sdk-extra-spaces":            reasonMismatch,
	"paddle-sdk-too-late":                reasonStale,
	"go-pagerduty-mismatch":              reasonMismatch,
	"sendgrid-eventwebhook-no-crlf":      reasonMismatch,
	"discord-ed25519-tampered":           reasonMismatch,
	"zoom-self-generated-stale":          reasonStale,
	"linear-self-generated-stale":        reasonStale,
}

// splitURL splits a full URL into the base Options.URL takes and the request URI.
func splitURL(t *testing.T, full string) (scheme, host, base, uri string) {
	t.Helper()
	scheme, rest, ok := strings.Cut(full, "://")
	if !ok {
		t.Fatalf("vector url %q has no scheme", full)
	}
	i := strings.IndexAny(rest, "/?")
	if i < 0 {
		return scheme, rest, full, "/"
	}
	return scheme, rest[:i], scheme + "://" + rest[:i], rest[i:]
}

func TestVectors(t *testing.T) {
	vs := loadVectors(t)
	if len(vs) != 46 {
		t.Fatalf("got %d vectors, the brief promises 46", len(vs))
	}
	names := map[string]bool{}
	providers := map[string]bool{}
	// One pool of keyed HMAC states across every vector, each verified twice with it: a
	// state reused after another verification (valid or not) must decide the same.
	pooled := &MACs{}
	for _, vec := range vs {
		t.Run(vec.Name, func(t *testing.T) {
			if names[vec.Name] {
				t.Fatalf("duplicate vector name")
			}
			names[vec.Name] = true
			providers[vectorScheme(vec.Provider)] = true
			checkVectorMeta(t, vec)

			var secret string
			switch {
			case vec.Secret != nil:
				secret = *vec.Secret
			case vec.PublicKey != nil:
				secret = *vec.PublicKey
			default:
				t.Fatal("vector has neither secret nor public_key")
			}
			hdr := header{}
			for k, v := range vec.Headers {
				hdr[strings.ToLower(k)] = v
			}
			opts := &Options{Secrets: [][]byte{[]byte(secret)}, Now: time.Unix(*vec.Now, 0)}
			if vec.ToleranceS != nil {
				opts.Tolerance = time.Duration(*vec.ToleranceS) * time.Second
			}
			req := &Request{Method: "POST", Scheme: "https", Host: "gateway.internal", RequestURI: "/hook", Header: hdr, Body: []byte(vec.Body)}
			// Through Options.URL (behind a proxy) and, for URL vectors, also
			// through the request's own scheme and Host.
			type variant struct {
				name string
				req  Request
				opts Options
			}
			variants := []variant{{"opts", *req, *opts}}
			if vec.URL != "" {
				scheme, host, base, uri := splitURL(t, vec.URL)
				variants[0].opts.URL = base
				variants[0].req.RequestURI = uri
				direct := variant{"request-host", *req, *opts}
				direct.req.Scheme, direct.req.Host, direct.req.RequestURI = scheme, host, uri
				variants = append(variants, direct)
			}
			for _, vr := range variants[:len(variants):len(variants)] {
				vr.name += "+pooled"
				vr.opts.MACs = pooled
				variants = append(variants, vr, vr)
			}
			for _, vr := range variants {
				res, err := Verify(vectorScheme(vec.Provider), &vr.req, &vr.opts)
				if err != nil {
					t.Fatalf("%s: error: %v", vr.name, err)
				}
				assertNoLeak(t, res, nil, opts.Secrets, hdr)
				switch vec.Expect {
				case "valid":
					if !res.Valid {
						t.Errorf("%s: want valid, got invalid: %s (note: %s)", vr.name, res.Reason, vec.Note)
					}
				case "invalid":
					if res.Valid {
						t.Errorf("%s: want invalid (%s), got valid", vr.name, vec.Reason)
						continue
					}
					want, ok := wantReason[vec.Name]
					if !ok {
						t.Errorf("no expected reason recorded for this invalid vector (vector says %q)", vec.Reason)
					} else if !strings.HasPrefix(res.Reason, want) {
						t.Errorf("%s: reason %q, want prefix %q (vector: %s)", vr.name, res.Reason, want, vec.Reason)
					}
				default:
					t.Fatalf("unknown expect %q", vec.Expect)
				}
			}
		})
	}
	for _, s := range Schemes() {
		if s != "hmac" && !providers[s] {
			t.Errorf("scheme %s has no vector", s)
		}
	}
}

// checkVectorMeta checks the keys that do not feed Verify directly, so each
// one is read and means what the harness assumes.
func checkVectorMeta(t *testing.T, vec vector) {
	t.Helper()
	if vec.Source == "" {
		t.Error("vector without source")
	}
	if vec.Now == nil {
		t.Fatal("vector without now")
	}
	if vec.Expect == "invalid" && vec.Reason == "" {
		t.Error("invalid vector without reason")
	}
	if vec.Note != "" {
		t.Logf("note: %s", vec.Note)
	}
	if !vec.Published {
		t.Logf("derived vector (not published by the provider): %s", vec.Source)
	}
	switch vectorScheme(vec.Provider) {
	case "sendgrid":
		// key_format is optional; when given it must say what the scheme decodes.
		if vec.PublicKey == nil || vec.KeyFormat != "" && (!strings.Contains(vec.KeyFormat, "base64 DER") || !strings.Contains(vec.KeyFormat, "P-256")) {
			t.Errorf("sendgrid vector key_format %q, want base64 DER P-256 public_key", vec.KeyFormat)
		}
	case "discord":
		if vec.PublicKey == nil || vec.KeyFormat != "" && (!strings.Contains(vec.KeyFormat, "hex") || !strings.Contains(vec.KeyFormat, "ed25519")) {
			t.Errorf("discord vector key_format %q, want hex ed25519 public_key", vec.KeyFormat)
		}
	default:
		if vec.Secret == nil || vec.KeyFormat != "" {
			t.Errorf("HMAC vector must carry a secret and no key_format (got %q)", vec.KeyFormat)
		}
	}
	if vec.PrivateSeed != "" {
		// The seed must give the public key, and Ed25519 being deterministic,
		// re-signing must reproduce the header for a valid vector.
		seed, err := hex.DecodeString(vec.PrivateSeed)
		if err != nil || len(seed) != ed25519.SeedSize {
			t.Fatalf("private_seed: not a hex Ed25519 seed")
		}
		priv := ed25519.NewKeyFromSeed(seed)
		if got := hex.EncodeToString(priv.Public().(ed25519.PublicKey)); vec.PublicKey == nil || got != *vec.PublicKey {
			t.Fatalf("private_seed does not give public_key")
		}
		if vec.Expect == "valid" {
			ts := vec.Headers["X-Signature-Timestamp"]
			sig := hex.EncodeToString(ed25519.Sign(priv, []byte(ts+vec.Body)))
			if sig != vec.Headers["X-Signature-Ed25519"] {
				t.Errorf("re-signing with private_seed does not reproduce X-Signature-Ed25519")
			}
		}
	}
}

// header is a test Header over lower-case names.
type header map[string]string

func (h header) Get(name string) string { return h[name] }

// assertNoLeak fails when a reason or error carries secret bytes or a
// signature header value.
func assertNoLeak(t *testing.T, res Result, err error, secrets [][]byte, hdr header) {
	t.Helper()
	texts := []string{res.Reason}
	if err != nil {
		texts = append(texts, err.Error())
	}
	for _, txt := range texts {
		if txt == "" {
			continue
		}
		for _, s := range secrets {
			if len(s) >= 8 && strings.Contains(txt, string(s)) {
				t.Errorf("reason/error %q contains a secret", txt)
			}
		}
		for name, v := range hdr {
			if strings.Contains(name, "sig") || strings.Contains(name, "hmac") {
				for _, part := range strings.FieldsFunc(v, func(r rune) bool { return strings.ContainsRune(",; =", r) }) {
					if len(part) >= 16 && strings.Contains(txt, part) {
						t.Errorf("reason/error %q contains signature material", txt)
					}
				}
			}
		}
	}
}
