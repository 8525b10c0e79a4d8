package redis

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hookwall/hookwall/engine/internal/redistest"
)

// TestBlocksReadsALargeTable: a block table of 100,000 records (max_blocks goes up to 2^20,
// and every gateway of a fleet adds its own) is read whole in replies of a bounded size.
// One HGETALL of it is a 20 MB reply that holds Redis' one thread for a few hundred
// milliseconds: every Admit of every gateway waits behind it and fails at its 50 ms Timeout,
// and the read itself cannot come back within Timeout, so the fleet never reads its blocks
// again. The bound is asserted by Redis itself, not by a clock: the server closes a client
// whose pending reply passes 4 MB (client-output-buffer-limit), which a page of records never
// does and one whole-table reply does.
func TestBlocksReadsALargeTable(t *testing.T) {
	srv := redistest.Start(t)
	rc := rawClient(t, srv)
	ctx := context.Background()
	const n = 100_000
	rec := `{"source":"198.51.100.7","since":"2026-01-02T03:04:05.123456789Z","until":"2026-01-02T04:04:05.123456789Z","strikes":3,"route":"github","kind":"burst","rule":"deny_rate"}`
	source := func(i int) string { return fmt.Sprintf("10.%d.%d.%d", i>>16, (i>>8)&255, i&255) }
	p := rc.Pipeline()
	for i := range n {
		p.HSet(ctx, "big:watch:blocks", source(i), rec)
		if i%10_000 == 9_999 {
			if _, err := p.Exec(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := p.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if err := rc.ConfigSet(ctx, "client-output-buffer-limit", "normal 4mb 4mb 0").Err(); err != nil {
		t.Fatal(err)
	}
	// A Timeout generous for a loaded test machine: what is asserted is the size of a reply.
	s := newStore(t, Options{URL: srv.URL(), Prefix: "big:", Timeout: 5 * time.Second})
	all, err := s.Blocks(ctx)
	if err != nil {
		t.Fatalf("Blocks of %d records: %v", n, err)
	}
	if len(all) != n || string(all[source(0)]) != rec || string(all[source(n-1)]) != rec {
		t.Fatalf("Blocks returned %d records, want %d with their values", len(all), n)
	}
}
