// Package postgres is the delivery.Store of a fleet: every gateway enqueues into one
// PostgreSQL database and any gateway's workers deliver. A claim takes due deliveries with
// FOR UPDATE SKIP LOCKED, so concurrent claimers never wait on or take the same rows, and
// sets a lease (claimed_by, lease_until): a gateway that dies holding leases loses them when
// they expire, and another gateway's workers take its work over. An ordered route's
// destination has one lease at a time: a claim takes its head only while none of its
// deliveries holds a live lease, and a claim that leased ordered deliveries checks them
// under a lock per destination after its commit (checkOrdered).
//
// Times are the callers' clocks (the gateways'): keep them synchronised (NTP); a lease is
// long against any sane skew. Concurrent enqueues of one gateway go in together, one
// statement for all of them (each alone when that fails, so only the failing one fails);
// so do its concurrent finishes: one statement, one commit, updates the deliveries whose
// leases are held and records their attempts.
// max_pending is checked against an estimate of the pending deliveries, so that an insert
// far below the bound does not count a backlog of any size: the last count (taken in the
// background, at most once a second, and less often when the count itself is slow, so it
// takes at most about 2 % of the time) plus every delivery this gateway made pending since.
// Where that estimate has no room, the insert counts the pending rows itself, so one
// gateway never passes the bound; a fleet may pass it by what the other gateways made
// pending since this one's last count, and concurrent enqueues by at most their number.
// Enqueue and Finish return once PostgreSQL committed to disk (their connections set
// synchronous_commit = on, whatever the server's default); a claim's or release's commit does not wait for the disk, so a
// crash of the server can undo a lease (the delivery is then delivered again: at least
// once). Every statement is planned for its values and the table as it is, so that a plan
// made while the table was empty is not kept once it holds a backlog.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hookwall/hookwall/engine/delivery"
)

// Options configure a Store.
type Options struct {
	// URL is a PostgreSQL connection URL (postgres://user:pass@host:5432/db?sslmode=…). A
	// server off this machine must be reached with its certificate verified (CheckURL).
	URL string
	// MaxPending bounds the pending deliveries (see the package doc); 0 means no bound.
	MaxPending int
}

// Store is a delivery.Store in PostgreSQL. Create with Open.
type Store struct {
	pool       *pgxpool.Pool
	leases     *pgxpool.Pool // claims and releases: commits that need not wait for the disk
	maxPending int

	enqs *delivery.Inbox[*enq] // to the batcher
	done chan struct{}         // closed when the batcher has stopped

	fins     *delivery.Inbox[*fin] // to the finisher
	finsDone chan struct{}         // closed when the finisher has stopped
	commits  atomic.Int64          // finish statements made (each its own commit)

	pending pendingCount
	counts  sync.WaitGroup // the background counts of pending deliveries
	counted atomic.Int64   // inserts that counted the pending rows themselves
}

// pendingCount is a gateway's estimate of how many deliveries are pending: an upper bound
// of the truth as far as this gateway's own writes go (a finish or purge that frees a place
// is not subtracted until the next count).
type pendingCount struct {
	mu       sync.Mutex
	n        int64         // the last count
	since    int64         // made pending by this gateway after that count began
	at       time.Time     // when that count began; zero before the first
	every    time.Duration // from one count's start to the next
	counting bool
	taken    int64 // counts taken, for tests
}

// countEvery is the shortest time between two counts; countShare the most of its time a
// count may take (the next waits 1/countShare times as long as the last one took).
const (
	countEvery = time.Second
	countShare = 50
)

// mustCount reports whether an insert of n deliveries must count the pending rows itself:
// the estimate has no room for them, or there is none yet. It starts a count in the
// background when the last one is due.
func (s *Store) mustCount(n int) bool {
	if s.maxPending <= 0 {
		return false
	}
	p := &s.pending
	p.mu.Lock()
	room := !p.at.IsZero() && p.n+p.since+int64(n) <= int64(s.maxPending)
	due := !p.counting && (p.at.IsZero() || time.Since(p.at) >= p.every)
	p.counting = p.counting || due
	before := p.since
	p.mu.Unlock()
	if due {
		s.counts.Add(1)
		go s.recount(before)
	}
	if !room {
		s.counted.Add(1)
	}
	return !room
}

// add records n deliveries made pending by this gateway.
func (p *pendingCount) add(n int64) {
	p.mu.Lock()
	p.since += n
	p.mu.Unlock()
}

