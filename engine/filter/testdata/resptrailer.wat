;; resptrailer: denies with a response that carries a trailer, through the header kind
;; (set_header_value(response, "Trailer", "X-T"), then "X-T: v"); the ABI doc says trailers are
;; not supported and setting one traps.
;; Build: wat2wasm resptrailer.wat -o resptrailer.wasm
(module
  (import "http_handler" "set_header_value" (func $set (param i32 i32 i32 i32 i32)))
  (import "http_handler" "write_body" (func $wb (param i32 i32 i32)))
  (import "http_handler" "set_status_code" (func $st (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "Trailer")
  (data (i32.const 16) "X-T")
  (data (i32.const 32) "v")
  (data (i32.const 48) "denied")
  (func (export "handle_request") (result i64)
    (call $set (i32.const 1) (i32.const 0) (i32.const 7) (i32.const 16) (i32.const 3))
    (call $set (i32.const 1) (i32.const 16) (i32.const 3) (i32.const 32) (i32.const 1))
    (call $st (i32.const 403))
    (call $wb (i32.const 1) (i32.const 48) (i32.const 6))
    (i64.const 0)))
