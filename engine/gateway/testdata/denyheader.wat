;; denyheader: a request with an "x-deny" header is ended by the filter with 403 and the body
;; "denied by filter" (the policy never runs); a request with "x-trap" traps; any other request
;; gets the label verdict=ok and goes on. Used by the observability tests.
;; Build: wat2wasm denyheader.wat -o denyheader.wasm
(module $denyheader
  (import "http_handler" "get_header_values" (func $get_header_values
    (param $kind i32) (param $name i32) (param $name_len i32)
    (param $buf i32) (param $buf_limit i32) (result i64)))
  (import "http_handler" "set_status_code" (func $set_status_code (param i32)))
  (import "http_handler" "write_body" (func $write_body (param i32 i32 i32)))
  (import "hookwall" "set_label" (func $set_label
    (param $key i32) (param $key_len i32) (param $value i32) (param $value_len i32)))
  (memory (export "memory") 1 1)
  (data (i32.const 0) "x-deny")
  (data (i32.const 16) "denied by filter")
  (data (i32.const 48) "x-trap")
  (data (i32.const 64) "verdict")
  (data (i32.const 80) "ok")
  (func (export "handle_request") (result i64)
    (if (i64.ne (call $get_header_values (i32.const 0) (i32.const 48) (i32.const 6)
                                        (i32.const 1024) (i32.const 64))
                (i64.const 0))
      (then unreachable))
    (if (i64.ne (call $get_header_values (i32.const 0) (i32.const 0) (i32.const 6)
                                        (i32.const 1024) (i32.const 64))
                (i64.const 0))
      (then
        (call $set_status_code (i32.const 403))
        (call $write_body (i32.const 1) (i32.const 16) (i32.const 16))
        (return (i64.const 0))))
    (call $set_label (i32.const 64) (i32.const 7) (i32.const 80) (i32.const 2))
    (i64.const 1)))
