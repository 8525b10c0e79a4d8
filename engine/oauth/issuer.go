package oauth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config is one issuer, with its secrets resolved. The zero values of the durations and
// bounds mean their defaults (DefaultLeeway and so on).
type Config struct {
	// Name is what policies pass to hookwall.oauth.verify.
	Name string
	// Issuer is the expected "iss" and the base of OIDC discovery. JWKSURL, when set, is
	// fetched instead of discovering it; Issuer may then be empty (iss is not checked).
	Issuer  string
	JWKSURL string
	// Audiences: a token's "aud" must name one of them.
	Audiences []string
	// Algorithms accepted (default RS256, ES256, EdDSA). HMAC ones need HMACSecrets.
	Algorithms []string
	// Leeway is the clock skew allowed on exp, nbf and iat.
	Leeway time.Duration
	// IntrospectionURL is the RFC 7662 endpoint for opaque tokens, called with ClientID and
	// ClientSecret (HTTP Basic).
	IntrospectionURL string
	ClientID         string
	ClientSecret     []byte
	// HMACSecrets are the shared secrets of HMAC algorithms (several: rotation).
	HMACSecrets [][]byte
	// CacheTTL is how often the key set is fetched again, and the longest an active
	// introspection answer is cached. MaxStale is how long past CacheTTL the last good key
	// set serves while fetches fail. MaxKeys bounds the key set. Timeout bounds each fetch
	// and introspection call.
	CacheTTL time.Duration
	MaxStale time.Duration
	MaxKeys  int
	Timeout  time.Duration
	// MinRefresh is the least time between two fetches of the key set asked for by tokens
	// with an unknown kid. NegativeTTL is how long an inactive introspection answer is
	// cached. Not configurable in gateway.toml; tests shorten them.
	MinRefresh  time.Duration
	NegativeTTL time.Duration
}

// Defaults of Config.
const (
	DefaultLeeway      = 30 * time.Second
	DefaultCacheTTL    = 5 * time.Minute
	DefaultMaxStale    = time.Hour
	DefaultMaxKeys     = 32
	DefaultTimeout     = 5 * time.Second
	DefaultMinRefresh  = 10 * time.Second
	DefaultNegativeTTL = 10 * time.Second
	// MaxLeeway is the largest leeway gateway.toml may set.
	MaxLeeway = 5 * time.Minute
	// MinCacheTTL is the shortest refresh interval gateway.toml may set.
	MinCacheTTL = time.Second
	// maxDocument bounds a discovery document, key set or introspection answer.
	maxDocument = 512 << 10
	// maxIntrospectInFlight bounds concurrent introspection calls per issuer, so a flood of
	// made-up opaque tokens cannot turn into as many calls to the issuer.
	maxIntrospectInFlight = 16
	// maxIntrospectCache bounds the cached introspection answers per issuer.
	maxIntrospectCache = 10000
)

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.Leeway, DefaultLeeway)
	def(&c.CacheTTL, DefaultCacheTTL)
	def(&c.MaxStale, DefaultMaxStale)
	def(&c.Timeout, DefaultTimeout)
	def(&c.MinRefresh, DefaultMinRefresh)
	def(&c.NegativeTTL, DefaultNegativeTTL)
	if c.MaxKeys == 0 {
		c.MaxKeys = DefaultMaxKeys
	}
	if len(c.Algorithms) == 0 {
		c.Algorithms = DefaultAlgorithms()
	}
	return c
}

