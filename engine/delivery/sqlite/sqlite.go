// Package sqlite is the delivery.Store of a single gateway: one SQLite file (pure Go,
// modernc.org/sqlite) in WAL mode with synchronous=FULL, so a committed delivery survives
// a crash of the process or the machine.
//
// Every write goes through one goroutine that commits whatever is waiting in one
// transaction (group commit): N concurrent enqueues cost one fsync, not N. A write's
// caller waits for the commit; a write whose context ended before its batch began is not
// made. The file is opened by one gateway at a time: its leases guard against workers of
// that gateway, not against a second process on the same file, so they are kept in
// memory (a restart voids them anyway) and a claim is a read, not a write. Open enforces it:
// it takes an exclusive lock on a file beside the database (its path and "-lock"), held
// until Close, and a second Open of the file fails while the lock is held.
package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"slices"
	"strings"
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
	seq        int64 // the last row's seq; the writer's alone
	// pending counts the pending deliveries, for max_pending, when pendingKnown; the
	// writer's alone. It follows the enqueues and finishes it commits, and is counted
	// again (one read) after any other write.
	pending      int
	pendingKnown bool
	// txLost is the cause when the batch's transaction ended under the writer (SQLite rolls
	// a whole transaction back on some errors: a full disk, an I/O error); the writer's
	// alone. From then on no statement of the batch runs: outside a transaction each would
	// commit on its own, and the batch, answered as failed, would be partly stored.
	txLost error

	ops        *delivery.Inbox[*op] // to the writer
	spare      sync.Pool            // answered ops, kept with their answer channel (submit)
	done       chan struct{}
	stmts      map[string]*sql.Stmt // hotWrites, prepared at Open; read-only after
	insert     map[int]*sql.Stmt    // multi-row inserts by row count (insertChunks), prepared at Open
	insertBody map[int]*sql.Stmt    // and of their headers and bodies
	finishRows map[int]*sql.Stmt    // first attempts finished by row count (insertChunks)

	// lmu guards leases: who holds which pending delivery, until when. A claim reads the
	// due deliveries and leases them under lmu; a finish drops its lease only after its
	// commit, so a claim never sees a finished delivery as pending and unleased.
	lmu     sync.Mutex
	leases  map[string]hold
	claim   *sql.Stmt // claimSQL, prepared on a reader connection of its own; used under lmu
	claimc  *sql.Conn
	nextDue *sql.Stmt  // nextDueSQL, on claimc
	fresh   freshQueue // under lmu
	// stale (under lmu): the file may hold due, unleased deliveries that fresh does not
	// (dropped from it, retried, released, replayed, or left by a previous process), so
	// a claim that fresh does not fill reads the file; retryAt: the earliest next_at of
	// a pending delivery that was not due at the last read (0: none known).
	stale   bool
	retryAt int64
	// lastRoutes: the routes filter (skip and ordered, as claimFile renders them) of the
	// last read. A read under another filter may find what that one held back.
	lastRoutes string
	ordered    bool // the last read's filter had ordered routes: a finish may free a head
	// expiry (under lmu): no lease expires before it (0: no lease); a claim looks for
	// expired leases only from then on.
	expiry int64
	filter filterCache // under lmu

	commits atomic.Uint64 // transactions committed: group commit makes it < the writes

	lock *fileLock // the lock on the database's lock file, held until Close

	ck     *sql.DB       // the checkpointer's connection
	ckStop chan struct{} // closed by Close: the checkpointer stops
	ckDone chan struct{} // closed by the checkpointer when it has stopped
}

// checkpointEvery is how often the checkpointer copies the log's committed pages into
// the database file (when there were commits): a page written several times meanwhile
// (an enqueue, then its finish) is copied once, and the log stays small.
const checkpointEvery = 500 * time.Millisecond

// checkpointer checkpoints the log beside the writer until Close. A PASSIVE checkpoint
// never waits for the writer or readers; it copies what they leave it, and the log
// restarts from its beginning once a checkpoint has copied all of it. With synchronous
// FULL the database file is fsynced before the log is reused, so a commit stays durable.
func (s *Store) checkpointer() {
	defer close(s.ckDone)
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	last := s.commits.Load()
	for {
		select {
		case <-s.ckStop:
			return
		case <-t.C:
		}
		if c := s.commits.Load(); c != last {
			last = c
			_, _ = s.ck.Exec(`PRAGMA wal_checkpoint(PASSIVE)`) // a failed one is retried next tick
		}
	}
}

// hold is a claim's lease on one delivery, of route and dest (an ordered route's
// destination takes nothing more while a lease on one of its deliveries lives).
type hold struct {
	owner string
	until int64 // unix ns
	route string
	dest  int
}

// op is one write: an enqueue (recs), a finish (fin) or a function run in the batch's
// transaction.
type op struct {
	ctx  context.Context
	recs []*delivery.Record // an enqueue
	fin  *finish
	fn   func(tx *sql.Tx) error
	errc chan error
	f    finish // where fin points for a Finish: the op and its finish are one allocation
}

// finish is a Finish's write.
type finish struct {
	id, owner string
	res       delivery.Result
}

// insertChunks are the row counts of the prepared multi-row inserts: a batch's records go
// in as few statements as its count's binary digits.
var insertChunks = []int{64, 32, 16, 8, 4, 2, 1}

// maxBatch bounds how many writes share one transaction.
const maxBatch = 512

