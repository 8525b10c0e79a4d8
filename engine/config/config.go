package config

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/BurntSushi/toml"

	"github.com/hookwall/hookwall/engine/delivery/postgres"
)

// Config is the decoded gateway.toml. Treat it as read-only once Load returns.
type Config struct {
	// File is the path the config was read from; Dir is its directory, the base of relative paths.
	File string `toml:"-"`
	Dir  string `toml:"-"`
	// Digest is the SHA-256 of the bytes parsed: what the snapshot's revision names, the file
	// as it was read, not as it may be by the time a reload has built it.
	Digest [32]byte `toml:"-"`

	loc *locator // where each key was written: Where

	Server   Server               `toml:"server"`
	Admin    Admin                `toml:"admin"`
	Policies Policies             `toml:"policies"`
	Log      Log                  `toml:"log"`
	State    State                `toml:"state"`
	Watch    Watch                `toml:"watch"`
	Delivery Delivery             `toml:"delivery"`
	Demo     Demo                 `toml:"demo"`
	Secrets  map[string]SecretRef `toml:"secrets"`
	Filters  []Filter             `toml:"filter"`
	Routes   []Route              `toml:"route"`
	OAuth    []OAuth              `toml:"oauth"`
}

// Server is the public listener.
type Server struct {
	Listen    string `toml:"listen"`
	MaxBody   Size   `toml:"max_body"`
	MaxHeader Size   `toml:"max_header"`
	// MaxHeaders bounds the fields of a request's header block (431 past it).
	MaxHeaders int `toml:"max_headers"`
	// MaxJSONDepth and MaxJSONElements bound the parse of a body into input.request.json
	// (422 and 413 past them).
	MaxJSONDepth    int      `toml:"max_json_depth"`
	MaxJSONElements int      `toml:"max_json_elements"`
	ReadTimeout     Duration `toml:"read_timeout"`
	WriteTimeout    Duration `toml:"write_timeout"`
	IdleTimeout     Duration `toml:"idle_timeout"`
	TrustedProxies  []string `toml:"trusted_proxies"`
	// MaxConns bounds concurrent connections; MaxConnsPerIP bounds them per client IP.
	MaxConns      int `toml:"max_conns"`
	MaxConnsPerIP int `toml:"max_conns_per_ip"`
	// TLSCert and TLSKey (PEM files) turn the listener into HTTPS (TLS 1.2 minimum). ClientCA
	// (a PEM bundle) also requires every client to present a certificate signed by one of its
	// CAs (mTLS). Changing them needs a restart.
	TLSCert  string `toml:"tls_cert"`
	TLSKey   string `toml:"tls_key"`
	ClientCA string `toml:"client_ca"`
	// PathNormalization says what becomes of a request whose path an upstream could read as
	// another path than its canonical form (dot segments, encoded dots, slashes or
	// backslashes, double encoding, bytes that are not UTF-8): "reject" (the default) answers
	// 400; "forward_canonical" routes, shows the policy and forwards the canonical form.
	PathNormalization string `toml:"path_normalization"`
	// UnderscoreHeaders says what becomes of a request with an underscore in a header
	// field's name: "reject" (the default) answers 400; "drop" removes those fields before
	// any filter or rule sees the request. Many servers read X_Foo as X-Foo (CGI's
	// HTTP_X_FOO), so such a field would reach the upstream under a name the policy, and
	// the headers the gateway strips or sets, know under another.
	UnderscoreHeaders string `toml:"underscore_headers"`
	// ForwardClientHeaders names client headers the gateway strips by default (see
	// ClientHeaders) that this gateway forwards all the same.
	ForwardClientHeaders []string `toml:"forward_client_headers"`
	// TimerSlack is how late the kernel may fire the gateway's timers, in return for waking
	// it less often (Linux; default DefaultTimerSlack, 0 keeps what the gateway was started
	// with). See package timerslack. Changing it needs a restart.
	TimerSlack Duration `toml:"timer_slack"`

	trusted []netip.Prefix
	// stripMarks has bit i set when ClientHeaders()[i] is stripped, resolved once per
	// configuration for the request path.
	stripMarks uint32
}

// Path normalisation modes ([server] path_normalization).
const (
	PathReject           = "reject"
	PathForwardCanonical = "forward_canonical"
)

// What a header name with an underscore gets ([server] underscore_headers).
const (
	UnderscoreReject = "reject"
	UnderscoreDrop   = "drop"
)

// Trusted returns the parsed trusted_proxies prefixes. The slice is shared: do not modify it.
func (s *Server) Trusted() []netip.Prefix { return s.trusted }

// StripHeaders returns the client headers stripped before forwarding: ClientHeaders but those
// forward_client_headers keeps (StripMarks as names).
func (s *Server) StripHeaders() []string {
	var names []string
	for i, h := range clientHeaders {
		if s.stripMarks&(1<<i) != 0 {
			names = append(names, h)
		}
	}
	return names
}

// StripMarks returns StripHeaders as a set of marks: bit i set when ClientHeaders()[i] is
// stripped.
func (s *Server) StripMarks() uint32 { return s.stripMarks }

// clientHeaders tell a backend framework that the client's address, scheme, URL, method or
// client certificate is other than the request's own; a client sets them to be trusted
// where it must not be. The certificate headers are those a TLS-terminating proxy sets for
// its upstream (Envoy's XFCC, RFC 9440's, nginx's, Traefik's, IIS ARR's): behind a gateway
// that terminates mTLS, a partner with a valid certificate would otherwise claim another's.
// There are at most 32 of them, one bit each of Server.StripMarks.
var clientHeaders = [...]string{
	"Forwarded", "X-Real-Ip", "X-Client-Ip", "True-Client-Ip", "X-Cluster-Client-Ip",
	"X-Original-Url", "X-Rewrite-Url", "X-Forwarded-Prefix", "X-Forwarded-Port", "X-Forwarded-Server",
	"X-Forwarded-Scheme", "X-Forwarded-Ssl", "Front-End-Https",
	"X-Http-Method-Override", "X-Http-Method", "X-Method-Override",
	"X-Forwarded-Client-Cert", "Client-Cert", "Client-Cert-Chain", "X-Client-Cert",
	"X-Ssl-Client-Cert", "X-Ssl-Client-Dn", "X-Ssl-Client-S-Dn", "X-Ssl-Client-I-Dn", "X-Ssl-Client-Verify",
	"Ssl-Client-Cert", "Ssl-Client-Verify", "X-Forwarded-Tls-Client-Cert", "X-Forwarded-Tls-Client-Cert-Info",
	"X-Arr-Clientcert",
}

// ClientHeaders returns the client headers the gateway strips unless
// [server] forward_client_headers names them, in a new slice.
func ClientHeaders() []string { return append([]string(nil), clientHeaders[:]...) }

// A 33rd client header would not fit StripMarks.
var _ [32 - len(clientHeaders)]struct{}

