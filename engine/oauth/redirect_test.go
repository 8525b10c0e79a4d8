package oauth

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookwall/hookwall/engine/oauth/oauthtest"
)

// TestIntrospectionFollowsNoRedirect: an introspection endpoint that redirects is a failed
// call. Followed, a 307 would POST the token to wherever it points (without the client's
// credentials, which Go drops for another host), and that host's answer, or the answer to the
// GET a 302 turns the POST into, would decide whether the token is active.
func TestIntrospectionFollowsNoRedirect(t *testing.T) {
	var hits atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = w.Write([]byte(`{"active":true,"aud":"` + audience + `"}`))
	}))
	defer other.Close()
	_, port, _ := net.SplitHostPort(other.Listener.Addr().String())
	for _, code := range []int{http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		redir := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://localhost:"+port+"/introspect", code)
		}))
		p := oauthtest.NewIDP(t)
		is := startIssuer(t, p, Config{IntrospectionURL: redir.URL + "/introspect", ClientID: "c", ClientSecret: []byte("s")})
		r := is.Verify(context.Background(), "Bearer opaque-token", time.Now())
		redir.Close()
		if r.Valid || r.Reason != ReasonIntrospectFail {
			t.Errorf("introspection endpoint redirecting with %d: %+v, want %q", code, r, ReasonIntrospectFail)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the redirect's target was called %d times, want 0", n)
	}
}

// TestKeySetRedirectKeepsHTTPS: a key set (or discovery document) fetched over https is not
// fetched again in clear text because the server redirected to http, even to a loopback
// host that CheckURL would accept as configured.
func TestKeySetRedirectKeepsHTTPS(t *testing.T) {
	k := oauthtest.RSA(t, 0, "k1")
	var plainHits atomic.Int64
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		plainHits.Add(1)
		_, _ = w.Write(oauthtest.PublicSet(t, k))
	}))
	defer plain.Close()
	secure := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/same" {
			_, _ = w.Write(oauthtest.PublicSet(t, k))
			return
		}
		http.Redirect(w, r, plain.URL+"/keys", http.StatusFound)
	}))
	defer secure.Close()
	newIs := func(u string) *Issuer {
		is, err := newIssuer(Config{Name: "x", Issuer: "https://idp.example.test", JWKSURL: u, Audiences: []string{audience}}, quiet, nil)
		if err != nil {
			t.Fatal(err)
		}
		is.client.Transport.(*http.Transport).TLSClientConfig = &tls.Config{RootCAs: secure.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}
		return is
	}
	if _, _, err := newIs(secure.URL + "/keys").fetchKeys(context.Background()); err == nil {
		t.Error("an https key set redirected to http was fetched")
	}
	if n := plainHits.Load(); n != 0 {
		t.Errorf("the http target was called %d times, want 0", n)
	}
	// A redirect that stays on https is followed.
	redirSecure := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, secure.URL+"/same", http.StatusFound)
	}))
	defer redirSecure.Close()
	is := newIs(redirSecure.URL + "/keys")
	is.client.Transport.(*http.Transport).TLSClientConfig.RootCAs.AddCert(redirSecure.Certificate())
	if keys, _, err := is.fetchKeys(context.Background()); err != nil || len(keys) != 1 {
		t.Errorf("https to https redirect: %d keys, %v", len(keys), err)
	}
}