// The schema keeps a delivery's headers and body (written once) apart from where it
// stands (rewritten at each attempt): an attempt rewrites a row of a few hundred bytes,
// many to a page, not the whole request.
//
// Every b-tree a webhook touches is a page written to the log at each commit, so the
// schema keeps them few. Rows are keyed by seq (the rowid: no index of its own), which also
// keys the row's headers and body; the id has a unique index for the lookups by id. The due
// index holds only pending deliveries and the prune index only finished ones, so an
// enqueue inserts into one of them and a finish moves the delivery from one to the other.
// The first attempt is recorded in the row itself (first_*): most deliveries take one, and
// delivery_attempts keeps the later ones. Files of an older schema are migrated at Open.
const schema = `
CREATE TABLE IF NOT EXISTS deliveries (
	seq              INTEGER PRIMARY KEY,
	id               TEXT NOT NULL UNIQUE,
	route            TEXT NOT NULL,
	dest             INTEGER NOT NULL DEFAULT 0,
	decision_id      TEXT NOT NULL,
	received_at      INTEGER NOT NULL,
	method           TEXT NOT NULL,
	uri              TEXT NOT NULL,
	state            TEXT NOT NULL,
	attempts         INTEGER NOT NULL DEFAULT 0,
	base             INTEGER NOT NULL DEFAULT 0,
	next_at          INTEGER NOT NULL,
	updated_at       INTEGER NOT NULL,
	last_status      INTEGER NOT NULL DEFAULT 0,
	last_error       TEXT NOT NULL DEFAULT '',
	first_at         INTEGER,
	first_status     INTEGER,
	first_latency_us INTEGER,
	first_error      TEXT
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (next_at) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS deliveries_route ON deliveries (route, received_at);
CREATE INDEX IF NOT EXISTS deliveries_updated ON deliveries (state, updated_at) WHERE state <> 'pending';
CREATE TABLE IF NOT EXISTS delivery_bodies (
	seq     INTEGER PRIMARY KEY,
	headers BLOB NOT NULL,
	body    BLOB NOT NULL
);
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

// pageSize is a new file's page size. A stored request (headers and a body of a couple of
// KB) is one row of delivery_bodies, and rows are not split across pages: at 4 KB a page
// holds one such row, mostly, at 8 KB three, so a webhook writes fewer bytes to the log
// and the checkpoint copies fewer.
const pageSize = 8192

// Open opens (creating if needed) the database at o.Path and starts its writer. It first
// takes an exclusive lock on the file o.Path+"-lock" (created 0600), held until Close: a
// second Store on the same file, in this process or another gateway, is refused, naming the
// lock file and the pid of the gateway that holds it. A gateway that died (even killed with
// -9) holds nothing: the kernel dropped its lock. (Where flock is not available, the lock
// is not taken.)
func Open(o Options) (*Store, error) {
	if o.Path == "" {
		return nil, errors.New("delivery/sqlite: no path")
	}
	l, err := lock(o.Path)
	if err != nil {
		return nil, err
	}
	s, err := open(o)
	if err != nil {
		_ = l.unlock()
		return nil, err
	}
	s.lock = l
	return s, nil
}

// open is Open once the lock is held.
func open(o Options) (*Store, error) {
	dsn := func(extra string) string {
		return "file:" + (&url.URL{Path: o.Path}).EscapedPath() +
			"?_pragma=synchronous(FULL)&_pragma=busy_timeout(10000)" + extra
	}
	// The writer does not checkpoint (wal_autocheckpoint 0): a checkpointer beside it does,
	// off the path a commit's callers wait on. Its statement journals (the undo of a
	// savepoint, a batch's pages as they were) stay in memory (temp_store): past 64 KB, a
	// batch's size, they would go to a temporary file, written for nothing when nothing
	// fails.
	w, err := sql.Open("sqlite", dsn("&_txlock=immediate&_pragma=wal_autocheckpoint(0)&_pragma=temp_store(MEMORY)"))
	if err != nil {
		return nil, fmt.Errorf("delivery/sqlite: %s: %w", o.Path, err)
	}
	w.SetMaxOpenConns(1)
	// A new file gets pages of pageSize, set before journal_mode writes its first page (the
	// driver would run a page_size of the DSN after it); a file with pages keeps its own.
	// WAL mode is the file's: the other connections find it.
	for _, q := range []string{fmt.Sprintf(`PRAGMA page_size = %d`, pageSize), `PRAGMA journal_mode = WAL`} {
		if _, err := w.Exec(q); err != nil {
			_ = w.Close()
			return nil, fmt.Errorf("delivery/sqlite: %s: %s: %w", o.Path, q, err)
		}
	}
	if err := migrate(w); err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("delivery/sqlite: %s: migrate the deliveries to the current schema: %w", o.Path, err)
	}
	if _, err := w.Exec(schema); err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("delivery/sqlite: %s: create schema: %w", o.Path, err)
	}
	var mode string
	if err := w.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		_ = w.Close()
		return nil, fmt.Errorf("delivery/sqlite: %s: journal mode is %q, not wal: %v", o.Path, mode, err)
	}
	// Seqs are the writer's to give: past every row's, and every body's.
	var seq int64
	if err := w.QueryRow(`SELECT max(coalesce((SELECT max(seq) FROM deliveries), 0), coalesce((SELECT max(seq) FROM delivery_bodies), 0))`).Scan(&seq); err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("delivery/sqlite: %s: read the last seq: %w", o.Path, err)
	}
	r, err := sql.Open("sqlite", dsn("&_pragma=query_only(1)"))
	if err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("delivery/sqlite: %s: %w", o.Path, err)
	}
	r.SetMaxOpenConns(4)
	ck, err := sql.Open("sqlite", dsn(""))
	if err != nil {
		_ = r.Close()
		_ = w.Close()
		return nil, fmt.Errorf("delivery/sqlite: %s: %w", o.Path, err)
	}
	ck.SetMaxOpenConns(1)
	s := &Store{w: w, r: r, maxPending: o.MaxPending, seq: seq, ops: delivery.NewInbox[*op](maxBatch), done: make(chan struct{}),
		stmts: map[string]*sql.Stmt{}, insert: map[int]*sql.Stmt{}, insertBody: map[int]*sql.Stmt{}, finishRows: map[int]*sql.Stmt{}, leases: map[string]hold{},
		ck: ck, ckStop: make(chan struct{}), ckDone: make(chan struct{}),
		fresh: freshQueue{byID: map[string]*delivery.Record{}}, stale: true}
	// unprepare closes what Open made when a statement fails to prepare.
	unprepare := func() {
		for _, st := range s.stmts {
			_ = st.Close()
		}
		_ = ck.Close()
		_ = r.Close()
		_ = w.Close()
	}
	prepare := func(q string) (*sql.Stmt, error) {
		st, err := w.Prepare(q)
		if err != nil {
			unprepare()
			return nil, fmt.Errorf("delivery/sqlite: %s: prepare: %w", o.Path, err)
		}
		return st, nil
	}
	for _, q := range hotWrites {
		if s.stmts[q], err = prepare(q); err != nil {
			return nil, err
		}
	}
	for _, n := range insertChunks {
		for _, q := range []string{insertRows(n), insertBodies(n), finishFirstRows(n)} {
			if s.stmts[q], err = prepare(q); err != nil {
				return nil, err
			}
		}
		s.insert[n], s.insertBody[n], s.finishRows[n] = s.stmts[insertRows(n)], s.stmts[insertBodies(n)], s.stmts[finishFirstRows(n)]
	}
	// Claims are serialized (lmu) and frequent: one reader connection keeps the claim's
	// statement prepared, since parsing it costs more than running it.
	if s.claimc, err = r.Conn(context.Background()); err == nil {
		if s.claim, err = s.claimc.PrepareContext(context.Background(), claimSQL); err == nil {
			if s.nextDue, err = s.claimc.PrepareContext(context.Background(), nextDueSQL); err != nil {
				_ = s.claim.Close()
			}
		}
		if err != nil {
			_ = s.claimc.Close()
		}
	}
	if err != nil {
		unprepare()
		return nil, fmt.Errorf("delivery/sqlite: %s: prepare the claim: %w", o.Path, err)
	}
	go s.writer()
	go s.checkpointer()
	return s, nil
}

// migrate rebuilds, in one transaction, a file of an older schema: one whose deliveries
// are keyed by their text id, with headers and bodies in delivery_bodies by id or, older
// still, in the deliveries rows themselves (the first schema, without dest). The rows keep their ids, states and
// attempts (their attempts stay in delivery_attempts); leases are not kept (the file is one
// gateway's: a previous process's leases are void, and its deliveries due again at once).
func migrate(w *sql.DB) error {
	cols := map[string]bool{}
	rows, err := w.Query(`SELECT name FROM pragma_table_info('deliveries')`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			rows.Close()
			return err
		}
		cols[c] = true
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return err
	}
	if len(cols) == 0 || cols["seq"] {
		return nil // a new file, or the current schema
	}
	bodies := `deliveries_old` // where the headers and bodies are, by id
	if !cols["body"] {
		bodies = `delivery_bodies_old`
	}
	tx, err := w.Begin()
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }() // after Commit, nothing to undo
	steps := []string{
		`DROP INDEX IF EXISTS deliveries_due`,
		`DROP INDEX IF EXISTS deliveries_route`,
		`DROP INDEX IF EXISTS deliveries_updated`,
		`ALTER TABLE deliveries RENAME TO deliveries_old`,
	}
	if !cols["body"] {
		steps = append(steps, `ALTER TABLE delivery_bodies RENAME TO delivery_bodies_old`)
	}
	// The first schema had no dest: every delivery of such a file goes to its route's
	// upstream (0).
	dest := `dest`
	if !cols["dest"] {
		dest = `0`
	}
	steps = append(steps, schema,
		`INSERT INTO deliveries (id, route, dest, decision_id, received_at, method, uri, state, attempts, base, next_at, updated_at, last_status, last_error)
			SELECT id, route, `+dest+`, decision_id, received_at, method, uri, state, attempts, base, next_at, updated_at, last_status, last_error
			FROM deliveries_old ORDER BY id`,
		`INSERT INTO delivery_bodies (seq, headers, body) SELECT d.seq, b.headers, b.body FROM deliveries d JOIN `+bodies+` b ON b.id = d.id`,
		`DROP TABLE deliveries_old`,
		`DROP TABLE IF EXISTS delivery_bodies_old`)
	for _, q := range steps {
		if _, err := tx.Exec(q); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// submit hands o to the writer and waits for its commit.
func (s *Store) submit(o *op) error {
	if err := s.ops.Send(o); err != nil {
		s.recycle(o)
		return err
	}
	// The writer always answers: waiting past ctx would be needed anyway, since a batch
	// already begun may commit this write.
	err := <-o.errc
	s.recycle(o)
	return err
}

// newOp returns an op for a write under ctx: an answered one when there is one, so that a
// write costs no allocation of an op and an answer channel (two for every webhook's
// enqueue and two for its finish, beside a store's few per commit).
func (s *Store) newOp(ctx context.Context) *op {
	o, _ := s.spare.Get().(*op)
	if o == nil {
		o = &op{errc: make(chan error, 1)}
	}
	o.ctx = ctx
	return o
}

// recycle keeps o for a later write once its answer was read (or it was never sent): the
// writer answers an op once and touches it no more, and its channel is empty again.
func (s *Store) recycle(o *op) {
	*o = op{errc: o.errc}
	s.spare.Put(o)
}

func (s *Store) writer() {
	defer close(s.done)
	batch := make([]*op, 0, maxBatch)
	busy := false
	for first := range s.ops.C {
		batch = append(batch[:0], first)
		// Take what is waiting; while more keeps arriving, let the writers that are about
		// to submit run first (one yield per round), so a burst shares one commit.
		for len(batch) < maxBatch {
			n := len(batch)
			batch = s.ops.Take(batch, maxBatch)
			if len(batch) == n {
				break
			}
			runtime.Gosched()
		}
		// Under load (the last batch shared its commit too), requests are on their way:
		// wait a little for them, bounded, so that a commit (an fsync and the pages it
		// writes) is shared by more.
		if busy && len(batch) < maxBatch {
			s.gather(&batch)
		}
		busy = len(batch) > 1
		s.commit(batch)
	}
}

// groupWindow bounds how long a batch under load waits for more writes; groupQuiet ends
// the wait early when no write came for that long.
const (
	groupWindow = 5 * time.Millisecond
	groupQuiet  = time.Millisecond
)

// gather adds to batch the writes that come within groupWindow, until none came for
// groupQuiet or the batch is full.
func (s *Store) gather(batch *[]*op) {
	deadline := time.Now().Add(groupWindow)
	quiet := time.NewTimer(groupQuiet)
	defer quiet.Stop()
	for len(*batch) < maxBatch {
		select {
		case o, ok := <-s.ops.C:
			if !ok {
				return
			}
			*batch = append(*batch, o)
			left := time.Until(deadline)
			if left <= 0 {
				return
			}
			quiet.Reset(min(groupQuiet, left))
		case <-quiet.C:
			return
		}
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

// commit runs batch in one transaction and answers every op. One failing write leaves
// the others alone: the enqueues go in as one multi-row insert and the finishes together,
// each group under one savepoint; when a group fails, its writes are made again one by
// one, each under its own savepoint, as every other write is.
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
	s.txLost = nil
	done := make([]bool, len(batch)) // made (or refused) by a group
	s.enqueueAll(ctx, tx, batch, errs, done)
	s.finishAll(ctx, tx, batch, errs, done)
	for i, o := range batch {
		if errs[i] != nil || done[i] {
			continue
		}
		if o.fn != nil {
			errs[i] = s.savepoint(ctx, tx, o.fn)
		} else if o.fin != nil {
			errs[i] = s.savepoint(ctx, tx, func(tx *sql.Tx) error { return s.finishOne(ctx, tx, o.fin) })
		}
	}
	if s.txLost != nil {
		_ = tx.Rollback()
		for i := range errs {
			errs[i] = nil // the rolled-back transaction made none of them
		}
		answer(fmt.Errorf("delivery/sqlite: the transaction was rolled back, nothing of it stored: %w", s.txLost))
		return
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
	s.countPending(batch, errs)
	s.committed(batch, errs)
	answer(nil)
}

// countPending keeps the pending count past batch's commit: a made enqueue adds its
// records, a made finish out of pending takes its delivery away, and any other write
// (replay, purge) leaves the count unknown until the next batch that needs it reads it.
func (s *Store) countPending(batch []*op, errs []error) {
	for i, o := range batch {
		if errs[i] != nil {
			continue // not made
		}
		switch {
		case o.recs != nil:
			s.pending += len(o.recs)
		case o.fin != nil:
			if o.fin.res.State != delivery.StatePending {
				s.pending--
			}
		default:
			s.pendingKnown = false
		}
	}
}

// committed updates the claims' memory after batch's commit. A finished delivery's lease
// goes only now that its new state is committed, so a claim that reads it from now on
// sees it finished (or due later); a retry makes the file due again at its next_at. The
// enqueued records are handed to the claims from memory, unless a claim already read
// them from the file (they are leased then).
func (s *Store) committed(batch []*op, errs []error) {
	s.lmu.Lock()
	defer s.lmu.Unlock()
	for i, o := range batch {
		if errs[i] != nil {
			continue
		}
		switch {
		case o.fin != nil:
			if s.leases[o.fin.id].owner == o.fin.owner {
				delete(s.leases, o.fin.id)
			}
			s.stale = s.stale || s.ordered
			if res := o.fin.res; res.State == delivery.StatePending {
				if at := res.NextAt.UnixNano(); s.retryAt == 0 || at < s.retryAt {
					s.retryAt = at
				}
			}
		case o.recs != nil:
			for _, r := range o.recs {
				if _, leased := s.leases[r.ID]; leased || !s.fresh.push(r) {
					s.stale = s.stale || !leased
				}
			}
		}
	}
}

// savepoint runs fn under its own savepoint: when it fails, what it wrote is undone and the
// rest of the transaction stands. When the savepoint cannot be rolled back to or released,
// the transaction itself is gone (txLost), and neither fn nor any later write of the batch
// runs.
func (s *Store) savepoint(ctx context.Context, tx *sql.Tx, fn func(tx *sql.Tx) error) error {
	if s.txLost != nil {
		return s.txLost
	}
	if _, err := s.exec(ctx, tx, `SAVEPOINT w`); err != nil {
		return fmt.Errorf("delivery/sqlite: savepoint: %w", err)
	}
	err := fn(tx)
	if err != nil {
		if _, rerr := s.exec(ctx, tx, `ROLLBACK TO w`); rerr != nil {
			s.txLost = err
		}
	}
	if _, rerr := s.exec(ctx, tx, `RELEASE w`); rerr != nil && s.txLost == nil {
		s.txLost = rerr
	}
	if s.txLost != nil && err == nil {
		err = s.txLost
	}
	return err
}

// unanswered returns the indexes of batch's ops of a kind (is) that no error answered yet.
func unanswered(batch []*op, errs []error, is func(o *op) bool) []int {
	var idx []int
	for i, o := range batch {
		if is(o) && errs[i] == nil {
			idx = append(idx, i)
		}
	}
	return idx
}

// enqueueAll makes the batch's enqueues: within max_pending (counted once per batch, so
// exact), in arrival order; the rest fail with delivery.ErrFull. Their records go in as
// one group; when the group fails (a duplicate id, say), each enqueue is made alone, so
// only the failing one fails.
func (s *Store) enqueueAll(ctx context.Context, tx *sql.Tx, batch []*op, errs []error, done []bool) {
	idx := unanswered(batch, errs, func(o *op) bool { return o.recs != nil })
	if len(idx) == 0 {
		return
	}
	for _, i := range idx {
		done[i] = true
	}
	pending0 := -1
	if s.maxPending > 0 {
		if !s.pendingKnown {
			// Before this batch's writes: what the last commit left.
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM deliveries WHERE state = 'pending'`).Scan(&s.pending); err != nil {
				for _, i := range idx {
					errs[i] = fmt.Errorf("delivery/sqlite: count pending: %w", err)
				}
				return
			}
			s.pendingKnown = true
		}
		pending0 = s.pending
	}
	// fits reports whether n more records stay within max_pending, and counts them.
	fits := func(pending *int, n int) bool {
		if pending0 < 0 {
			return true
		}
		if *pending+n > s.maxPending {
			return false
		}
		*pending += n
		return true
	}
	if len(idx) > 1 {
		var recs []*delivery.Record
		var full []int
		pending := pending0
		for _, i := range idx {
			if fits(&pending, len(batch[i].recs)) {
				recs = append(recs, batch[i].recs...)
			} else {
				full = append(full, i)
			}
		}
		if s.savepoint(ctx, tx, func(tx *sql.Tx) error { return s.insertRecs(ctx, tx, recs) }) == nil {
			for _, i := range full {
				errs[i] = delivery.ErrFull
			}
			return
		}
	}
	pending := pending0
	for _, i := range idx {
		recs := batch[i].recs
		if !fits(&pending, len(recs)) {
			errs[i] = delivery.ErrFull
			continue
		}
		if errs[i] = s.savepoint(ctx, tx, func(tx *sql.Tx) error { return s.insertRecs(ctx, tx, recs) }); errs[i] != nil && pending0 >= 0 {
			pending -= len(recs)
		}
	}
}

