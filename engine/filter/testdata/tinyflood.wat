;; tinyflood: adds a request header with a one-byte name and an empty value 1,048,576 times in
;; one call: 1 MiB of header bytes, but a header costs the host far more than its bytes (its
;; entry and a copy of its name), so the host counts each with an overhead and traps the
;; guest long before.
;; Build: wat2wasm tinyflood.wat -o tinyflood.wasm
(module $tinyflood
  (import "http_handler" "add_header_value" (func $add_header_value
    (param $kind i32) (param $name i32) (param $name_len i32)
    (param $value i32) (param $value_len i32)))
  (memory (export "memory") 1 1)
  (data (i32.const 0) "f")
  (func (export "handle_request") (result i64)
    (local $n i32)
    (loop $again
      (call $add_header_value (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 16) (i32.const 0))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $n) (i32.const 1048576))))
    (i64.const 1))
  (func (export "handle_response") (param i32 i32)))