// Admin is the admin listener (health, status, reload, metrics).
type Admin struct {
	Listen string `toml:"listen"`
	// Token is required when Listen is not a loopback address; sent as "Authorization: Bearer <token>".
	Token string `toml:"token"`
	// TLSCert and TLSKey (PEM files) make the admin listener HTTPS (TLS 1.2 minimum), so that
	// the token does not cross the network in clear text. Both or neither; re-read at every
	// reload, like the public listener's.
	TLSCert string `toml:"tls_cert"`
	TLSKey  string `toml:"tls_key"`
}

// Policies says where Rego comes from and how changes are picked up.
type Policies struct {
	Dir           string   `toml:"dir"`
	AllowBuiltins []string `toml:"allow_builtins"`
	// Watch reloads the gateway when a watched file changes: the policy dir (with its
	// subdirectories), gateway.toml, every filter module and secret file. Default true.
	Watch bool `toml:"watch"`
	// TestOnReload runs the *_test.rego files before a change is applied and refuses the
	// change when a test fails or errors.
	TestOnReload bool `toml:"test_on_reload"`
	// BundleURL, when set, makes an OPA bundle (.tar.gz) fetched over HTTP(S) the policy
	// source instead of Dir. It is polled every PollInterval (default 30s) with ETags.
	BundleURL    string   `toml:"bundle_url"`
	PollInterval Duration `toml:"poll_interval"`
	// BundleVerificationKey is a file holding the key that signed bundles must verify with
	// (a PEM public key, or the shared secret for HS256/384/512); when set, unsigned bundles
	// are refused. BundleVerificationAlg is its algorithm (default RS256, as in OPA).
	BundleVerificationKey string `toml:"bundle_verification_key"`
	BundleVerificationAlg string `toml:"bundle_verification_alg"`
	// Evaluator is "auto" (default): a package inside the compiled fast path's subset of
	// Rego is evaluated by it, any other by OPA's topdown; or "opa": topdown for every package.
	Evaluator Evaluator `toml:"evaluator"`
	// CrossCheck is the share (0..1, default 0.01) of compiled decisions evaluated again
	// with topdown off the request path; 0 turns it off. OnDivergence is what a difference
	// does: "opa" (default) logs it, counts it and moves the route to topdown until the next
	// reload; "log" only logs and counts it.
	CrossCheck   float64      `toml:"cross_check"`
	OnDivergence OnDivergence `toml:"on_divergence"`
	// CrossCheckMax is the most sampled decisions the gateway evaluates again a second
	// (default DefaultCrossCheckMax); 0 sets no ceiling. A sample over it is skipped.
	CrossCheckMax int `toml:"cross_check_max"`
}

// Evaluator is [policies] evaluator.
type Evaluator string

// Evaluator values.
const (
	EvaluatorAuto Evaluator = "auto" // the compiled fast path where it covers a package
	EvaluatorOPA  Evaluator = "opa"  // OPA's topdown for every package
)

// OnDivergence is [policies] on_divergence: what a cross-check difference does.
type OnDivergence string

// OnDivergence values.
const (
	DivergenceOPA OnDivergence = "opa" // log, count and move the route to topdown
	DivergenceLog OnDivergence = "log" // log and count only
)

// DefaultCrossCheck is the share of compiled decisions cross-checked with topdown.
const DefaultCrossCheck = 0.01

// DefaultCrossCheckMax is the default ceiling of cross-checks a second, on the principle
// that the cross-check's worker takes at most about 1 % of a core in the background: a check
// of the benchmark's reference policy cost 94–172 µs of CPU in a loaded gateway, so 50 a
// second is 5–9 ms a second. Its whole cost to a saturated gateway, measured as the
// gateway's CPU a request, was up to about 4 % (README, "How policies are evaluated").
const DefaultCrossCheckMax = 50

// Policy source defaults and bounds.
const (
	DefaultPollInterval = 30 * time.Second
	MinPollInterval     = 100 * time.Millisecond
	DefaultBundleAlg    = "RS256"
)

// bundleAlgs are the signature algorithms OPA verifies bundles with.
var bundleAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "HS256", "HS384", "HS512"}

// Log configures the decision log and the process log.
type Log struct {
	// Decisions is "stdout", "off" or a file path.
	Decisions string `toml:"decisions"`
	// Level of the process log: debug, info, warn, error.
	Level string `toml:"level"`
	// Mask names request headers whose values the decision log writes as "***", on top of
	// the ones always masked (Authorization, cookies, signature and token headers). A name
	// ending in "*" masks every header with that prefix ("*" alone masks them all). Case does
	// not matter.
	Mask []string `toml:"mask"`
	// Body is how many bytes of the request body each decision-log record carries (as
	// received, truncated to Body). 0, the default, logs no body.
	Body Size `toml:"body"`
}

// State selects the store for rate limits and duplicates.
type State struct {
	Backend  StateBackend `toml:"backend"`
	URL      string       `toml:"url"`
	Timeout  Duration     `toml:"timeout"`
	FailMode FailMode     `toml:"fail_mode"`
	Prefix   string       `toml:"prefix"`
	MaxKeys  int          `toml:"max_keys"`
	MaxBytes Size         `toml:"max_bytes"`
}

// StateBackend is [state] backend.
type StateBackend string

// StateBackend values.
const (
	StateMemory StateBackend = "memory"
	StateRedis  StateBackend = "redis"
)

// FailMode is [state] fail_mode: what a request gets when the state backend fails.
type FailMode string

// FailMode values.
const (
	FailClosed FailMode = "closed" // refused (503)
	FailOpen   FailMode = "open"   // let through unchecked
)

// Delivery configures the store of queued routes' deliveries. It is opened only when some
// route has delivery = "queued".
type Delivery struct {
	// Store is "sqlite" (default: a file at Path, beside the config unless absolute; one
	// gateway) or "postgres" (the database at URL, shared by a fleet).
	Store DeliveryStore `toml:"store"`
	Path  string        `toml:"path"`
	URL   string        `toml:"url"`
	// KeepDelivered and KeepDead: how long finished deliveries stay (replayable); "0"
	// keeps them until purged.
	KeepDelivered Duration `toml:"keep_delivered"`
	KeepDead      Duration `toml:"keep_dead"`
	// MaxPending bounds the deliveries waiting; beyond it a queued route answers 503.
	MaxPending int `toml:"max_pending"`
	// EncryptionKeys names [secrets] holding AES-256 keys (32 bytes, base64 or hex), newest
	// first: stored headers and bodies are sealed with the first, and open with any.
	EncryptionKeys []string `toml:"encryption_keys"`
	// InspectBodies lets GET /-/deliveries/{id} show a delivery's headers and body, when
	// the admin API has a token.
	InspectBodies bool `toml:"inspect_bodies"`
}

// DeliveryStore is [delivery] store.
type DeliveryStore string

