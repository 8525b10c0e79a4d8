;; {{NAME}}: a hookwall filter in WebAssembly text (http-wasm ABI, no SDK, no WASI).
;;
;; A request without an X-Tenant header is answered 403 here; any other goes on with the
;; header X-Starter-Filter: wat added, and the label tenant=<value> for the policy.
;;
;; Build: wat2wasm filter.wat -o filter.wasm     (or: make build)
;; Test:  make test                              (hookwall filter test on requests/*.http)
(module
  (import "http_handler" "get_header_values"
    (func $get_header_values (param i32 i32 i32 i32 i32) (result i64)))
  (import "http_handler" "set_header_value"
    (func $set_header_value (param i32 i32 i32 i32 i32)))
  (import "http_handler" "set_status_code" (func $set_status_code (param i32)))
  (import "http_handler" "write_body" (func $write_body (param i32 i32 i32)))
  (import "hookwall" "set_label" (func $set_label (param i32 i32 i32 i32)))

  (memory (export "memory") 1)

  (data (i32.const 0) "x-tenant")             ;; 8 bytes
  (data (i32.const 16) "X-Starter-Filter")    ;; 16 bytes
  (data (i32.const 32) "wat")                 ;; 3 bytes
  (data (i32.const 40) "tenant")              ;; 6 bytes
  (data (i32.const 48) "missing X-Tenant\n")  ;; 17 bytes
  ;; [1024, 2048): buffer for the header's values, each NUL-terminated

  (func (export "handle_request") (result i64)
    (local $r i64) (local $count i32) (local $len i32)
    ;; count << 32 | length of "value\0…"; nothing is written when it does not fit.
    (local.set $r (call $get_header_values (i32.const 0) (i32.const 0) (i32.const 8) (i32.const 1024) (i32.const 1024)))
    (local.set $count (i32.wrap_i64 (i64.shr_u (local.get $r) (i64.const 32))))
    (local.set $len (i32.wrap_i64 (local.get $r)))
    (if (i32.or (i32.eqz (local.get $count))
                (i32.or (i32.gt_u (local.get $len) (i32.const 1024)) (i32.le_u (local.get $len) (i32.const 1))))
      (then
        (call $set_status_code (i32.const 403))
        (call $write_body (i32.const 1) (i32.const 48) (i32.const 17))
        (return (i64.const 0))))  ;; next=0: the filter answered
    ;; The first value ends at its NUL.
    (local.set $len (i32.const 0))
    (block $done
      (loop $scan
        (br_if $done (i32.eqz (i32.load8_u (i32.add (i32.const 1024) (local.get $len)))))
        (local.set $len (i32.add (local.get $len) (i32.const 1)))
        (br $scan)))
    (call $set_header_value (i32.const 0) (i32.const 16) (i32.const 16) (i32.const 32) (i32.const 3))
    (call $set_label (i32.const 40) (i32.const 6) (i32.const 1024) (local.get $len))
    (i64.const 1))  ;; next=1: forward

  (func (export "handle_response") (param $req_ctx i32) (param $is_error i32))
)
