package config

import (
	"github.com/hookwall/hookwall/engine/oauth"
)

// OAuth is one [[oauth]] issuer whose bearer tokens hookwall.oauth.verify checks. Zero
// durations and bounds take engine/oauth's defaults.
type OAuth struct {
	Name string `toml:"name"`
	// Issuer is the expected "iss" and where OIDC discovery starts; JWKSURL is fetched
	// instead of discovering the key set.
	Issuer  string `toml:"issuer"`
	JWKSURL string `toml:"jwks_url"`
	// AnyIssuer, with jwks_url and no issuer, accepts a token whatever its "iss" (a key set
	// shared by several tenants, whose iss names the tenant: the policy must then check
	// claims.iss itself). Without it jwks_url needs issuer.
	AnyIssuer bool `toml:"any_issuer"`
	// Audiences: a token's "aud" (or an introspection answer's) must name one (required).
	Audiences  []string `toml:"audiences"`
	Algorithms []string `toml:"algorithms"`
	Leeway     Duration `toml:"leeway"`
	// IntrospectionURL is the RFC 7662 endpoint for opaque tokens; ClientID and
	// ClientSecret (a [secrets] name) authenticate the gateway to it.
	IntrospectionURL string `toml:"introspection_url"`
	ClientID         string `toml:"client_id"`
	ClientSecret     string `toml:"client_secret"`
	// HMACSecret names the [secrets] entry of the shared secret HS256/384/512 tokens are
	// checked with; HMAC algorithms are refused without it.
	HMACSecret string   `toml:"hmac_secret"`
	CacheTTL   Duration `toml:"cache_ttl"`
	MaxStale   Duration `toml:"max_stale"`
	MaxKeys    int      `toml:"max_keys"`
	Timeout    Duration `toml:"timeout"`
}

// maxOAuthKeys bounds max_keys.
const maxOAuthKeys = 1000

func (c *Config) validateOAuth(v *validator) {
	names := map[string]bool{}
	for i := range c.OAuth {
		o := &c.OAuth[i]
		at := func(k string) []any { return []any{"oauth", i, k} }
		switch {
		case o.Name == "":
			v.errAt(at("name"), "required (the name policies pass to hookwall.oauth.verify)")
		case names[o.Name]:
			v.errAt(at("name"), "duplicate issuer name %q", o.Name)
		}
		names[o.Name] = true
		switch {
		case o.Issuer == "" && o.JWKSURL == "" && o.IntrospectionURL == "":
			v.errAt(at("issuer"), "set issuer (OIDC discovery), jwks_url or introspection_url")
		case o.JWKSURL != "" && o.Issuer == "" && !o.AnyIssuer:
			// A key set is often shared: a provider's common keys sign every tenant's tokens,
			// so a token another tenant minted with the right aud would pass.
			v.errAt(at("issuer"), "required with jwks_url: the iss tokens must carry (without it a token from anyone who signs with the same key set would pass); set any_issuer = true to accept every iss and check claims.iss in the policy")
		case o.AnyIssuer && (o.Issuer != "" || o.JWKSURL == ""):
			v.errAt(at("any_issuer"), "only applies with jwks_url and no issuer")
		}
		for _, u := range []struct{ key, val string }{{"issuer", o.Issuer}, {"jwks_url", o.JWKSURL}, {"introspection_url", o.IntrospectionURL}} {
			if u.val != "" {
				if err := oauth.CheckURL(u.val); err != nil {
					v.errAt(at(u.key), "%v", err)
				}
			}
		}
		if len(o.Audiences) == 0 {
			v.errAt(at("audiences"), "required: without it a token the issuer minted for any other API would pass")
		}
		hmacAlg := false
		for _, a := range o.Algorithms {
			isHMAC, err := oauth.CheckAlgorithm(a)
			if err != nil {
				v.errAt(at("algorithms"), "%v", err)
			}
			hmacAlg = hmacAlg || isHMAC
		}
		if hmacAlg && o.HMACSecret == "" {
			v.errAt(at("algorithms"), "an HMAC algorithm needs hmac_secret (a shared secret); it is never checked against a public key")
		}
		if o.HMACSecret != "" && !hmacAlg {
			v.errAt(at("hmac_secret"), "only applies with an HMAC algorithm (HS256, HS384, HS512) in algorithms")
		}
		if o.IntrospectionURL != "" && (o.ClientID == "" || o.ClientSecret == "") {
			v.errAt(at("introspection_url"), "needs client_id and client_secret")
		}
		if o.IntrospectionURL == "" {
			for _, k := range []string{"client_id", "client_secret"} {
				if v.set.has("oauth", i, k) {
					v.errAt(at(k), "only applies with introspection_url")
				}
			}
		}
		for _, s := range []struct{ key, name string }{{"client_secret", o.ClientSecret}, {"hmac_secret", o.HMACSecret}} {
			if _, ok := c.Secrets[s.name]; s.name != "" && !ok {
				v.errAt(at(s.key), "no secret named %q in [secrets]", s.name)
			}
		}
		if o.MaxKeys < 0 || o.MaxKeys > maxOAuthKeys {
			v.errAt(at("max_keys"), "must be between 1 and %d (left out: %d)", maxOAuthKeys, oauth.DefaultMaxKeys)
		}
		if v.set.has("oauth", i, "cache_ttl") && o.CacheTTL.D() < oauth.MinCacheTTL {
			v.errAt(at("cache_ttl"), "must be at least %v", oauth.MinCacheTTL)
		}
		if o.Leeway.D() > oauth.MaxLeeway {
			v.errAt(at("leeway"), "must be at most %v: a leeway is clock skew, and a larger one accepts tokens that long after they expired", oauth.MaxLeeway)
		}
		if v.set.has("oauth", i, "timeout") && o.Timeout.D() <= 0 {
			v.errAt(at("timeout"), "must be > 0")
		}
	}
}