// DeliveryStore values.
const (
	StoreSQLite   DeliveryStore = "sqlite"
	StorePostgres DeliveryStore = "postgres"
)

// DeliveryMode is a route's delivery.
type DeliveryMode string

// Delivery modes of a route.
const (
	DeliveryDirect DeliveryMode = "direct"
	DeliveryQueued DeliveryMode = "queued"
)

// Delivery defaults.
const (
	DefaultDeliveryPath  = "hookwall-deliveries.db"
	DefaultKeepDelivered = 24 * time.Hour
	DefaultKeepDead      = 7 * 24 * time.Hour
	DefaultMaxPending    = 1000000
	// MaxRetries bounds a route's retry schedule.
	MaxRetries = 100
)

// Demo runs a built-in upstream for trying hookwall without a backend.
type Demo struct {
	// Sink is a loopback address where a sink answers every request with a JSON summary of
	// what reached it (method, path, body size and SHA-256). Empty means off.
	Sink string `toml:"sink"`
}

// SecretRef says where a secret's value is read from: exactly one of Env or File.
type SecretRef struct {
	Env  string `toml:"env"`
	File string `toml:"file"`
}

// OnError is what a route does when one of its filters fails: a [[filter]]'s on_error.
type OnError string

// OnError values.
const (
	OnErrorDeny OnError = "deny" // refuse the request (500, or 503 for a timeout or a full pool)
	OnErrorSkip OnError = "skip" // go on as if the filter were absent (a full pool still 503s)
)

// Filter is a WASM filter ([[filter]]).
type Filter struct {
	Name    string   `toml:"name"`
	Module  string   `toml:"module"`
	Config  string   `toml:"config"`
	Timeout Duration `toml:"timeout"`
	Memory  Size     `toml:"memory"`
	Pool    int      `toml:"pool"`
	PoolMax int      `toml:"pool_max"`
	MaxUses int      `toml:"max_uses"`
	OnError OnError  `toml:"on_error"`

	// NoDeadline is set when timeout = "0": the filter is trusted to terminate.
	NoDeadline bool `toml:"-"`
}

// Route is one [[route]].
type Route struct {
	Name     string   `toml:"name"`
	Host     string   `toml:"host"`
	Path     string   `toml:"path"`
	Prefix   string   `toml:"prefix"`
	Methods  []string `toml:"methods"`
	Upstream string   `toml:"upstream"`
	Policy   string   `toml:"policy"`
	Filters  []string `toml:"filters"`
	Timeout  Duration `toml:"timeout"`
	// UpstreamCA is a PEM bundle of the CAs the certificate of an https upstream, or of an
	// https destination of a queued route, must chain to, instead of the system pool.
	UpstreamCA string `toml:"upstream_ca"`
	// MaxResponseBody bounds the body of the upstream's answer (default 64MiB). A larger one
	// is not read to its end: the client gets 502 and the connection is dropped.
	MaxResponseBody Size `toml:"max_response_body"`
	// ShadowPolicy is a Rego package evaluated beside Policy on the same input. Its decision
	// never changes the answer: it is logged (the record's "shadow" field) and counted, so a
	// stricter policy can be tried on live traffic before it replaces Policy.
	ShadowPolicy string `toml:"shadow_policy"`
	// Delivery is "direct" (default: forwarded while the client waits) or "queued" (stored,
	// answered 202, delivered by workers with retries).
	Delivery DeliveryMode `toml:"delivery"`
	// Retry is a queued route's schedule: the delays before the second, third, … attempt.
	// Absent: 5s, 5m, 30m, 2h, 5h, 10h, 10h.
	Retry []Duration `toml:"retry"`
	// Sign names a [secrets] entry (whsec_… or base64, as Standard Webhooks issues them):
	// each delivery is signed with the Standard Webhooks scheme (webhook-id,
	// webhook-timestamp, webhook-signature).
	Sign string `toml:"sign"`
	// MaxInFlight and MaxRate bound a queued route's attempts to each of its destinations
	// per gateway: at once, and per second. 0 (default): no bound.
	MaxInFlight int     `toml:"max_in_flight"`
	MaxRate     float64 `toml:"max_rate"`
	// Destinations are more upstreams a queued route delivers each request to, beside
	// Upstream, each with its own attempts (fan-out).
	Destinations []string `toml:"destinations"`
	// Ordered delivers a queued route's requests one at a time in arrival order; a failing
	// head holds the route back until it is delivered or dead.
	Ordered bool `toml:"ordered"`

	upstream *url.URL
}

// Queued reports whether the route delivers through the delivery store.
func (r *Route) Queued() bool { return r.Delivery == DeliveryQueued }

// AnyQueued reports whether some route is queued: only then is a delivery store opened.
func (c *Config) AnyQueued() bool {
	for i := range c.Routes {
		if c.Routes[i].Queued() {
			return true
		}
	}
	return false
}

// UpstreamURL returns the parsed upstream URL. Do not modify it.
func (r *Route) UpstreamURL() *url.URL { return r.upstream }

// Defaults applied by Load when a key is absent.
const (
	DefaultListen      = "127.0.0.1:8080"
	DefaultAdminListen = "127.0.0.1:9090"
	DefaultMaxBody     = 1 << 20
	DefaultMaxHeader   = 16 << 10
	DefaultMaxHeaders  = 100
	// DefaultMaxJSONDepth and DefaultMaxJSONElements bound input.request.json: nesting levels,
	// and values (objects, arrays, strings, numbers, literals) in all.
	DefaultMaxJSONDepth    = 64
	DefaultMaxJSONElements = 100_000
	// LimitMaxJSONDepth is the largest max_json_depth accepted: the parse holds a frame per level.
	LimitMaxJSONDepth    = 10_000
	DefaultReadTimeout   = 10 * time.Second
	DefaultWriteTimeout  = 10 * time.Second
	DefaultIdleTimeout   = 60 * time.Second
	DefaultRouteTimeout  = 10 * time.Second
	DefaultStateTimeout  = 50 * time.Millisecond
	DefaultMaxConns      = 10000
	DefaultMaxConnsPerIP = 1000
	DefaultStateMaxKeys  = 1 << 20
	// DefaultStateMaxBytes bounds the memory store's entries in bytes: DefaultStateMaxKeys
	// keys of up to 64 bytes fit (longer keys are stored as 71-byte digests).
	DefaultStateMaxBytes = 256 << 20
	// DefaultMaxResponseBody bounds an upstream answer's body.
	DefaultMaxResponseBody = 64 << 20
)

// The filter defaults. They live here, in the leaf both the config and the filter runtime
// import: Load applies them to a [[filter]] table, engine/filter to a zero Spec field.
const (
	DefaultFilterTimeout = 50 * time.Millisecond
	DefaultFilterMemory  = 32 << 20
	DefaultFilterMaxUses = 10000
	// DefaultFilterPoolMax bounds a filter's instances: enough that a Go filter holding its
	// instance across a 100 ms upstream call serves ~600 requests a second without waiting.
	DefaultFilterPoolMax = 64
	// DefaultFilterIdleTimeout is how long an instance above the pool may stay idle.
	DefaultFilterIdleTimeout = 30 * time.Second
)

