// Package oauth verifies OAuth 2.0 and OpenID Connect bearer tokens for the
// hookwall.oauth.verify policy builtin: signed JWTs against an issuer's published keys, and
// opaque tokens through the issuer's RFC 7662 introspection endpoint.
//
// An Issuer is one configured issuer. Start launches its refresher: a goroutine that finds
// the key set (OIDC discovery at <issuer>/.well-known/openid-configuration, or jwks_url
// directly), fetches it, parses and checks every key once, and fetches it again every
// CacheTTL. Verify never fetches keys itself: it reads the parsed set through an atomic
// pointer, base64url-decodes the token, parses its small header and claims and checks the
// signature. A token whose kid the set lacks asks the refresher for one early fetch (at most
// one per MinRefresh) and waits for it, bounded by the request's context and the fetch
// timeout; so does a request that arrives before the first fetch finished. When the issuer
// cannot be reached the last good set keeps serving for MaxStale past its CacheTTL, then
// every token is refused (fail closed).
//
// What a token must satisfy: a compact JWS with three parts, each unpadded base64url decoded
// strictly (the unused bits of a part's last character zero: one signed token has one
// spelling), no "crit" header, an alg from
// Algorithms ("none" is never accepted; an HMAC algorithm only with a configured shared
// secret, and never against a key of the set), a key of the set whose type, curve and own
// "alg" (when it has one) match that alg, a valid signature, "iss" equal to Issuer (when
// Issuer is set), an "aud" naming one of Audiences, an "exp" in the future and "nbf" and
// "iat" not in the future, each with Leeway. Keys that the token names itself (jku, x5u,
// jwk headers) are never used. RSA keys under 2048 bits, EC points off their curve and
// encryption keys ("use": "enc") are left out of the set when it is loaded.
//
// Opaque tokens (anything that is not three dot-separated parts) are POSTed to
// IntrospectionURL with the client credentials (HTTP Basic). An active answer is cached for
// the token's remaining lifetime (its "exp", at most CacheTTL), an inactive one for
// NegativeTTL; a failed call is not cached and refuses the token. Tokens are cached under
// their SHA-256, never as text. Every HTTP call honours its context, Timeout and a bound on
// the response size. A discovery or key set fetch follows at most two redirects, each to a URL
// CheckURL accepts and never from https to http; an introspection call follows none. No
// token, claim or secret appears in an error or a log line.
//
// Issuer and Set are safe for concurrent use. Set holds the issuers of one gateway snapshot:
// NewSet shares with the previous snapshot's set every issuer whose configuration (secrets
// included, by digest) is unchanged, so a reload keeps its cached keys and introspection
// answers and starts no fetch for it; an issuer counts the sets that hold it, and the last
// of them to Close stops it, whichever order they close in.
//
// # Notes
//
// The verifier uses crypto/rsa, crypto/ecdsa, crypto/ed25519 and crypto/hmac directly rather
// than a JOSE library: the part of JOSE a resource server needs is small (compact JWS, five
// key shapes), a library's generality (embedded keys, JWE, unsecured JWS) is attack surface
// we would have to turn off piece by piece, and parsing each key once at load keeps the
// per-request cost to the signature check itself. The tests mint tokens and key sets with
// github.com/lestrrat-go/jwx/v3, a maintained implementation that is not ours.
package oauth
