;; touchfail: sets the request header "x-touched: yes", then fails: with an "x-loop" header it
;; loops until the deadline stops it, otherwise it traps. With on_error = "skip" the request
;; must go on as it was before the filter, without x-touched. Used by the filter fault tests.
;; Build: wat2wasm touchfail.wat -o touchfail.wasm
(module $touchfail
  (import "http_handler" "get_header_values" (func $get_header_values
    (param $kind i32) (param $name i32) (param $name_len i32)
    (param $buf i32) (param $buf_limit i32) (result i64)))
  (import "http_handler" "set_header_value" (func $set_header_value
    (param $kind i32) (param $name i32) (param $name_len i32)
    (param $value i32) (param $value_len i32)))
  (memory (export "memory") 1 1)
  (data (i32.const 0) "x-touched")
  (data (i32.const 16) "yes")
  (data (i32.const 32) "x-loop")
  (func (export "handle_request") (result i64)
    (call $set_header_value (i32.const 0) (i32.const 0) (i32.const 9) (i32.const 16) (i32.const 3))
    (if (i64.ne (call $get_header_values (i32.const 0) (i32.const 32) (i32.const 6)
                                        (i32.const 1024) (i32.const 64))
                (i64.const 0))
      (then (loop $forever (br $forever))))
    unreachable))
