package redis

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/hookwall/hookwall/engine/state"
)

// DefaultTimeout bounds each call when Options.Timeout is 0.
const DefaultTimeout = 50 * time.Millisecond

// DefaultPrefix starts every key when Options.Prefix is empty.
const DefaultPrefix = "hookwall:"

// Operation names passed to Options.Observe.
const (
	OpAdmit   = "admit"
	OpCommit  = "commit"
	OpRelease = "release"
	OpPing    = "ping"
)

// Options configures New.
type Options struct {
	// URL is redis://[[user]:password@]host:port[/db] or rediss:// for TLS (go-redis ParseURL
	// syntax). Timeout settings in its query are overridden by Timeout.
	URL string
	// Timeout bounds every call: dial, pool wait, write and read. Default DefaultTimeout.
	Timeout time.Duration
	// Prefix starts every key, so several deployments can share one Redis. Default
	// DefaultPrefix.
	Prefix string
	// TLSConfig, when set, replaces the TLS config of a rediss:// URL (a private CA, a client
	// certificate). It is cloned; ServerName defaults to the URL's host. With a redis:// URL it
	// is an error (New fails), not a connection without TLS.
	TLSConfig *tls.Config
	// Observe, when set, is called after every call with its operation (one of the Op
	// constants), its duration and its error (nil on success). It runs on the request path,
	// so it must be fast and safe for concurrent use.
	Observe func(op string, d time.Duration, err error)
}

// Stats are cumulative counters since New.
type Stats struct {
	Calls   uint64        // calls made to Redis
	Errors  uint64        // calls that failed (each wraps state.ErrUnavailable)
	Latency time.Duration // total time spent in calls
}

// Store is the Redis state.Store. It is safe for concurrent use.
type Store struct {
	c       *goredis.Client
	timeout time.Duration
	prefix  string
	observe func(string, time.Duration, error)
	admit   *goredis.Script
	release *goredis.Script

	calls, errs atomic.Uint64
	latency     atomic.Int64
	closed      atomic.Bool
}

var _ state.Store = (*Store)(nil)

var errClosed = fmt.Errorf("state/redis: store closed: %w", state.ErrUnavailable)