// DefaultFilterPool is a filter's pool when none is set: 2×GOMAXPROCS instances kept warm.
func DefaultFilterPool() int { return 2 * runtime.GOMAXPROCS(0) }

// Load reads, decodes and validates the config file at path. Every problem found is reported,
// joined, each naming the file, line and key.
func Load(path string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, raw)
}

// foundRe matches what the TOML decoder's syntax errors quote from the file: after "found"
// or "got", and in its messages on numbers and datetimes it cannot read ("Invalid integer
// %q", "invalid float: '%s'", …). The messages of the config's own decoders, which quote
// words they expect, are left alone.
var foundRe = regexp.MustCompile(`((?:found|got|Invalid integer|Invalid float|Invalid float value:|invalid float:|` +
	`not a binary number:|not an octal number:|not a hexadecimal number:|non-decimal numbers:|invalid datetime:) )` +
	`("(?:[^"\\]|\\.)*"|'[^']*')`)

// withholdQuoted replaces the text a TOML syntax error quotes from the file (the word it
// found where a value should be, the part of a string before a bad escape) with its
// length: the value of a key such as [admin] token or a store's url is a secret, and the
// message reaches the log and /-/status. The file, line and key still say where; one
// character (the one the decoder stopped at) is kept.
func withholdQuoted(msg string) string {
	return foundRe.ReplaceAllStringFunc(msg, func(m string) string {
		sub := foundRe.FindStringSubmatch(m)
		u, err := strconv.Unquote(sub[2])
		if err != nil || sub[2][0] == '\'' {
			u = sub[2][1 : len(sub[2])-1]
		}
		if n := utf8.RuneCountInString(u); n > 1 {
			return fmt.Sprintf("%s%d characters (withheld: the value may be a secret)", sub[1], n)
		}
		return m
	})
}

// Parse decodes and validates raw as if read from path (used for relative paths and messages).
func Parse(path string, raw []byte) (*Config, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	c := &Config{File: path, Dir: filepath.Dir(abs), Digest: sha256.Sum256(raw)}
	md, err := toml.NewDecoder(bytes.NewReader(raw)).Decode(c)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			key := pe.LastKey
			msg := withholdQuoted(pe.Message)
			if key != "" {
				return nil, &Error{File: path, Line: pe.Position.Line, Key: key, Msg: msg}
			}
			return nil, &Error{File: path, Line: pe.Position.Line, Msg: msg}
		}
		if m := typeErrRe.FindStringSubmatch(err.Error()); m != nil {
			line, _ := strconv.Atoi(m[1])
			return nil, &Error{File: path, Line: line, Key: m[2], Msg: typeMismatch(m[3])}
		}
		return nil, &Error{File: path, Msg: err.Error()}
	}
	v := validator{file: path, loc: newLocator(raw), set: newWritten(raw)}
	c.loc = v.loc
	for _, k := range md.Undecoded() {
		v.errAt(locKey(k), "unknown key")
	}
	if !md.IsDefined("policies", "watch") {
		c.Policies.Watch = true
	}
	if !md.IsDefined("policies", "cross_check") {
		c.Policies.CrossCheck = DefaultCrossCheck
	}
	if !md.IsDefined("server", "timer_slack") {
		c.Server.TimerSlack = Duration(DefaultTimerSlack)
	}
	if !md.IsDefined("policies", "cross_check_max") {
		c.Policies.CrossCheckMax = DefaultCrossCheckMax
	}
	// The [watch] table turns watching on unless it says enabled = false.
	if md.IsDefined("watch") && !md.IsDefined("watch", "enabled") {
		c.Watch.Enabled = true
	}
	c.refuseWrittenZeros(&v)
	c.applyDefaults()
	c.Watch.applyDefaults(func(k ...string) bool { return md.IsDefined(append([]string{"watch"}, k...)...) })
	c.validate(&v)
	if md.IsDefined("watch") {
		c.validateWatch(&v)
	}
	if len(v.errs) > 0 {
		return nil, v.join()
	}
	return c, nil
}

// typeErrRe reads BurntSushi/toml's type errors ("toml: line 2 (last key "a.b"): msg").
var typeErrRe = regexp.MustCompile(`^toml: line (\d+) \(last key "([^"]*)"\): (.*)$`)

// goTypeRe finds the Go type BurntSushi/toml names in a type mismatch ("type mismatch for
// config.SecretRef: expected table but found string"), which means nothing to the config's
// reader.
var goTypeRe = regexp.MustCompile(`^type mismatch for [\w.\[\]*]+: `)

// typeMismatch words a decoder's type mismatch for the config's reader: a secret written as
// its value says how a secret is named; any other drops the Go type.
func typeMismatch(msg string) string {
	if strings.HasPrefix(msg, "type mismatch for config.SecretRef: expected table") {
		return "a secret is named by where it is read from, {env = \"NAME\"} or {file = \"path\"}, not written in the config"
	}
	return goTypeRe.ReplaceAllString(msg, "")
}

func locKey(k toml.Key) []any {
	out := make([]any, 0, len(k))
	for _, s := range k {
		out = append(out, s)
	}
	return out
}

const (
	// DefaultTimerSlack lets the kernel fold the Go runtime's 20 µs monitor wake-ups into
	// others, each a millisecond late at most. The gateway's shortest default timer is the
	// SQLite store's 1 ms wait for more writes to commit together.
	DefaultTimerSlack = time.Millisecond
	// LimitTimerSlack is the largest timer_slack accepted: the runtime's own checks (a
	// goroutine running too long, a network poll missed) come every 10 ms.
	LimitTimerSlack = 10 * time.Millisecond
)

