package gateway

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/download"
	"github.com/open-policy-agent/opa/v1/logging"
	"github.com/open-policy-agent/opa/v1/plugins"
	"github.com/open-policy-agent/opa/v1/plugins/rest"

	"github.com/hookwall/hookwall/engine/config"
	"github.com/hookwall/hookwall/engine/internal/snapshot"
	"github.com/hookwall/hookwall/engine/policy"
)

const (
	// maxBundleBytes bounds a downloaded bundle as a whole, twice: the compressed bytes read
	// from the HTTP body, and the sum of the sizes of every entry in the tar. OPA's reader only
	// limits each file, and its tarball loader holds every file in memory before it checks a
	// signature, so bundleLimitTransport checks both before OPA sees a byte.
	maxBundleBytes = 64 << 20
	// maxBundleName bounds the length of a bundle entry's name (a policy path).
	maxBundleName = 4096
	// maxBundleEntries bounds the number of entries (files, directories, …) in a bundle's tar.
	maxBundleEntries = 10000
	// maxBundleErrorBody bounds what is read of an answer other than 200 (an error page, a
	// 304's body): OPA's downloader reads such a body to its end, which a server may never reach.
	maxBundleErrorBody = 64 << 10
	// bundleFetchTimeout bounds one download, headers and body.
	bundleFetchTimeout = 60 * time.Second
	// bundleKeyID is the key id the verification key is registered under. With one configured
	// key the id only has to agree with itself: it is also set as the VerificationConfig's
	// KeyID, which OPA prefers over the token's "kid".
	bundleKeyID = "default"
)

// bundleSource polls one OPA bundle URL with OPA's own downloader (ETag / If-None-Match,
// signature verification, tarball format). Its fields are fixed at creation; a config change
// to the URL, interval or key makes a new source.
type bundleSource struct {
	id       string // URL, interval, algorithm and key digest: a config reload compares it
	url      string // without query (it may carry a token): for messages
	name     string // last URL path segment, prefixes module names in messages
	interval time.Duration
	hc       *http.Client
	dl       *download.Downloader

	mu      sync.Mutex
	update  *download.Update // what the downloader's callback delivered
	current *bundleRev       // the bundle the live snapshot was built from
	cancel  context.CancelFunc
	// refused: the last bundle downloaded was refused (it did not build with the config).
	// refetch: the next fetch asks for the bundle whole, not If-None-Match its ETag, which
	// the downloader kept though the bundle was refused: a config reload may let it build.
	refused, refetch bool
}

// bundleIdentity returns the source identity cfg asks for, reading the verification key.
func bundleIdentity(cfg *config.Config) (id string, key []byte, err error) {
	p := &cfg.Policies
	if p.BundleVerificationKey != "" {
		key, err = os.ReadFile(p.BundleVerificationKey)
		if err != nil {
			return "", nil, fmt.Errorf("%s: policies.bundle_verification_key: %w", cfg.File, err)
		}
		if strings.HasPrefix(p.BundleVerificationAlg, "HS") {
			// A shared secret in a file: drop the newline an editor adds, as [secrets] does.
			key = []byte(strings.TrimSuffix(strings.TrimSuffix(string(key), "\n"), "\r"))
		}
		if len(key) == 0 {
			return "", nil, fmt.Errorf("%s: policies.bundle_verification_key: %s is empty", cfg.File, p.BundleVerificationKey)
		}
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%d\x00%s\x00", p.BundleURL, p.PollInterval, p.BundleVerificationAlg)
	h.Write(key)
	return hex.EncodeToString(h.Sum(nil)), key, nil
}

// newBundleSource prepares a source; nothing is fetched and no goroutine starts.
func newBundleSource(cfg *config.Config) (*bundleSource, error) {
	p := &cfg.Policies
	id, key, err := bundleIdentity(cfg)
	if err != nil {
		return nil, err
	}
	// rest.Client joins its base URL and the path with "/": split before the file name.
	u, err := url.Parse(p.BundleURL)
	if err != nil {
		return nil, fmt.Errorf("%s: policies.bundle_url: %w", cfg.File, err)
	}
	dir, name := path.Split(u.EscapedPath())
	if name == "" {
		return nil, fmt.Errorf("%s: policies.bundle_url %q must name a file (…/bundle.tar.gz)", cfg.File, redactURL(p.BundleURL))
	}
	base, file := u.Scheme+"://"+u.Host+strings.TrimSuffix(dir, "/"), name
	if u.RawQuery != "" {
		file += "?" + u.RawQuery
	}
	s := &bundleSource{id: id, url: redactURL(p.BundleURL), name: name, interval: p.PollInterval.D(), hc: newBundleHTTPClient()}
	restCfg, err := json.Marshal(map[string]any{"url": base, "credentials": map[string]any{"plugin": "hookwall"}})
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	client, err := rest.New(restCfg, nil,
		rest.AuthPluginLookup(func(string) rest.HTTPAuthPlugin { return httpPlugin{s.hc} }),
		rest.Logger(logging.NewNoOpLogger()))
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", s.url, err)
	}
	trigger := plugins.TriggerManual
	dcfg := download.Config{Trigger: &trigger}
	if err := dcfg.ValidateAndInjectDefaults(); err != nil {
		return nil, fmt.Errorf("bundle %s: %w", s.url, err)
	}
	s.dl = download.New(dcfg, client, file).
		WithSizeLimitBytes(maxBundleBytes).
		WithBundleParserOpts(ast.ParserOptions{RegoVersion: ast.RegoV1, ProcessAnnotation: true}).
		WithCallback(func(_ context.Context, u download.Update) error {
			s.mu.Lock()
			s.update = &u
			s.mu.Unlock()
			return nil
		})
	if key != nil {
		kc := &bundle.KeyConfig{Key: string(key), Algorithm: p.BundleVerificationAlg}
		s.dl.WithBundleVerificationConfig(bundle.NewVerificationConfig(map[string]*bundle.KeyConfig{bundleKeyID: kc}, bundleKeyID, "", nil))
	}
	return s, nil
}

