package memory

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookwall/hookwall/engine/state"
)

const benchKeyCount = 1 << 16

// benchKeys are built before the timer: the server builds its keys from the request anyway.
func benchKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "delivery-" + strconv.Itoa(i)
	}
	return keys
}

// tickClock advances 1µs per reading: with a 1ms dedupe TTL the store reaches a steady state
// of about 1000 live keys in which every insert sweeps an expired one, the shape of a
// long-running gateway whose delivered markers expire as fast as new ones come in.
func tickClock() func() time.Time {
	var us atomic.Int64
	us.Store(1_800_000_000_000_000)
	return func() time.Time { return time.UnixMicro(us.Add(1)) }
}

// BenchmarkAdmit is one request with both obligations: a fresh dedupe key each time (as for
// real deliveries) under a per-sender rate limit that never trips.
func BenchmarkAdmit(b *testing.B) {
	b.Run("expiring", func(b *testing.B) {
		benchAdmit(b, New(Options{Now: tickClock()}), time.Millisecond)
	})
	// A store far too small for its traffic: every insert evicts a live entry.
	b.Run("full", func(b *testing.B) {
		benchAdmit(b, New(Options{MaxKeys: benchKeyCount / 4}), time.Hour)
	})
}

func benchAdmit(b *testing.B, s *Store, ttl time.Duration) {
	keys := benchKeys(benchKeyCount)
	ctx := context.Background()
	c := state.Check{RateLimit: state.RateLimit{Key: "sender", Limit: 1 << 30, Per: time.Second}, Dedupe: state.Dedupe{TTL: ttl}}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		c.Dedupe.Key = keys[i&(benchKeyCount-1)]
		a, err := s.Admit(ctx, &c)
		if err != nil || a.Limited || a.Dedupe != state.DedupeNew {
			b.Fatalf("%+v %v", a, err)
		}
	}
}

// BenchmarkAdmitCommit is a whole successful request: Admit, then Commit.
func BenchmarkAdmitCommit(b *testing.B) {
	s := New(Options{Now: tickClock()})
	keys := benchKeys(benchKeyCount)
	ctx := context.Background()
	c := state.Check{RateLimit: state.RateLimit{Key: "sender", Limit: 1 << 30, Per: time.Second}, Dedupe: state.Dedupe{TTL: time.Millisecond}}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		c.Dedupe.Key = keys[i&(benchKeyCount-1)]
		a, err := s.Admit(ctx, &c)
		if err != nil || a.Dedupe != state.DedupeNew {
			b.Fatalf("%+v %v", a, err)
		}
		if err := s.Commit(ctx, c.Dedupe.Key, time.Millisecond); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAdmitParallel: GOMAXPROCS goroutines, 64 senders, distinct deliveries.
func BenchmarkAdmitParallel(b *testing.B) {
	s := New(Options{Now: tickClock()})
	keys := benchKeys(benchKeyCount)
	senders := benchKeys(64)
	var next atomic.Uint64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		g := next.Add(1)
		c := state.Check{RateLimit: state.RateLimit{Key: senders[g%64], Limit: 1 << 30, Per: time.Second}, Dedupe: state.Dedupe{TTL: time.Millisecond}}
		for i := g * 7919; pb.Next(); i++ {
			c.Dedupe.Key = keys[i&(benchKeyCount-1)]
			if _, err := s.Admit(ctx, &c); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkAdmitCommitHour is the benchmark workload's request in a long-running gateway: a
// fresh delivery id kept for an hour under one sender's rate limit, admitted then committed,
// in a store already full of the last hour's ids (its default bound), so every insert evicts
// (keyed, claim); and in a store filling up, as in the load benchmark's runs (filling: a
// fresh store, replaced by another before it holds three quarters of its default bound, so
// none is evicted however many iterations the benchmark runs).
func BenchmarkAdmitCommitHour(b *testing.B) {
	const n = 1 << 21
	keys := benchKeys(n)
	for _, name := range []string{"keyed", "claim", "filling"} {
		byClaim, full := name != "keyed", name != "filling"
		b.Run(name, func(b *testing.B) {
			s := New(Options{Now: tickClock()})
			ctx := context.Background()
			c := state.Check{RateLimit: state.RateLimit{Key: "127.0.0.1", Limit: 100_000_000, Per: time.Minute}, Dedupe: state.Dedupe{TTL: time.Hour}}
			i := 0
			step := func() {
				c.Dedupe.Key = keys[i&(n-1)]
				i++
				a, err := s.Admit(ctx, &c)
				if err != nil || a.Limited {
					b.Fatalf("%+v %v", a, err)
				}
				if byClaim {
					err = s.CommitClaim(ctx, c.Dedupe.Key, a.Claim, time.Hour)
				} else {
					err = s.Commit(ctx, c.Dedupe.Key, time.Hour)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			if full {
				for range DefaultMaxKeys + DefaultMaxKeys/4 { // full, and evicting
					step()
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				if !full && i == DefaultMaxKeys*3/4 {
					b.StopTimer()
					s, i = New(Options{Now: tickClock()}), 0
					b.StartTimer()
				}
				step()
			}
			if st := s.Stats(); !full && st.Evictions != 0 {
				b.Fatalf("%s: %d evictions", name, st.Evictions)
			}
		})
	}
}