// chunk is the largest of insertChunks that is at most n (n > 0): the rows of the next
// multi-row statement.
func chunk(n int) int {
	for _, c := range insertChunks {
		if c <= n {
			return c
		}
	}
	return insertChunks[len(insertChunks)-1]
}

// insertRecs inserts rs with the prepared multi-row inserts.
func (s *Store) insertRecs(ctx context.Context, tx *sql.Tx, rs []*delivery.Record) error {
	args := make([]any, 0, min(len(rs), insertChunks[0])*insertCols)
	// A value is boxed once where two columns take it: each boxing of an int64 is an
	// allocation.
	seqs := make([]any, min(len(rs), insertChunks[0]))
	for len(rs) > 0 {
		n := chunk(len(rs))
		seq0 := s.seq // a failed insert's seqs are not given again: the next is past them
		s.seq += int64(n)
		args = args[:0]
		for i, r := range rs[:n] {
			seqs[i] = seq0 + int64(i) + 1
			received := any(r.ReceivedAt.UnixNano())
			args = append(args, seqs[i], r.ID, r.Route, r.Dest, r.DecisionID, received, r.Method, r.URI,
				r.NextAt.UnixNano(), received)
		}
		if _, err := tx.StmtContext(ctx, s.insert[n]).ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("delivery/sqlite: insert: %w", err)
		}
		args = args[:0]
		for i, r := range rs[:n] {
			args = append(args, seqs[i], delivery.EncodeHeaders(r.Headers), nonNil(r.Body))
		}
		if _, err := tx.StmtContext(ctx, s.insertBody[n]).ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("delivery/sqlite: insert: %w", err)
		}
		rs = rs[n:]
	}
	return nil
}

