// Package memory is the in-process state.Store: one gateway, no external service, the default
// backend.
//
// Keys live in Shards shards (a mutex, a read-write lock, a map of rate cells, an index of
// dedupe keys and a slot arena each), chosen by a per-store maphash seed; the high half of the
// same hash places a dedupe key in its shard's index, so a call hashes its key once. A rate key's GCRA state is a cell of one 64-bit word,
// updated by compare-and-swap: Admit holds the dedupe key's shard lock and only read-locks the
// rate key's shard, so the requests of one hot rate key (every request from one client) do not
// queue on a lock; the write lock is taken to add, rebase or drop a cell.
//
// Every entry has an expiry: a rate-limit entry expires when its GCRA state equals a fresh
// key's, a dedupe entry after its TTL. Expired entries are dropped lazily (on lookup, and up to
// two per write that may add an entry, from the earliest expiry bucket), so no goroutine runs
// in the background. Entries are kept in expiry buckets about a second wide (2^20 µs), ordered
// by bucket and, within one, by when they entered it, in two queues per shard (rate entries,
// dedupe entries): putting an entry in, moving it and taking it out costs the same whatever the
// store holds.
//
// The store never holds more than MaxKeys entries (rate and dedupe keys together; each shard
// holds at most MaxKeys/Shards), nor more than MaxBytes, counted as each key's length plus
// EntryOverhead (each shard holds at most MaxBytes/Shards; Stats().Bytes). A write into a full
// shard first drops expired entries, otherwise evicts live entries until the new one fits, and
// counts them in Stats().Evictions: rate-limit entries first, those closest to their expiry
// (the earliest bucket of the shard's rate queue), whatever the dedupe entries' expiries; only
// when the shard holds no rate entry, the dedupe entries closest to their expiry (the earliest
// bucket of its dedupe queue), counted in Stats().DedupeEvictions as well.
// The gateway hands the store keys bounded by state.Bound, so an entry is at most 71 bytes of
// key. Evictions weaken the guarantees (an evicted delivered marker lets a replay through, an
// evicted rate entry starts fresh), so the counters are meant to be exported as metrics and
// MaxKeys should be sized above the working set.
//
// Admit with both obligations costs one lock section and one read-locked one, a map lookup or
// two (the index probes the same few slots for a new delivery id's miss and its insert) and
// a few integer operations; it allocates only when a map, the index or the arena grows, or
// for a new rate key's cell. Its Admission.Claim names the slot of a new claim, so
// CommitClaim settles it without hashing or looking up the key again.
package memory
