package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// idsPath on the upstream answers what it received with a Hookwall-Delivery-Id (queued
// deliveries): "DISTINCT DUPLICATES FIRST_NS LAST_NS", the receive times of the first and
// the last new id.
const idsPath = "/__ids"

// idLedger is the upstream's record of the queued deliveries it received: every
// Hookwall-Delivery-Id once, and how many came again (at-least-once allows a re-delivery;
// the audit counts them).
type idLedger struct {
	mu          sync.Mutex
	seen        map[string]struct{}
	dups        uint64
	first, last time.Time
}

func (l *idLedger) add(id []byte, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.seen[string(id)]; ok {
		l.dups++
		return
	}
	l.seen[string(id)] = struct{}{}
	if l.first.IsZero() {
		l.first = now
	}
	l.last = now
}

func (l *idLedger) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return fmt.Sprintf("%d %d %d %d", len(l.seen), l.dups, unixNano(l.first), unixNano(l.last))
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// received is the upstream's idLedger as read through idsPath.
type received struct {
	distinct, dups uint64
	first, last    time.Time
}

func upstreamIDs(addr string) (received, error) {
	var req fasthttp.Request
	var resp fasthttp.Response
	req.SetRequestURI("http://" + addr + idsPath)
	if err := fasthttp.DoTimeout(&req, &resp, 2*time.Second); err != nil {
		return received{}, fmt.Errorf("upstream delivery ids: %w", err)
	}
	var r received
	var first, last int64
	if _, err := fmt.Sscan(string(resp.Body()), &r.distinct, &r.dups, &first, &last); err != nil {
		return received{}, fmt.Errorf("upstream delivery ids %q: %w", resp.Body(), err)
	}
	if first > 0 {
		r.first, r.last = time.Unix(0, first), time.Unix(0, last)
	}
	return r, nil
}

// adminAPI is a gateway's admin listener and its token ("" when it has none).
type adminAPI struct{ addr, token string }

// routeDepth is one queued route's line of the gateway's status page (its /-/recent feed).
type routeDepth struct {
	Route     string `json:"route"`
	Pending   uint64 `json:"pending"`
	Delivered uint64 `json:"delivered"`
	Dead      uint64 `json:"dead"`
}

func (d routeDepth) rows() uint64 { return d.Pending + d.Delivered + d.Dead }

// statusDepth reads a queued route's depth from the gateway's status page. The page
// says the store did not answer (a line without a route) when its depth query timed out,
// which a gateway under load can: that is asked again, never read as an empty store.
func statusDepth(admin adminAPI, route string) (routeDepth, error) {
	for try := 1; ; try++ {
		d, answered, err := statusDepthOnce(admin, route)
		if err != nil || answered {
			return d, err
		}
		if try == storeTries {
			return routeDepth{}, fmt.Errorf("status page: the delivery store did not answer %d times", storeTries)
		}
		time.Sleep(time.Second)
	}
}

// storeTries is how many times statusDepth asks a store that does not answer.
const storeTries = 10

// statusDepthOnce reads the status page once; answered is false when the page says the
// store did not answer.
func statusDepthOnce(admin adminAPI, route string) (d routeDepth, answered bool, err error) {
	var req fasthttp.Request
	var resp fasthttp.Response
	req.SetRequestURI("http://" + admin.addr + "/-/recent")
	if admin.token != "" {
		req.Header.Set("Authorization", "Bearer "+admin.token)
	}
	if err := fasthttp.DoTimeout(&req, &resp, 5*time.Second); err != nil {
		return routeDepth{}, false, fmt.Errorf("status page: %w", err)
	}
	if resp.StatusCode() != 200 {
		return routeDepth{}, false, fmt.Errorf("status page: %d", resp.StatusCode())
	}
	var doc struct {
		Deliveries []routeDepth `json:"deliveries"`
	}
	if err := json.Unmarshal(resp.Body(), &doc); err != nil {
		return routeDepth{}, false, fmt.Errorf("status page: %w", err)
	}
	for _, d := range doc.Deliveries {
		if d.Route == "" {
			return routeDepth{}, false, nil
		}
	}
	for _, d := range doc.Deliveries {
		if d.Route == route {
			return d, true, nil
		}
	}
	return routeDepth{Route: route}, true, nil // nothing stored for the route yet
}

// queuedTally is what a run on a queued route did beyond the direct audit: rows the store
// holds for the route, ids the upstream received, and the backlog when the load stopped.
type queuedTally struct {
	rows, delivered, dups uint64
	dead                  uint64
	backlog               uint64 // pending when the load generator stopped
	settle                time.Duration
}