// finishAll makes the batch's finishes as one group, without a savepoint each (a lost
// lease writes nothing): the first attempts of deliveries held in as few multi-row
// updates as their count's binary digits, the others one by one. When a statement fails,
// or a multi-row update finds fewer pending deliveries than it names, the group is undone
// and each finish is made alone.
func (s *Store) finishAll(ctx context.Context, tx *sql.Tx, batch []*op, errs []error, done []bool) {
	idx := unanswered(batch, errs, func(o *op) bool { return o.fin != nil })
	if len(idx) < 2 {
		return
	}
	var firsts []*finish
	s.lmu.Lock()
	for _, i := range idx {
		f := batch[i].fin
		switch {
		case !s.holds(f):
			errs[i] = delivery.ErrLeaseLost
		case f.res.Attempt.N == 1:
			firsts = append(firsts, f)
		}
	}
	s.lmu.Unlock()
	err := s.savepoint(ctx, tx, func(tx *sql.Tx) error {
		if err := s.finishFirsts(ctx, tx, firsts); err != nil {
			return err
		}
		for _, i := range idx {
			if f := batch[i].fin; errs[i] != nil || f.res.Attempt.N == 1 {
				continue
			}
			err := s.finishOne(ctx, tx, batch[i].fin)
			if err != nil && !errors.Is(err, delivery.ErrLeaseLost) {
				return err
			}
			errs[i] = err
		}
		return nil
	})
	if err != nil {
		for _, i := range idx {
			errs[i] = nil
		}
		return
	}
	for _, i := range idx {
		done[i] = true
	}
}

