package delivery

import "sync"

// Inbox is the channel to a store's single writer goroutine, guarded against Close: a Send
// after Close fails with ErrClosed instead of panicking on the closed channel, and Close
// closes the channel once, so the writer's range over C ends after what was sent before.
type Inbox[T any] struct {
	C chan T // the writer's end: it ranges over C

	mu     sync.RWMutex // guards closed against sends on C
	closed bool
}

// NewInbox returns an open Inbox whose channel buffers n values.
func NewInbox[T any](n int) *Inbox[T] { return &Inbox[T]{C: make(chan T, n)} }

// Send hands v to the writer, or returns ErrClosed once Close was called.
func (b *Inbox[T]) Send(v T) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return ErrClosed
	}
	b.C <- v
	return nil
}

// Take appends to batch the values already waiting in C, without waiting for more, until C
// is empty or closed or batch holds max values: a writer's group is what came together.
func (b *Inbox[T]) Take(batch []T, max int) []T {
	for len(batch) < max {
		select {
		case v, ok := <-b.C:
			if !ok {
				return batch
			}
			batch = append(batch, v)
		default:
			return batch
		}
	}
	return batch
}

// Close closes C, the first time; it reports whether this call closed it.
func (b *Inbox[T]) Close() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return false
	}
	b.closed = true
	close(b.C)
	return true
}

// Closed reports whether Close was called.
func (b *Inbox[T]) Closed() bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.closed
}