// CheckURL reports whether u may be fetched for an issuer: https, or http to a loopback
// host (a key set fetched in clear text from elsewhere could be replaced on the way).
func CheckURL(u string) error {
	p, err := url.Parse(u)
	switch {
	case err != nil:
		return fmt.Errorf("invalid URL: %w", err)
	case p.Host == "":
		return fmt.Errorf("missing host in %q", u)
	case p.User != nil:
		return errors.New("must not carry credentials")
	case p.Scheme == "https":
		return nil
	case p.Scheme == "http" && isLoopback(p.Hostname()):
		return nil
	case p.Scheme == "http":
		return fmt.Errorf("%q: plain http is allowed to a loopback host only; use https", u)
	}
	return fmt.Errorf("%q: scheme must be https", u)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Stats is an issuer's state for status pages and metrics.
type Stats struct {
	Name string `json:"name"`
	// Keys is the number of keys in the serving set; 0 before the first fetch.
	Keys int `json:"keys"`
	// LastRefresh is when the serving set was fetched; zero before the first.
	LastRefresh time.Time `json:"last_refresh"`
	// Refreshes and Failures count key set fetches that succeeded and failed.
	Refreshes uint64 `json:"refreshes"`
	Failures  uint64 `json:"failures"`
	LastError string `json:"last_error,omitempty"`
	// Stale: the serving set is past CacheTTL + MaxStale (or there is none): tokens fail.
	Stale bool `json:"stale"`
	// Introspections and IntrospectionErrors count calls of the introspection endpoint.
	Introspections      uint64 `json:"introspections"`
	IntrospectionErrors uint64 `json:"introspection_errors"`
}

// Issuer verifies the tokens of one issuer. Create it with newIssuer, Start it, Close it.
type Issuer struct {
	cfg         Config
	algs        map[string]*algorithm
	hmacSecrets [][]byte
	hash        string
	// holders counts the Sets that hold the issuer (Set.Close): the last to close stops it.
	holders atomic.Int32
	client  *http.Client
	log     *slog.Logger
	now     func() time.Time

	keys     atomic.Pointer[keySet]
	headers  headerCache
	fetched  atomic.Pointer[chan struct{}] // closed when the fetch under way (or the next) ends
	fetching atomic.Bool                   // a fetch is under way
	kick     chan struct{}
	// lastKick is when a token last asked for an early fetch (unix nanoseconds).
	lastKick atomic.Int64

	refreshes, failures  atomic.Uint64
	intro, introErrs     atomic.Uint64
	lastErr              atomic.Pointer[string]
	introActive          introCache    // active answers
	introRefused         introCache    // inactive answers and answers refused on their claims
	introSlots           chan struct{} // bounds concurrent introspection calls
	startOnce, closeOnce sync.Once
	cancel               context.CancelFunc
	done                 chan struct{}
}

// newIssuer checks cfg and returns an Issuer that has fetched nothing yet. logger and now
// may be nil (slog.Default, time.Now).
func newIssuer(cfg Config, logger *slog.Logger, now func() time.Time) (*Issuer, error) {
	cfg = cfg.withDefaults()
	if logger == nil {
		logger = slog.Default()
	}
	if now == nil {
		now = time.Now
	}
	fail := func(format string, a ...any) (*Issuer, error) {
		return nil, fmt.Errorf("oauth %q: "+format, append([]any{cfg.Name}, a...)...)
	}
	if cfg.Name == "" {
		return fail("name is required")
	}
	if cfg.Issuer == "" && cfg.JWKSURL == "" && cfg.IntrospectionURL == "" {
		return fail("set issuer, jwks_url or introspection_url")
	}
	for _, u := range []string{cfg.Issuer, cfg.JWKSURL, cfg.IntrospectionURL} {
		if u != "" {
			if err := CheckURL(u); err != nil {
				return fail("%w", err)
			}
		}
	}
	if cfg.IntrospectionURL != "" && (cfg.ClientID == "" || len(cfg.ClientSecret) == 0) {
		return fail("introspection_url needs client_id and client_secret")
	}
	is := &Issuer{cfg: cfg, algs: map[string]*algorithm{}, log: logger.With("oauth", cfg.Name), now: now,
		kick: make(chan struct{}, 1), done: make(chan struct{}), introSlots: make(chan struct{}, maxIntrospectInFlight)}
	for _, name := range cfg.Algorithms {
		isHMAC, err := CheckAlgorithm(name)
		if err != nil {
			return fail("algorithms: %w", err)
		}
		a := algorithms[name]
		if isHMAC {
			if len(cfg.HMACSecrets) == 0 {
				return fail("algorithm %s needs a shared secret (hmac_secret); it is never checked against a public key", name)
			}
			for _, s := range cfg.HMACSecrets {
				if len(s) < a.hash.Size() {
					return fail("hmac_secret is %d bytes; %s needs at least %d", len(s), name, a.hash.Size())
				}
			}
			is.hmacSecrets = cfg.HMACSecrets
		}
		is.algs[name] = a
	}
	if len(cfg.HMACSecrets) > 0 && is.hmacSecrets == nil {
		return fail("hmac_secret is set but no HMAC algorithm (HS256, HS384, HS512) is in algorithms")
	}
	is.hash = cfg.digest()
	ch := make(chan struct{})
	is.fetched.Store(&ch)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 4
	is.client = &http.Client{Transport: tr, CheckRedirect: checkRedirect}
	return is, nil
}

// checkRedirect follows at most a few redirects of a discovery document or key set, each to
// a URL CheckURL accepts and never from https to http (CheckURL accepts http to a loopback
// host as configured; a remote server redirecting there is not that). An introspection call
// follows none: a 307 would POST the token elsewhere, a 302 would turn the call into a GET,
// and either answer would decide whether the token is active.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if via[0].Method != http.MethodGet {
		return fmt.Errorf("%s %s answered with a redirect", via[0].Method, via[0].URL.Redacted())
	}
	if len(via) >= 3 {
		return errors.New("too many redirects")
	}
	if req.URL.Scheme != "https" {
		for _, prev := range via {
			if prev.URL.Scheme == "https" {
				return fmt.Errorf("redirect from https to %s", req.URL.Scheme)
			}
		}
	}
	return CheckURL(req.URL.String())
}

