package delivery_test

import (
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/hookwall/hookwall/engine/delivery"
)

// Sends racing Close either reach the writer or fail with ErrClosed, never panic; the
// writer's range ends after every value sent before Close; Close closes once.
func TestInboxSendAndClose(t *testing.T) {
	b := delivery.NewInbox[int](4)
	got := make(chan int)
	go func() {
		n := 0
		for range b.C {
			n++
		}
		got <- n
	}()
	var wg sync.WaitGroup
	var mu sync.Mutex
	sent := 0
	for range 64 {
		wg.Go(func() {
			err := b.Send(1)
			if err != nil && !errors.Is(err, delivery.ErrClosed) {
				t.Errorf("Send: %v", err)
			}
			if err == nil {
				mu.Lock()
				sent++
				mu.Unlock()
			}
		})
	}
	if b.Closed() {
		t.Error("Closed before Close: true")
	}
	if !b.Close() || b.Close() {
		t.Error("Close: want true the first time, false after")
	}
	wg.Wait()
	if !b.Closed() {
		t.Error("Closed after Close: false")
	}
	if err := b.Send(1); !errors.Is(err, delivery.ErrClosed) {
		t.Errorf("Send after Close: %v, want ErrClosed", err)
	}
	if n := <-got; n != sent {
		t.Errorf("the writer got %d values, %d were sent", n, sent)
	}
}

// Take takes what is waiting, in order, up to its bound, and returns at once when nothing
// is (or C is closed) instead of waiting for more.
func TestInboxTake(t *testing.T) {
	b := delivery.NewInbox[int](8)
	for i := range 5 {
		if err := b.Send(i); err != nil {
			t.Fatal(err)
		}
	}
	got := b.Take([]int{-1}, 4)
	if want := []int{-1, 0, 1, 2}; !slices.Equal(got, want) {
		t.Fatalf("Take(bound 4) = %v, want %v", got, want)
	}
	got = b.Take(got[:0], 4)
	if want := []int{3, 4}; !slices.Equal(got, want) {
		t.Fatalf("Take of the rest = %v, want %v", got, want)
	}
	if got = b.Take(got[:0], 4); len(got) != 0 {
		t.Fatalf("Take of an empty inbox = %v, want nothing", got)
	}
	b.Close()
	if got = b.Take(nil, 4); len(got) != 0 {
		t.Fatalf("Take after Close = %v, want nothing", got)
	}
}
