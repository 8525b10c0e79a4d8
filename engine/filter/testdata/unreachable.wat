;; unreachable: traps when the request has an "x-trap" header, otherwise
;; counts its requests in a global, sets "x-count" on the request and lets it
;; through. The counter shows whether a fresh instance served the request.
;; Build: wat2wasm unreachable.wat -o unreachable.wasm
(module $unreachable
  (import "http_handler" "get_header_values" (func $get_header_values
    (param $kind i32) (param $name i32) (param $name_len i32)
    (param $buf i32) (param $buf_limit i32) (result i64)))
  (import "http_handler" "set_header_value" (func $set_header_value
    (param $kind i32) (param $name i32) (param $name_len i32)
    (param $value i32) (param $value_len i32)))
  (memory (export "memory") 1 1)
  (data (i32.const 0) "x-trap")
  (data (i32.const 16) "x-count")
  (global $count (mut i32) (i32.const 0))
  (func (export "handle_request") (result i64)
    (if (i64.ne (call $get_header_values (i32.const 0) (i32.const 0) (i32.const 6)
                                        (i32.const 1024) (i32.const 64))
                (i64.const 0))
      (then unreachable))
    (global.set $count (i32.add (global.get $count) (i32.const 1)))
    ;; one decimal digit is enough for the tests: '0' + count % 10
    (i32.store8 (i32.const 32) (i32.add (i32.const 48) (i32.rem_u (global.get $count) (i32.const 10))))
    (call $set_header_value (i32.const 0) (i32.const 16) (i32.const 7) (i32.const 32) (i32.const 1))
    (i64.const 1))
  (func (export "handle_response") (param $req_ctx i32) (param $is_error i32)))
