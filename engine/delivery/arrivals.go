package delivery

import "sync/atomic"

// Arrivals is a gauge of the requests for queued routes that the server is processing and
// that have not yet submitted their enqueue: the writes on their way to the store. The
// server adds one as soon as it knows a request's route is queued and takes it away once,
// when the request submits its enqueue or ends any other way; a store's writer reads it to
// end a group-commit window as soon as nothing more is coming (sqlite.Options.Arrivals).
// The zero value is ready; a nil *Arrivals counts nothing and reads 0.
type Arrivals struct{ n atomic.Int64 }

// Begin counts one request on its way.
func (a *Arrivals) Begin() {
	if a != nil {
		a.n.Add(1)
	}
}

// End takes one request away: it submitted its enqueue or ended otherwise.
func (a *Arrivals) End() {
	if a != nil {
		a.n.Add(-1)
	}
}

// Coming returns how many requests are on their way.
func (a *Arrivals) Coming() int64 {
	if a == nil {
		return 0
	}
	return a.n.Load()
}