// errFinishedMeanwhile fails a multi-row finish that found fewer pending deliveries than
// it names (one finished twice in the batch, or not pending): each is made alone then.
var errFinishedMeanwhile = errors.New("delivery/sqlite: a grouped finish found a delivery not pending")

// finishFirsts records the first attempts fs, whose leases are held, with the prepared
// multi-row updates.
func (s *Store) finishFirsts(ctx context.Context, tx *sql.Tx, fs []*finish) error {
	args := make([]any, 0, min(len(fs), insertChunks[0])*finishCols)
	for len(fs) > 0 {
		n := chunk(len(fs))
		args = args[:0]
		for _, f := range fs[:n] {
			a := f.res.Attempt
			args = append(args, f.id, stateArg(f.res.State), f.res.NextAt.UnixNano(), a.At.Add(a.Latency).UnixNano(), a.Status, a.Error,
				a.At.UnixNano(), a.Latency.Microseconds())
		}
		r, err := tx.StmtContext(ctx, s.finishRows[n]).ExecContext(ctx, args...)
		if err != nil {
			return fmt.Errorf("delivery/sqlite: finish: %w", err)
		}
		if got, err := r.RowsAffected(); err != nil || got != int64(n) {
			return errFinishedMeanwhile
		}
		fs = fs[n:]
	}
	return nil
}

// holds reports whether f's owner holds its delivery, under the lease f's attempt was made
// under when f names it (under lmu).
func (s *Store) holds(f *finish) bool {
	l, ok := s.leases[f.id]
	return ok && l.owner == f.owner && (f.res.Lease.IsZero() || l.until == f.res.Lease.UnixNano())
}

// finishOne records f's attempt and moves its delivery to the new state, when f's owner
// holds it (delivery.ErrLeaseLost otherwise, with nothing written).
func (s *Store) finishOne(ctx context.Context, tx *sql.Tx, f *finish) error {
	s.lmu.Lock()
	held := s.holds(f)
	s.lmu.Unlock()
	if !held {
		return delivery.ErrLeaseLost
	}
	a := f.res.Attempt
	q, args := finishSQL, []any{string(f.res.State), a.N, f.res.NextAt.UnixNano(), a.At.Add(a.Latency).UnixNano(), a.Status, a.Error, f.id}
	if a.N == 1 {
		q, args = finishFirstSQL, append(args, a.At.UnixNano(), a.Latency.Microseconds())
	}
	r, err := s.exec(ctx, tx, q, args...)
	if err != nil {
		return fmt.Errorf("delivery/sqlite: finish: %w", err)
	}
	if n, _ := r.RowsAffected(); n == 0 {
		return delivery.ErrLeaseLost
	}
	if a.N == 1 {
		return nil // the row has it
	}
	if _, err := s.exec(ctx, tx, attemptSQL,
		f.id, a.N, a.At.UnixNano(), a.Status, a.Latency.Microseconds(), a.Error); err != nil {
		return fmt.Errorf("delivery/sqlite: record attempt: %w", err)
	}
	return nil
}

// The writes of every delivery, prepared once at Open.
const (
	insertCols = 10 // parameters per row of insertRows (insertBodies has fewer)
	finishSQL  = `UPDATE deliveries SET state = ?1, attempts = ?2, next_at = ?3, updated_at = ?4,
			last_status = ?5, last_error = ?6 WHERE id = ?7 AND state = 'pending'`
	// finishFirstSQL is finishSQL recording the first attempt in the row (?8 its start,
	// ?9 its latency in µs).
	finishFirstSQL = `UPDATE deliveries SET state = ?1, attempts = ?2, next_at = ?3, updated_at = ?4,
			last_status = ?5, last_error = ?6, first_at = ?8, first_status = ?5, first_latency_us = ?9, first_error = ?6
			WHERE id = ?7 AND state = 'pending'`
	attemptSQL = `INSERT INTO delivery_attempts (delivery_id, n, at, status, latency_us, error) VALUES (?, ?, ?, ?, ?, ?)`
)

