package gateway

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"

	"github.com/hookwall/hookwall/engine/internal/testutil"
)

// bundleServer is a real HTTP server on loopback that serves one bundle with an ETag and
// answers 304 to a matching If-None-Match, as bundle servers (nginx, S3, OPA's) do.
type bundleServer struct {
	srv *httptest.Server

	mu          sync.Mutex
	body        []byte
	etag        string
	fail        int // when set, every answer has this status
	full, not   int // 200s and 304s sent
	conditional int // requests that carried If-None-Match
}

func startBundleServer(t testing.TB, body []byte) *bundleServer {
	t.Helper()
	s := &bundleServer{}
	s.set(body)
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/bundles/hookwall.tar.gz" {
			http.NotFound(w, r)
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.fail != 0 {
			w.WriteHeader(s.fail)
			return
		}
		inm := r.Header.Get("If-None-Match")
		if inm != "" {
			s.conditional++
		}
		w.Header().Set("ETag", s.etag)
		for _, tag := range strings.Split(inm, ",") {
			if strings.TrimSpace(tag) == s.etag {
				s.not++
				w.WriteHeader(http.StatusNotModified)
				return
			}
		}
		s.full++
		w.Header().Set("Content-Type", "application/gzip")
		_, _ = w.Write(s.body)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *bundleServer) URL() string { return s.srv.URL + "/bundles/hookwall.tar.gz" }

func (s *bundleServer) set(body []byte) {
	sum := sha256.Sum256(body)
	s.mu.Lock()
	s.body, s.etag, s.fail = body, `"`+hex.EncodeToString(sum[:8])+`"`, 0
	s.mu.Unlock()
}

func (s *bundleServer) counts() (full, notModified, conditional int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.full, s.not, s.conditional
}

// signer signs bundles the way `opa build --signing-key` does.
type signer struct {
	privPEM, pubPEM string
}

func newSigner(t testing.TB) *signer {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return &signer{
		privPEM: string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: priv})),
		pubPEM:  string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})),
	}
}