// recount counts the pending deliveries; before is what this gateway had made pending
// since the last count when this one began.
func (s *Store) recount(before int64) {
	defer s.counts.Done()
	p := &s.pending
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), groupTimeout)
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM hookwall_deliveries WHERE state = 'pending'`).Scan(&n)
	cancel()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.counting = false
	if err != nil {
		return // the estimate stays as it was; the inserts count for themselves meanwhile
	}
	// What this gateway made pending while the count ran may or may not be in it: kept,
	// so the estimate stays an upper bound.
	p.n, p.since, p.at = n, p.since-before, start
	p.every = max(countEvery, countShare*time.Since(start))
	p.taken++
}

// fin is one Finish waiting for the finisher.
type fin struct {
	ctx       context.Context
	id, owner string
	res       delivery.Result
	errc      chan error
}

// enq is one Enqueue waiting for the batcher.
type enq struct {
	ctx  context.Context
	rs   []*delivery.Record
	errc chan error
}

// maxEnqueueBatch bounds the records one statement inserts, maxFinishBatch the finishes
// one statement makes; groupTimeout bounds a statement made for several requests (each
// alone runs under its request's context).
//
// leaseConns bounds the connections of claims and releases: a gateway's dispatcher claims
// one batch at a time.
const (
	leaseConns      = 4
	maxEnqueueBatch = 256
	maxFinishBatch  = 256
	groupTimeout    = 30 * time.Second
)

const schema = `
CREATE TABLE IF NOT EXISTS hookwall_deliveries (
	id          TEXT PRIMARY KEY,
	route       TEXT NOT NULL,
	dest        INTEGER NOT NULL DEFAULT 0,
	decision_id TEXT NOT NULL,
	received_at BIGINT NOT NULL,
	method      TEXT NOT NULL,
	uri         TEXT NOT NULL,
	headers     BYTEA NOT NULL,
	body        BYTEA NOT NULL,
	state       TEXT NOT NULL,
	attempts    INTEGER NOT NULL DEFAULT 0,
	base        INTEGER NOT NULL DEFAULT 0,
	next_at     BIGINT NOT NULL,
	updated_at  BIGINT NOT NULL,
	last_status INTEGER NOT NULL DEFAULT 0,
	last_error  TEXT NOT NULL DEFAULT '',
	claimed_by  TEXT,
	lease_until BIGINT
);
CREATE INDEX IF NOT EXISTS hookwall_deliveries_due ON hookwall_deliveries (state, next_at);
CREATE INDEX IF NOT EXISTS hookwall_deliveries_route ON hookwall_deliveries (route, received_at);
CREATE INDEX IF NOT EXISTS hookwall_deliveries_updated ON hookwall_deliveries (state, updated_at);
CREATE INDEX IF NOT EXISTS hookwall_deliveries_leased ON hookwall_deliveries (route, dest, lease_until) WHERE claimed_by IS NOT NULL;
CREATE TABLE IF NOT EXISTS hookwall_delivery_attempts (
	delivery_id TEXT NOT NULL,
	n           INTEGER NOT NULL,
	at          BIGINT NOT NULL,
	status      INTEGER NOT NULL,
	latency_us  BIGINT NOT NULL,
	error       TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS hookwall_delivery_attempts_id ON hookwall_delivery_attempts (delivery_id, n);
`

// planParams are the settings of every connection: each statement is planned for its own
// values and the table as it is. PostgreSQL otherwise moves a statement prepared and run
// five times (pgx prepares every statement) to a generic plan, which it keeps: one made
// while the table was nearly empty scans the whole table at every finish and claim once
// the table holds a backlog.
//
// jit is off: with it on, PostgreSQL spent two thirds of its time in LLVM under the
// benchmark's load with a backlog, compiling statements that run in milliseconds.
var planParams = map[string]string{"plan_cache_mode": "force_custom_plan", "jit": "off"}

// leaseParams are the settings the claims' and releases' connections add to planParams.
// Their commits do not wait for the disk: a lease lost with a crash of the server makes the
// delivery claimable again, and its worker's finish then fails with ErrLeaseLost, as with
// an expired lease (at least once). And a claim reads the due index in order whatever the
// statistics say: without statistics (a new table, or one that grew since its last
// ANALYZE) the planner took a bitmap scan of every due row and a sort of them.
var leaseParams = map[string]string{
	"synchronous_commit": "off",
	"enable_seqscan":     "off",
	"enable_bitmapscan":  "off",
}

// schemaLock serialises schema creation among gateways starting together.
const schemaLock = 0x686f6f6b77616c6c // "hookwall"

// Open connects, creates the schema if missing, and returns the store. It connects to no
// server off this machine whose certificate the url does not have verified: that is an
// *UnverifiedError (see CheckURL). The error never quotes the URL (it carries the password).
func Open(ctx context.Context, o Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(o.URL)
	if err != nil {
		return nil, fmt.Errorf("delivery/postgres: the url %w", parseError(err))
	}
	// Checked before any connection: an unverified server would get the password at once.
	if err := checkVerified(&cfg.ConnConfig.Config); err != nil {
		return nil, fmt.Errorf("delivery/postgres: %w", err)
	}
	cfg.ConnConfig.LookupFunc = loopbackLookup(cfg.ConnConfig.LookupFunc)
	maps.Copy(cfg.ConnConfig.RuntimeParams, planParams)
	lcfg := cfg.Copy()
	maps.Copy(lcfg.ConnConfig.RuntimeParams, leaseParams)
	// An enqueue's commit is what the 202 promises: it waits for the disk whatever the
	// server's, database's or role's default says.
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "on"
	lcfg.MaxConns = leaseConns
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("delivery/postgres: %w", err)
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("delivery/postgres: connect: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(schemaLock)); err != nil {
		pool.Close()
		return nil, fmt.Errorf("delivery/postgres: %w", err)
	}
	_, err = conn.Exec(ctx, schema)
	_, _ = conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, int64(schemaLock))
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("delivery/postgres: create schema: %w", err)
	}
	leases, err := pgxpool.NewWithConfig(ctx, lcfg)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("delivery/postgres: %w", err)
	}
	s := &Store{pool: pool, leases: leases, maxPending: o.MaxPending, enqs: delivery.NewInbox[*enq](maxEnqueueBatch), done: make(chan struct{}),
		fins: delivery.NewInbox[*fin](maxFinishBatch), finsDone: make(chan struct{})}
	go s.batcher()
	go s.finisher()
	return s, nil
}

// Enqueue implements delivery.Store.
func (s *Store) Enqueue(ctx context.Context, rs ...*delivery.Record) error {
	if len(rs) == 0 {
		return nil
	}
	e := &enq{ctx: ctx, rs: rs, errc: make(chan error, 1)}
	if err := s.enqs.Send(e); err != nil {
		return err
	}
	// The batcher always answers: a statement already sent may store these records.
	return <-e.errc
}

// batcher inserts the enqueues waiting together, in one statement: concurrent requests
// share a round trip and a commit. When that statement fails (a duplicate id) or the
// group would pass max_pending, each enqueue is made alone, so that only the failing or
// refused one fails.
func (s *Store) batcher() {
	defer close(s.done)
	var batch []*enq
	for first := range s.enqs.C {
		batch = append(batch[:0], first)
		n := len(first.rs)
	fill:
		for n < maxEnqueueBatch {
			select {
			case e, ok := <-s.enqs.C:
				if !ok {
					break fill
				}
				batch, n = append(batch, e), n+len(e.rs)
			default:
				break fill
			}
		}
		live := batch[:0]
		for _, e := range batch {
			if err := e.ctx.Err(); err != nil {
				e.errc <- err
				continue
			}
			live = append(live, e)
		}
		if len(live) > 1 {
			var rs []*delivery.Record
			for _, e := range live {
				rs = append(rs, e.rs...)
			}
			gctx, cancel := context.WithTimeout(context.Background(), groupTimeout)
			err := s.insert(gctx, rs)
			cancel()
			if err == nil {
				for _, e := range live {
					e.errc <- nil
				}
				continue
			}
		}
		for _, e := range live {
			e.errc <- s.insert(e.ctx, e.rs)
		}
	}
}

// insert stores rs in one statement, one round trip: the records go in as arrays
// (unnest), all or none, and only while max_pending has room for all of them.
func (s *Store) insert(ctx context.Context, rs []*delivery.Record) error {
	n := len(rs)
	// Counting the pending rows scans the backlog: only where the estimate has no room.
	count := s.mustCount(n)
	ids, routes, decisions, methods, uris := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	dests := make([]int32, n)
	recv, next := make([]int64, n), make([]int64, n)
	headers, bodies := make([][]byte, n), make([][]byte, n)
	for i, r := range rs {
		ids[i], routes[i], dests[i], decisions[i], methods[i], uris[i] = r.ID, r.Route, int32(r.Dest), r.DecisionID, r.Method, r.URI
		recv[i], next[i] = r.ReceivedAt.UnixNano(), r.NextAt.UnixNano()
		headers[i], bodies[i] = delivery.EncodeHeaders(r.Headers), nonNil(r.Body)
	}
	tag, err := s.pool.Exec(ctx, `INSERT INTO hookwall_deliveries
		(id, route, dest, decision_id, received_at, method, uri, headers, body, state, attempts, base, next_at, updated_at)
		SELECT id, route, dest, decision_id, received_at, method, uri, headers, body, 'pending', 0, 0, next_at, received_at
		FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::bigint[], $6::text[], $7::text[], $8::bytea[], $9::bytea[], $10::bigint[])
			AS r(id, route, dest, decision_id, received_at, method, uri, headers, body, next_at)
		WHERE NOT $13::bool OR (SELECT count(*) FROM hookwall_deliveries WHERE state = 'pending') + $12::int <= $11::int`,
		ids, routes, dests, decisions, recv, methods, uris, headers, bodies, next, s.maxPending, n, count)
	if err != nil {
		return fmt.Errorf("delivery/postgres: insert: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return delivery.ErrFull
	}
	s.pending.add(int64(n))
	return nil
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

const fullCols = `id, route, dest, decision_id, received_at, method, uri, headers, body, state, attempts, base, next_at, updated_at, last_status, last_error`
const listCols = `id, route, dest, decision_id, received_at, method, uri, ''::bytea, ''::bytea, state, attempts, base, next_at, updated_at, last_status, last_error`

// collect reads rows' records and closes rows.
func collect(rows pgx.Rows, err error) ([]*delivery.Record, error) {
	return collectRows(false, rows, err)
}

// collectClaim is collect for a claim: it keeps a delivery whose row does not decode, as
// delivery.MarkUnreadable does. The claim's UPDATE has leased every row it returns, and one
// damaged row must not fail it (it is the oldest due: every claim would lease it again, and
// the good rows beside it until their leases expired).
func collectClaim(rows pgx.Rows, err error) ([]*delivery.Record, error) {
	return collectRows(true, rows, err)
}

func collectRows(claim bool, rows pgx.Rows, err error) ([]*delivery.Record, error) {
	if err != nil {
		return nil, fmt.Errorf("delivery/postgres: %w", err)
	}
	defer rows.Close()
	var out []*delivery.Record
	for rows.Next() {
		r, err := delivery.ScanRecord(rows.Scan)
		if claim {
			r, err = delivery.MarkUnreadable(r, err)
		}
		if err != nil {
			return nil, fmt.Errorf("delivery/postgres: read: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("delivery/postgres: %w", err)
	}
	return out, nil
}

// Claim implements delivery.Store.
func (s *Store) Claim(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int, routes delivery.Routes) ([]*delivery.Record, error) {
	skip := make([]string, len(routes.Skip))
	for i, d := range routes.Skip {
		skip[i] = destKey(d.Route, d.Dest)
	}
	at, until := now.UnixNano(), now.Add(lease).UnixNano()
	rs, err := collectClaim(s.leases.Query(ctx, claimSQL, owner, until, at, limit, skip, append([]string{}, routes.Ordered...), append([]string{}, routes.Busy...)))
	for _, r := range rs {
		r.Lease = time.Unix(0, until)
	}
	if err != nil || len(routes.Ordered) == 0 {
		return rs, err
	}
	var keys, ordered []string
	for _, r := range rs {
		if slices.Contains(routes.Ordered, r.Route) {
			keys, ordered = append(keys, destKey(r.Route, r.Dest)), append(ordered, r.ID)
		}
	}
	if len(ordered) == 0 {
		return rs, nil
	}
	lost, err := s.checkOrdered(ctx, owner, at, until, keys, ordered)
	if err != nil {
		// The leases stand but nobody will use them: give them back, or they hold their
		// deliveries (and an ordered route's destination) until they expire.
		all := make([]string, len(rs))
		for i, r := range rs {
			all[i] = r.ID
		}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), groupTimeout)
		_ = s.Release(rctx, owner, all)
		cancel()
		return nil, err
	}
	if len(lost) > 0 {
		rs = slices.DeleteFunc(rs, func(r *delivery.Record) bool { return lost[r.ID] })
	}
	return rs, nil
}

// checkOrdered makes sure that the deliveries of ordered routes a claim just leased (ids,
// of the destinations keys) are each the only live lease of their route and destination,
// and gives back those that are not; it returns the ids given back.
//
// claimSQL holds an ordered route's destination back while it sees a live lease there, but
// it sees the leases committed before it began (READ COMMITTED): two claims running
// together may each lease a different delivery of one destination (one took the head it
// saw, the other a delivery received earlier and stored meanwhile, which the first did not
// see). So each claim, once committed, checks its ordered leases under a transaction lock
// per route and destination (pg_advisory_xact_lock, taken in one order): the checks of one
// destination run one at a time, each in a snapshot taken after the previous one
// committed, so the second of two claims sees the first one's lease (if that check kept
// it) and gives its own back. At most one lease of a destination is kept, and a claim of
// a destination nobody else claims pays one more round trip, never a wait.
func (s *Store) checkOrdered(ctx context.Context, owner string, at, until int64, keys, ids []string) (map[string]bool, error) {
	b := &pgx.Batch{}
	b.Queue(orderedLockSQL, orderedLockSpace, keys)
	b.Queue(orderedCheckSQL, ids, owner, until, at)
	// A batch is one transaction: the locks are held until the check commits.
	br := s.leases.SendBatch(ctx, b)
	_, err := br.Exec()
	var lost []string
	if err == nil {
		var rows pgx.Rows
		if rows, err = br.Query(); err == nil {
			lost, err = pgx.CollectRows(rows, pgx.RowTo[string])
		}
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("delivery/postgres: claim: %w", err)
	}
	out := make(map[string]bool, len(lost))
	for _, id := range lost {
		out[id] = true
	}
	return out, nil
}

// orderedLockSpace is the first key of the ordered destinations' advisory locks (the
// second is the hash of the destination, destKey): "hook".
const orderedLockSpace int32 = 0x686f6f6b

// orderedLockSQL takes the transaction locks of the destinations $2, in the order of their
// keys, so that two checks never wait for each other's.
const orderedLockSQL = `SELECT count(pg_advisory_xact_lock($1::int, k))
	FROM (SELECT DISTINCT hashtext(key) AS k FROM unnest($2::text[]) AS key ORDER BY k) l`

// orderedCheckSQL gives back the leases $1 (of $2, until $3) that another live lease (at
// $4) of their route and destination shares it with.
const orderedCheckSQL = `UPDATE hookwall_deliveries d SET claimed_by = NULL, lease_until = NULL
	WHERE d.id = ANY($1) AND d.claimed_by = $2 AND d.lease_until = $3
		AND EXISTS (SELECT 1 FROM hookwall_deliveries l WHERE l.route = d.route AND l.dest = d.dest
			AND l.claimed_by IS NOT NULL AND l.lease_until >= $4 AND l.id <> d.id)
	RETURNING d.id`

// claimSQL takes the due deliveries in next_at order from the due index, and stops at the
// limit: every condition besides state and next_at is a filter on the row the index scan
// reached (a skipped destination is a key compared with an array, not a join, which made
// the planner read and sort every pending row at each claim). The ids taken are an array
// the update looks up by primary key, not a join the planner may make with a scan of the
// whole table, delivered rows and all. A locked head (another
// claimer is taking it) is skipped like any locked row; the head subquery does not lock, so
// an ordered route's head is claimed by one claimer only. An ordered route's destination
// with a live lease (on its head or on any other of its deliveries: one received earlier
// may have been stored or replayed after the leased one was claimed) gives nothing; the
// leased index finds its leases. Two claims running together may still each lease one
// (neither sees the other's lease): checkOrdered keeps one. The ids $7 (Routes.Busy: in
// the claimer's attempts) are not taken, their expired leases left as they are.
const claimSQL = `UPDATE hookwall_deliveries SET claimed_by = $1, lease_until = $2
	WHERE id = ANY (ARRAY(SELECT id FROM hookwall_deliveries d WHERE state = 'pending' AND next_at <= $3
		AND (claimed_by IS NULL OR lease_until < $3) AND NOT (id = ANY($7))
		AND d.dest::text || ':' || d.route <> ALL ($5::text[])
		AND (NOT (route = ANY($6)) OR (id = (SELECT h.id FROM hookwall_deliveries h
			WHERE h.route = d.route AND h.dest = d.dest AND h.state = 'pending' ORDER BY h.received_at, h.id LIMIT 1)
			AND NOT EXISTS (SELECT 1 FROM hookwall_deliveries l WHERE l.route = d.route AND l.dest = d.dest
				AND l.claimed_by IS NOT NULL AND l.lease_until >= $3)))
		ORDER BY next_at LIMIT $4 FOR UPDATE SKIP LOCKED))
	RETURNING ` + fullCols

// destKey is a destination as claimSQL compares it: the number first, so the first colon
// ends it whatever the route's name holds.
func destKey(route string, dest int) string {
	return strconv.Itoa(dest) + ":" + route
}

// Finish implements delivery.Store.
func (s *Store) Finish(ctx context.Context, id, owner string, res delivery.Result) error {
	f := &fin{ctx: ctx, id: id, owner: owner, res: res, errc: make(chan error, 1)}
	if err := s.fins.Send(f); err != nil {
		return err
	}
	// The finisher always answers: a statement already sent may make this finish.
	return <-f.errc
}

// finisher makes the finishes waiting together in one statement: concurrent attempts
// share a round trip and a commit. A delivery finished twice in one group is finished
// once by the group and again alone after it (so the second finds its lease gone); when
// the group's statement fails, each finish is made alone, so that only a failing one
// fails.
func (s *Store) finisher() {
	defer close(s.finsDone)
	var batch, group, again []*fin
	seen := map[string]bool{}
	for first := range s.fins.C {
		batch = s.fins.Take(append(batch[:0], first), maxFinishBatch)
		group, again = group[:0], again[:0]
		clear(seen)
		for _, f := range batch {
			switch {
			case f.ctx.Err() != nil:
				f.errc <- f.ctx.Err()
			case seen[f.id]:
				again = append(again, f)
			default:
				seen[f.id] = true
				group = append(group, f)
			}
		}
		if len(group) > 1 {
			gctx, cancel := context.WithTimeout(context.Background(), groupTimeout)
			made, err := s.finish(gctx, group)
			cancel()
			if err == nil {
				for _, f := range group {
					f.errc <- leaseErr(made[f.id])
				}
				group = group[:0]
			}
		}
		for _, f := range append(group, again...) {
			made, err := s.finish(f.ctx, []*fin{f})
			if err == nil {
				err = leaseErr(made[f.id])
			}
			f.errc <- err
		}
	}
}

// leaseErr is the answer to a finish the statement made (nil) or did not (its lease was
// lost).
func leaseErr(made bool) error {
	if made {
		return nil
	}
	return delivery.ErrLeaseLost
}

// finish makes fs (distinct ids) in one statement, one round trip and one commit: each
// delivery whose lease its finish's owner holds, pending, moves to its new state and has
// its attempt recorded; the others are left as they are. It returns the ids it made.
func (s *Store) finish(ctx context.Context, fs []*fin) (map[string]bool, error) {
	n := len(fs)
	ids, owners, states, errs := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	ns, statuses := make([]int32, n), make([]int32, n)
	next, updated, at, latency, leases := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	for i, f := range fs {
		a := f.res.Attempt
		ids[i], owners[i], states[i], errs[i] = f.id, f.owner, string(f.res.State), a.Error
		ns[i], statuses[i] = int32(a.N), int32(a.Status)
		next[i], updated[i], at[i], latency[i] = f.res.NextAt.UnixNano(), a.At.Add(a.Latency).UnixNano(), a.At.UnixNano(), a.Latency.Microseconds()
		if !f.res.Lease.IsZero() {
			leases[i] = f.res.Lease.UnixNano()
		}
	}
	// One statement is one transaction: the attempts are inserted for exactly the rows the
	// update made, or nothing is written.
	rows, err := s.pool.Query(ctx, finishSQL, ids, owners, states, ns, next, updated, statuses, errs, at, latency, leases)
	if err != nil {
		return nil, fmt.Errorf("delivery/postgres: finish: %w", err)
	}
	defer rows.Close()
	made := make(map[string]bool, n)
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("delivery/postgres: finish: %w", err)
		}
		made[id] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("delivery/postgres: finish: %w", err)
	}
	s.commits.Add(1)
	return made, nil
}

// finishSQL makes a group of finishes (arrays, one element a finish) in one statement. A
// finish whose lease is set (not 0) is made only under that very lease: a statement that
// reaches the server late (its client gave up on it) records nothing over a newer claim.
const finishSQL = `WITH v AS (
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::bigint[], $6::bigint[], $7::int[], $8::text[], $9::bigint[], $10::bigint[], $11::bigint[])
			AS v(id, owner, state, n, next_at, updated_at, status, error, at, latency_us, lease)),
	u AS (UPDATE hookwall_deliveries d SET state = v.state, attempts = v.n, next_at = v.next_at, updated_at = v.updated_at,
			last_status = v.status, last_error = v.error, claimed_by = NULL, lease_until = NULL
		FROM v WHERE d.id = v.id AND d.claimed_by = v.owner AND d.state = 'pending' AND (v.lease = 0 OR d.lease_until = v.lease)
		RETURNING d.id),
	a AS (INSERT INTO hookwall_delivery_attempts (delivery_id, n, at, status, latency_us, error)
		SELECT v.id, v.n, v.at, v.status, v.latency_us, v.error FROM v JOIN u ON u.id = v.id)
	SELECT id FROM u`

// Release implements delivery.Store.
func (s *Store) Release(ctx context.Context, owner string, ids []string) error {
	if _, err := s.leases.Exec(ctx, `UPDATE hookwall_deliveries SET claimed_by = NULL, lease_until = NULL WHERE id = ANY($1) AND claimed_by = $2`, ids, owner); err != nil {
		return fmt.Errorf("delivery/postgres: release: %w", err)
	}
	return nil
}

// Get implements delivery.Store.
func (s *Store) Get(ctx context.Context, id string) (*delivery.Record, []delivery.Attempt, error) {
	r, err := delivery.ScanRecord(s.pool.QueryRow(ctx, `SELECT `+fullCols+` FROM hookwall_deliveries WHERE id = $1`, id).Scan)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil, delivery.ErrNotFound
	}
	if err != nil {
		return nil, nil, fmt.Errorf("delivery/postgres: get: %w", err)
	}
	rows, err := s.pool.Query(ctx, `SELECT n, at, status, latency_us, error FROM hookwall_delivery_attempts WHERE delivery_id = $1 ORDER BY n`, id)
	if err != nil {
		return nil, nil, fmt.Errorf("delivery/postgres: attempts: %w", err)
	}
	defer rows.Close()
	var as []delivery.Attempt
	for rows.Next() {
		var a delivery.Attempt
		var n, status int32
		var at, us int64
		if err := rows.Scan(&n, &at, &status, &us, &a.Error); err != nil {
			return nil, nil, fmt.Errorf("delivery/postgres: attempts: %w", err)
		}
		a.N, a.Status, a.At, a.Latency = int(n), int(status), time.Unix(0, at), time.Duration(us)*time.Microsecond
		as = append(as, a)
	}
	return r, as, rows.Err()
}

// where renders q's filters as $1..$4.
func where(q delivery.Query) (string, []any) {
	return `($1 = '' OR route = $1) AND ($2 = '' OR state = $2) AND received_at >= $3 AND received_at < $4`, q.FilterArgs()
}

// DefaultLimit is List's limit when the query sets none.
const DefaultLimit = 100

// List implements delivery.Store.
func (s *Store) List(ctx context.Context, q delivery.Query) ([]*delivery.Record, error) {
	cond, args := where(q)
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	rs, err := collect(s.pool.Query(ctx, `SELECT `+listCols+` FROM hookwall_deliveries WHERE `+cond+` ORDER BY received_at DESC, id LIMIT $5`, append(args, limit)...))
	for _, r := range rs {
		r.Body = nil
	}
	return rs, err
}

// Replay implements delivery.Store.
func (s *Store) Replay(ctx context.Context, id string, now time.Time) error {
	// A pending delivery in an attempt keeps its lease: clearing it would give it a second
	// owner.
	tag, err := s.pool.Exec(ctx, `UPDATE hookwall_deliveries SET state = 'pending', base = attempts, next_at = $2, updated_at = $2
		WHERE id = $1 AND (state <> 'pending' OR claimed_by IS NULL)`, id, now.UnixNano())
	if err != nil {
		return fmt.Errorf("delivery/postgres: replay: %w", err)
	}
	s.pending.add(tag.RowsAffected()) // at most one more pending: an upper bound
	var one int
	if err := s.pool.QueryRow(ctx, `SELECT 1 FROM hookwall_deliveries WHERE id = $1`, id).Scan(&one); errors.Is(err, pgx.ErrNoRows) {
		return delivery.ErrNotFound
	} else if err != nil {
		return fmt.Errorf("delivery/postgres: replay: %w", err)
	}
	return nil
}

// ReplayMatching implements delivery.Store.
func (s *Store) ReplayMatching(ctx context.Context, q delivery.Query, now time.Time) (int, error) {
	cond, args := where(q)
	tag, err := s.pool.Exec(ctx, `UPDATE hookwall_deliveries SET state = 'pending', base = attempts, next_at = $5, updated_at = $5
		WHERE state <> 'pending' AND `+cond, append(args, now.UnixNano())...)
	if err != nil {
		return 0, fmt.Errorf("delivery/postgres: replay: %w", err)
	}
	s.pending.add(tag.RowsAffected())
	return int(tag.RowsAffected()), nil
}

// Purge implements delivery.Store.
func (s *Store) Purge(ctx context.Context, id string) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM hookwall_deliveries WHERE id = $1`, id)
		if err != nil {
			return fmt.Errorf("delivery/postgres: purge: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return delivery.ErrNotFound
		}
		if _, err := tx.Exec(ctx, `DELETE FROM hookwall_delivery_attempts WHERE delivery_id = $1`, id); err != nil {
			return fmt.Errorf("delivery/postgres: purge: %w", err)
		}
		return nil
	})
}