// newBundleHTTPClient returns the client bundles are downloaded with. A 200 answer's body
// reaches OPA only after it passed the size limits (see bundleLimitTransport).
func newBundleHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns, t.MaxIdleConnsPerHost = 2, 1
	t.ResponseHeaderTimeout = 30 * time.Second
	t.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	lt := &bundleLimitTransport{base: t, maxBytes: maxBundleBytes, maxEntries: maxBundleEntries}
	return &http.Client{Timeout: bundleFetchTimeout, Transport: lt, CheckRedirect: bundleRedirect}
}

// bundleRedirect follows a bundle server's redirect (to a CDN or an object store, say) at
// most five times, never from https to http (an unsigned bundle would then travel in the
// clear), and without the Referer Go sets, which is the previous URL with its query: the
// token a bundle URL may carry would reach the other host.
func bundleRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 5 {
		return errors.New("stopped after 5 redirects")
	}
	req.Header.Del("Referer")
	if via[0].URL.Scheme == "https" && req.URL.Scheme != "https" {
		return fmt.Errorf("redirect from https to %s refused", req.URL.Scheme)
	}
	return nil
}

// bundleLimitTransport bounds a downloaded bundle as a whole before OPA's downloader reads
// it. It reads a 200 answer's body, at most maxBytes compressed, then walks the gzip'd tar
// without keeping its contents: the entries' declared sizes must add up to at most maxBytes
// and there may be at most maxEntries of them. Only then does the body, served from memory,
// go on to OPA, whose loader reads exactly those entries. A bundle over a limit fails the
// request, so it never replaces the serving policy. A body that is not a gzip'd tar goes on
// unchanged: OPA reports its own error, after reading at most what was checked. Of any other
// answer at most maxBundleErrorBody bytes are read; closing it closes the connection with the
// rest unread.
type bundleLimitTransport struct {
	base       *http.Transport
	maxBytes   int64
	maxEntries int
}

func (t *bundleLimitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil || resp.Body == nil {
		return resp, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body = boundedBody{Reader: io.LimitReader(resp.Body, maxBundleErrorBody), Closer: resp.Body}
		return resp, nil
	}
	body, err := t.check(resp)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	return resp, nil
}