// digest identifies the configuration, secrets by hash: an issuer with the same digest is
// shared across a reload.
func (c Config) digest() string {
	h := sha256.New()
	fmt.Fprintf(h, "%q %q %q %q %q %q %q %d %d %d %d %d %d %d\x00", c.Name, c.Issuer, c.JWKSURL, c.Audiences, c.Algorithms,
		c.IntrospectionURL, c.ClientID, c.Leeway, c.CacheTTL, c.MaxStale, c.MaxKeys, c.Timeout, c.MinRefresh, c.NegativeTTL)
	for _, s := range append([][]byte{c.ClientSecret}, c.HMACSecrets...) {
		sum := sha256.Sum256(s)
		h.Write(sum[:])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Name is the issuer's configured name.
func (is *Issuer) Name() string { return is.cfg.Name }

// Start launches the refresher, which fetches the key set at once and then every CacheTTL,
// until Close. An issuer without issuer or jwks_url starts nothing. Start is idempotent.
func (is *Issuer) Start() {
	is.startOnce.Do(func() {
		if is.cfg.Issuer == "" && is.cfg.JWKSURL == "" {
			close(is.done)
			return
		}
		ctx, cancel := context.WithCancel(context.Background())
		is.cancel = cancel
		go is.run(ctx)
	})
}

// Close stops the refresher and waits for it. Verify keeps answering from what was fetched
// (without refreshes). Idempotent; safe without Start.
func (is *Issuer) Close() {
	is.closeOnce.Do(func() {
		is.startOnce.Do(func() { close(is.done) })
		if is.cancel != nil {
			is.cancel()
		}
		<-is.done
		is.client.CloseIdleConnections()
	})
}

func (is *Issuer) run(ctx context.Context) {
	defer close(is.done)
	backoff := min(time.Second, is.cfg.CacheTTL)
	for {
		err := is.refresh(ctx)
		wait := is.cfg.CacheTTL
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			wait, backoff = backoff, min(2*backoff, is.cfg.CacheTTL)
		} else {
			backoff = min(time.Second, is.cfg.CacheTTL)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-is.kick:
			t.Stop()
		}
	}
}

// refresh fetches and installs the key set once, and wakes whoever waits for it.
func (is *Issuer) refresh(ctx context.Context) error {
	is.fetching.Store(true)
	defer func() {
		is.fetching.Store(false)
		next := make(chan struct{})
		close(*is.fetched.Swap(&next))
	}()
	start := is.now()
	keys, skipped, err := is.fetchKeys(ctx)
	if err != nil {
		is.failures.Add(1)
		msg := err.Error()
		is.lastErr.Store(&msg)
		if ctx.Err() == nil {
			is.log.Warn("oauth: key set fetch failed; the last good set keeps serving", "err", err)
		}
		return err
	}
	is.refreshes.Add(1)
	is.lastErr.Store(nil)
	is.keys.Store(newKeySet(keys, start.UnixNano()))
	if skipped > 0 {
		is.log.Debug("oauth: key set fetched", "keys", len(keys), "skipped", skipped)
	}
	return nil
}

// fetchKeys discovers the key set's URL (unless configured) and fetches and parses it.
func (is *Issuer) fetchKeys(ctx context.Context) ([]*key, int, error) {
	jwksURL := is.cfg.JWKSURL
	if jwksURL == "" {
		var disc struct {
			Issuer  string `json:"issuer"`
			JWKSURI string `json:"jwks_uri"`
		}
		u := strings.TrimSuffix(is.cfg.Issuer, "/") + "/.well-known/openid-configuration"
		doc, err := is.get(ctx, u)
		if err != nil {
			return nil, 0, err
		}
		if err := json.Unmarshal(doc, &disc); err != nil {
			return nil, 0, fmt.Errorf("discovery %s: not JSON: %w", u, err)
		}
		// OpenID Connect Discovery 1.0 section 4.3: the document's issuer must be the one asked.
		if disc.Issuer != is.cfg.Issuer {
			return nil, 0, fmt.Errorf("discovery %s: issuer is %q, not the configured %q", u, disc.Issuer, is.cfg.Issuer)
		}
		if err := CheckURL(disc.JWKSURI); err != nil {
			return nil, 0, fmt.Errorf("discovery %s: jwks_uri: %w", u, err)
		}
		jwksURL = disc.JWKSURI
	}
	doc, err := is.get(ctx, jwksURL)
	if err != nil {
		return nil, 0, err
	}
	keys, skipped, err := parseKeySet(doc, is.cfg.MaxKeys)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", jwksURL, err)
	}
	return keys, skipped, nil
}

