package oauth

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

// signer is a private key the tests mint tokens with (through jwx) and publish the public
// half of.
type signer struct {
	kid  string
	alg  jwa.SignatureAlgorithm
	priv crypto.Signer
}

var (
	keysOnce sync.Once
	rsaKeys  [2]*rsa.PrivateKey
	ecKey    *ecdsa.PrivateKey
	edKey    ed25519.PrivateKey
)

func testKeys(t testing.TB) {
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

func rsaSigner(t testing.TB, i int, kid string) signer {
	testKeys(t)
	return signer{kid: kid, alg: jwa.RS256(), priv: rsaKeys[i]}
}

func ecSigner(t testing.TB, kid string) signer {
	testKeys(t)
	return signer{kid: kid, alg: jwa.ES256(), priv: ecKey}
}

func edSigner(t testing.TB, kid string) signer {
	testKeys(t)
	return signer{kid: kid, alg: jwa.EdDSA(), priv: edKey}
}

// mint signs claims with s through jwx, with s.kid as the kid header ("" leaves it out).
func mint(t testing.TB, s signer, claims map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	hdr := jws.NewHeaders()
	if s.kid != "" {
		if err := hdr.Set(jws.KeyIDKey, s.kid); err != nil {
			t.Fatal(err)
		}
	}
	if err := hdr.Set(jws.TypeKey, "JWT"); err != nil {
		t.Fatal(err)
	}
	var key any = s.priv
	if s.priv == nil {
		t.Fatal("signer without a key")
	}
	out, err := jws.Sign(payload, jws.WithKey(s.alg, key, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		t.Fatalf("jwx sign %s: %v", s.alg, err)
	}
	return string(out)
}

// publicSet is the JWKS document of signers, built by jwx.
func publicSet(t testing.TB, signers ...signer) []byte {
	t.Helper()
	set := jwk.NewSet()
	for _, s := range signers {
		k, err := jwk.Import(s.priv.Public())
		if err != nil {
			t.Fatal(err)
		}
		_ = k.Set(jwk.KeyIDKey, s.kid)
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

// idp is an OIDC provider on a loopback listener: discovery, JWKS and introspection.
type idp struct {
	srv      *httptest.Server
	mu       sync.Mutex
	jwks     []byte
	down     bool
	jwksHits atomic.Int64
	// introspect answers an introspection call (status, body); nil: 404.
	introspect func(r *http.Request) (int, string)
	introHits  atomic.Int64
	discIssuer string // the issuer the discovery document names; "" means the real one
}

func newIDP(t testing.TB, signers ...signer) *idp {
	p := &idp{}
	p.jwks = publicSet(t, signers...)
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
			iss = p.issuer()
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": iss, "jwks_uri": p.srv.URL + "/keys"})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		p.jwksHits.Add(1)
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
		p.introHits.Add(1)
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
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

func (p *idp) issuer() string { return p.srv.URL + "/realm" }

func (p *idp) setKeys(t testing.TB, signers ...signer) {
	doc := publicSet(t, signers...)
	p.mu.Lock()
	p.jwks = doc
	p.mu.Unlock()
}

func (p *idp) setDown(down bool) {
	p.mu.Lock()
	p.down = down
	p.mu.Unlock()
}

func (p *idp) setIntrospect(f func(r *http.Request) (int, string)) {
	p.mu.Lock()
	p.introspect = f
	p.mu.Unlock()
}