// boundedBody is a body read up to a bound (Reader) and closed whole (Closer).
type boundedBody struct {
	io.Reader
	io.Closer
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the transport.
func (t *bundleLimitTransport) CloseIdleConnections() { t.base.CloseIdleConnections() }

// errBundleTooLarge is what every limit error wraps.
var errBundleTooLarge = errors.New("too large")

func (t *bundleLimitTransport) check(resp *http.Response) ([]byte, error) {
	limit := fmt.Sprintf("the %s limit", formatBytes(t.maxBytes))
	if resp.ContentLength > t.maxBytes {
		return nil, fmt.Errorf("%w: %d bytes compressed (Content-Length) exceed %s", errBundleTooLarge, resp.ContentLength, limit)
	}
	var buf bytes.Buffer
	if resp.ContentLength > 0 {
		buf.Grow(int(resp.ContentLength))
	}
	n, err := io.Copy(&buf, io.LimitReader(resp.Body, t.maxBytes+1))
	if err != nil {
		return nil, err
	}
	if n > t.maxBytes {
		return nil, fmt.Errorf("%w: more than %s compressed", errBundleTooLarge, limit)
	}
	gr, err := gzip.NewReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		return buf.Bytes(), nil // not gzip: OPA says so
	}
	// The tar stream as a whole is bounded too, not only the entries Next returns: the
	// reader consumes GNU long-name and PAX headers (a MiB each, any number in a row)
	// without returning them, and OPA's loader decompresses the same stream again. Beside
	// the entries' bytes it holds, per entry, a header block, a PAX header and its records
	// (counted in the entry's size) and their padding: four blocks; and the end.
	stream := &capReader{r: gr, left: t.maxBytes + int64(t.maxEntries+2)*4*512}
	tr := tar.NewReader(stream)
	ctx := resp.Request.Context()
	var total int64
	for entries := 1; ; entries++ {
		h, err := tr.Next() // skips (decompresses) the previous entry's data, already counted
		if stream.over {
			return nil, fmt.Errorf("%w: its tar stream is longer than %s and its entries' headers", errBundleTooLarge, limit)
		}
		if err != nil {
			return buf.Bytes(), nil // the end, or a broken tar that OPA reports
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if entries > t.maxEntries {
			return nil, fmt.Errorf("%w: its tar has more than the limit of %d entries", errBundleTooLarge, t.maxEntries)
		}
		// OPA's loader keeps each entry's name as well as its content: a long name (a PAX or
		// GNU header allows a MiB) counts as bytes of the bundle, and past maxBundleName refuses it.
		if len(h.Name) > maxBundleName || len(h.Linkname) > maxBundleName {
			return nil, fmt.Errorf("%w: tar entry %d has a name longer than %d bytes", errBundleTooLarge, entries, maxBundleName)
		}
		size := h.Size + int64(len(h.Name)+len(h.Linkname))
		for k, v := range h.PAXRecords {
			size += int64(len(k) + len(v))
		}
		if h.Size < 0 || size > t.maxBytes-total {
			return nil, fmt.Errorf("%w: more than %s uncompressed (at tar entry %d, %q, of %d bytes)", errBundleTooLarge, limit, entries, h.Name, h.Size)
		}
		total += size
	}
}

// capReader reads r until left bytes were read, then fails (over is set).
type capReader struct {
	r    io.Reader
	left int64
	over bool
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		c.over = true
		return 0, errBundleTooLarge
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

// formatBytes renders n as whole MiB when it is one, else in bytes.
func formatBytes(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d-byte", n)
}

// httpPlugin hands OPA's rest client our http.Client, so the gateway owns its timeouts and
// can drop its idle connections when the source stops.
type httpPlugin struct{ hc *http.Client }

func (p httpPlugin) NewClient(rest.Config) (*http.Client, error) { return p.hc, nil }
func (httpPlugin) Prepare(*http.Request) error                   { return nil }

// fetch asks for the bundle once. It returns nil and no error when the server answered 304
// (the ETag matched): nothing to rebuild. It must not run concurrently with itself.
func (s *bundleSource) fetch(ctx context.Context) (*bundleRev, error) {
	ctx, cancel := context.WithTimeout(ctx, bundleFetchTimeout)
	defer cancel()
	s.mu.Lock()
	s.update = nil
	if s.refetch {
		etag := ""
		if s.current != nil {
			etag = s.current.etag
		}
		s.dl.SetCache(etag) // the refused bundle's ETag no longer matches: a 200 with it whole
		s.refetch = false
	}
	s.mu.Unlock()
	err := s.dl.Trigger(ctx)
	s.mu.Lock()
	u := s.update
	s.mu.Unlock()
	if err == nil && u != nil && u.Error != nil {
		err = u.Error
	}
	if err != nil {
		var he download.HTTPError
		if errors.As(err, &he) {
			return nil, fmt.Errorf("bundle %s: server answered %d", s.url, he.StatusCode)
		}
		// net/http's errors quote the whole request URL; keep only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("bundle %s: %w", s.url, err)
	}
	if u == nil || u.Bundle == nil {
		return nil, nil
	}
	return newBundleRev(s.name, u.Bundle, u.ETag)
}

// first fetches the bundle a new source starts from; a 304 or empty answer is an error.
func (s *bundleSource) first(ctx context.Context) (*bundleRev, error) {
	rev, err := s.fetch(ctx)
	if err != nil {
		return nil, err
	}
	if rev == nil {
		return nil, fmt.Errorf("bundle %s: the server sent no bundle", s.url)
	}
	return rev, nil
}

func (s *bundleSource) setCurrent(r *bundleRev) {
	s.mu.Lock()
	s.current, s.refused = r, false
	s.mu.Unlock()
}

// setRefused records that the bundle last downloaded was refused.
func (s *bundleSource) setRefused() {
	s.mu.Lock()
	s.refused = true
	s.mu.Unlock()
}

// retryRefused makes the next poll download a refused bundle again: the config that
// refused it changed.
func (s *bundleSource) retryRefused() {
	s.mu.Lock()
	s.refetch = s.refused
	s.mu.Unlock()
}

func (s *bundleSource) currentRev() *bundleRev {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.current
}

// start polls every interval until stop or ctx ends; each new bundle goes to apply, each
// failed download to failed. A 304 calls neither. wg counts the polling goroutine.
func (s *bundleSource) start(ctx context.Context, wg *sync.WaitGroup, apply func(context.Context, *bundleSource, *bundleRev), failed func(*bundleSource, error)) {
	ctx, cancel := context.WithCancel(ctx)
	s.mu.Lock()
	s.cancel = cancel
	s.mu.Unlock()
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer s.hc.CloseIdleConnections()
		t := time.NewTicker(s.interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			rev, err := s.fetch(ctx)
			switch {
			case ctx.Err() != nil:
				return
			case err != nil:
				failed(s, err)
			case rev != nil:
				apply(ctx, s, rev)
			}
		}
	}()
}

// stop ends polling without waiting: the poller may be waiting for the lock the caller holds.
func (s *bundleSource) stop() {
	s.mu.Lock()
	cancel := s.cancel
	s.mu.Unlock()
	if cancel != nil {
		cancel()
	} else {
		s.hc.CloseIdleConnections()
	}
}

// bundleRev is one downloaded bundle, ready to compile into a snapshot. Immutable.
type bundleRev struct {
	etag     string
	revision string            // manifest revision, as the bundle author set it
	digest   string            // of every module and the data
	serve    map[string]string // module name → source, without *_test.rego
	all      map[string]string // with tests
	data     map[string]any
}

func newBundleRev(name string, b *bundle.Bundle, etag string) (*bundleRev, error) {
	if b.Type() == bundle.DeltaBundleType {
		// A delta holds patches to the data, not the policies: read as a whole bundle it
		// would serve an empty policy set.
		return nil, fmt.Errorf("bundle %s is a delta bundle; the gateway takes snapshot bundles only", name)
	}
	r := &bundleRev{etag: etag, revision: b.Manifest.Revision, serve: map[string]string{}, all: map[string]string{}, data: b.Data}
	if r.data == nil {
		r.data = map[string]any{}
	}
	names := make([]string, 0, len(b.Modules))
	for _, m := range b.Modules {
		// Cleaned as a rooted path, so that "../" stays inside the bundle's name; two
		// entries spelled apart ("routes/flip.rego", "routes/./flip.rego") that name one
		// module refuse the bundle, rather than the tar's last silently replacing the other.
		n := path.Join(name, path.Clean("/"+m.Path))
		if _, dup := r.all[n]; dup {
			return nil, fmt.Errorf("bundle %s holds module %s twice (its tar has two entries for that path)", name, n)
		}
		r.all[n] = string(m.Raw)
		if !policy.IsTestFile(n) {
			r.serve[n] = string(m.Raw)
		}
		names = append(names, n)
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		fmt.Fprintf(h, "%s\x00%d\x00", n, len(r.all[n]))
		h.Write([]byte(r.all[n]))
	}
	// encoding/json sorts map keys, so equal data hashes equally.
	raw, err := json.Marshal(r.data)
	if err != nil {
		return nil, fmt.Errorf("bundle: data: %w", err)
	}
	h.Write(raw)
	fmt.Fprintf(h, "\x00%s", r.revision)
	r.digest = hex.EncodeToString(h.Sum(nil))[:12]
	return r, nil
}

// Load implements snapshot.PolicySource.
func (r *bundleRev) Load(ctx context.Context, o policy.Options) (*policy.Set, error) {
	return policy.LoadModules(ctx, r.serve, r.data, o)
}

// Revision implements snapshot.PolicySource.
func (r *bundleRev) Revision() string { return r.digest }

// testModules parses every module, tests included, for the test runner.
func (r *bundleRev) testModules() (map[string]*ast.Module, map[string]any, error) {
	mods, err := policy.ParseModules(r.all)
	return mods, r.data, err
}

// BundleStatus is what /-/status reports about the bundle source.
type BundleStatus struct {
	URL      string `json:"url"`
	ETag     string `json:"etag,omitempty"`
	Revision string `json:"revision,omitempty"` // the manifest's revision
	Digest   string `json:"digest"`
}

func (s *bundleSource) status() *BundleStatus {
	st := &BundleStatus{URL: s.url}
	if r := s.currentRev(); r != nil {
		st.ETag, st.Revision, st.Digest = r.etag, r.revision, r.digest
	}
	return st
}

// startBundleLocked polls src for the running gateway. g.mu is held.
func (g *Gateway) startBundleLocked(src *bundleSource) {
	if g.bgCtx == nil || src == nil {
		return
	}
	src.start(g.bgCtx, &g.bgWG, g.applyBundle, g.bundleFailed)
}

// applyBundle builds a snapshot from a new bundle and the live snapshot's config and inputs
// (secrets, filters, upstream pools: no file is read again, so a change on disk that a reload
// refused does not go live in part) and swaps it in when it is valid. A refused bundle is not
// fetched again until the server's ETag changes or a config reload (which may let it build)
// keeps this source.
func (g *Gateway) applyBundle(ctx context.Context, src *bundleSource, rev *bundleRev) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.bundle != src {
		return // a config reload replaced the source meanwhile
	}
	start := time.Now()
	live := g.snaps.Load()
	next, err := g.buildWith(ctx, live.Config, rev, snapshot.Options{Previous: live, KeepInputs: true})
	if err != nil {
		src.setRefused()
		_, _ = g.recordLocked(triggerBundle, start, "", fmt.Errorf("bundle %s: %w", src.url, err))
		return
	}
	g.snaps.Swap(next)
	src.setCurrent(rev)
	_, _ = g.recordLocked(triggerBundle, start, next.Revision, nil)
}