// Depth implements delivery.Store.
func (s *Store) Depth(ctx context.Context) ([]delivery.Depth, error) {
	rows, err := s.pool.Query(ctx, `SELECT route, state, count(*), min(received_at) FROM hookwall_deliveries GROUP BY route, state ORDER BY route, state`)
	if err != nil {
		return nil, fmt.Errorf("delivery/postgres: depth: %w", err)
	}
	defer rows.Close()
	var out []delivery.Depth
	for rows.Next() {
		var d delivery.Depth
		var state string
		var count, oldest int64
		if err := rows.Scan(&d.Route, &state, &count, &oldest); err != nil {
			return nil, fmt.Errorf("delivery/postgres: depth: %w", err)
		}
		d.State, d.Count, d.Oldest = delivery.State(state), int(count), time.Unix(0, oldest)
		out = append(out, d)
	}
	return out, rows.Err()
}

// Prune implements delivery.Store.
func (s *Store) Prune(ctx context.Context, delivered, dead time.Time) (int, error) {
	var n int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `DELETE FROM hookwall_deliveries WHERE (state = 'delivered' AND updated_at < $1) OR (state = 'dead' AND updated_at < $2) RETURNING id`, delivered.UnixNano(), dead.UnixNano())
		if err != nil {
			return fmt.Errorf("delivery/postgres: prune: %w", err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return fmt.Errorf("delivery/postgres: prune: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM hookwall_delivery_attempts WHERE delivery_id = ANY($1)`, ids); err != nil {
			return fmt.Errorf("delivery/postgres: prune: %w", err)
		}
		n = int64(len(ids))
		return nil
	})
	return int(n), err
}

