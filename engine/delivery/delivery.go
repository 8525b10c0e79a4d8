// Package delivery keeps the webhooks of queued routes: a request the gateway answered with
// 202 is a Record in a durable Store, and a Dispatcher delivers it to the route's upstream
// at least once, retrying on a schedule, until it is delivered or dead.
//
// The Store is the durability boundary: Enqueue returns only once the record is on disk
// (or committed by the database), so nothing is acknowledged that a crash could lose.
// Every delivery has one owner at a time: a worker claims it with a lease, and a lease
// that expires (its gateway died) lets another worker take it over. A Store is safe for
// concurrent use. Backends live in subpackages (sqlite, postgres); deliverytest is the
// conformance suite they all pass.
package delivery

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"time"
)

// State is where a delivery stands.
type State string

// States of a delivery.
const (
	StatePending   State = "pending"   // waiting for its next attempt (or in one)
	StateDelivered State = "delivered" // the upstream answered 2xx
	StateDead      State = "dead"      // a final failure, or the schedule ran out
)

// AttemptOutcome is what became of one attempt: the outcome label of
// hookwall_delivery_attempts_total.
type AttemptOutcome string

// AttemptOutcome values.
const (
	AttemptDelivered AttemptOutcome = "delivered" // the upstream answered 2xx
	AttemptDead      AttemptOutcome = "dead"      // a final failure
	AttemptRetry     AttemptOutcome = "retry"     // failed; tried again later
	AttemptLost      AttemptOutcome = "lost"      // the lease was lost: the attempt is not recorded
)

// Valid reports whether s is a known state.
func (s State) Valid() bool {
	return s == StatePending || s == StateDelivered || s == StateDead
}

// Header is one request header as it will be forwarded.
type Header struct{ Name, Value string }

// Record is one stored delivery: the request as it would have been forwarded, and where its
// delivery stands. Records a Store returns are the caller's.
type Record struct {
	ID    string
	Route string
	// Dest is where the record goes: 0 the route's upstream, else one of its destinations
	// by its DestinationID (its URL's, so a reload that removes or reorders destinations
	// sends no record to another one). A Dest below DestinationIDBase is the position
	// (1-based) an older hookwall stored. A fan-out request is one record per destination,
	// enqueued together.
	Dest       int
	DecisionID string // the decision-log id of the request that was queued
	ReceivedAt time.Time
	Method     string
	URI        string // the request target as forwarded (canonical path, query), without the upstream's path: each destination's is prefixed at delivery
	Headers    []Header
	Body       []byte

	State State
	// Attempts counts every attempt made, across replays; Base is its value when the
	// delivery was last (re)queued: the retry schedule restarts there.
	Attempts   int
	Base       int
	NextAt     time.Time
	UpdatedAt  time.Time
	LastStatus int
	LastError  string

	// Lease is set on a record a Claim returns: the end of the lease it took. An attempt
	// records its result with it (Result.Lease).
	Lease time.Time

	// Unreadable is set on a record a Claim returns whose stored row does not decode
	// (errors.Is ErrCorrupt; its Headers are nil): it is never attempted, but made dead with
	// this error by whoever claimed it (Sealed, the Dispatcher). Nil otherwise.
	Unreadable error
	// Held is set on a record a Sealed store's Claim returns still sealed, with a key its
	// keyring lacks (errors.As *MissingKeyError): another gateway of the fleet may hold the
	// key, or it may be put back, so the record is neither attempted nor made dead, but held
	// by whoever claimed it (the Dispatcher keeps its lease until it expires). Nil otherwise.
	Held error
}

// Attempt is one try at delivering.
type Attempt struct {
	N       int // 1 for the first attempt
	At      time.Time
	Status  int // 0 when no answer came
	Latency time.Duration
	Error   string
}

// Result is what a worker reports after an attempt: the attempt and the state it leads to
// (pending with NextAt for a retry).
type Result struct {
	Attempt Attempt
	State   State
	NextAt  time.Time
	// Lease is the lease the attempt was made under (Record.Lease as its claim returned
	// it): Finish records the attempt only while the delivery holds that very lease, so an
	// attempt that outlived its lease is not recorded over a newer claim's, even one of the
	// same owner. Zero: any lease of the owner.
	Lease time.Time
}

// Query selects deliveries. Zero fields match everything; Limit 0 means the store's default.
type Query struct {
	Route        string
	State        State
	Since, Until time.Time // on ReceivedAt: Since <= t < Until
	Limit        int
}

// Routes narrows a claim. Skip: destinations none of whose deliveries are claimed.
// Ordered: routes delivered one at a time in arrival order, to each destination: only the
// oldest pending delivery (by ReceivedAt, then ID) of a route and destination is
// claimable, and only when it is due and unleased, so a head that waits for a retry holds
// the rest back.
type Routes struct {
	Skip    []Destination
	Ordered []string
	// Busy: ids of deliveries the claimer still has in an attempt (their leases may have
	// expired while it is recorded). None is claimed, and their leases are left as they are,
	// so that the attempt's Finish still holds the lease it was made under.
	Busy []string
}

// DestinationIDBase is the least DestinationID. Smaller Dests (but 0, the upstream) are the
// positions in the route's destinations that records of older hookwall releases carry.
const DestinationIDBase = 1 << 30