func (g *Gateway) bundleFailed(src *bundleSource, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.bundle != src {
		return
	}
	_, _ = g.recordLocked(triggerBundle, time.Now(), "", err)
}

// bundleFor returns the bundle source cfg asks for: running (the gateway's source, read under
// g.mu; nil for a gateway not yet built) when nothing about it changed, or a new one with its
// first bundle fetched (fresh; not polling yet). It returns nil when cfg reads policies from
// the directory.
func bundleFor(ctx context.Context, cfg *config.Config, running *bundleSource, pre *prefetched) (src *bundleSource, rev *bundleRev, fresh bool, err error) {
	if cfg.Policies.BundleURL == "" {
		return nil, nil, false, nil
	}
	if running != nil || pre != nil {
		id, _, err := bundleIdentity(cfg)
		if err != nil {
			return nil, nil, false, err
		}
		if running != nil && id == running.id {
			running.retryRefused()
			return running, running.currentRev(), false, nil
		}
		if pre != nil && pre.src.id == id {
			src, rev, err := pre.take()
			if err != nil {
				return nil, nil, false, err
			}
			return src, rev, true, nil
		}
	}
	src, err = newBundleSource(cfg)
	if err != nil {
		return nil, nil, false, err
	}
	rev, err = src.first(ctx)
	if err != nil {
		src.stop()
		return nil, nil, false, err
	}
	return src, rev, true, nil
}