func (c *Config) applyDefaults() {
	s := &c.Server
	s.Listen = cmp.Or(s.Listen, DefaultListen)
	s.MaxBody = cmp.Or(s.MaxBody, DefaultMaxBody)
	s.MaxHeader = cmp.Or(s.MaxHeader, DefaultMaxHeader)
	s.MaxHeaders = cmp.Or(s.MaxHeaders, DefaultMaxHeaders)
	s.MaxJSONDepth = cmp.Or(s.MaxJSONDepth, DefaultMaxJSONDepth)
	s.MaxJSONElements = cmp.Or(s.MaxJSONElements, DefaultMaxJSONElements)
	s.ReadTimeout = cmp.Or(s.ReadTimeout, Duration(DefaultReadTimeout))
	s.WriteTimeout = cmp.Or(s.WriteTimeout, Duration(DefaultWriteTimeout))
	s.IdleTimeout = cmp.Or(s.IdleTimeout, Duration(DefaultIdleTimeout))
	s.MaxConns = cmp.Or(s.MaxConns, DefaultMaxConns)
	s.MaxConnsPerIP = cmp.Or(s.MaxConnsPerIP, DefaultMaxConnsPerIP)
	s.PathNormalization = cmp.Or(s.PathNormalization, PathReject)
	s.UnderscoreHeaders = cmp.Or(s.UnderscoreHeaders, UnderscoreReject)
	s.TLSCert, s.TLSKey, s.ClientCA = c.Abs(s.TLSCert), c.Abs(s.TLSKey), c.Abs(s.ClientCA)
	c.Admin.Listen = cmp.Or(c.Admin.Listen, DefaultAdminListen)
	c.Admin.TLSCert, c.Admin.TLSKey = c.Abs(c.Admin.TLSCert), c.Abs(c.Admin.TLSKey)
	c.Policies.Dir = cmp.Or(c.Policies.Dir, "policies")
	c.Policies.Dir = c.Abs(c.Policies.Dir)
	c.Policies.OnDivergence = cmp.Or(c.Policies.OnDivergence, DivergenceOPA)
	c.Policies.Evaluator = cmp.Or(c.Policies.Evaluator, EvaluatorAuto)
	if c.Policies.BundleURL != "" && c.Policies.PollInterval == 0 {
		c.Policies.PollInterval = Duration(DefaultPollInterval)
	}
	if c.Policies.BundleVerificationKey != "" {
		c.Policies.BundleVerificationKey = c.Abs(c.Policies.BundleVerificationKey)
		c.Policies.BundleVerificationAlg = cmp.Or(c.Policies.BundleVerificationAlg, DefaultBundleAlg)
	}
	c.Log.Decisions = cmp.Or(c.Log.Decisions, "stdout")
	c.Log.Level = cmp.Or(c.Log.Level, "info")
	c.State.Backend = cmp.Or(c.State.Backend, StateMemory)
	c.State.Timeout = cmp.Or(c.State.Timeout, Duration(DefaultStateTimeout))
	c.State.FailMode = cmp.Or(c.State.FailMode, FailClosed)
	c.State.MaxKeys = cmp.Or(c.State.MaxKeys, DefaultStateMaxKeys)
	c.State.MaxBytes = cmp.Or(c.State.MaxBytes, DefaultStateMaxBytes)
	d := &c.Delivery
	d.Store = cmp.Or(d.Store, StoreSQLite)
	d.Path = cmp.Or(d.Path, DefaultDeliveryPath)
	d.Path = c.Abs(d.Path)
	d.MaxPending = cmp.Or(d.MaxPending, DefaultMaxPending)
	for i := range c.Filters {
		f := &c.Filters[i]
		if f.Module != "" {
			f.Module = c.Abs(f.Module)
		}
		f.Memory = cmp.Or(f.Memory, DefaultFilterMemory)
		f.Pool = cmp.Or(f.Pool, DefaultFilterPool())
		f.PoolMax = cmp.Or(f.PoolMax, max(DefaultFilterPoolMax, f.Pool))
		f.MaxUses = cmp.Or(f.MaxUses, DefaultFilterMaxUses)
		f.OnError = cmp.Or(f.OnError, OnErrorDeny)
	}
	for i := range c.Routes {
		c.Routes[i].Timeout = cmp.Or(c.Routes[i].Timeout, Duration(DefaultRouteTimeout))
		c.Routes[i].MaxResponseBody = cmp.Or(c.Routes[i].MaxResponseBody, DefaultMaxResponseBody)
		c.Routes[i].UpstreamCA = c.Abs(c.Routes[i].UpstreamCA)
		c.Routes[i].Delivery = cmp.Or(c.Routes[i].Delivery, DeliveryDirect)
	}
}

// Where is "file:line" of the key at path, in the form config errors use: ("route", 0,
// "policy") is the first route's policy, ("filter", 1) the second filter's table. The file
// alone when the line is unknown (a config not parsed from a file).
func (c *Config) Where(path ...any) string {
	if c.loc != nil {
		if n := c.loc.line(path...); n > 0 {
			return c.File + ":" + strconv.Itoa(n)
		}
	}
	return c.File
}

// Abs resolves p against the config file's directory unless it is absolute.
func (c *Config) Abs(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.Dir, p)
}

var knownMethods = map[string]bool{
	"GET": true, "HEAD": true, "POST": true, "PUT": true, "PATCH": true,
	"DELETE": true, "OPTIONS": true, "CONNECT": true, "TRACE": true,
}