// resealBatch is how many deliveries one step of Reseal reads and rewrites.
const resealBatch = 256

// Reseal implements delivery.Store.
func (s *Store) Reseal(ctx context.Context, fn func(r *delivery.Record) (bool, error)) (int, error) {
	page := func(after string) ([]*delivery.Record, error) {
		return collect(s.pool.Query(ctx, `SELECT `+fullCols+` FROM hookwall_deliveries WHERE id > $1 ORDER BY id LIMIT $2`, after, resealBatch))
	}
	write := func(changed []*delivery.Record) (int, error) {
		var n int64
		err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			for _, r := range changed {
				tag, err := tx.Exec(ctx, `UPDATE hookwall_deliveries SET headers = $1, body = $2, uri = $3 WHERE id = $4`, delivery.EncodeHeaders(r.Headers), nonNil(r.Body), r.URI, r.ID)
				if err != nil {
					return fmt.Errorf("delivery/postgres: reseal: %w", err)
				}
				n += tag.RowsAffected() // 0: purged or pruned meanwhile
			}
			return nil
		})
		if err != nil {
			return 0, err // rolled back: nothing of this batch stored
		}
		return int(n), nil
	}
	return delivery.WalkReseal(page, write, fn)
}

// Close stops the batcher and the finisher after the enqueues and finishes already
// submitted, and closes the pool. It is idempotent.
func (s *Store) Close() error {
	if !s.enqs.Close() {
		return nil
	}
	s.fins.Close()
	<-s.done
	<-s.finsDone
	s.counts.Wait()
	s.leases.Close()
	s.pool.Close()
	return nil
}

var _ delivery.Store = (*Store)(nil)