// New parses the URL and builds the client. It does not contact Redis: a gateway can start
// while Redis is down (calls then fail with state.ErrUnavailable until it is back). Use Ping
// for a readiness check.
func New(o Options) (*Store, error) {
	opt, err := goredis.ParseURL(o.URL)
	if err != nil {
		// go-redis' message can quote the URL, password included: keep it out.
		return nil, errors.New("state/redis: invalid url (want redis://[user:password@]host:port[/db] or rediss://…)")
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if o.TLSConfig != nil && opt.TLSConfig == nil {
		// A TLS config for a URL that does not ask for TLS: connecting in clear would send the
		// password and every key over the network unprotected.
		return nil, errors.New("state/redis: a TLS config was given for a redis:// url; use rediss:// for TLS")
	}
	if o.TLSConfig != nil {
		tc := o.TLSConfig.Clone()
		if tc.ServerName == "" {
			tc.ServerName = opt.TLSConfig.ServerName
		}
		if tc.MinVersion == 0 {
			tc.MinVersion = tls.VersionTLS12
		}
		opt.TLSConfig = tc
	}
	opt.DialTimeout = timeout
	opt.ReadTimeout = timeout
	opt.WriteTimeout = timeout
	opt.PoolTimeout = timeout
	opt.ContextTimeoutEnabled = true
	opt.MaxRetries = -1 // an Admit must run at most once (see the package comment)
	opt.DialerRetries = 1
	prefix := o.Prefix
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return &Store{
		c:       goredis.NewClient(opt),
		timeout: timeout,
		prefix:  prefix,
		observe: o.Observe,
		admit:   goredis.NewScript(admitLua),
		release: goredis.NewScript(releaseLua),
	}, nil
}

// Admit implements state.Store in one round trip (two the first time a Redis sees the script).
func (s *Store) Admit(ctx context.Context, c *state.Check) (state.Admission, error) {
	if s.closed.Load() {
		return state.Admission{}, errClosed
	}
	lim, err := c.ValidateLimit()
	if err != nil {
		return state.Admission{}, err
	}
	rateOn, dedupeOn := c.RateLimit.Key != "", c.Dedupe.Key != ""
	if !rateOn && !dedupeOn {
		return state.Admission{}, nil
	}
	var (
		mode int
		keys       = make([]string, 0, 2)
		ttl  int64 = 1
	)
	if dedupeOn {
		mode |= 1
		keys = append(keys, s.prefix+"dd:"+c.Dedupe.Key)
		ttl = max(c.ClaimTTL().Milliseconds(), 1)
	}
	if rateOn {
		mode |= 2
		keys = append(keys, s.prefix+"rl:"+c.RateLimit.Key)
	}

	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	start := time.Now()
	// The claim's token: a repeated Release of this claim (its first reply lost to a
	// timeout) must not drop a claim another gateway made of the key meanwhile.
	var token uint64
	tokenArg := ""
	if dedupeOn {
		token = rand.Uint64() | 1
		tokenArg = strconv.FormatUint(token, 10)
	}
	res, err := s.admit.Run(ctx, s.c, keys, mode, lim.L, lim.P, lim.B, ttl, tokenArg).Int64Slice()
	if err == nil && len(res) != 4 {
		err = errors.New("unexpected script reply of " + strconv.Itoa(len(res)) + " values")
	}
	if err = s.done(OpAdmit, start, err); err != nil {
		return state.Admission{}, err
	}
	adm := state.Admission{Dedupe: state.DedupeStatus(res[0]), Remaining: res[3]}
	if adm.Dedupe == state.DedupeNew {
		adm.Claim = token
	}
	if res[1] == 1 {
		adm.Limited = true
		adm.RetryAfter = time.Duration(res[2]) * time.Microsecond
	}
	return adm, nil
}

// Commit implements state.Store: SET key "d" PX ttl.
func (s *Store) Commit(ctx context.Context, key string, ttl time.Duration) error {
	if s.closed.Load() {
		return errClosed
	}
	if err := state.ValidTTL(ttl); err != nil {
		return err
	}
	return s.repeated(ctx, OpCommit, func(ctx context.Context) error {
		return s.c.Set(ctx, s.prefix+"dd:"+key, "d", ttl).Err()
	})
}

// Release implements state.Store: deletes the key only while it is in flight, whoever
// claimed it. ReleaseClaim is what a caller that holds the claim uses.
func (s *Store) Release(ctx context.Context, key string) error {
	if s.closed.Load() {
		return errClosed
	}
	return s.repeated(ctx, OpRelease, func(ctx context.Context) error {
		return s.release.Run(ctx, s.c, []string{s.prefix + "dd:" + key}).Err()
	})
}

// ReleaseClaim deletes the key only while it holds the claim of the Admit that returned claim
// (its Admission.Claim): the call is repeated when a reply times out, and a repeat that came
// after another gateway claimed the key leaves that claim alone. Claim 0 releases as Release.
func (s *Store) ReleaseClaim(ctx context.Context, key string, claim uint64) error {
	if claim == 0 {
		return s.Release(ctx, key)
	}
	if s.closed.Load() {
		return errClosed
	}
	token := strconv.FormatUint(claim, 10)
	return s.repeated(ctx, OpRelease, func(ctx context.Context) error {
		return s.release.Run(ctx, s.c, []string{s.prefix + "dd:" + key}, token).Err()
	})
}

// repeated runs call, which is safe to repeat (Commit, Release: unlike an Admit), each time
// within Timeout, again after a growing pause while ctx's deadline leaves room: a delivered
// mark lost to one stalled call would let a replay through once the claim expires, and a
// claim left would answer the provider's retries 409. Without a deadline it runs once.
func (s *Store) repeated(ctx context.Context, op string, call func(context.Context) error) error {
	for wait := 10 * time.Millisecond; ; wait *= 2 {
		cctx, cancel := context.WithTimeout(ctx, s.timeout)
		start := time.Now()
		err := s.done(op, start, call(cctx))
		cancel()
		if err == nil || ctx.Err() != nil {
			return err
		}
		if d, ok := ctx.Deadline(); !ok || time.Until(d) < wait+s.timeout {
			return err
		}
		time.Sleep(wait)
	}
}

// Ping checks that Redis answers within Timeout (for /readyz).
func (s *Store) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return errClosed
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	start := time.Now()
	return s.done(OpPing, start, s.c.Ping(ctx).Err())
}

// Close closes the connection pool; later calls fail with state.ErrUnavailable. It is
// idempotent.
func (s *Store) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	if err := s.c.Close(); err != nil {
		return fmt.Errorf("state/redis: close: %w", err)
	}
	return nil
}

// Stats returns the counters.
func (s *Store) Stats() Stats {
	return Stats{
		Calls:   s.calls.Load(),
		Errors:  s.errs.Load(),
		Latency: time.Duration(s.latency.Load()),
	}
}

// done records one call and wraps its error.
func (s *Store) done(op string, start time.Time, err error) error {
	d := time.Since(start)
	s.calls.Add(1)
	s.latency.Add(int64(d))
	if err != nil {
		s.errs.Add(1)
		err = fmt.Errorf("state/redis: %s: %w: %w", op, state.ErrUnavailable, err)
	}
	if s.observe != nil {
		s.observe(op, d, err)
	}
	return err
}