func (c *Config) validate(v *validator) {
	if _, err := splitListen(c.Server.Listen); err != nil {
		v.errAt([]any{"server", "listen"}, "invalid address %q: %v", c.Server.Listen, err)
	}
	if c.Server.MaxBody <= 0 {
		v.errAt([]any{"server", "max_body"}, "must be > 0")
	}
	if c.Server.MaxHeaders < 0 {
		v.errAt([]any{"server", "max_headers"}, "must be > 0")
	}
	if c.Server.MaxJSONDepth < 0 || c.Server.MaxJSONDepth > LimitMaxJSONDepth {
		v.errAt([]any{"server", "max_json_depth"}, "must be between 1 and %d", LimitMaxJSONDepth)
	}
	if c.Server.MaxJSONElements < 0 {
		v.errAt([]any{"server", "max_json_elements"}, "must be > 0")
	}
	if c.Server.TimerSlack.D() > LimitTimerSlack {
		v.errAt([]any{"server", "timer_slack"}, "must be at most %v, or 0 to keep the slack the gateway was started with, not %v", LimitTimerSlack, c.Server.TimerSlack.D())
	}
	if c.Server.MaxConns < 0 || c.Server.MaxConnsPerIP < 0 {
		v.errAt([]any{"server", "max_conns"}, "must be >= 0")
	}
	for _, p := range c.Server.TrustedProxies {
		pfx, err := parsePrefix(p)
		if err != nil {
			v.errAt([]any{"server", "trusted_proxies"}, "%q is not an IP or CIDR: %v", p, err)
			continue
		}
		c.Server.trusted = append(c.Server.trusted, pfx)
	}
	c.validateForwarding(v)
	if (c.Server.TLSCert == "") != (c.Server.TLSKey == "") {
		v.errAt([]any{"server", "tls_key"}, "tls_cert and tls_key go together: set both or neither")
	}
	if c.Server.ClientCA != "" && c.Server.TLSCert == "" {
		v.errAt([]any{"server", "client_ca"}, "needs tls_cert and tls_key: client certificates are only asked for over TLS")
	}
	if (c.Admin.TLSCert == "") != (c.Admin.TLSKey == "") {
		v.errAt([]any{"admin", "tls_key"}, "tls_cert and tls_key go together: set both or neither")
	}
	if host, err := splitListen(c.Admin.Listen); err != nil {
		v.errAt([]any{"admin", "listen"}, "invalid address %q: %v", c.Admin.Listen, err)
	} else if !isLoopback(host) && c.Admin.Token == "" {
		v.errAt([]any{"admin", "token"}, "required when admin.listen (%s) is not a loopback address", c.Admin.Listen)
	}
	if c.Admin.Listen == c.Server.Listen && !strings.HasSuffix(c.Admin.Listen, ":0") {
		v.errAt([]any{"admin", "listen"}, "must differ from server.listen")
	}
	if c.Demo.Sink != "" {
		if host, err := splitListen(c.Demo.Sink); err != nil {
			v.errAt([]any{"demo", "sink"}, "invalid address %q: %v", c.Demo.Sink, err)
		} else if !isLoopback(host) {
			v.errAt([]any{"demo", "sink"}, "the demo sink listens on loopback only, not %q", host)
		}
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		v.errAt([]any{"log", "level"}, "must be debug, info, warn or error, not %q", c.Log.Level)
	}
	for _, m := range c.Log.Mask {
		if !validMask(m) {
			v.errAt([]any{"log", "mask"}, "%q is not a header name (letters, digits, '-' and '_', optionally ending in '*')", m)
		}
	}
	if c.Log.Body < 0 {
		v.errAt([]any{"log", "body"}, "must be >= 0")
	}
	switch c.State.Backend {
	case StateMemory, StateRedis:
	default:
		v.errAt([]any{"state", "backend"}, "must be \"memory\" or \"redis\", not %q", c.State.Backend)
	}
	if c.State.MaxKeys < 0 {
		v.errAt([]any{"state", "max_keys"}, "must be > 0")
	}
	if c.State.Backend == StateRedis {
		// What the Redis client parses, refused here rather than at start: check passes only
		// a config that runs.
		u, err := url.Parse(c.State.URL)
		switch {
		case c.State.URL == "":
			v.errAt([]any{"state", "url"}, "required when backend = \"redis\"")
		case err != nil:
			v.errAt([]any{"state", "url"}, "invalid URL: %v", urlErrorCause(err))
		case u.Scheme != "redis" && u.Scheme != "rediss":
			v.errAt([]any{"state", "url"}, "scheme must be redis or rediss, not %q", u.Scheme)
		case u.Host == "":
			v.errAt([]any{"state", "url"}, "missing host in %q", RedactURL(c.State.URL))
		}
	}
	switch c.State.FailMode {
	case FailClosed, FailOpen:
	default:
		v.errAt([]any{"state", "fail_mode"}, "must be \"closed\" or \"open\", not %q", c.State.FailMode)
	}
	for name, ref := range c.Secrets {
		if (ref.Env == "") == (ref.File == "") {
			v.errAt([]any{"secrets", name}, "set exactly one of env or file")
		}
	}
	c.validatePolicies(v)
	c.validateOAuth(v)
	filters := map[string]bool{}
	for i := range c.Filters {
		f := &c.Filters[i]
		at := func(k string) []any { return []any{"filter", i, k} }
		if f.Name == "" {
			v.errAt(at("name"), "required")
		} else if filters[f.Name] {
			v.errAt(at("name"), "duplicate filter name %q", f.Name)
		}
		filters[f.Name] = true
		if f.Module == "" {
			v.errAt(at("module"), "required")
		}
		if f.Timeout == 0 {
			// An explicit "0" means no deadline; absent means the default.
			if v.set.has("filter", i, "timeout") {
				f.NoDeadline = true
			} else {
				f.Timeout = Duration(DefaultFilterTimeout)
			}
		}
		if f.Pool < 1 {
			v.errAt(at("pool"), "must be >= 1")
		} else if f.PoolMax < f.Pool {
			v.errAt(at("pool_max"), "must be >= pool (%d)", f.Pool)
		}
		if f.Memory < 64<<10 {
			v.errAt(at("memory"), "must be at least 64KiB (one wasm page)")
		}
		if f.MaxUses < 0 {
			v.errAt(at("max_uses"), "must be >= 1")
		}
		switch f.OnError {
		case OnErrorDeny, OnErrorSkip:
		default:
			v.errAt(at("on_error"), "must be \"deny\" or \"skip\", not %q", f.OnError)
		}
	}
	names := map[string]bool{}
	if len(c.Routes) == 0 {
		v.errAt([]any{"route"}, "at least one [[route]] is required")
	}
	for i := range c.Routes {
		r := &c.Routes[i]
		at := func(k string) []any { return []any{"route", i, k} }
		if r.Name == "" {
			v.errAt(at("name"), "required")
		} else if names[r.Name] {
			v.errAt(at("name"), "duplicate route name %q", r.Name)
		}
		names[r.Name] = true
		switch {
		case r.Path != "" && r.Prefix != "":
			v.errAt(at("prefix"), "set path or prefix, not both")
		case r.Path == "" && r.Prefix == "":
			v.errAt(at("path"), "one of path or prefix is required")
		case r.Path != "" && !strings.HasPrefix(r.Path, "/"):
			v.errAt(at("path"), "must start with \"/\"")
		case r.Prefix != "" && !strings.HasPrefix(r.Prefix, "/"):
			v.errAt(at("prefix"), "must start with \"/\"")
		}
		if r.Host != "" && !validRouteHost(r.Host) {
			v.errAt(at("host"), "%q is not a host name, an IPv4 address or a bracketed IPv6 address: no port (the request's port is not compared), path or wildcard", r.Host)
		}
		for j, m := range r.Methods {
			if !knownMethods[m] {
				v.errAt(at("methods"), "unknown method %q (use upper case, e.g. \"POST\")", m)
			}
			r.Methods[j] = m
		}
		u, err := url.Parse(r.Upstream)
		switch {
		case r.Upstream == "":
			v.errAt(at("upstream"), "required")
		case err != nil:
			v.errAt(at("upstream"), "invalid URL: %v", urlErrorCause(err))
		case u.Scheme != "http" && u.Scheme != "https":
			v.errAt(at("upstream"), "scheme must be http or https, not %q", u.Scheme)
		case u.Host == "":
			v.errAt(at("upstream"), "missing host in %q", RedactURL(r.Upstream))
		case u.RawQuery != "" || u.Fragment != "":
			v.errAt(at("upstream"), "must not carry a query or fragment")
		case !validPort(u.Port()):
			v.errAt(at("upstream"), "port %q is not one of 1 to 65535", u.Port())
		default:
			r.upstream = u
		}
		if r.UpstreamCA != "" && r.upstream != nil && r.upstream.Scheme != "https" && !slices.ContainsFunc(r.Destinations, isHTTPS) {
			v.errAt(at("upstream_ca"), "only applies to an https upstream or destination, not %q", RedactURL(r.Upstream))
		}
		if r.Policy == "" {
			v.errAt(at("policy"), "required (a Rego package such as \"routes.github\"); requests are denied without one")
		} else if !validPackagePath(r.Policy) {
			v.errAt(at("policy"), "%q is not a Rego package path like \"routes.github\"", r.Policy)
		}
		if r.ShadowPolicy != "" {
			switch {
			case !validPackagePath(r.ShadowPolicy):
				v.errAt(at("shadow_policy"), "%q is not a Rego package path like \"routes.github_v2\"", r.ShadowPolicy)
			case r.ShadowPackage() == r.PolicyPackage():
				v.errAt(at("shadow_policy"), "is the live policy %q: a shadow must be a different package", r.Policy)
			}
		}
		for _, f := range r.Filters {
			if !filters[f] {
				v.errAt(at("filters"), "unknown filter %q (no [[filter]] with that name)", f)
			}
		}
		switch r.Delivery {
		case DeliveryDirect:
			for _, k := range []string{"retry", "sign", "max_in_flight", "max_rate", "ordered", "destinations"} {
				if v.set.has("route", i, k) {
					v.errAt(at(k), "only applies with delivery = \"queued\"")
				}
			}
		case DeliveryQueued:
			if len(r.Retry) > MaxRetries {
				v.errAt(at("retry"), "at most %d retries, not %d", MaxRetries, len(r.Retry))
			}
			for _, d := range r.Destinations {
				if msg := checkUpstreamURL(d); msg != "" {
					v.errAt(at("destinations"), "%s", msg)
				}
			}
			if r.MaxInFlight < 0 {
				v.errAt(at("max_in_flight"), "must be >= 0")
			}
			if !(r.MaxRate >= 0) || math.IsInf(r.MaxRate, 0) {
				// NaN fails every comparison: read as "> 0 ?", it would mean no limit.
				v.errAt(at("max_rate"), "must be >= 0 and finite (attempts per second)")
			}
			if _, ok := c.Secrets[r.Sign]; r.Sign != "" && !ok {
				v.errAt(at("sign"), "unknown secret %q (no [secrets] entry with that name)", r.Sign)
			}
		default:
			v.errAt(at("delivery"), "must be \"direct\" or \"queued\", not %q", r.Delivery)
		}
	}
	c.validateShadowedRoutes(v)
	c.validateDelivery(v)
}

