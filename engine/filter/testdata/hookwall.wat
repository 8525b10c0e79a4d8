;; hookwall: uses the hookwall host module. handle_request copies the route
;; name into the label "route", sets the label "verdict" to "ok" and lets the
;; request through.
;; Build: wat2wasm hookwall.wat -o hookwall.wasm
(module $hookwall
  (import "hookwall" "get_route" (func $get_route
    (param $buf i32) (param $buf_limit i32) (result i32)))
  (import "hookwall" "set_label" (func $set_label
    (param $key i32) (param $key_len i32) (param $value i32) (param $value_len i32)))
  (memory (export "memory") 1 1)
  (data (i32.const 0) "route")
  (data (i32.const 8) "verdict")
  (data (i32.const 16) "ok")
  (func (export "handle_request") (result i64)
    (local $len i32)
    (local.set $len (call $get_route (i32.const 1024) (i32.const 256)))
    (if (i32.gt_u (local.get $len) (i32.const 256)) (then unreachable))
    (call $set_label (i32.const 0) (i32.const 5) (i32.const 1024) (local.get $len))
    (call $set_label (i32.const 8) (i32.const 7) (i32.const 16) (i32.const 2))
    (i64.const 1)))