// queuedBefore is the state a queued run's audit is measured from.
type queuedBefore struct {
	depth routeDepth
	ids   received
}

func queuedStart(admin adminAPI, route, upstream string) (queuedBefore, error) {
	d, err := statusDepth(admin, route)
	if err != nil {
		return queuedBefore{}, err
	}
	ids, err := upstreamIDs(upstream)
	return queuedBefore{depth: d, ids: ids}, err
}

// queuedSettle waits until every row the run stored was delivered (or limit passed), and
// fills q: the upstream's distinct new ids must equal the new rows, which must equal the
// 202s, or the run is void.
func queuedSettle(ctx context.Context, admin adminAPI, route, upstream string, b queuedBefore, limit time.Duration, q *queuedTally) error {
	start := time.Now()
	d, err := statusDepth(admin, route)
	if err != nil {
		return err
	}
	q.backlog = d.Pending
	for {
		d, err := statusDepth(admin, route)
		if err != nil {
			return err
		}
		ids, err := upstreamIDs(upstream)
		if err != nil {
			return err
		}
		q.rows, q.dead = d.rows()-b.depth.rows(), d.Dead-b.depth.Dead
		q.delivered, q.dups = ids.distinct-b.ids.distinct, ids.dups-b.ids.dups
		q.settle = time.Since(start)
		if (d.Pending == 0 && q.delivered >= q.rows) || q.settle > limit || ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// void says why a queued run does not count: every 202 must be a row, and every row
// delivered under a distinct id, none dead.
func (q queuedTally) void(accepted uint64) string {
	switch {
	case q.rows != accepted:
		return fmt.Sprintf("%d accepted, %d rows stored", accepted, q.rows)
	case q.dead > 0:
		return fmt.Sprintf("%d deliveries dead", q.dead)
	case q.delivered != q.rows:
		return fmt.Sprintf("%d rows stored, %d delivered (distinct ids) after %v", q.rows, q.delivered, q.settle.Round(time.Millisecond))
	}
	return ""
}

func (q queuedTally) String() string {
	return "rows " + strconv.FormatUint(q.rows, 10) + ", delivered " + strconv.FormatUint(q.delivered, 10) +
		", re-delivered " + strconv.FormatUint(q.dups, 10) + ", backlog at end " + strconv.FormatUint(q.backlog, 10) +
		", drained in " + q.settle.Round(time.Millisecond).String()
}

// removeSQLite removes a SQLite database with its WAL and shared-memory files.
func removeSQLite(path string) {
	for _, suffix := range []string{"", "-wal", "-shm"} {
		_ = os.Remove(path + suffix)
	}
}

// printQueuedReport sets each queued setup beside the same workload on the direct route,
// paired by round: ingest (requests/s) and p99 ratios, the backlog the workers left when
// the load stopped, and how long they took to deliver it.
func printQueuedReport(w io.Writer, all map[string]benchSetup, results map[string][]benchResult) {
	direct := results["reference"]
	for _, name := range []string{"queued", "queued-pg"} {
		qs := results[name]
		if len(qs) == 0 {
			continue
		}
		var backlog, drain []float64
		for _, q := range qs {
			if t := q.tally.queued; t != nil {
				backlog = append(backlog, float64(t.backlog))
				drain = append(drain, t.settle.Seconds())
			}
		}
		measured := func(d benchResult) bool { return d.rps() > 0 && d.p99 > 0 }
		rps := pairRounds(qs, direct, func(q, d benchResult) (float64, bool) { return q.rps() / d.rps(), measured(d) })
		p99 := pairRounds(qs, direct, func(q, d benchResult) (float64, bool) { return float64(q.p99) / float64(d.p99), measured(d) })
		fmt.Fprintf(w, "%s against the direct reference route, paired by round: ingest %s, p99 %s; backlog when the load stopped %s, delivered %s s later\n",
			all[name].name, medianRange(rps), medianRange(p99), medianOf(backlog, "%.0f", ""), medianOf(drain, "%.1f", ""))
	}
}

// medianOf formats the median of xs, followed by unit, with their range, or "n/a".
func medianOf(xs []float64, format, unit string) string {
	if len(xs) == 0 {
		return "n/a"
	}
	med, lo, hi := spread(append([]float64(nil), xs...))
	return fmt.Sprintf(format+unit+" ("+format+"–"+format+")", med, lo, hi)
}