// validateShadowedRoutes refuses a route that an earlier one with the same host and path (or
// prefix) hides: the router takes the first of such routes that accepts the method, so a
// method both accept never reaches the later one.
func (c *Config) validateShadowedRoutes(v *validator) {
	for j := range c.Routes {
		b := &c.Routes[j]
		for i := range j {
			a := &c.Routes[i]
			if !strings.EqualFold(a.Host, b.Host) || a.Path != b.Path || a.Prefix != b.Prefix {
				continue
			}
			if m, ok := sharedMethod(a.Methods, b.Methods); ok {
				key := "path"
				if b.Prefix != "" {
					key = "prefix"
				}
				v.errAt([]any{"route", j, key}, "route %q already takes %s on this host and %s: this route would never get it (give each route its own methods)", a.Name, m, key)
				break
			}
		}
	}
}

// sharedMethod returns a method both lists accept (an empty list accepts all).
func sharedMethod(a, b []string) (string, bool) {
	switch {
	case len(a) == 0 && len(b) == 0:
		return "every method", true
	case len(a) == 0:
		return b[0], true
	case len(b) == 0:
		return a[0], true
	}
	for _, m := range b {
		if slices.Contains(a, m) {
			return m, true
		}
	}
	return "", false
}

// checkUpstreamURL returns what is wrong with an upstream URL, "" when nothing; the URL is
// shown with its credentials masked.
// isHTTPS reports whether raw is an https URL (upstream_ca applies to it).
func isHTTPS(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && u.Scheme == "https"
}

func checkUpstreamURL(raw string) string {
	u, err := url.Parse(raw)
	switch {
	case raw == "":
		return "an empty URL"
	case err != nil:
		return "invalid URL: " + urlErrorCause(err).Error()
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Sprintf("scheme must be http or https, not %q", u.Scheme)
	case u.Host == "":
		return fmt.Sprintf("missing host in %q", RedactURL(raw))
	case u.RawQuery != "" || u.Fragment != "":
		return fmt.Sprintf("%q must not carry a query or fragment", RedactURL(raw))
	case !validPort(u.Port()):
		return fmt.Sprintf("port %q of %q is not one of 1 to 65535", u.Port(), RedactURL(raw))
	}
	return ""
}

// splitListen returns the host of a listen address, or why it cannot be listened on: its
// port must be a number of 0 to 65535 (0: any free port) or a service name, checked here so
// that check finds what run would fail on, with the line.
func splitListen(addr string) (host string, err error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return "", fmt.Errorf("port %q is not a number of 0 to 65535 or a service name", port)
	}
	return host, nil
}

// validPort reports whether p, a URL's port (empty: the scheme's), can be dialed: url.Parse
// takes any digits, and a port over 65535 would fail only when the first request is sent.
func validPort(p string) bool {
	if p == "" {
		return true
	}
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 65535
}

func (c *Config) validateDelivery(v *validator) {
	d := &c.Delivery
	at := func(k string) []any { return []any{"delivery", k} }
	switch d.Store {
	case StoreSQLite:
		if d.URL != "" {
			v.errAt(at("url"), "only applies with store = \"postgres\"")
		}
	case StorePostgres:
		if v.set.has("delivery", "path") {
			v.errAt(at("path"), "only applies with store = \"sqlite\"")
		}
		u, err := url.Parse(d.URL)
		switch {
		case d.URL == "":
			v.errAt(at("url"), "required when store = \"postgres\"")
		case err != nil:
			v.errAt(at("url"), "invalid URL: %v", urlErrorCause(err))
		case u.Scheme != "postgres" && u.Scheme != "postgresql":
			v.errAt(at("url"), "scheme must be postgres or postgresql, not %q", u.Scheme)
		default:
			// The store would send the password and the deliveries to whoever answers
			// for a server off this machine whose certificate it does not verify.
			if err := postgres.CheckURL(d.URL); err != nil {
				v.errAt(at("url"), "%v", err)
			}
		}
	default:
		v.errAt(at("store"), "must be \"sqlite\" or \"postgres\", not %q", d.Store)
	}
	if d.MaxPending < 0 {
		v.errAt(at("max_pending"), "must be > 0")
	}
	for _, k := range d.EncryptionKeys {
		if _, ok := c.Secrets[k]; !ok {
			v.errAt(at("encryption_keys"), "unknown secret %q (no [secrets] entry with that name)", k)
		}
	}
	if d.InspectBodies && c.Admin.Token == "" {
		v.errAt(at("inspect_bodies"), "needs [admin] token: bodies are shown only to a caller with the token")
	}
	if !v.set.has("delivery", "keep_delivered") {
		d.KeepDelivered = Duration(DefaultKeepDelivered)
	}
	if !v.set.has("delivery", "keep_dead") {
		d.KeepDead = Duration(DefaultKeepDead)
	}
}

