// Package oauthtest is test support for bearer tokens: keys, tokens minted and key sets
// published with github.com/lestrrat-go/jwx/v3 (a JOSE implementation that is not
// hookwall's), and an OIDC provider on a loopback listener (discovery, JWKS, RFC 7662
// introspection) whose keys and availability a test changes. For tests only.
package oauthtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
)

// Signer is a private key the tests mint tokens with (through jwx) and publish the public
// half of.
type Signer struct {
	Kid string
	Alg jwa.SignatureAlgorithm
	Key crypto.Signer
}

var (
	// The keys are generated once per test binary: RSA generation is slow.
	keysOnce sync.Once
	rsaKeys  [2]*rsa.PrivateKey
	ecKey    *ecdsa.PrivateKey
	edKey    ed25519.PrivateKey
)

func keys(t testing.TB) {
	keysOnce.Do(func() {
		for i := range rsaKeys {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			rsaKeys[i] = k
		}
		var err error
		if ecKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
		if _, edKey, err = ed25519.GenerateKey(rand.Reader); err != nil {
			panic(err)
		}
	})
}

// RSA returns a signer of the i-th (0 or 1) RSA 2048 key, RS256.
func RSA(t testing.TB, i int, kid string) Signer {
	keys(t)
	return Signer{Kid: kid, Alg: jwa.RS256(), Key: rsaKeys[i]}
}

// EC returns a signer of the P-256 key, ES256.
func EC(t testing.TB, kid string) Signer {
	keys(t)
	return Signer{Kid: kid, Alg: jwa.ES256(), Key: ecKey}
}

// Ed returns a signer of the Ed25519 key, EdDSA.
func Ed(t testing.TB, kid string) Signer {
	keys(t)
	return Signer{Kid: kid, Alg: jwa.EdDSA(), Key: edKey}
}

// Mint signs claims with s through jwx, with s.Kid as the kid header ("" leaves it out).
func Mint(t testing.TB, s Signer, claims map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	hdr := jws.NewHeaders()
	if s.Kid != "" {
		if err := hdr.Set(jws.KeyIDKey, s.Kid); err != nil {
			t.Fatal(err)
		}
	}
	if err := hdr.Set(jws.TypeKey, "JWT"); err != nil {
		t.Fatal(err)
	}
	var key any = s.Key
	if s.Key == nil {
		t.Fatal("signer without a key")
	}
	out, err := jws.Sign(payload, jws.WithKey(s.Alg, key, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		t.Fatalf("jwx sign %s: %v", s.Alg, err)
	}
	return string(out)
}

// PublicSet is the JWKS document of signers, built by jwx.
func PublicSet(t testing.TB, signers ...Signer) []byte {
	t.Helper()
	set := jwk.NewSet()
	for _, s := range signers {
		k, err := jwk.Import(s.Key.Public())
		if err != nil {
			t.Fatal(err)
		}
		_ = k.Set(jwk.KeyIDKey, s.Kid)
		_ = k.Set(jwk.KeyUsageKey, "sig")
		if err := set.AddKey(k); err != nil {
			t.Fatal(err)
		}
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// IDP is an OIDC provider on a loopback listener: discovery, JWKS and introspection.
type IDP struct {
	Server   *httptest.Server
	mu       sync.Mutex
	jwks     []byte
	down     bool
	JWKSHits atomic.Int64 // key set fetches
	// introspect answers an introspection call (status, body); nil: 404.
	introspect func(r *http.Request) (int, string)
	IntroHits  atomic.Int64 // introspection calls
	discIssuer string       // the issuer the discovery document names; "" means the real one
}

// NewIDP starts a provider publishing signers' keys, closed when the test ends.
func NewIDP(t testing.TB, signers ...Signer) *IDP {
	p := &IDP{}
	p.jwks = PublicSet(t, signers...)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /realm/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		down, iss := p.down, p.discIssuer
		p.mu.Unlock()
		if down {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		if iss == "" {
			iss = p.Issuer()
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": iss, "jwks_uri": p.Server.URL + "/keys"})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		p.JWKSHits.Add(1)
		p.mu.Lock()
		down, doc := p.down, p.jwks
		p.mu.Unlock()
		if down {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write(doc)
	})
	mux.HandleFunc("POST /introspect", func(w http.ResponseWriter, r *http.Request) {
		p.IntroHits.Add(1)
		p.mu.Lock()
		f := p.introspect
		p.mu.Unlock()
		if f == nil {
			http.NotFound(w, r)
			return
		}
		code, body := f(r)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_, _ = w.Write([]byte(body))
	})
	p.Server = httptest.NewServer(mux)
	t.Cleanup(p.Server.Close)
	return p
}

// Issuer is the provider's issuer URL.
func (p *IDP) Issuer() string { return p.Server.URL + "/realm" }

// SetKeys publishes signers' keys in place of the current ones.
func (p *IDP) SetKeys(t testing.TB, signers ...Signer) {
	doc := PublicSet(t, signers...)
	p.mu.Lock()
	p.jwks = doc
	p.mu.Unlock()
}

// SetDown makes every discovery and key set request fail with 503, or not.
func (p *IDP) SetDown(down bool) {
	p.mu.Lock()
	p.down = down
	p.mu.Unlock()
}

// SetIntrospect sets the introspection endpoint's answer.
func (p *IDP) SetIntrospect(f func(r *http.Request) (int, string)) {
	p.mu.Lock()
	p.introspect = f
	p.mu.Unlock()
}

// SetDiscoveryIssuer makes the discovery document name iss instead of the real issuer.
func (p *IDP) SetDiscoveryIssuer(iss string) {
	p.mu.Lock()
	p.discIssuer = iss
	p.mu.Unlock()
}

// SetKeySet publishes doc as the key set, verbatim.
func (p *IDP) SetKeySet(doc []byte) {
	p.mu.Lock()
	p.jwks = doc
	p.mu.Unlock()
}