// DestinationID identifies a route's destination by its configured URL: DestinationIDBase
// with the first 30 bits of the URL's SHA-256, so it fits the stores' 32-bit column as a
// positive number and never equals a position. Two URLs of one route may share an id only
// by a collision of those 30 bits (the gateway refuses such a config).
func DestinationID(url string) int {
	sum := sha256.Sum256([]byte(url))
	return DestinationIDBase | int(binary.BigEndian.Uint32(sum[:4])>>2)
}

// Destination is one destination of a route (Dest as in Record).
type Destination struct {
	Route string
	Dest  int
}

// Depth is how many deliveries of one route are in one state, and the oldest of them.
type Depth struct {
	Route  string
	State  State
	Count  int
	Oldest time.Time // ReceivedAt of the oldest
}

// Errors of a Store.
var (
	// ErrFull is Enqueue's answer when max_pending deliveries are pending.
	ErrFull = errors.New("delivery: store full (max_pending deliveries pending)")
	// ErrNotFound means no delivery has that id.
	ErrNotFound = errors.New("delivery: no such delivery")
	// ErrLeaseLost means the worker no longer holds the delivery: its lease expired and
	// another took it over, or it was released or purged. The attempt is not recorded.
	ErrLeaseLost = errors.New("delivery: lease lost")
	// ErrClosed means the store was closed.
	ErrClosed = errors.New("delivery: store closed")
)

// Store keeps deliveries durably. Implementations are safe for concurrent use.
type Store interface {
	// Enqueue stores rs as pending (each due at its NextAt), all or none, and returns once
	// they are durable. It fails with ErrFull when they would take the store past its
	// maxPending pending deliveries. The store may keep rs's headers and bodies (not the
	// records) and hand them to a claim: the caller does not change them afterwards.
	Enqueue(ctx context.Context, rs ...*Record) error
	// Claim leases up to limit pending deliveries due at now, unleased or with an expired
	// lease, to owner until now+lease (each record's Lease), oldest due first; routes
	// filters which (see Routes).
	Claim(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int, routes Routes) ([]*Record, error)
	// Finish records an attempt on a delivery owner holds (under the lease res.Lease, when
	// set) and moves it to res.State, releasing the lease; ErrLeaseLost when owner does
	// not hold it, or holds another lease on it.
	Finish(ctx context.Context, id, owner string, res Result) error
	// Release gives back the leases owner holds on ids, unchanged, due at once.
	Release(ctx context.Context, owner string, ids []string) error
	// Get returns one delivery with its attempts, oldest first.
	Get(ctx context.Context, id string) (*Record, []Attempt, error)
	// List returns the deliveries q selects, newest first, without headers and body.
	List(ctx context.Context, q Query) ([]*Record, error)
	// Replay queues the delivery again, due at now, its schedule restarted; ErrNotFound
	// when there is none.
	Replay(ctx context.Context, id string, now time.Time) error
	// ReplayMatching replays every delivery q selects that is not pending (Limit ignored),
	// and returns how many.
	ReplayMatching(ctx context.Context, q Query, now time.Time) (int, error)
	// Purge deletes a delivery and its attempts; ErrNotFound when there is none.
	Purge(ctx context.Context, id string) error
	// Depth counts deliveries by route and state.
	Depth(ctx context.Context) ([]Depth, error)
	// Prune deletes delivered deliveries last updated before delivered and dead ones
	// before dead, and returns how many.
	Prune(ctx context.Context, delivered, dead time.Time) (int, error)
	// Reseal walks every delivery in id order, in batches, with its headers and body as
	// stored, and stores the target, headers and body fn leaves in each record it reports
	// changed (nothing else of the record changes); it returns how many it stored. An error of fn
	// stops the walk; the batches before it are kept. It is how a Sealed store rekeys.
	Reseal(ctx context.Context, fn func(r *Record) (changed bool, err error)) (int, error)
	Close() error
}

// WalkReseal is a Store's Reseal: page returns the deliveries after an id in id order,
// with headers and body as stored (none: the walk is over), and write stores the target,
// headers and body of a batch's changed ones and returns how many it stored.
func WalkReseal(page func(after string) ([]*Record, error), write func(changed []*Record) (int, error), fn func(r *Record) (bool, error)) (int, error) {
	n := 0
	for after := ""; ; {
		rs, err := page(after)
		if err != nil || len(rs) == 0 {
			return n, err
		}
		after = rs[len(rs)-1].ID
		var changed []*Record
		for _, r := range rs {
			ok, err := fn(r)
			if err != nil {
				return n, err
			}
			if ok {
				changed = append(changed, r)
			}
		}
		if len(changed) == 0 {
			continue
		}
		k, err := write(changed)
		if err != nil {
			return n, err
		}
		n += k
	}
}

// NewID returns a new delivery id: 32 hex digits, the time in milliseconds (12) then 80
// random bits (20), as UUIDv7 orders them. Ids made later sort later, so a store's index
// on the id grows at its end instead of touching a random page for every insert (a page
// written to the log at each commit); the random bits keep ids unguessable.
func NewID() string {
	var raw [16]byte
	ms := uint64(time.Now().UnixMilli())
	for i := range 6 {
		raw[i] = byte(ms >> (40 - 8*i))
	}
	_, _ = rand.Read(raw[6:])
	return hex.EncodeToString(raw[:])
}
