// Package sqlite is the delivery.Store of a single gateway: one SQLite file (pure Go,
// modernc.org/sqlite) in WAL mode with synchronous=FULL, so a committed delivery survives
// a crash of the process or the machine.
//
// Every write goes through one goroutine that commits whatever is waiting in one
// transaction (group commit): N concurrent enqueues cost one fsync, not N. A write's
// caller waits for the commit; a write whose context ended before its batch began is not
// made. The file is opened by one gateway at a time: its leases guard against workers of
// that gateway, not against a second process on the same file.
package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

	"github.com/hookwall/hookwall/engine/delivery"
)

// Options configure a Store.
type Options struct {
	// Path is the database file; created with its schema when missing.
	Path string
	// MaxPending bounds the pending deliveries: Enqueue fails with delivery.ErrFull beyond.
	// 0 means no bound.
	MaxPending int
}

// Store is a delivery.Store in one SQLite file. Create with Open.
type Store struct {
	w, r       *sql.DB // w: the writer's single connection; r: readers (WAL lets them run beside it)
	maxPending int

	mu     sync.RWMutex // guards closed against sends on ops
	closed bool
	ops    chan *op
	done   chan struct{}
	stmts  map[string]*sql.Stmt // hotWrites, prepared at Open; read-only after

	commits atomic.Uint64 // transactions committed: group commit makes it < the writes
}

// op is one write: an enqueue (rec) or a function run in the batch's transaction.
type op struct {
	ctx  context.Context
	recs []*delivery.Record // an enqueue
	fn   func(tx *sql.Tx) error
	errc chan error
}

// maxBatch bounds how many writes share one transaction.
const maxBatch = 512

const schema = `
CREATE TABLE IF NOT EXISTS deliveries (
	id          TEXT PRIMARY KEY,
	route       TEXT NOT NULL,
	dest        INTEGER NOT NULL DEFAULT 0,
	decision_id TEXT NOT NULL,
	received_at INTEGER NOT NULL,
	method      TEXT NOT NULL,
	uri         TEXT NOT NULL,
	headers     BLOB NOT NULL,
	body        BLOB NOT NULL,
	state       TEXT NOT NULL,
	attempts    INTEGER NOT NULL DEFAULT 0,
	base        INTEGER NOT NULL DEFAULT 0,
	next_at     INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL,
	last_status INTEGER NOT NULL DEFAULT 0,
	last_error  TEXT NOT NULL DEFAULT '',
	claimed_by  TEXT,
	lease_until INTEGER
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (state, next_at);
CREATE INDEX IF NOT EXISTS deliveries_route ON deliveries (route, received_at);
CREATE INDEX IF NOT EXISTS deliveries_updated ON deliveries (state, updated_at);
CREATE TABLE IF NOT EXISTS delivery_attempts (
	delivery_id TEXT NOT NULL,
	n           INTEGER NOT NULL,
	at          INTEGER NOT NULL,
	status      INTEGER NOT NULL,
	latency_us  INTEGER NOT NULL,
	error       TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS delivery_attempts_id ON delivery_attempts (delivery_id, n);
`

// Open opens (creating if needed) the database at o.Path and starts its writer.
func Open(o Options) (*Store, error) {
	if o.Path == "" {
		return nil, errors.New("delivery/sqlite: no path")
	}
	dsn := func(extra string) string {
		return "file:" + (&url.URL{Path: o.Path}).EscapedPath() +
			"?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(10000)" + extra
	}
	w, err := sql.Open("sqlite", dsn("&_txlock=immediate"))
	if err != nil {
		return nil, fmt.Errorf("delivery/sqlite: %s: %w", o.Path, err)
	}
	w.SetMaxOpenConns(1)
	if _, err := w.Exec(schema); err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("delivery/sqlite: %s: create schema: %w", o.Path, err)
	}
	var mode string
	if err := w.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		_ = w.Close()
		return nil, fmt.Errorf("delivery/sqlite: %s: journal mode is %q, not wal: %v", o.Path, mode, err)
	}
	// The file is one gateway's: leases left by a previous process (killed, or its drain
	// cut short) are void, and its deliveries are due again at once.
	if _, err := w.Exec(`UPDATE deliveries SET claimed_by = NULL, lease_until = NULL WHERE claimed_by IS NOT NULL`); err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("delivery/sqlite: %s: release old leases: %w", o.Path, err)
	}
	r, err := sql.Open("sqlite", dsn("&_pragma=query_only(1)"))
	if err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("delivery/sqlite: %s: %w", o.Path, err)
	}
	r.SetMaxOpenConns(4)
	s := &Store{w: w, r: r, maxPending: o.MaxPending, ops: make(chan *op, maxBatch), done: make(chan struct{}), stmts: map[string]*sql.Stmt{}}
	for _, q := range hotWrites {
		st, err := w.Prepare(q)
		if err != nil {
			_ = r.Close()
			_ = w.Close()
			return nil, fmt.Errorf("delivery/sqlite: %s: prepare: %w", o.Path, err)
		}
		s.stmts[q] = st
	}
	go s.writer()
	return s, nil
}

