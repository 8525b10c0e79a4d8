// Package redis is the state.Store shared by a fleet of gateways through one Redis server,
// built on github.com/redis/go-redis/v9.
//
// Admit is one Lua script (EVALSHA, falling back to EVAL when Redis answers NOSCRIPT, e.g.
// after a restart) that does the dedupe check, the GCRA rate limit and the claim atomically,
// on Redis' own clock (TIME), so clock skew between gateways does not matter and N gateways
// together pass exactly Limit requests per Per. The GCRA arithmetic is the Go code of
// engine/state/internal/gcra, transcribed; a test checks the two agree. Commit is a SET with
// PX; Release is a script that deletes only an in-flight claim, and ReleaseClaim one that
// deletes only the claim its Admit made (Admission.Claim), so that a release repeated after a
// timeout cannot drop a claim another gateway made of the key meanwhile. Requires Redis >= 5 (script
// effects replication) and one Redis endpoint: no Cluster (the two keys of one Admit are not
// hash-tagged) and no Sentinel discovery.
//
// The URL's query options of go-redis (pool_size, min_idle_conns, …) are honoured, except the
// timeouts and retries, which Timeout and the rule above govern.
//
// Keys: Prefix + "rl:" + rate key holds "tat frac" (GCRA state, PX = time until it is back to
// fresh); Prefix + "dd:" + dedupe key holds "f:" and the claim's token (in flight; "f" from
// a gateway of an earlier version) or "d" (delivered). The watcher's
// shared blocks (PutBlock, DeleteBlock, Blocks) are one hash, Prefix + "watch:blocks" (field:
// the source; value: its JSON record, which carries its own end), and a counter,
// Prefix + "watch:blocks:v", moved on by a random step in the same transaction by every change (so that writes after a loss of data do not land on a version a gateway saw before), which gateways
// poll to learn of one.
//
// # Failures
//
// Every call is bounded by Timeout (dial, pool wait, write and read together) and never
// retried: a retried Admit whose first attempt did run would answer InFlight for its own
// claim. Every failure wraps state.ErrUnavailable. go-redis reconnects by itself: dead pooled
// connections are dropped, and after repeated dial failures it probes the server about once a
// second, so a restarted Redis serves the same Store again within seconds.
//
// # Metrics
//
// Stats returns call, error and latency counters; Options.Observe, when set, is called after
// every call with the operation name (a constant: "admit", "commit", "release", "ping", or
// a block_* one), so the server can feed a histogram. This package imports no metrics library.
package redis