// insertRows is the insert of n records.
func insertRows(n int) string {
	var b strings.Builder
	b.WriteString(`INSERT INTO deliveries
		(seq, id, route, dest, decision_id, received_at, method, uri, state, attempts, base, next_at, updated_at)
		VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(`(?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, 0, ?, ?)`)
	}
	return b.String()
}

// finishCols are the parameters per row of finishFirstRows.
const finishCols = 8

// finishFirstRows is finishFirstSQL for n deliveries, each a row of (id, state, next_at,
// updated_at, status, error, first_at, first_latency_us).
func finishFirstRows(n int) string {
	return `UPDATE deliveries SET state = v.column2, attempts = 1, next_at = v.column3, updated_at = v.column4,
		last_status = v.column5, last_error = v.column6, first_at = v.column7, first_status = v.column5,
		first_latency_us = v.column8, first_error = v.column6
		FROM (VALUES ` + strings.Repeat(`(?, ?, ?, ?, ?, ?, ?, ?), `, n-1) + `(?, ?, ?, ?, ?, ?, ?, ?)) AS v
		WHERE deliveries.id = v.column1 AND deliveries.state = 'pending'`
}

// insertBodies is the insert of n records' headers and bodies.
func insertBodies(n int) string {
	return `INSERT INTO delivery_bodies (seq, headers, body) VALUES ` + strings.Repeat(`(?, ?, ?), `, n-1) + `(?, ?, ?)`
}

var hotWrites = []string{finishSQL, finishFirstSQL, attemptSQL, `SAVEPOINT w`, `ROLLBACK TO w`, `RELEASE w`}

// stateArg is a state as a statement's argument, boxed once for the known states: boxing
// a string allocates, once for every finish.
func stateArg(st delivery.State) any {
	switch st {
	case delivery.StatePending:
		return pendingArg
	case delivery.StateDelivered:
		return deliveredArg
	case delivery.StateDead:
		return deadArg
	}
	return string(st)
}

// The known states, boxed (read-only).
var pendingArg, deliveredArg, deadArg any = string(delivery.StatePending), string(delivery.StateDelivered), string(delivery.StateDead)

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
	o := s.newOp(ctx)
	o.recs = rs
	return s.submit(o)
}

// write runs fn in the next batch's transaction.
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	o := s.newOp(ctx)
	o.fn = fn
	return s.submit(o)
}

// fullCols reads a whole record FROM fullFrom.
const (
	fullCols = `d.id, d.route, d.dest, d.decision_id, d.received_at, d.method, d.uri, b.headers, b.body, d.state, d.attempts, d.base, d.next_at, d.updated_at, d.last_status, d.last_error`
	fullFrom = `deliveries d JOIN delivery_bodies b ON b.seq = d.seq`
)
const listCols = `id, route, dest, decision_id, received_at, method, uri, x'', x'', state, attempts, base, next_at, updated_at, last_status, last_error`

// scan reads a record with a row's Scan (or one that scans more columns after the record's).
// A record whose headers do not decode is returned with the error (delivery.ScanRecord).
func scan(rowScan func(dest ...any) error) (*delivery.Record, error) {
	r, err := delivery.ScanRecord(rowScan)
	if err != nil {
		return r, fmt.Errorf("delivery/sqlite: read: %w", err)
	}
	return r, nil
}

// collect reads rows' records (scan) and closes rows. A claim's (claim true) keeps a
// delivery whose row does not decode, as delivery.MarkUnreadable does: one damaged row must
// not stop every claim (it is the oldest due, so every one would read it).
func collect(rows *sql.Rows, claim bool) ([]*delivery.Record, error) {
	defer rows.Close()
	var out []*delivery.Record
	for rows.Next() {
		r, err := scan(rows.Scan)
		if claim {
			r, err = delivery.MarkUnreadable(r, err)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// claimSQL reads the claimable deliveries: pending, due, not leased (?4: the ids leased
// now, from Claim's memory), not of a skipped destination, and the head of an ordered
// route (?3: routesFilter; an ordered route's destination with a live lease is among the
// skipped ones, withBusy).
const claimSQL = `SELECT ` + fullCols + ` FROM ` + fullFrom + ` WHERE d.state = 'pending' AND d.next_at <= ?1
	AND d.id NOT IN (SELECT value FROM json_each(?4))
	AND NOT EXISTS (SELECT 1 FROM json_each(?3, '$.skip') j WHERE j.value ->> 0 = d.route AND j.value ->> 1 = d.dest)
	AND (d.route NOT IN (SELECT value FROM json_each(?3, '$.ordered')) OR d.id = (SELECT h.id FROM deliveries h
		WHERE h.route = d.route AND h.dest = d.dest AND h.state = 'pending' ORDER BY h.received_at, h.id LIMIT 1))
	ORDER BY d.next_at LIMIT ?2`

// nextDueSQL is when the first pending delivery not due at ?1 is due (NULL: none).
const nextDueSQL = `SELECT min(next_at) FROM deliveries WHERE state = 'pending' AND next_at > ?1`

// Claim implements delivery.Store. The leases are the store's memory, and so are the
// deliveries enqueued since the last claim (fresh): a claim takes those first, and reads
// the file (one read on a reader connection, beside the writer) only when they do not
// fill it and the file may hold more that are due. A claim costs no write.
func (s *Store) Claim(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int, routes delivery.Routes) ([]*delivery.Record, error) {
	if s.ops.Closed() {
		return nil, delivery.ErrClosed
	}
	at := now.UnixNano()
	s.lmu.Lock()
	defer s.lmu.Unlock()
	var out []*delivery.Record
	for len(out) < limit {
		r := s.fresh.pop(at)
		if r == nil {
			break
		}
		// The file has these: a read finds them when they may go. A skipped destination's
		// may go under another filter; an ordered route's when it is the route's head. Both
		// leave the file stale: the last read may have been under a filter that took this
		// destination (a claim filled from memory reads nothing), and without a read under
		// the skip the filter would look unchanged once the skip ends, leaving the record
		// due and untaken.
		if slices.Contains(routes.Skip, delivery.Destination{Route: r.Route, Dest: r.Dest}) {
			s.stale = true
			continue
		}
		if slices.Contains(routes.Ordered, r.Route) {
			s.stale = true
			continue
		}
		if slices.Contains(routes.Busy, r.ID) {
			s.stale = true
			continue
		}
		out = append(out, r)
	}
	if s.expiry != 0 && s.expiry < at {
		// A lease may have expired: its delivery is claimable again.
		s.expiry = 0
		for _, l := range s.leases {
			if l.until < at {
				s.stale = true
			} else if s.expiry == 0 || l.until < s.expiry {
				s.expiry = l.until
			}
		}
	}
	filter, err := s.filter.render(s.withBusy(routes, at))
	if err != nil {
		return nil, err
	}
	if len(out) < limit && (s.stale || filter != s.lastRoutes || (s.retryAt != 0 && s.retryAt <= at)) {
		held := make([]string, 0, len(s.leases)+len(out)+len(routes.Busy))
		for id, l := range s.leases {
			if l.until >= at {
				held = append(held, id)
			}
		}
		for _, r := range out {
			held = append(held, r.ID)
		}
		held = append(held, routes.Busy...) // in an attempt: their expired leases stand
		more, err := s.claimFile(ctx, at, limit-len(out), filter, held)
		if err != nil {
			s.stale = true // what was taken from fresh is in the file: a later read finds it
			return nil, err
		}
		out = append(out, more...)
		s.ordered = len(routes.Ordered) > 0
		s.stale = s.stale || len(routes.Busy) > 0 // a later claim without them reads them
	}
	until := at + lease.Nanoseconds()
	for _, r := range out {
		s.leases[r.ID] = hold{owner: owner, until: until, route: r.Route, dest: r.Dest}
		r.Lease = time.Unix(0, until)
	}
	if len(out) > 0 && (s.expiry == 0 || until < s.expiry) {
		s.expiry = until
	}
	return out, nil
}

// withBusy returns routes with the destinations of ordered routes that have a live lease
// at at added to Skip (under lmu): an ordered route's destination has one delivery in an
// attempt at a time, whichever its head is now (a delivery received earlier but stored
// later, or replayed, may have become the head meanwhile). The filter changes when such a
// lease ends, so a claim reads the file again then.
func (s *Store) withBusy(routes delivery.Routes, at int64) delivery.Routes {
	if len(routes.Ordered) == 0 {
		return routes
	}
	var busy []delivery.Destination
	for _, l := range s.leases {
		if l.until < at || !slices.Contains(routes.Ordered, l.route) {
			continue
		}
		if d := (delivery.Destination{Route: l.route, Dest: l.dest}); !slices.Contains(busy, d) {
			busy = append(busy, d)
		}
	}
	if len(busy) == 0 {
		return routes
	}
	slices.SortFunc(busy, func(a, b delivery.Destination) int {
		if c := strings.Compare(a.Route, b.Route); c != 0 {
			return c
		}
		return cmp.Compare(a.Dest, b.Dest)
	})
	routes.Skip = append(slices.Clip(routes.Skip), busy...)
	return routes
}

// claimFile reads up to limit claimable deliveries from the file, but for held, and
// learns when the file next has a due one.
func (s *Store) claimFile(ctx context.Context, at int64, limit int, filter string, held []string) ([]*delivery.Record, error) {
	heldJSON, err := json.Marshal(held)
	if err != nil {
		return nil, fmt.Errorf("delivery/sqlite: claim: %w", err)
	}
	var out []*delivery.Record
	var next sql.NullInt64
	err = func() error {
		tx, err := s.claimc.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
		if err != nil {
			return err
		}
		defer func() { _ = tx.Rollback() }() // read-only: nothing to undo
		rows, err := tx.StmtContext(ctx, s.claim).QueryContext(ctx, at, limit, filter, string(heldJSON))
		if err != nil {
			return err
		}
		if out, err = collect(rows, true); err != nil {
			return err
		}
		// In the same snapshot: the first delivery due after at.
		return tx.StmtContext(ctx, s.nextDue).QueryRowContext(ctx, at).Scan(&next)
	}()
	if err != nil {
		return nil, fmt.Errorf("delivery/sqlite: claim: %w", err)
	}
	for _, r := range out {
		s.fresh.remove(r.ID) // a record enqueued during the read may be in both
	}
	// The read saw every due delivery it may claim now under this filter: the file holds
	// more only when the read stopped at its limit, or when something changes (a retry
	// comes due, a lease is released or expires, an ordered route's head finishes).
	s.stale = len(out) == limit
	s.lastRoutes = filter
	s.retryAt = next.Int64
	return out, nil
}

// filterCache keeps the last routes a claim rendered, and their rendering: a dispatcher's
// claims mostly pass the same ones (none skipped, the same ordered routes).
type filterCache struct {
	skip    []delivery.Destination
	ordered []string
	json    string
}

// render returns routesFilter(routes), from the cache when routes are the last ones.
func (c *filterCache) render(routes delivery.Routes) (string, error) {
	if c.json != "" && slices.Equal(c.skip, routes.Skip) && slices.Equal(c.ordered, routes.Ordered) {
		return c.json, nil
	}
	f, err := routesFilter(routes)
	if err != nil {
		return "", err
	}
	c.skip, c.ordered, c.json = slices.Clone(routes.Skip), slices.Clone(routes.Ordered), f
	return f, nil
}

// routesFilter renders a claim's routes for claimSQL (?3): {"skip":[[route,dest],…],
// "ordered":[route,…]}.
func routesFilter(routes delivery.Routes) (string, error) {
	f := struct {
		Skip    [][2]any `json:"skip"`
		Ordered []string `json:"ordered"`
	}{Skip: make([][2]any, len(routes.Skip)), Ordered: append([]string{}, routes.Ordered...)}
	for i, d := range routes.Skip {
		f.Skip[i] = [2]any{d.Route, d.Dest}
	}
	b, err := json.Marshal(f)
	if err != nil {
		return "", fmt.Errorf("delivery/sqlite: claim: %w", err)
	}
	return string(b), nil
}

// maxFresh bounds the records a freshQueue holds; beyond, the claims read them from the
// file.
const maxFresh = 4096

// freshQueue holds the store's own copies of committed, unclaimed records, by next_at,
// for the claims to take without reading the file.
type freshQueue struct {
	q    []*delivery.Record // q[head:] by NextAt; an entry no longer in byID was removed
	head int
	byID map[string]*delivery.Record
}

// push adds a record as the file holds r; false when the queue is full. It shares r's
// headers and body, which the enqueue's caller no longer changes (delivery.Store), and
// which no claim changes either: a copy of each would be a copy of every request's body.
func (f *freshQueue) push(r *delivery.Record) bool {
	if len(f.byID) >= maxFresh {
		return false
	}
	recv := time.Unix(0, r.ReceivedAt.UnixNano())
	hs := r.Headers
	if len(hs) == 0 {
		hs = nil
	}
	c := &delivery.Record{ID: r.ID, Route: r.Route, Dest: r.Dest, DecisionID: r.DecisionID, ReceivedAt: recv,
		Method: r.Method, URI: r.URI, Headers: hs, Body: nonNil(r.Body),
		State: delivery.StatePending, NextAt: time.Unix(0, r.NextAt.UnixNano()), UpdatedAt: recv}
	if f.head == len(f.q) || len(f.q)-f.head > 2*maxFresh {
		// Drained, or mostly removed entries: keep the live ones only.
		live := f.q[:0]
		for _, e := range f.q[f.head:] {
			if f.byID[e.ID] == e {
				live = append(live, e)
			}
		}
		clear(f.q[len(live):])
		f.q, f.head = live, 0
	}
	i := len(f.q) // records come due in the order they come, nearly always
	for i > f.head && f.q[i-1].NextAt.After(c.NextAt) {
		i--
	}
	f.q = slices.Insert(f.q, i, c)
	f.byID[c.ID] = c
	return true
}

// pop takes the first record due at at, or nil.
func (f *freshQueue) pop(at int64) *delivery.Record {
	for f.head < len(f.q) {
		r := f.q[f.head]
		if r.NextAt.UnixNano() > at {
			return nil
		}
		f.q[f.head] = nil
		f.head++
		if f.byID[r.ID] == r {
			delete(f.byID, r.ID)
			return r
		}
	}
	return nil
}

// remove drops id's record, if the queue has it.
func (f *freshQueue) remove(id string) { delete(f.byID, id) }

// Finish implements delivery.Store.
func (s *Store) Finish(ctx context.Context, id, owner string, res delivery.Result) error {
	o := s.newOp(ctx)
	o.f = finish{id: id, owner: owner, res: res}
	o.fin = &o.f
	return s.submit(o)
}

// Release implements delivery.Store: the leases are in memory, and a released delivery's
// row never changed.
func (s *Store) Release(_ context.Context, owner string, ids []string) error {
	if s.ops.Closed() {
		return delivery.ErrClosed
	}
	s.lmu.Lock()
	defer s.lmu.Unlock()
	for _, id := range ids {
		if s.leases[id].owner == owner {
			delete(s.leases, id)
			s.stale = true
		}
	}
	return nil
}

// Get implements delivery.Store.
func (s *Store) Get(ctx context.Context, id string) (*delivery.Record, []delivery.Attempt, error) {
	var firstAt, firstStatus, firstLatency sql.NullInt64
	var firstError sql.NullString
	row := s.r.QueryRowContext(ctx, `SELECT `+fullCols+`, d.first_at, d.first_status, d.first_latency_us, d.first_error
		FROM `+fullFrom+` WHERE d.id = ?`, id)
	r, err := scan(func(dest ...any) error {
		return row.Scan(append(dest, &firstAt, &firstStatus, &firstLatency, &firstError)...)
	})
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
	if firstAt.Valid { // the first attempt, kept in the row
		as = append(as, delivery.Attempt{N: 1, At: time.Unix(0, firstAt.Int64), Status: int(firstStatus.Int64),
			Latency: time.Duration(firstLatency.Int64) * time.Microsecond, Error: firstError.String})
	}
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
	return `(?1 = '' OR route = ?1) AND (?2 = '' OR state = ?2) AND received_at >= ?3 AND received_at < ?4`, q.FilterArgs()
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
	rs, err := collect(rows, false)
	for _, r := range rs {
		r.Body = nil
	}
	return rs, err
}

// Replay implements delivery.Store.
func (s *Store) Replay(ctx context.Context, id string, now time.Time) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		// A pending delivery in an attempt keeps its lease: clearing it would give the
		// delivery a second owner.
		s.lmu.Lock()
		_, leased := s.leases[id]
		s.lmu.Unlock()
		if _, err := tx.ExecContext(ctx, `UPDATE deliveries SET state = 'pending', base = attempts, next_at = ?2, updated_at = ?2
			WHERE id = ?1 AND (state <> 'pending' OR NOT ?3)`, id, now.UnixNano(), leased); err != nil {
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
	if err == nil {
		s.markStale()
	}
	return err
}

// markStale tells the claims that the file holds due deliveries they have not read.
func (s *Store) markStale() {
	s.lmu.Lock()
	s.stale = true
	s.lmu.Unlock()
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
	if n > 0 {
		s.markStale()
	}
	return int(n), err
}

// Purge implements delivery.Store.
func (s *Store) Purge(ctx context.Context, id string) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		for _, q := range []string{`DELETE FROM delivery_attempts WHERE delivery_id = ?`,
			`DELETE FROM delivery_bodies WHERE seq = (SELECT seq FROM deliveries WHERE id = ?)`} {
			if _, err := tx.ExecContext(ctx, q, id); err != nil {
				return fmt.Errorf("delivery/sqlite: purge: %w", err)
			}
		}
		r, err := tx.ExecContext(ctx, `DELETE FROM deliveries WHERE id = ?`, id)
		if err != nil {
			return fmt.Errorf("delivery/sqlite: purge: %w", err)
		}
		if n, _ := r.RowsAffected(); n == 0 {
			return delivery.ErrNotFound // its savepoint undoes nothing: nothing was there
		}
		return nil
	})
	if err == nil {
		s.lmu.Lock()
		delete(s.leases, id)
		s.fresh.remove(id)
		s.lmu.Unlock()
	}
	return err
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
		// state <> 'pending' lets the prune index (finished deliveries only) serve it.
		const where = ` FROM deliveries WHERE state <> 'pending' AND ((state = 'delivered' AND updated_at < ?1) OR (state = 'dead' AND updated_at < ?2))`
		for _, q := range []string{`DELETE FROM delivery_attempts WHERE delivery_id IN (SELECT id` + where + `)`,
			`DELETE FROM delivery_bodies WHERE seq IN (SELECT seq` + where + `)`} {
			if _, err := tx.ExecContext(ctx, q, delivered.UnixNano(), dead.UnixNano()); err != nil {
				return fmt.Errorf("delivery/sqlite: prune: %w", err)
			}
		}
		r, err := tx.ExecContext(ctx, `DELETE FROM deliveries WHERE seq IN (SELECT seq`+where+`)`, delivered.UnixNano(), dead.UnixNano())
		if err != nil {
			return fmt.Errorf("delivery/sqlite: prune: %w", err)
		}
		n, _ = r.RowsAffected()
		return nil
	})
	return int(n), err
}

// resealBatch is how many deliveries one step of Reseal reads and rewrites.
const resealBatch = 256

// Reseal implements delivery.Store.
func (s *Store) Reseal(ctx context.Context, fn func(r *delivery.Record) (bool, error)) (int, error) {
	page := func(after string) ([]*delivery.Record, error) {
		rows, err := s.r.QueryContext(ctx, `SELECT `+fullCols+` FROM `+fullFrom+` WHERE d.id > ? ORDER BY d.id LIMIT ?`, after, resealBatch)
		if err != nil {
			return nil, fmt.Errorf("delivery/sqlite: reseal: %w", err)
		}
		rs, err := collect(rows, false)
		if err != nil {
			return nil, fmt.Errorf("delivery/sqlite: reseal: %w", err)
		}
		return rs, nil
	}
	write := func(changed []*delivery.Record) (int, error) {
		var n int64
		err := s.write(ctx, func(tx *sql.Tx) error {
			for _, r := range changed {
				// The target too: a sealed record keeps only its path in the clear.
				if _, err := tx.ExecContext(ctx, `UPDATE deliveries SET uri = ? WHERE id = ?`, r.URI, r.ID); err != nil {
					return fmt.Errorf("delivery/sqlite: reseal: %w", err)
				}
				res, err := tx.ExecContext(ctx, `UPDATE delivery_bodies SET headers = ?, body = ? WHERE seq = (SELECT seq FROM deliveries WHERE id = ?)`, delivery.EncodeHeaders(r.Headers), nonNil(r.Body), r.ID)
				if err != nil {
					return fmt.Errorf("delivery/sqlite: reseal: %w", err)
				}
				one, _ := res.RowsAffected() // 0: purged or pruned meanwhile
				n += one
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

// Close stops the writer after the writes already submitted, and closes the database.
// It is idempotent.
func (s *Store) Close() error {
	if !s.ops.Close() {
		return nil
	}
	<-s.done
	close(s.ckStop)
	<-s.ckDone
	for _, st := range s.stmts {
		_ = st.Close()
	}
	s.lmu.Lock() // a claim under way finishes first
	_ = s.claim.Close()
	_ = s.nextDue.Close()
	_ = s.claimc.Close()
	s.lmu.Unlock()
	err := errors.Join(s.ck.Close(), s.r.Close(), s.w.Close())
	return errors.Join(err, s.lock.unlock()) // once the file is closed: the next gateway may open it
}

var _ delivery.Store = (*Store)(nil)