// submit hands o to the writer and waits for its commit.
func (s *Store) submit(o *op) error {
	o.errc = make(chan error, 1)
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return delivery.ErrClosed
	}
	s.ops <- o
	s.mu.RUnlock()
	// The writer always answers: waiting past ctx would be needed anyway, since a batch
	// already begun may commit this write.
	return <-o.errc
}

func (s *Store) writer() {
	defer close(s.done)
	batch := make([]*op, 0, maxBatch)
	for first := range s.ops {
		batch = append(batch[:0], first)
		// Take what is waiting; while more keeps arriving, let the writers that are about
		// to submit run first (one yield per round), so a burst shares one commit.
		for len(batch) < maxBatch {
			n := len(batch)
		fill:
			for len(batch) < maxBatch {
				select {
				case o, ok := <-s.ops:
					if !ok {
						break fill
					}
					batch = append(batch, o)
				default:
					break fill
				}
			}
			if len(batch) == n {
				break
			}
			runtime.Gosched()
		}
		s.commit(batch)
	}
}

// exec runs a write in tx through the statement prepared at Open for query (parsing the
// same SQL for every write costs more than the write), or as is for another query.
func (s *Store) exec(ctx context.Context, tx *sql.Tx, query string, args ...any) (sql.Result, error) {
	if st := s.stmts[query]; st != nil {
		return tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return tx.ExecContext(ctx, query, args...)
}

// commit runs batch in one transaction, each write under its own savepoint so that one
// failing write leaves the others alone, and answers every op.
func (s *Store) commit(batch []*op) {
	errs := make([]error, len(batch))
	live := 0
	for i, o := range batch {
		if err := o.ctx.Err(); err != nil {
			errs[i] = err
			continue
		}
		live++
	}
	answer := func(commitErr error) {
		for i, o := range batch {
			if errs[i] == nil {
				errs[i] = commitErr
			}
			o.errc <- errs[i]
		}
	}
	if live == 0 {
		answer(nil)
		return
	}
	ctx := context.Background()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		answer(fmt.Errorf("delivery/sqlite: begin: %w", err))
		return
	}
	pending := -1
	for i, o := range batch {
		if errs[i] != nil {
			continue
		}
		if o.recs != nil && s.maxPending > 0 {
			if pending < 0 {
				if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM deliveries WHERE state = 'pending'`).Scan(&pending); err != nil {
					errs[i] = fmt.Errorf("delivery/sqlite: count pending: %w", err)
					continue
				}
			}
			if pending+len(o.recs) > s.maxPending {
				errs[i] = delivery.ErrFull
				continue
			}
		}
		if _, err := s.exec(ctx, tx, `SAVEPOINT w`); err != nil {
			errs[i] = fmt.Errorf("delivery/sqlite: savepoint: %w", err)
			continue
		}
		if o.recs != nil {
			for _, r := range o.recs {
				if errs[i] = s.insert(ctx, tx, r); errs[i] != nil {
					break
				}
			}
		} else {
			errs[i] = o.fn(tx)
		}
		if errs[i] != nil {
			_, _ = s.exec(ctx, tx, `ROLLBACK TO w`)
		} else if o.recs != nil && pending >= 0 {
			pending += len(o.recs)
		}
		_, _ = s.exec(ctx, tx, `RELEASE w`)
	}
	if err := tx.Commit(); err != nil {
		_ = tx.Rollback()
		for i := range errs {
			errs[i] = nil // a failed commit made none of them
		}
		answer(fmt.Errorf("delivery/sqlite: commit: %w", err))
		return
	}
	s.commits.Add(1)
	answer(nil)
}

// The writes of every delivery, prepared once at Open.
const (
	insertSQL = `INSERT INTO deliveries
		(id, route, dest, decision_id, received_at, method, uri, headers, body, state, attempts, base, next_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, 0, ?, ?)`
	finishSQL = `UPDATE deliveries SET state = ?, attempts = ?, next_at = ?, updated_at = ?,
			last_status = ?, last_error = ?, claimed_by = NULL, lease_until = NULL
			WHERE id = ? AND claimed_by = ? AND state = 'pending'`
	attemptSQL = `INSERT INTO delivery_attempts (delivery_id, n, at, status, latency_us, error) VALUES (?, ?, ?, ?, ?, ?)`
)

var hotWrites = []string{insertSQL, finishSQL, attemptSQL, `SAVEPOINT w`, `ROLLBACK TO w`, `RELEASE w`}

func (s *Store) insert(ctx context.Context, tx *sql.Tx, r *delivery.Record) error {
	_, err := s.exec(ctx, tx, insertSQL,
		r.ID, r.Route, r.Dest, r.DecisionID, r.ReceivedAt.UnixNano(), r.Method, r.URI,
		delivery.EncodeHeaders(r.Headers), nonNil(r.Body), r.NextAt.UnixNano(), r.ReceivedAt.UnixNano())
	if err != nil {
		return fmt.Errorf("delivery/sqlite: insert: %w", err)
	}
	return nil
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// Enqueue implements delivery.Store.
func (s *Store) Enqueue(ctx context.Context, rs ...*delivery.Record) error {
	if len(rs) == 0 {
		return nil
	}
	return s.submit(&op{ctx: ctx, recs: rs})
}

// write runs fn in the next batch's transaction.
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return s.submit(&op{ctx: ctx, fn: fn})
}

const fullCols = `id, route, dest, decision_id, received_at, method, uri, headers, body, state, attempts, base, next_at, updated_at, last_status, last_error`
const listCols = `id, route, dest, decision_id, received_at, method, uri, x'', x'', state, attempts, base, next_at, updated_at, last_status, last_error`

type scanner interface{ Scan(dest ...any) error }

func scan(sc scanner) (*delivery.Record, error) {
	var r delivery.Record
	var recv, next, upd int64
	var headers []byte
	var state string
	if err := sc.Scan(&r.ID, &r.Route, &r.Dest, &r.DecisionID, &recv, &r.Method, &r.URI, &headers, &r.Body, &state,
		&r.Attempts, &r.Base, &next, &upd, &r.LastStatus, &r.LastError); err != nil {
		return nil, fmt.Errorf("delivery/sqlite: read: %w", err)
	}
	hs, err := delivery.DecodeHeaders(headers)
	if err != nil {
		return nil, fmt.Errorf("delivery/sqlite: %s: %w", r.ID, err)
	}
	r.Headers, r.State = hs, delivery.State(state)
	r.ReceivedAt, r.NextAt, r.UpdatedAt = time.Unix(0, recv), time.Unix(0, next), time.Unix(0, upd)
	return &r, nil
}

// Claim implements delivery.Store.
func (s *Store) Claim(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int, routes delivery.Routes) ([]*delivery.Record, error) {
	pairs := make([][2]any, len(routes.Skip))
	for i, d := range routes.Skip {
		pairs[i] = [2]any{d.Route, d.Dest}
	}
	skipJSON, err := json.Marshal(pairs)
	if err != nil {
		return nil, fmt.Errorf("delivery/sqlite: claim: %w", err)
	}
	orderedJSON, err := json.Marshal(append([]string{}, routes.Ordered...))
	if err != nil {
		return nil, fmt.Errorf("delivery/sqlite: claim: %w", err)
	}
	var out []*delivery.Record
	err = s.write(ctx, func(tx *sql.Tx) error {
		out = out[:0]
		rows, err := tx.QueryContext(ctx, `UPDATE deliveries SET claimed_by = ?1, lease_until = ?2
			WHERE id IN (SELECT id FROM deliveries d WHERE state = 'pending' AND next_at <= ?3
				AND (claimed_by IS NULL OR lease_until < ?3)
				AND NOT EXISTS (SELECT 1 FROM json_each(?5) j WHERE j.value ->> 0 = d.route AND j.value ->> 1 = d.dest)
				AND (route NOT IN (SELECT value FROM json_each(?6)) OR id = (SELECT h.id FROM deliveries h
					WHERE h.route = d.route AND h.dest = d.dest AND h.state = 'pending' ORDER BY h.received_at, h.id LIMIT 1))
				ORDER BY next_at LIMIT ?4)
			RETURNING `+fullCols, owner, now.Add(lease).UnixNano(), now.UnixNano(), limit, string(skipJSON), string(orderedJSON))
		if err != nil {
			return fmt.Errorf("delivery/sqlite: claim: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			r, err := scan(rows)
			if err != nil {
				return err
			}
			out = append(out, r)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Finish implements delivery.Store.
func (s *Store) Finish(ctx context.Context, id, owner string, res delivery.Result) error {
	a := res.Attempt
	return s.write(ctx, func(tx *sql.Tx) error {
		r, err := s.exec(ctx, tx, finishSQL,
			string(res.State), a.N, res.NextAt.UnixNano(), a.At.Add(a.Latency).UnixNano(), a.Status, a.Error, id, owner)
		if err != nil {
			return fmt.Errorf("delivery/sqlite: finish: %w", err)
		}
		if n, _ := r.RowsAffected(); n == 0 {
			return delivery.ErrLeaseLost
		}
		if _, err := s.exec(ctx, tx, attemptSQL,
			id, a.N, a.At.UnixNano(), a.Status, a.Latency.Microseconds(), a.Error); err != nil {
			return fmt.Errorf("delivery/sqlite: record attempt: %w", err)
		}
		return nil
	})
}

// Release implements delivery.Store.
func (s *Store) Release(ctx context.Context, owner string, ids []string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		for _, id := range ids {
			if _, err := tx.ExecContext(ctx, `UPDATE deliveries SET claimed_by = NULL, lease_until = NULL WHERE id = ? AND claimed_by = ?`, id, owner); err != nil {
				return fmt.Errorf("delivery/sqlite: release: %w", err)
			}
		}
		return nil
	})
}

// Get implements delivery.Store.
func (s *Store) Get(ctx context.Context, id string) (*delivery.Record, []delivery.Attempt, error) {
	r, err := scan(s.r.QueryRowContext(ctx, `SELECT `+fullCols+` FROM deliveries WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, delivery.ErrNotFound
	}
	if err != nil {
		return nil, nil, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT n, at, status, latency_us, error FROM delivery_attempts WHERE delivery_id = ? ORDER BY n`, id)
	if err != nil {
		return nil, nil, fmt.Errorf("delivery/sqlite: attempts: %w", err)
	}
	defer rows.Close()
	var as []delivery.Attempt
	for rows.Next() {
		var a delivery.Attempt
		var at, us int64
		if err := rows.Scan(&a.N, &at, &a.Status, &us, &a.Error); err != nil {
			return nil, nil, fmt.Errorf("delivery/sqlite: attempts: %w", err)
		}
		a.At, a.Latency = time.Unix(0, at), time.Duration(us)*time.Microsecond
		as = append(as, a)
	}
	return r, as, rows.Err()
}

// where renders q's filters on columns; the args follow the SQL's order.
func where(q delivery.Query) (string, []any) {
	until := int64(math.MaxInt64)
	if !q.Until.IsZero() {
		until = q.Until.UnixNano()
	}
	since := int64(math.MinInt64)
	if !q.Since.IsZero() {
		since = q.Since.UnixNano()
	}
	return `(?1 = '' OR route = ?1) AND (?2 = '' OR state = ?2) AND received_at >= ?3 AND received_at < ?4`,
		[]any{q.Route, string(q.State), since, until}
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
	rows, err := s.r.QueryContext(ctx, `SELECT `+listCols+` FROM deliveries WHERE `+cond+` ORDER BY received_at DESC, id LIMIT ?5`, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("delivery/sqlite: list: %w", err)
	}
	defer rows.Close()
	var out []*delivery.Record
	for rows.Next() {
		r, err := scan(rows)
		if err != nil {
			return nil, err
		}
		r.Body = nil
		out = append(out, r)
	}
	return out, rows.Err()
}

// Replay implements delivery.Store.
func (s *Store) Replay(ctx context.Context, id string, now time.Time) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		// A pending delivery in an attempt keeps its lease: clearing it would give the
		// delivery a second owner.
		if _, err := tx.ExecContext(ctx, `UPDATE deliveries SET state = 'pending', base = attempts, next_at = ?2, updated_at = ?2
			WHERE id = ?1 AND (state <> 'pending' OR claimed_by IS NULL)`, id, now.UnixNano()); err != nil {
			return fmt.Errorf("delivery/sqlite: replay: %w", err)
		}
		var one int
		if err := tx.QueryRowContext(ctx, `SELECT 1 FROM deliveries WHERE id = ?`, id).Scan(&one); errors.Is(err, sql.ErrNoRows) {
			return delivery.ErrNotFound
		} else if err != nil {
			return fmt.Errorf("delivery/sqlite: replay: %w", err)
		}
		return nil
	})
}

// ReplayMatching implements delivery.Store.
func (s *Store) ReplayMatching(ctx context.Context, q delivery.Query, now time.Time) (int, error) {
	var n int64
	cond, args := where(q)
	err := s.write(ctx, func(tx *sql.Tx) error {
		r, err := tx.ExecContext(ctx, `UPDATE deliveries SET state = 'pending', base = attempts, next_at = ?5, updated_at = ?5
			WHERE state <> 'pending' AND `+cond, append(args, now.UnixNano())...)
		if err != nil {
			return fmt.Errorf("delivery/sqlite: replay: %w", err)
		}
		n, _ = r.RowsAffected()
		return nil
	})
	return int(n), err
}

// Purge implements delivery.Store.
func (s *Store) Purge(ctx context.Context, id string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		r, err := tx.ExecContext(ctx, `DELETE FROM deliveries WHERE id = ?`, id)
		if err != nil {
			return fmt.Errorf("delivery/sqlite: purge: %w", err)
		}
		if n, _ := r.RowsAffected(); n == 0 {
			return delivery.ErrNotFound
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM delivery_attempts WHERE delivery_id = ?`, id); err != nil {
			return fmt.Errorf("delivery/sqlite: purge: %w", err)
		}
		return nil
	})
}

