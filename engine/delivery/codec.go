package delivery

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// EncodeHeaders packs headers for a store column: for each, the name's and the value's
// length (uvarint) and bytes. Backends share it so a record reads the same everywhere.
func EncodeHeaders(hs []Header) []byte {
	n := 0
	for _, h := range hs {
		n += len(h.Name) + len(h.Value) + 4
	}
	b := make([]byte, 0, n)
	for _, h := range hs {
		b = binary.AppendUvarint(b, uint64(len(h.Name)))
		b = append(b, h.Name...)
		b = binary.AppendUvarint(b, uint64(len(h.Value)))
		b = append(b, h.Value...)
	}
	return b
}

// ErrCorrupt: a delivery's stored row does not read: its headers do not decode, or a column
// does not scan into its type (the row was damaged, or changed by something other than the
// gateway). A claim does not fail on such a row: it returns
// the delivery with Record.Unreadable set, and it is made dead, never attempted.
var ErrCorrupt = errors.New("the stored row is damaged")

var errBadHeaders = fmt.Errorf("delivery: %w", ErrCorrupt)

// DecodeHeaders is EncodeHeaders' inverse. The names and values share one string, a copy
// of b: two allocations for the headers of a record, not one per name and value.
func DecodeHeaders(b []byte) ([]Header, error) {
	// next returns the offsets of the field at off and the offset after it.
	next := func(off int) (start, end int, ok bool) {
		l, n := binary.Uvarint(b[off:])
		if n <= 0 || uint64(len(b)-off-n) < l {
			return 0, 0, false
		}
		start = off + n
		return start, start + int(l), true
	}
	count := 0
	for off := 0; off < len(b); count++ {
		_, end, ok := next(off)
		if ok {
			_, off, ok = next(end)
		}
		if !ok {
			return nil, errBadHeaders
		}
	}
	if count == 0 {
		return nil, nil
	}
	text, hs := string(b), make([]Header, count)
	for i, off := 0, 0; i < count; i++ {
		ns, ne, _ := next(off)
		vs, ve, _ := next(ne)
		hs[i], off = Header{Name: text[ns:ne], Value: text[vs:ve]}, ve
	}
	return hs, nil
}

// FilterArgs are q's filters as SQL arguments, in this order: the route and the state
// ("" matches any), then Since and Until in Unix nanoseconds (an unset bound is open: the
// int64 extremes). The stores' WHERE clauses take them as their first four parameters.
func (q Query) FilterArgs() []any {
	until := int64(math.MaxInt64)
	if !q.Until.IsZero() {
		until = q.Until.UnixNano()
	}
	since := int64(math.MinInt64)
	if !q.Since.IsZero() {
		since = q.Since.UnixNano()
	}
	return []any{q.Route, string(q.State), since, until}
}

// ScanRecord reads a record from a row of the stores' columns, in this order: id, route,
// dest, decision_id, received_at, method, uri, headers (EncodeHeaders), body, state,
// attempts, base, next_at, updated_at, last_status, last_error; times in Unix nanoseconds.
// scan is the driver's Scan. When the headers do not decode, or a column does not scan into
// its type (a damaged row, or one changed in the store) while the row's id still reads as
// text, the record is returned too (its id, route and destination at least), with an error
// that errors.Is ErrCorrupt: a claim keeps it as Record.Unreadable and goes on (see
// MarkUnreadable); another read fails on it. Any other error is returned as it is.
func ScanRecord(scan func(dest ...any) error) (*Record, error) {
	var r Record
	var recv, next, upd, dest, attempts, base, status int64
	var headers []byte
	var state string
	if err := scan(&r.ID, &r.Route, &dest, &r.DecisionID, &recv, &r.Method, &r.URI, &headers, &r.Body, &state,
		&attempts, &base, &next, &upd, &status, &r.LastError); err != nil {
		return scanLoose(scan, err)
	}
	hs, herr := DecodeHeaders(headers)
	r.Headers, r.State = hs, State(state)
	r.Dest, r.Attempts, r.Base, r.LastStatus = int(dest), int(attempts), int(base), int(status)
	r.ReceivedAt, r.NextAt, r.UpdatedAt = time.Unix(0, recv), time.Unix(0, next), time.Unix(0, upd)
	if herr != nil {
		return &r, fmt.Errorf("delivery: %s: %w (its headers do not decode): changed in the store or damaged, the request it holds is lost; it is never delivered: purge it", r.ID, ErrCorrupt)
	}
	return &r, nil
}

// scanLoose reads the row ScanRecord could not scan (err) again into untyped values: when its
// id reads as text, the record of its id, route and destination is returned with an error
// that errors.Is ErrCorrupt; otherwise err. A scan that cannot be repeated (a single-row
// query) returns err.
func scanLoose(scan func(dest ...any) error, err error) (*Record, error) {
	var cols [16]any
	ptrs := make([]any, len(cols))
	for i := range cols {
		ptrs[i] = &cols[i]
	}
	if scan(ptrs...) != nil {
		return nil, err
	}
	text := func(v any) (string, bool) {
		switch v := v.(type) {
		case string:
			return v, true
		case []byte:
			return string(v), true
		}
		return "", false
	}
	id, ok := text(cols[0])
	if !ok || id == "" {
		return nil, err
	}
	r := &Record{ID: id, State: StatePending}
	r.Route, _ = text(cols[1])
	if d, ok := cols[2].(int64); ok {
		r.Dest = int(d)
	}
	return r, fmt.Errorf("delivery: %s: %w (a column does not read: %v): changed in the store or damaged, the request it holds is lost; it is never delivered: purge it", id, ErrCorrupt, err)
}

// MarkUnreadable is how a claim reads ScanRecord's answer: a record whose headers do not
// decode is kept, with its error as Unreadable, for the claim's caller to make
// dead; any other error fails the read.
func MarkUnreadable(r *Record, err error) (*Record, error) {
	if err != nil && r != nil && errors.Is(err, ErrCorrupt) {
		r.Unreadable = err
		return r, nil
	}
	return r, err
}
