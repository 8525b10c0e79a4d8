package filter

import (
	"errors"
	"fmt"
	"strings"
)

// ErrorKind says how a filter call failed: an Error's Kind, and the kind label of
// hookwall_filter_errors_total.
type ErrorKind string

// Error kinds, the values of [Error.Kind].
const (
	// KindTrap: the guest trapped (unreachable, out-of-bounds access, a stack
	// overflow, a Go panic that exited the guest, a failed start function).
	KindTrap ErrorKind = "trap"
	// KindTimeout: the call passed its deadline, or the caller's context was
	// canceled, and wazero closed the instance.
	KindTimeout ErrorKind = "timeout"
	// KindOOM: the guest failed while its memory was at the filter's cap (a memory.grow
	// past it does not trap, the guest's reaction to its -1 does), but for a stack
	// overflow, which is KindTrap: the call stack is not in the guest's memory.
	KindOOM ErrorKind = "oom"
	// KindPool: no instance became free within the wait, or the filter is
	// closed. The server answers 503.
	KindPool ErrorKind = "pool"
	// KindABI: the guest broke the ABI (bad pointer or length, unknown
	// kind, invalid header or URI, a call outside its phase).
	KindABI ErrorKind = "abi"
)

var (
	// ErrPoolExhausted is the cause of a KindPool error when every instance
	// stayed busy for the whole wait.
	ErrPoolExhausted = errors.New("pool exhausted")
	// ErrClosed is the cause of a KindPool error when the filter or host is
	// closed.
	ErrClosed = errors.New("closed")
)

// Error is what the filter calls return. The server maps Kind to a status
// (pool → 503, others → 500 or skip per on_error) and logs Error(), which
// may hold a wasm stack trace; it never sends it to the client.
type Error struct {
	Filter string
	Kind   ErrorKind
	Err    error
}

// Error implements error.
func (e *Error) Error() string {
	return fmt.Sprintf("filter/%s: %s: %v", e.Filter, e.Kind, e.Err)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// abiError is what host functions panic with when the guest breaks the ABI.
// wazero turns the panic into a trap of the guest and wraps the value with
// %w, so the call's error unwraps to it and is classified as KindABI.
type abiError struct {
	fn  string
	msg string
}

func (e *abiError) Error() string { return e.fn + ": " + e.msg }

// abiPanic traps the calling guest.
func abiPanic(fn, msg string) {
	panic(&abiError{fn: fn, msg: msg})
}

// guestError is a failed start function (_initialize, _start) that said why on stderr.
type guestError struct {
	msg string // the guest's own message
	err error  // the trap or exit, for errors.Is/As
}

func (e *guestError) Error() string {
	first, _, _ := strings.Cut(e.err.Error(), "\n")
	return fmt.Sprintf("instantiate: the guest failed: %s (%s)", e.msg, first)
}

func (e *guestError) Unwrap() error { return e.err }

// maxGuestMessage bounds the guest's words quoted in an error.
const maxGuestMessage = 512

// guestMessage is what a guest that failed to start wrote on stderr, reduced to its message:
// a Go panic's "panic: …" line (without the goroutine dump that follows), else the last
// non-empty line. "" when it wrote nothing.
func guestMessage(stderr []byte) string {
	var last string
	for _, line := range strings.Split(string(stderr), "\n") {
		line = strings.TrimSpace(line)
		if msg, ok := strings.CutPrefix(line, "panic: "); ok {
			last = msg
			break
		}
		if line != "" {
			last = line
		}
	}
	// Go's panic of an error value adds " [recovered]" or a type; the message is what a user reads.
	last = strings.TrimSuffix(last, " [recovered]")
	if len(last) > maxGuestMessage {
		last = last[:maxGuestMessage] + "…"
	}
	return strings.ToValidUTF8(last, "?")
}
