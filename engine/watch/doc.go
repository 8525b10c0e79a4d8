// Package watch watches the gateway's own decisions and raises anomalies per source and per
// route: a client IP, a sender a verified signature or token names (a policy's
// labels.sender), or a route whose refusals of one reason class jump past the [watch]
// thresholds against its slow baseline.
//
// A Watcher lives as long as the gateway, outside the snapshot: its windows and baselines
// survive reloads. The server calls it twice per request: Blocked once before any filter or
// policy runs (one atomic load and, only while blocks exist, a hash and one map lookup), and
// Observe once the request is decided. Neither takes a lock or allocates on the common path; Observe costs
// a hash per tracked key, a short probe of a fixed table and a few atomic additions. Raising
// an anomaly (at most once per source per window) is the slow path: it logs, counts, keeps
// the anomaly for the status page, queues the alert and places the block.
//
// # Windows and baselines
//
// Each tracked key has a slot in a fixed-size open-addressing table (sources: max_sources
// rounded up to a power of two; routes: their own small table). A slot counts outcomes per
// reason class in the current window and keeps the previous window's counts; the sliding
// count is the current window plus the previous one weighted by the part of it still inside
// the window. When a window ends its counts are folded into an exponentially weighted moving
// average with time constant baseline (per class, in refusals per window). A new key takes an
// empty slot of its probe sequence, or evicts the least recently active one (counted in
// Stats.Evictions): memory is fixed at New and never grows with the number of sources.
// Counts are updated without locks, so a slot reused or rolled over while another goroutine
// adds to it may gain or lose a count: the figures are estimates, as anomaly detection needs.
//
// # Rules
//
// A refusal of class c pushes its key to an anomaly when the window holds at least
// min_events refusals of c and either ratio times the baseline of c (a key without history
// has a baseline of 0: min_events alone decides), or more than max_deny_rate refusals a
// second. An
// anomaly stays active for the rest of its window and the next; it is not raised again for
// that key meanwhile.
//
// # Blocks
//
// With block = true an anomaly of a client IP blocks that IP for block_for, doubled on each
// repeat within max_block_for of the previous block's end and capped at max_block_for: its
// requests get 429 with Retry-After before any filter or policy. With block = "policy" the
// IP is only marked: input.source.blocked is true and the policy decides. Addresses in
// never_block are never blocked. Senders and routes are reported, never blocked: a sender is
// only known once the policy ran, and blocking a route would refuse everyone. With a Fleet
// (the Redis state backend) blocks are written to it and read back by every gateway within
// a poll interval (250ms); a lift anywhere lifts everywhere. A lift is written as a record
// of its own, which replaces the block's: a block merely missing from the fleet (Redis
// restarted or flushed) is written again by the gateway that placed it, and dropped, until
// then, by the others.
//
// At most max_blocks blocks are held, placed here or read from the fleet. A full table
// keeps its blocks until they end or are lifted and places no new one: the anomaly is still
// raised and alerted, the refusal counted (Stats.BlocksRefused) and warned about at most
// once a minute. Strikes are kept for at most twice as many sources. The request path reads
// the blocks from shards of immutable maps of about 16 blocks each: a new block copies one
// shard, whatever the number held.
//
// # Alerts
//
// With alert_url each anomaly is POSTed there as JSON, signed with the Standard Webhooks
// scheme (webhook-id, webhook-timestamp, webhook-signature) under the alert_secret key, from
// a bounded queue by one goroutine with retries: a slow or failing receiver never delays a
// request; alerts it cannot keep up with are dropped and counted. A redirect is not followed:
// the alert fails, naming the status.
package watch