// get fetches u within Timeout, refusing answers other than 200 and bodies over maxDocument.
func (is *Issuer) get(ctx context.Context, u string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, is.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	req.Header.Set("Accept", "application/json")
	return is.do(req)
}

func (is *Issuer) do(req *http.Request) ([]byte, error) {
	where := req.Method + " " + req.URL.Redacted()
	resp, err := is.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocument+1))
	if err != nil {
		return nil, fmt.Errorf("%s: reading the answer: %w", where, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: status %d", where, resp.StatusCode)
	}
	if len(body) > maxDocument {
		return nil, fmt.Errorf("%s: answer larger than %d bytes", where, maxDocument)
	}
	return body, nil
}

// awaitRefresh waits for a fetch of the key set, bounded by ctx and Timeout, and returns
// the set then serving. When no fetch is under way it asks the refresher for one, unless a
// token asked within MinRefresh: then it returns at once with the set it has.
func (is *Issuer) awaitRefresh(ctx context.Context) *keySet {
	select {
	case <-is.done:
		return is.keys.Load() // closed, or never started
	default:
	}
	ch := *is.fetched.Load()
	if !is.fetching.Load() {
		now := is.now().UnixNano()
		last := is.lastKick.Load()
		if now-last < int64(is.cfg.MinRefresh) || !is.lastKick.CompareAndSwap(last, now) {
			return is.keys.Load()
		}
		select {
		case is.kick <- struct{}{}:
		default:
		}
	}
	t := time.NewTimer(is.cfg.Timeout)
	defer t.Stop()
	select {
	case <-ch:
	case <-ctx.Done():
	case <-t.C:
	case <-is.done:
	}
	return is.keys.Load()
}

// Verify checks token, a bare token or an Authorization header value, at time now. Only a
// token whose kid is unknown (or that arrives before the first key set) waits, for a fetch
// the refresher makes; an opaque token calls the introspection endpoint unless its answer
// is cached. ctx bounds both waits.
func (is *Issuer) Verify(ctx context.Context, token string, now time.Time) Result {
	tok, reason := bearer(token)
	if reason != "" {
		return refuse(reason)
	}
	dot1 := strings.IndexByte(tok, '.')
	dot2 := -1
	if dot1 >= 0 {
		if d := strings.IndexByte(tok[dot1+1:], '.'); d >= 0 {
			dot2 = dot1 + 1 + d
		}
	}
	if is.cfg.Issuer == "" && is.cfg.JWKSURL == "" && len(is.hmacSecrets) == 0 {
		return is.introspect(ctx, tok, now) // no keys: every token is introspected
	}
	if dot2 < 0 || strings.IndexByte(tok[dot2+1:], '.') >= 0 {
		if is.cfg.IntrospectionURL == "" {
			if dot1 >= 0 {
				return refuse(ReasonMalformed)
			}
			return refuse(ReasonOpaque)
		}
		return is.introspect(ctx, tok, now)
	}
	if !jwsChars(tok) {
		// base64url and dots only: the decoder would skip CR and LF, letting one signed
		// token be presented in many spellings.
		return refuse(ReasonMalformed)
	}
	return is.verifyJWT(ctx, tok, dot1, dot2, now)
}

// jwsChars reports whether tok holds only base64url characters and dots.
func jwsChars(tok string) bool {
	for i := 0; i < len(tok); i++ {
		if !jwsAlphabet[tok[i]] {
			return false
		}
	}
	return true
}

// jwsAlphabet marks the bytes of base64url and the dot. Read-only.
var jwsAlphabet = func() (t [256]bool) {
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") {
		t[c] = true
	}
	return t
}()

// Stats reports the issuer's state at now.
func (is *Issuer) Stats() Stats {
	st := Stats{Name: is.cfg.Name, Refreshes: is.refreshes.Load(), Failures: is.failures.Load(),
		Introspections: is.intro.Load(), IntrospectionErrors: is.introErrs.Load(), Stale: true}
	if e := is.lastErr.Load(); e != nil {
		st.LastError = *e
	}
	if ks := is.keys.Load(); ks != nil {
		st.Keys = len(ks.all)
		st.LastRefresh = time.Unix(0, ks.fetched)
		st.Stale = is.now().UnixNano() > ks.fetched+int64(is.cfg.CacheTTL+is.cfg.MaxStale)
	}
	if is.cfg.Issuer == "" && is.cfg.JWKSURL == "" {
		st.Stale = false // introspection only: no key set to be stale
	}
	return st
}