// Depth implements delivery.Store.
func (s *Store) Depth(ctx context.Context) ([]delivery.Depth, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT route, state, count(*), min(received_at) FROM deliveries GROUP BY route, state ORDER BY route, state`)
	if err != nil {
		return nil, fmt.Errorf("delivery/sqlite: depth: %w", err)
	}
	defer rows.Close()
	var out []delivery.Depth
	for rows.Next() {
		var d delivery.Depth
		var state string
		var oldest int64
		if err := rows.Scan(&d.Route, &state, &d.Count, &oldest); err != nil {
			return nil, fmt.Errorf("delivery/sqlite: depth: %w", err)
		}
		d.State, d.Oldest = delivery.State(state), time.Unix(0, oldest)
		out = append(out, d)
	}
	return out, rows.Err()
}

// Prune implements delivery.Store.
func (s *Store) Prune(ctx context.Context, delivered, dead time.Time) (int, error) {
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		const sel = `SELECT id FROM deliveries WHERE (state = 'delivered' AND updated_at < ?1) OR (state = 'dead' AND updated_at < ?2)`
		if _, err := tx.ExecContext(ctx, `DELETE FROM delivery_attempts WHERE delivery_id IN (`+sel+`)`, delivered.UnixNano(), dead.UnixNano()); err != nil {
			return fmt.Errorf("delivery/sqlite: prune: %w", err)
		}
		r, err := tx.ExecContext(ctx, `DELETE FROM deliveries WHERE id IN (`+sel+`)`, delivered.UnixNano(), dead.UnixNano())
		if err != nil {
			return fmt.Errorf("delivery/sqlite: prune: %w", err)
		}
		n, _ = r.RowsAffected()
		return nil
	})
	return int(n), err
}

// Close stops the writer after the writes already submitted, and closes the database.
// It is idempotent.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.ops)
	s.mu.Unlock()
	<-s.done
	for _, st := range s.stmts {
		_ = st.Close()
	}
	return errors.Join(s.r.Close(), s.w.Close())
}

var _ delivery.Store = (*Store)(nil)