// makeBundle writes an OPA bundle (.tar.gz) with OPA's own writer, signed when s is set.
func makeBundle(t testing.TB, modules map[string]string, s *signer) []byte {
	t.Helper()
	b := bundle.Bundle{Data: map[string]any{}, Manifest: bundle.Manifest{Revision: "test"}}
	for p, src := range modules {
		b.Modules = append(b.Modules, bundle.ModuleFile{URL: p, Path: p, Raw: []byte(src)})
	}
	if s != nil {
		if err := b.GenerateSignature(bundle.NewSigningConfig(s.privPEM, "RS256", ""), bundleKeyID, true); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := bundle.NewWriter(&buf).UseModulePath(true).DisableFormat(true).Write(b); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// startBundleEnv runs a gateway whose policies come from srv. The policy dir holds a
// denying flip policy, so a 200 proves the bundle is the source.
func startBundleEnv(t testing.TB, srv *bundleServer, policies string, files map[string]string) *env {
	t.Helper()
	if files == nil {
		files = map[string]string{}
	}
	files["policies/routes/flip.rego"] = flipDeny
	keys := "bundle_url = \"" + srv.URL() + "\"\npoll_interval = \"100ms\"\n" + policies
	e, _ := startReload(t, keys, "", files, Options{})
	return e
}

func flipBundle(src string) map[string]string { return map[string]string{"/routes/flip.rego": src} }

func TestBundleServesAndUpdates(t *testing.T) {
	srv := startBundleServer(t, makeBundle(t, flipBundle(flipAllow), nil))
	e := startBundleEnv(t, srv, "", nil)
	if st := e.mustPost("/hooks/flip"); st != 200 {
		t.Fatalf("status %d: the bundle's policy is not the one serving", st)
	}
	st := e.adminStatus()
	if st.Source != "bundle" || st.Bundle == nil || st.Bundle.URL != srv.URL() || st.Bundle.ETag == "" || st.Bundle.Revision != "test" {
		t.Fatalf("/-/status: %+v bundle %+v", st.Status, st.Bundle)
	}
	srv.set(makeBundle(t, flipBundle(flipDeny), nil))
	took := testutil.WaitUntil(t, 2*time.Second, "the changed bundle is not live", func() bool { return e.mustPost("/hooks/flip") == 451 })
	t.Logf("new bundle live after %v (poll interval 100ms)", took)
	st2 := e.adminStatus()
	if st2.Revision == st.Revision || st2.Bundle.ETag == st.Bundle.ETag || st2.LastResult != "ok" {
		t.Errorf("after the update: %+v bundle %+v", st2.Status, st2.Bundle)
	}
	// The policy dir is not the source: editing it changes nothing.
	testutil.ReplaceFile(t, e.path("policies/routes/flip.rego"), flipAllow)
	time.Sleep(300 * time.Millisecond)
	if got := e.mustPost("/hooks/flip"); got != 451 {
		t.Errorf("status %d: the policy dir was read while a bundle is configured", got)
	}
}

func TestBundleNotModifiedCostsNoRebuild(t *testing.T) {
	srv := startBundleServer(t, makeBundle(t, flipBundle(flipAllow), nil))
	e := startBundleEnv(t, srv, "", nil)
	before := e.g.Status()
	full0, _, _ := srv.counts()
	testutil.WaitUntil(t, 3*time.Second, "the poller sent no conditional requests", func() bool {
		_, not, _ := srv.counts()
		return not >= 5
	})
	full, not, cond := srv.counts()
	after := e.g.Status()
	t.Logf("%d full downloads, %d answered 304 of %d conditional requests", full, not, cond)
	if full != full0 {
		t.Errorf("%d full downloads after the first, want none", full-full0)
	}
	if after.Reloads != before.Reloads || after.Failures != before.Failures || !after.LastAttempt.Equal(before.LastAttempt) || after.Revision != before.Revision {
		t.Errorf("a 304 rebuilt: before %+v, after %+v", before, after)
	}
}

func TestBundleSignatureVerified(t *testing.T) {
	good, other := newSigner(t), newSigner(t)
	srv := startBundleServer(t, makeBundle(t, flipBundle(flipAllow), good))
	e := startBundleEnv(t, srv, "bundle_verification_key = \"keys/bundle.pem\"\n", map[string]string{"keys/bundle.pem": good.pubPEM})
	if st := e.mustPost("/hooks/flip"); st != 200 {
		t.Fatalf("status %d with a well-signed bundle", st)
	}
	cases := []struct {
		name string
		body []byte
		want string
	}{
		{"signed with another key", makeBundle(t, flipBundle(flipDeny), other), "verify"},
		{"unsigned", makeBundle(t, flipBundle(flipDeny), nil), "signatures"},
		{"tampered after signing", tampered(t, good), "digest mismatch"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := e.g.Status()
			srv.set(tc.body)
			testutil.WaitUntil(t, 2*time.Second, "the bad bundle was not refused", func() bool { return e.g.Status().Failures > before.Failures })
			st := e.g.Status()
			t.Logf("refused: %s", st.LastError)
			if !strings.Contains(st.LastError, "bundle "+srv.URL()) || !strings.Contains(st.LastError, tc.want) || st.Revision != before.Revision {
				t.Errorf("status %+v, want an error about %q and the old revision", st, tc.want)
			}
			if got := e.mustPost("/hooks/flip"); got != 200 {
				t.Errorf("status %d: a badly signed bundle replaced the good one", got)
			}
		})
	}
	srv.set(makeBundle(t, flipBundle(flipDeny), good))
	testutil.WaitUntil(t, 2*time.Second, "a well-signed update is not live", func() bool { return e.mustPost("/hooks/flip") == 451 })
}

// tampered signs a bundle that allows, then changes its policy to deny and keeps the
// signature, as an attacker on the way to the gateway would.
func tampered(t testing.TB, s *signer) []byte {
	t.Helper()
	b := bundle.Bundle{Data: map[string]any{}, Manifest: bundle.Manifest{Revision: "test"}}
	b.Modules = []bundle.ModuleFile{{URL: "/routes/flip.rego", Path: "/routes/flip.rego", Raw: []byte(flipAllow)}}
	if err := b.GenerateSignature(bundle.NewSigningConfig(s.privPEM, "RS256", ""), bundleKeyID, true); err != nil {
		t.Fatal(err)
	}
	b.Modules[0].Raw = []byte(flipDeny)
	var buf bytes.Buffer
	if err := bundle.NewWriter(&buf).UseModulePath(true).DisableFormat(true).Write(b); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func first(a, _, _ int) int { return a }

func TestBundleBadPolicyRefused(t *testing.T) {
	srv := startBundleServer(t, makeBundle(t, flipBundle(flipAllow), nil))
	e := startBundleEnv(t, srv, "", nil)
	cases := []struct{ name, src, want string }{
		{"type error", "package routes.flip\n\nallow if count(5) > 0\n", "hookwall.tar.gz/routes/flip.rego:3: rego_type_error: count: invalid argument"},
		{"syntax error", "package routes.flip\n\nallow if {\n", "/routes/flip.rego:4: rego_parse_error"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := e.g.Status()
			srv.set(makeBundle(t, flipBundle(tc.src), nil))
			testutil.WaitUntil(t, 2*time.Second, "the bad bundle was not refused", func() bool { return e.g.Status().Failures > before.Failures })
			doc := e.adminStatus()
			t.Logf("refused: %s", doc.LastError)
			if !strings.Contains(doc.LastError, tc.want) || doc.Revision != before.Revision || doc.LastResult != "error" {
				t.Errorf("/-/status %+v, want last_error naming %q", doc.Status, tc.want)
			}
			if got := e.mustPost("/hooks/flip"); got != 200 {
				t.Errorf("status %d: a broken bundle replaced the good one", got)
			}
		})
	}
	// A refused bundle whose ETag does not change is not downloaded and rebuilt again.
	before := e.g.Status()
	srv.set(makeBundle(t, flipBundle("package routes.flip\n\n# again\nallow if count(5) > 0\n"), nil))
	testutil.WaitUntil(t, 2*time.Second, "not refused", func() bool { return e.g.Status().Failures > before.Failures })
	failures := e.g.Status().Failures
	full0, not0, _ := srv.counts()
	testutil.WaitUntil(t, 2*time.Second, "no 304s", func() bool { _, not, _ := srv.counts(); return not >= not0+3 })
	if f, full := e.g.Status().Failures, first(srv.counts()); f != failures || full != full0 {
		t.Errorf("the refused bundle was downloaded %d and rebuilt %d more times", full-full0, f-failures)
	}
}

func TestBundleTestOnReload(t *testing.T) {
	mods := func(policy string) map[string]string {
		return map[string]string{"/routes/flip.rego": policy, "/routes/flip_test.rego": flipTest}
	}
	srv := startBundleServer(t, makeBundle(t, mods(flipAllow), nil))
	e := startBundleEnv(t, srv, "test_on_reload = true\n", nil)
	if st := e.mustPost("/hooks/flip"); st != 200 {
		t.Fatalf("status %d", st)
	}
	before := e.g.Status()
	srv.set(makeBundle(t, mods(flipDeny), nil))
	testutil.WaitUntil(t, 2*time.Second, "a bundle with failing tests was not refused", func() bool { return e.g.Status().Failures > before.Failures })
	if st := e.g.Status(); !strings.Contains(st.LastError, "hookwall.tar.gz/routes/flip_test.rego:5: test_allows: failed") {
		t.Errorf("last_error %q", st.LastError)
	}
	if got := e.mustPost("/hooks/flip"); got != 200 {
		t.Errorf("status %d", got)
	}
}

func TestBundleRequiredAtStart(t *testing.T) {
	srv := startBundleServer(t, nil)
	srv.mu.Lock()
	srv.fail = http.StatusServiceUnavailable
	srv.mu.Unlock()
	dir := t.TempDir()
	cfg := "[policies]\nbundle_url = \"" + srv.URL() + "\"\n\n[[route]]\nname = \"r\"\npath = \"/r\"\nupstream = \"http://127.0.0.1:1\"\npolicy = \"routes.flip\"\n"
	if err := os.WriteFile(dir+"/gateway.toml", []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := New(context.Background(), dir+"/gateway.toml", Options{Logger: discardLogger()})
	if err == nil || !strings.Contains(err.Error(), "server answered 503") {
		t.Fatalf("New: %v, want the bundle server's 503", err)
	}
}

// TestBundleSourceSwitch moves a running gateway from its policy dir to a bundle and back by
// editing gateway.toml.
func TestBundleSourceSwitch(t *testing.T) {
	srv := startBundleServer(t, makeBundle(t, flipBundle(flipDeny), nil))
	e, _ := startReload(t, "", "", nil, Options{})
	if st := e.mustPost("/hooks/flip"); st != 200 {
		t.Fatalf("status %d", st)
	}
	raw, err := os.ReadFile(e.path("gateway.toml"))
	if err != nil {
		t.Fatal(err)
	}
	dirCfg := string(raw)
	bundleCfg := strings.Replace(dirCfg, "dir = \"policies\"\n", "dir = \"policies\"\nbundle_url = \""+srv.URL()+"\"\npoll_interval = \"100ms\"\n", 1)
	testutil.ReplaceFile(t, e.path("gateway.toml"), bundleCfg)
	testutil.WaitUntil(t, 2*time.Second, "the bundle did not become the source", func() bool { return e.mustPost("/hooks/flip") == 451 })
	if st := e.g.Status(); st.Source != "bundle" {
		t.Errorf("source %q", st.Source)
	}
	// The new source polls: an update goes live.
	srv.set(makeBundle(t, flipBundle(flipAllow), nil))
	testutil.WaitUntil(t, 2*time.Second, "the bundle update is not live", func() bool { return e.mustPost("/hooks/flip") == 200 })
	// Back to the directory, whose policy now denies.
	testutil.WriteFile(t, e.path("policies/routes/flip.rego"), flipDeny)
	testutil.ReplaceFile(t, e.path("gateway.toml"), dirCfg)
	testutil.WaitUntil(t, 2*time.Second, "the policy dir did not become the source again", func() bool { return e.mustPost("/hooks/flip") == 451 })
	full, _, _ := srv.counts()
	time.Sleep(300 * time.Millisecond)
	if f, _, _ := srv.counts(); f != full || e.g.Status().Source != "dir" {
		t.Errorf("the old bundle source still polls or status says %q", e.g.Status().Source)
	}
	_, _, cond0 := srv.counts()
	time.Sleep(300 * time.Millisecond)
	if _, _, cond := srv.counts(); cond != cond0 {
		t.Errorf("the retired bundle poller sent %d more requests", cond-cond0)
	}
}

func TestBundleHMACSignature(t *testing.T) {
	const secret = "bundle-shared-secret"
	sign := func(src string) []byte {
		b := bundle.Bundle{Data: map[string]any{}, Modules: []bundle.ModuleFile{{URL: "/routes/flip.rego", Path: "/routes/flip.rego", Raw: []byte(src)}}}
		if err := b.GenerateSignature(bundle.NewSigningConfig(secret, "HS256", ""), bundleKeyID, true); err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := bundle.NewWriter(&buf).UseModulePath(true).DisableFormat(true).Write(b); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	srv := startBundleServer(t, sign(flipAllow))
	// The key file ends in a newline, as editors save it; it is not part of the secret.
	e := startBundleEnv(t, srv, "bundle_verification_key = \"bundle.key\"\nbundle_verification_alg = \"HS256\"\n", map[string]string{"bundle.key": secret + "\n"})
	if st := e.mustPost("/hooks/flip"); st != 200 {
		t.Fatalf("status %d", st)
	}
	before := e.g.Status()
	srv.set(makeBundle(t, flipBundle(flipDeny), newSigner(t)))
	testutil.WaitUntil(t, 2*time.Second, "an RSA-signed bundle passed HS256 verification", func() bool { return e.g.Status().Failures > before.Failures })
	srv.set(sign(flipDeny))
	testutil.WaitUntil(t, 2*time.Second, "an HS256-signed update is not live", func() bool { return e.mustPost("/hooks/flip") == 451 })
}

// TestRefusedBundleIsRetriedAfterAConfigReload: a bundle the config refuses (it calls a
// built-in the config does not allow) keeps the old one serving; the server's ETag is the
// refused bundle's, so polls get 304. A config reload that allows the built-in fetches the
// bundle again, and it serves.
func TestRefusedBundleIsRetriedAfterAConfigReload(t *testing.T) {
	srv := startBundleServer(t, makeBundle(t, flipBundle(flipAllow), nil))
	e := startBundleEnv(t, srv, "", nil)
	if st := e.mustPost("/hooks/flip"); st != 200 {
		t.Fatalf("the first bundle: %d", st)
	}
	v2 := "package routes.flip\n\nallow := false\n\nstatus := 451\n\nprobe := http.send({\"method\": \"GET\", \"url\": \"http://127.0.0.1:1/\"}) if input.never\n"
	before := e.g.Status()
	srv.set(makeBundle(t, flipBundle(v2), nil))
	testutil.WaitUntil(t, 5*time.Second, "the second bundle was never refused", func() bool { return e.g.Status().Failures > before.Failures })
	if st := e.mustPost("/hooks/flip"); st != 200 {
		t.Fatalf("after the refused bundle: %d, want the first one's 200", st)
	}
	raw, err := os.ReadFile(e.path("gateway.toml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(raw), "dir = \"policies\"\n", "dir = \"policies\"\nallow_builtins = [\"http.send\"]\n", 1)
	if err := os.WriteFile(e.path("gateway.toml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := e.g.Reload(context.Background()); err != nil {
		t.Fatalf("reload: %v", err)
	}
	testutil.WaitUntil(t, 5*time.Second, "the refused bundle was not fetched again after the reload allowed it", func() bool { return e.mustPost("/hooks/flip") == 451 })
}

// TestBundleRedirectCarriesNoToken: a bundle server that redirects to another host (a CDN)
// is followed, and the other host gets no Referer: Go would send the bundle URL there,
// query token included. A redirect from https to http is refused.
func TestBundleRedirectCarriesNoToken(t *testing.T) {
	var referers []string
	var mu sync.Mutex
	body := makeBundle(t, flipBundle(flipAllow), nil)
	cdn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		referers = append(referers, r.Header.Get("Referer"))
		mu.Unlock()
		_, _ = w.Write(body)
	}))
	t.Cleanup(cdn.Close)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, cdn.URL+"/cdn/bundle.tar.gz", http.StatusFound)
	}))
	t.Cleanup(origin.Close)
	keys := "bundle_url = \"" + origin.URL + "/bundles/hookwall.tar.gz?token=S3CR3T-TOKEN\"\npoll_interval = \"1s\"\n"
	e, _ := startReload(t, keys, "", map[string]string{"policies/routes/flip.rego": flipDeny}, Options{})
	if st := e.mustPost("/hooks/flip"); st != 200 {
		t.Fatalf("the redirected bundle does not serve: %d", st)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(referers) == 0 {
		t.Fatal("the CDN was never asked")
	}
	for _, r := range referers {
		if r != "" {
			t.Errorf("the CDN got Referer %q", r)
		}
	}
	from, _ := http.NewRequest("GET", "https://bundles.example/b.tar.gz", nil)
	to, _ := http.NewRequest("GET", "http://cdn.example/b.tar.gz", nil)
	if err := bundleRedirect(to, []*http.Request{from}); err == nil {
		t.Error("a redirect from https to http was followed")
	}
}