// prefetched is a new bundle source and its first download (or why it failed), made before
// a reload takes the gateway's lock. The reload takes the source when the config it loads
// still asks for it; release stops it otherwise.
type prefetched struct {
	src   *bundleSource
	rev   *bundleRev
	err   error
	taken bool
}

func (p *prefetched) take() (*bundleSource, *bundleRev, error) {
	p.taken = true
	if p.err != nil {
		p.src.stop()
		return nil, nil, p.err
	}
	return p.src, p.rev, nil
}

func (p *prefetched) release() {
	if !p.taken {
		p.src.stop()
	}
}

// prefetchBundle downloads the first bundle of the source the config file asks for, when
// it is not the running one: nil when the config does not load, reads the policy
// directory, or keeps the running source.
func (g *Gateway) prefetchBundle(ctx context.Context) *prefetched {
	cfg, err := config.Load(g.path)
	if err != nil || cfg.Policies.BundleURL == "" {
		return nil
	}
	id, _, err := bundleIdentity(cfg)
	if err != nil {
		return nil
	}
	g.mu.Lock()
	running := g.bundle
	g.mu.Unlock()
	if running != nil && running.id == id {
		return nil
	}
	src, err := newBundleSource(cfg)
	if err != nil {
		return nil
	}
	rev, err := src.first(ctx)
	return &prefetched{src: src, rev: rev, err: err}
}

// redactURL drops a URL's query and fragment, which may carry an access token, from what
// the gateway logs and reports.
func redactURL(u string) string {
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		return u[:i]
	}
	return u
}
