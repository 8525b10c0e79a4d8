;; labeltrap: reports the label verified=yes to the policy, then traps: a filter that fails
;; half-way, after it said something of the request.
;; Build: wat2wasm labeltrap.wat -o labeltrap.wasm
(module $labeltrap
  (import "hookwall" "set_label" (func $set_label (param i32 i32 i32 i32)))
  (memory (export "memory") 1 1)
  (data (i32.const 0) "verified")
  (data (i32.const 16) "yes")
  (func (export "handle_request") (result i64)
    (call $set_label (i32.const 0) (i32.const 8) (i32.const 16) (i32.const 3))
    unreachable))