// TestDeltaBundleIsRefused: a delta bundle (patches to data, no policies) is refused by
// name, and the bundle before it keeps serving.
func TestDeltaBundleIsRefused(t *testing.T) {
	srv := startBundleServer(t, makeBundle(t, flipBundle(flipAllow), nil))
	e := startBundleEnv(t, srv, "", nil)
	if st := e.mustPost("/hooks/flip"); st != 200 {
		t.Fatalf("the first bundle: %d", st)
	}
	delta := bundle.Bundle{Manifest: bundle.Manifest{Revision: "delta"},
		Patch: bundle.Patch{Data: []bundle.PatchOperation{{Op: "upsert", Path: "/x", Value: 1}}}}
	var buf bytes.Buffer
	if err := bundle.NewWriter(&buf).Write(delta); err != nil {
		t.Fatal(err)
	}
	srv.set(buf.Bytes())
	testutil.WaitUntil(t, 5*time.Second, "the delta bundle was not refused as one", func() bool {
		return strings.Contains(e.g.Status().LastError, "is a delta bundle")
	})
	if st := e.mustPost("/hooks/flip"); st != 200 {
		t.Errorf("after the refused delta: %d, want the first bundle's 200", st)
	}
}

// TestStatusAnswersWhileAReloadFetchesABundle: a reload that switches to a new bundle
// server waits for its first bundle (up to a minute) without holding the lock the status
// needs: /-/status answers meanwhile, and the bundle serves once it comes.
func TestStatusAnswersWhileAReloadFetchesABundle(t *testing.T) {
	release := make(chan struct{})
	var asked atomic.Int32
	body := makeBundle(t, flipBundle(flipAllow), nil)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		_, _ = w.Write(body)
	}))
	t.Cleanup(slow.Close)
	e, _ := startReload(t, "", "", map[string]string{"policies/routes/flip.rego": flipDeny}, Options{})
	raw, err := os.ReadFile(e.path("gateway.toml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(raw), "dir = \"policies\"\n", "dir = \"policies\"\nbundle_url = \""+slow.URL+"/b/hookwall.tar.gz\"\n", 1)
	if err := os.WriteFile(e.path("gateway.toml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := e.g.Reload(context.Background()); done <- err }()
	testutil.WaitUntil(t, 3*time.Second, "the reload never asked the bundle server", func() bool { return asked.Load() > 0 })
	r, err := (&http.Client{Timeout: 3 * time.Second}).Get(e.admin + "/-/status")
	if err == nil {
		r.Body.Close()
	}
	close(release)
	if rerr := <-done; rerr != nil {
		t.Fatalf("reload: %v", rerr)
	}
	if err != nil {
		t.Errorf("/-/status did not answer while a reload waited on the bundle server: %v", err)
	}
	if st := e.mustPost("/hooks/flip"); st != 200 {
		t.Errorf("after the reload: %d, want the bundle's 200", st)
	}
}

// rawBundle writes a gzip'd tar of the given entries (name → content), in order, as a
// hand-made or tampered bundle may hold them.
func rawBundle(t testing.TB, entries ...[2]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gw)
	for _, e := range entries {
		if err := tw.WriteHeader(&tar.Header{Name: e[0], Mode: 0o644, Size: int64(len(e[1])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e[1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestBundleModuleNames: a bundle's module names are the bundle's name and the module's path,
// cleaned: "../" cannot take a name out of the bundle's, and two entries spelled differently
// ("routes/flip.rego", "routes/./flip.rego") that name the same module refuse the bundle
// rather than one silently replacing the other, whichever the tar holds last.
func TestBundleModuleNames(t *testing.T) {
	read := func(body []byte) (*bundleRev, error) {
		b, err := bundle.NewReader(bytes.NewReader(body)).WithRegoVersion(ast.RegoV1).Read()
		if err != nil {
			t.Fatal(err)
		}
		return newBundleRev("hookwall.tar.gz", &b, "")
	}
	rev, err := read(rawBundle(t, [2]string{"../../../etc/evil.rego", "package evil\n\nx := 1\n"}, [2]string{"routes/flip.rego", flipAllow}))
	if err != nil {
		t.Fatal(err)
	}
	for n := range rev.all {
		if !strings.HasPrefix(n, "hookwall.tar.gz/") {
			t.Errorf("module name %q is outside the bundle's", n)
		}
	}
	if _, ok := rev.all["hookwall.tar.gz/etc/evil.rego"]; !ok {
		t.Errorf("modules %v, want hookwall.tar.gz/etc/evil.rego among them", slices.Collect(maps.Keys(rev.all)))
	}
	for _, second := range []string{"routes/./flip.rego", "routes//flip.rego", "/routes/flip.rego", "x/../routes/flip.rego"} {
		_, err := read(rawBundle(t, [2]string{"routes/flip.rego", flipAllow}, [2]string{second, flipDeny}))
		if err == nil || !strings.Contains(err.Error(), "hookwall.tar.gz/routes/flip.rego") || !strings.Contains(err.Error(), "twice") {
			t.Errorf("%q after routes/flip.rego: error %v, want the bundle refused for holding the module twice", second, err)
		}
	}
}

// bundleSignedPolicy allows a request signed with the "signed" secret (GitHub's scheme).
const bundleSignedPolicy = `package routes.signed

default allow := false

allow if hookwall.webhook.verify("github", input.request, {"secret": "signed"}).valid
`

const bundleSignedConfig = `
[secrets]
signed = { file = "signed.secret" }

[[route]]
name = "signed"
path = "/hooks/signed"
upstream = "{{UPSTREAM}}"
policy = "routes.signed"
`

// TestBundleUpdateKeepsTheLiveInputs: a new bundle is built on the files the serving snapshot
// was built from. A config reload that was refused (gateway.toml broken, with a new filter
// module and a new secret value beside it) leaves nothing of its change behind for the next
// bundle to put live: the old module and the old secret keep serving with the new policies,
// until a reload of the fixed gateway.toml applies the change as a whole.
func TestBundleUpdateKeepsTheLiveInputs(t *testing.T) {
	mods := map[string]string{"/routes/flip.rego": flipAllow, "/routes/guarded.rego": guardedPolicy, "/routes/signed.rego": bundleSignedPolicy}
	srv := startBundleServer(t, makeBundle(t, mods, nil))
	keys := "bundle_url = \"" + srv.URL() + "\"\npoll_interval = \"100ms\"\n"
	e, _ := startReload(t, keys, guardConfig+bundleSignedConfig, map[string]string{
		"filters/guard.wasm": testGuest(t, "tiny.wasm"),
		"signed.secret":      "old-secret",
	}, Options{})
	body := []byte(`{"a":1}`)
	signed := func(secret string) int {
		t.Helper()
		return e.do("POST", "/hooks/signed", body, map[string]string{"Content-Type": "application/json", "X-Hub-Signature-256": githubSig(secret, body)}).Status
	}
	check := func(when string, guarded, oldSig, newSig int) {
		t.Helper()
		if st := e.mustPost("/hooks/guarded"); st != guarded {
			t.Errorf("%s: /hooks/guarded %d, want %d (451: tiny.wasm, the old module; 200: hookwall.wasm)", when, st, guarded)
		}
		if st := signed("old-secret"); st != oldSig {
			t.Errorf("%s: signed with the old secret: %d, want %d", when, st, oldSig)
		}
		if st := signed("new-secret"); st != newSig {
			t.Errorf("%s: signed with the new secret: %d, want %d", when, st, newSig)
		}
	}
	check("at start", 451, 200, 403)

	// One change, refused as a whole: gateway.toml does not load.
	good, err := os.ReadFile(e.path("gateway.toml"))
	if err != nil {
		t.Fatal(err)
	}
	testutil.ReplaceFile(t, e.path("gateway.toml"), string(good)+"\n[[route]]\nname = \"broken\"\nbogus_key = 1\n")
	testutil.ReplaceFile(t, e.path("filters/guard.wasm"), testGuest(t, "hookwall.wasm"))
	testutil.ReplaceFile(t, e.path("signed.secret"), "new-secret")
	if code, ans := e.adminReload(); code != 422 {
		t.Fatalf("reload: %d %v, want 422", code, ans)
	}
	check("after the refused reload", 451, 200, 403)

	// The bundle server publishes a policy change of another route.
	rev0 := e.g.Status().Revision
	mods["/routes/flip.rego"] = flipAllow + "\n# v2\n"
	srv.set(makeBundle(t, mods, nil))
	testutil.WaitUntil(t, 3*time.Second, "the new bundle was not applied", func() bool { return e.g.Status().Revision != rev0 })
	check("after the new bundle", 451, 200, 403)

	testutil.ReplaceFile(t, e.path("gateway.toml"), string(good))
	if code, ans := e.adminReload(); code != 200 {
		t.Fatalf("reload of the fixed gateway.toml: %d %v, want 200", code, ans)
	}
	check("after the fixed reload", 200, 403, 200)
}
