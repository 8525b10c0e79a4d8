// Package filter runs user-compiled WebAssembly filters for the gateway: an
// http-wasm handler host (https://http-wasm.io/http-handler-abi/) on wazero,
// written for fasthttp, plus the optional "hookwall" host module.
//
// # Contract
//
// A [Host] owns the wazero runtimes and one compilation cache (on disk when a
// directory is given). Filters loaded from the same module bytes into the
// same runtime share one compiled module, and the Host keeps the 8 most
// recently loaded ones after their Filters close, so reloading an unchanged
// or recent module neither compiles nor decodes it. [Host.Load] compiles a
// guest once, checks its exports,
// imports and memory, instantiates one instance at once (a bad module fails at
// load, never at the first request) and pre-warms a bounded pool of
// instances. A [Filter] is immutable after Load and safe for concurrent use.
//
// One request uses one [Instance] from [Filter.Acquire] to [Instance.Release]:
//
//	inst, err := f.Acquire(ctx)            // *Error{Kind: "pool"} past the bound
//	next, err := inst.HandleRequest(ctx, ex)
//	if next { /* forward ex.Req; MergeResponse(ex.Resp, upstream) */ err = inst.HandleResponse(ctx, ex, upstreamFailed) }
//	inst.Release()                         // exactly once; the instance is gone after it
//
// An Instance is not goroutine-safe. Calls that fail return an [*Error] whose
// Kind is "trap", "timeout", "oom", "abi" or "pool"; the instance that failed
// is closed on Release and never pooled again, but for a "timeout" returned
// because the caller's context had ended before the call began, which is not
// the guest's doing and leaves the instance usable. Error strings may contain a
// wasm stack trace: log them, never send them to a client.
//
// # Sandbox
//
// Guests get wasi_snapshot_preview1 with no filesystem, no environment, no
// arguments and no sockets; crypto/rand is the random source; wall and
// monotonic clocks are real; sleeping returns at once. Guest stdout and
// stderr go to 4 KiB buffers per instance that are logged (Debug and Warn)
// after each call. Guest log output (log calls, stdout and stderr together)
// is capped per call (16 KiB) and per filter per second (256 KiB): a guest
// that logs in a loop costs the log no more; what is dropped is counted in
// Stats().LogDropped. Linear memory is capped by [Spec.Memory], and the guest's tables,
// which wazero keeps in host memory (8 bytes an entry) with no limit of its own, count
// against it: Load refuses a module whose tables could hold more entries than Spec.Memory
// has room for at 8 bytes each (their declared minimums, or a maximum, or no maximum, of a
// table its code grows with table.grow), so an instance takes at most twice its cap.
// The call stack, which wazero keeps in host memory and never shrinks, is let go after
// any call long enough to have grown it (a fresh function handle replaces the old). Every call runs
// under a deadline ([Spec.Timeout]) enforced by wazero's
// WithCloseOnContextDone, unless the filter opts out with [NoDeadline]. A
// guest that provably ends every call within a bound of instructions (no loop,
// no recursion, no indirect call, no memory.grow or bulk memory instruction,
// imports from http_handler and hookwall only) is compiled without wazero's
// interrupts, which cost a goroutine per call: its deadline is checked by every
// host function instead, so a call overruns it by at most its bounded
// instructions and the host call under way.
//
// # ABI notes
//
//   - Values are written with the (buf, buf_limit) → len contract: when the
//     value is longer than buf_limit nothing is written and the full length is
//     returned so the guest can retry.
//   - Every guest pointer and length is checked against guest memory. A bad
//     one, an unknown header or body kind, an invalid method, URI, header name
//     or value (anything that could smuggle a second request or header), or a
//     call outside its phase traps the guest (Kind "abi"); the host goes on.
//   - fasthttp buffers whole bodies, so buffer_request and buffer_response are
//     always available, but only when enabled before next: after it
//     enable_features grants nothing new. Trailers are not supported: enable_features never
//     reports them, trailer names and values are empty, and setting one traps,
//     as the ABI asks of hosts without trailers.
//   - The "hookwall" module adds set_label(key, key_len, value, value_len),
//     which traps after next (labels are for the policy, which has decided
//     by then), and get_route(buf, buf_limit) -> len; see README.md.
package filter