// validateForwarding checks path_normalization, underscore_headers and
// forward_client_headers, and sets the headers to strip.
func (c *Config) validateForwarding(v *validator) {
	s := &c.Server
	switch s.PathNormalization {
	case PathReject, PathForwardCanonical:
	default:
		v.errAt([]any{"server", "path_normalization"}, "must be %q or %q, not %q", PathReject, PathForwardCanonical, s.PathNormalization)
	}
	switch s.UnderscoreHeaders {
	case UnderscoreReject, UnderscoreDrop:
	default:
		v.errAt([]any{"server", "underscore_headers"}, "must be %q or %q, not %q", UnderscoreReject, UnderscoreDrop, s.UnderscoreHeaders)
	}
	keep := map[string]bool{}
	for _, name := range s.ForwardClientHeaders {
		known := false
		for _, h := range clientHeaders {
			if strings.EqualFold(h, name) {
				keep[h], known = true, true
			}
		}
		if !known {
			v.errAt([]any{"server", "forward_client_headers"}, "%q is not a header the gateway strips (%s)", name, strings.Join(clientHeaders[:], ", "))
		}
	}
	s.stripMarks = 0
	for i, h := range clientHeaders {
		if !keep[h] {
			s.stripMarks |= 1 << i
		}
	}
}

func (c *Config) validatePolicies(v *validator) {
	p := &c.Policies
	at := func(k string) []any { return []any{"policies", k} }
	if p.Evaluator != EvaluatorAuto && p.Evaluator != EvaluatorOPA {
		v.errAt(at("evaluator"), "must be \"auto\" or \"opa\", not %q", p.Evaluator)
	}
	if !(p.CrossCheck >= 0 && p.CrossCheck <= 1) { // NaN too
		v.errAt(at("cross_check"), "must be a share between 0 and 1, not %v", p.CrossCheck)
	}
	if p.CrossCheckMax < 0 {
		v.errAt(at("cross_check_max"), "must be a number of checks a second, 0 for no ceiling, not %d", p.CrossCheckMax)
	}
	if p.OnDivergence != DivergenceOPA && p.OnDivergence != DivergenceLog {
		v.errAt(at("on_divergence"), "must be \"opa\" or \"log\", not %q", p.OnDivergence)
	}
	if p.BundleURL == "" {
		for _, k := range []string{"poll_interval", "bundle_verification_key", "bundle_verification_alg"} {
			if v.set.has("policies", k) {
				v.errAt(at(k), "only applies with bundle_url")
			}
		}
		return
	}
	u, err := url.Parse(p.BundleURL)
	switch {
	case err != nil:
		v.errAt(at("bundle_url"), "invalid URL: %v", urlErrorCause(err))
	case u.Scheme != "http" && u.Scheme != "https":
		v.errAt(at("bundle_url"), "scheme must be http or https, not %q", u.Scheme)
	case u.Host == "":
		v.errAt(at("bundle_url"), "missing host in %q", RedactURL(p.BundleURL))
	case u.User != nil:
		v.errAt(at("bundle_url"), "must not carry credentials")
	}
	if p.PollInterval.D() < MinPollInterval {
		v.errAt(at("poll_interval"), "must be at least %v", MinPollInterval)
	}
	if p.BundleVerificationAlg != "" {
		if p.BundleVerificationKey == "" {
			v.errAt(at("bundle_verification_alg"), "needs bundle_verification_key")
		}
		known := false
		for _, a := range bundleAlgs {
			known = known || a == p.BundleVerificationAlg
		}
		if !known {
			v.errAt(at("bundle_verification_alg"), "must be one of %s, not %q", strings.Join(bundleAlgs, ", "), p.BundleVerificationAlg)
		}
	}
}

// validRouteHost reports whether h can equal a request's Host once its port is removed,
// which is what a route's host is compared with.
func validRouteHost(h string) bool {
	if inner, ok := strings.CutPrefix(h, "["); ok {
		inner, ok = strings.CutSuffix(inner, "]")
		a, err := netip.ParseAddr(inner)
		return ok && err == nil && a.Is6() && a.Zone() == ""
	}
	if h[0] == '.' || h[0] == '-' {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}

func validPackagePath(p string) bool {
	p = strings.TrimPrefix(p, "data.")
	if p == "" {
		return false
	}
	for _, part := range strings.Split(p, ".") {
		if part == "" {
			return false
		}
		for i, r := range part {
			ok := r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (i > 0 && r >= '0' && r <= '9')
			if !ok {
				return false
			}
		}
	}
	return true
}

// PolicyPackage returns the route's package without a leading "data.".
func (r *Route) PolicyPackage() string { return strings.TrimPrefix(r.Policy, "data.") }

// ShadowPackage returns the route's shadow package without a leading "data."; "" when none.
func (r *Route) ShadowPackage() string { return strings.TrimPrefix(r.ShadowPolicy, "data.") }

// validMask accepts a header name (RFC 9110 token characters that names use in practice),
// optionally ending in "*" for a prefix.
func validMask(m string) bool {
	if m == "*" {
		return true // every header
	}
	m = strings.TrimSuffix(m, "*")
	if m == "" {
		return false
	}
	for _, r := range m {
		ok := r == '-' || r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')
		if !ok {
			return false
		}
	}
	return true
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		// Client addresses are compared unmapped (::ffff:192.0.2.1 is 192.0.2.1): an
		// IPv4-mapped prefix as written would hold none of them.
		if p.Addr().Is4In6() {
			if p.Bits() < 96 {
				return netip.Prefix{}, fmt.Errorf("an IPv4-mapped prefix shorter than /96 holds addresses that are not IPv4")
			}
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// RedactURL returns raw for display (status, logs, errors) with its userinfo, user and
// password alike, and its query replaced by "xxxxx", and no fragment:
// "http://xxxxx@10.0.0.5:8080/hooks?xxxxx". A URL that does not parse is not shown at all.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(invalid URL)"
	}
	if u.User == nil && u.RawQuery == "" && u.Fragment == "" {
		return raw
	}
	if u.User != nil {
		u.User = url.User("xxxxx")
	}
	if u.RawQuery != "" {
		u.RawQuery = "xxxxx" // a token (?token=, ?code=) as often as not
	}
	u.Fragment, u.RawFragment = "", ""
	return u.String()
}

// urlErrorCause drops the URL from url.Parse's error, which quotes it whole (password
// included), and keeps what went wrong.
func urlErrorCause(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	// Its causes quote the part they refuse ("invalid port \":s3cret\" after host", a
	// password where a port was looked for): only the kind is kept.
	if kind, _, quoted := strings.Cut(err.Error(), " \""); quoted {
		return errors.New(kind)
	}
	return err
}
