package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"
)

// deliveryPrefix starts every delivery id of one load-generator process: random bits from
// the OS, then the round and the setup, so no two processes, rounds or runs of the benchmark
// share an id. Each request appends its own counter. A repeated id would be answered
// "duplicate" without being forwarded, and the round would measure the wrong thing.
func deliveryPrefix(round int, setup string) (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("delivery ids: %w", err)
	}
	return hex.EncodeToString(b[:]) + "-r" + strconv.Itoa(round) + "-" + setup, nil
}

// tally is what one run did, counted by the load generator, the upstream and the decision log.
type tally struct {
	sent      uint64 // requests the load generator wrote
	forwarded uint64 // requests the upstream served
	decisions map[string]uint64
	logged    bool         // the setup writes a decision log (hookwall)
	hashes    int          // the control's sums a request; 0 for the other setups
	hashed    uint64       // sums the control computed
	queued    *queuedTally // a queued route's store and deliveries; nil for a direct one
}

// void says why a run does not count, or "". Every request must have reached the upstream
// exactly once and, for hookwall, have been logged allowed: a duplicate, a denial or a
// lost record means the run measured something else than the workload.
func (t tally) void() string {
	if t.sent == 0 {
		return "no requests sent"
	}
	if t.queued != nil {
		return t.queuedVoid()
	}
	if t.forwarded != t.sent {
		return fmt.Sprintf("%d requests sent, %d forwarded", t.sent, t.forwarded)
	}
	if want := t.forwarded * uint64(t.hashes); t.hashed != want {
		return fmt.Sprintf("the control computed %d sums for %d requests, want %d (%d a request)", t.hashed, t.forwarded, want, t.hashes)
	}
	if !t.logged {
		return ""
	}
	var other uint64
	for o, n := range t.decisions {
		if o != "allowed" {
			other += n
		}
	}
	if d := t.decisions["duplicate"]; d > 0 {
		return fmt.Sprintf("%d duplicate deliveries", d)
	}
	if other > 0 {
		return fmt.Sprintf("%d decisions other than allowed: %v", other, t.decisions)
	}
	if a := t.decisions["allowed"]; a != t.forwarded {
		return fmt.Sprintf("%d forwarded, %d allowed in the decision log", t.forwarded, a)
	}
	return ""
}

// queuedVoid audits a run on a queued route: every request sent was answered 202 and
// logged queued, stored as one row, and delivered under a distinct id and logged
// delivered; the upstream served those and the re-deliveries, nothing else.
func (t tally) queuedVoid() string {
	q := t.queued
	if v := q.void(t.sent); v != "" {
		return v
	}
	if t.forwarded != q.delivered+q.dups {
		return fmt.Sprintf("the upstream served %d, %d distinct deliveries and %d re-deliveries", t.forwarded, q.delivered, q.dups)
	}
	for o, n := range t.decisions {
		if o != "queued" && o != "delivered" {
			return fmt.Sprintf("%d decisions %s: %v", n, o, t.decisions)
		}
	}
	if a := t.decisions["queued"]; a != t.sent {
		return fmt.Sprintf("%d requests sent, %d logged queued", t.sent, a)
	}
	if a := t.decisions["delivered"]; a != q.delivered {
		return fmt.Sprintf("%d delivered, %d logged delivered", q.delivered, a)
	}
	return ""
}

func (t tally) String() string {
	s := fmt.Sprintf("sent %d, forwarded %d", t.sent, t.forwarded)
	if t.queued != nil {
		s += ", " + t.queued.String()
	}
	if t.logged {
		s += fmt.Sprintf(", decisions %v", t.decisions)
	}
	if t.hashes > 0 {
		s += fmt.Sprintf(", hashed %d", t.hashed)
	}
	return s
}

// decisionLog reads the records the gateway appended to its decision log since the last read.
type decisionLog struct {
	path   string
	offset int64
}

// since counts the new records by outcome, for one route, and moves past them. A record
// cut off at the end (the writer mid-flush) is left for the next read.
func (l *decisionLog) since(route string) (map[string]uint64, error) {
	f, err := os.Open(l.path)
	if err != nil {
		return nil, fmt.Errorf("decision log: %w", err)
	}
	defer f.Close()
	if _, err := f.Seek(l.offset, io.SeekStart); err != nil {
		return nil, fmt.Errorf("decision log %s: %w", l.path, err)
	}
	raw, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("decision log %s: %w", l.path, err)
	}
	if i := bytes.LastIndexByte(raw, '\n'); i >= 0 {
		raw = raw[:i+1]
	} else {
		raw = nil
	}
	l.offset += int64(len(raw))
	counts := map[string]uint64{}
	wantRoute := []byte(`"route":` + strconv.Quote(route) + `,`)
	for len(raw) > 0 {
		i := bytes.IndexByte(raw, '\n')
		line := raw[:i]
		raw = raw[i+1:]
		if !bytes.Contains(line, wantRoute) {
			continue
		}
		counts[outcomeOf(line)]++
	}
	return counts, nil
}

// outcomeOf is a record's outcome field (the encoder writes it as a plain JSON string).
func outcomeOf(line []byte) string {
	const key = `"outcome":"`
	i := bytes.Index(line, []byte(key))
	if i < 0 {
		return "(none)"
	}
	rest := line[i+len(key):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return "(none)"
	}
	return string(rest[:j])
}

// upstreamHits reads the benchmark upstream's count of served requests.
func upstreamHits(addr string) (uint64, error) {
	var req fasthttp.Request
	var resp fasthttp.Response
	req.SetRequestURI("http://" + addr + hitsPath)
	if err := fasthttp.DoTimeout(&req, &resp, 2*time.Second); err != nil {
		return 0, fmt.Errorf("upstream count: %w", err)
	}
	n, err := strconv.ParseUint(string(bytes.TrimSpace(resp.Body())), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("upstream count %q: %w", resp.Body(), err)
	}
	return n, nil
}

// settle waits until the upstream's count and the decision log stop moving: requests the
// load generator wrote last may still be in flight, and the log's writer flushes in batches.
func settle(ctx context.Context, upstream string, hits0 uint64, log *decisionLog, route string, t *tally) error {
	var last uint64
	stable := 0
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		h, err := upstreamHits(upstream)
		if err != nil {
			return err
		}
		t.forwarded = h - hits0
		if log != nil {
			d, err := log.since(route)
			if err != nil {
				return err
			}
			for o, n := range d {
				t.decisions[o] += n
			}
		}
		total := t.forwarded
		for _, n := range t.decisions {
			total += n
		}
		if total == last {
			stable++
		} else {
			last, stable = total, 0
		}
		// The log's writer flushes at least every 200 ms: three unchanged reads 150 ms apart.
		if stable >= 3 {
			return nil
		}
		time.Sleep(150 * time.Millisecond)
	}
	return ctx.Err()
}
