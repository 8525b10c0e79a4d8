package oauth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rsa"
	"encoding/base64"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"

	"github.com/hookwall/hookwall/engine/oauth/oauthtest"
)

// benchCase is one algorithm: a token minted by jwx, and its bare signature check with the
// standard library alone (hash the signing input, verify), the floor Verify is held to.
type benchCase struct {
	name  string
	token string
	bare  func() bool
}

func benchCases(tb testing.TB) (*Issuer, []benchCase) {
	rs, es, ed := oauthtest.RSA(tb, 0, "rsa"), oauthtest.EC(tb, "ec"), oauthtest.Ed(tb, "ed")
	p := oauthtest.NewIDP(tb, rs, es, ed)
	secret := []byte("0123456789abcdef0123456789abcdef")
	is, err := newIssuer(Config{Name: "bench", Issuer: p.Issuer(), Audiences: []string{audience},
		Algorithms: []string{"RS256", "ES256", "EdDSA", "HS256"}, HMACSecrets: [][]byte{secret}}, nil, nil)
	if err != nil {
		tb.Fatal(err)
	}
	is.Start()
	tb.Cleanup(is.Close)
	deadline := time.Now().Add(5 * time.Second)
	for is.Stats().Keys == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	// A day-long lifetime: a long benchmark run does not outlive its tokens.
	c := claims(p.Issuer(), map[string]any{"exp": time.Now().Add(24 * time.Hour).Unix()})
	hs, err := jws.Sign(mustJSON(c), jws.WithKey(jwa.HS256(), secret))
	if err != nil {
		tb.Fatal(err)
	}
	split := func(tok string) ([]byte, []byte) {
		i := strings.LastIndexByte(tok, '.')
		sig, err := base64.RawURLEncoding.DecodeString(tok[i+1:])
		if err != nil {
			tb.Fatal(err)
		}
		return []byte(tok[:i]), sig
	}
	sum := func(h crypto.Hash, b []byte) []byte { d := h.New(); d.Write(b); return d.Sum(nil) }
	rsTok, esTok, edTok := oauthtest.Mint(tb, rs, c), oauthtest.Mint(tb, es, c), oauthtest.Mint(tb, ed, c)
	rsIn, rsSig := split(rsTok)
	esIn, esSig := split(esTok)
	edIn, edSig := split(edTok)
	hsIn, hsSig := split(string(hs))
	rsPub, esPub, edPub := rs.Key.Public().(*rsa.PublicKey), es.Key.Public().(*ecdsa.PublicKey), ed.Key.Public().(ed25519.PublicKey)
	return is, []benchCase{
		{"RS256", rsTok, func() bool { return rsa.VerifyPKCS1v15(rsPub, crypto.SHA256, sum(crypto.SHA256, rsIn), rsSig) == nil }},
		{"ES256", esTok, func() bool {
			r, s := new(big.Int).SetBytes(esSig[:32]), new(big.Int).SetBytes(esSig[32:])
			return ecdsa.Verify(esPub, sum(crypto.SHA256, esIn), r, s)
		}},
		{"EdDSA", edTok, func() bool { return ed25519.Verify(edPub, edIn, edSig) }},
		{"HS256", string(hs), func() bool {
			m := hmac.New(crypto.SHA256.New, secret)
			m.Write(hsIn)
			return hmac.Equal(m.Sum(nil), hsSig)
		}},
	}
}

// BenchmarkVerify: per algorithm, the bare signature check and Verify of a token whose key
// is cached (decode, header, key lookup, signature, claims), in one run.
func BenchmarkVerify(b *testing.B) {
	is, cases := benchCases(b)
	ctx := context.Background()
	for _, c := range cases {
		b.Run(c.name+"/bare", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if !c.bare() {
					b.Fatal("bare check failed")
				}
			}
		})
		b.Run(c.name+"/token", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if r := is.Verify(ctx, c.token, time.Now()); !r.Valid {
					b.Fatal(r.Reason)
				}
			}
		})
	}
}

// BenchmarkVerifyVsSignature reports, per algorithm, what Verify of a token whose key is
// cached costs as a ratio to the algorithm's bare signature check (the metric "x-bare"; the
// bound is 1.2× for RS256, ES256 and EdDSA; HMAC's check is too cheap for the ratio to mean
// much). The two are timed in alternating rounds and each keeps its fastest round, so other
// work on a shared machine slows both alike:
//
//	go test -run XXX -bench VerifyVsSignature ./engine/oauth
func BenchmarkVerifyVsSignature(b *testing.B) {
	is, cases := benchCases(b)
	ctx := context.Background()
	const per = 30
	round := func(f func()) float64 {
		start := time.Now()
		for range per {
			f()
		}
		return float64(time.Since(start).Nanoseconds()) / per
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			bare, full := 0.0, 0.0
			for b.Loop() {
				if ns := round(func() { c.bare() }); bare == 0 || ns < bare {
					bare = ns
				}
				if ns := round(func() { is.Verify(ctx, c.token, time.Now()) }); full == 0 || ns < full {
					full = ns
				}
			}
			b.ReportMetric(bare, "bare-ns")
			b.ReportMetric(full, "verify-ns")
			b.ReportMetric(full/bare, "x-bare")
		})
	}
}
