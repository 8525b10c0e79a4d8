;; redacttrap: a response redactor with a bug. handle_request asks for buffer_response;
;; handle_response marks the response "x-redacted: partial", then traps when the upstream's
;; answer carries an "x-trap" header, and otherwise replaces the body with "[redacted]" and
;; sets "x-redacted: done". A trap therefore leaves a half-changed, unredacted response.
;; Build: wat2wasm redacttrap.wat -o redacttrap.wasm
(module $redacttrap
  (import "http_handler" "enable_features" (func $enable_features (param i32) (result i32)))
  (import "http_handler" "get_header_values" (func $get_header_values
    (param $kind i32) (param $name i32) (param $name_len i32)
    (param $buf i32) (param $buf_limit i32) (result i64)))
  (import "http_handler" "set_header_value" (func $set_header_value
    (param $kind i32) (param $name i32) (param $name_len i32)
    (param $value i32) (param $value_len i32)))
  (import "http_handler" "write_body" (func $write_body (param i32 i32 i32)))
  (memory (export "memory") 1 1)
  (data (i32.const 0) "x-trap")
  (data (i32.const 16) "x-redacted")
  (data (i32.const 32) "partial")
  (data (i32.const 48) "done")
  (data (i32.const 64) "[redacted]")
  (func (export "handle_request") (result i64)
    (drop (call $enable_features (i32.const 2)))
    (i64.const 1))
  (func (export "handle_response") (param $req_ctx i32) (param $is_error i32)
    (call $set_header_value (i32.const 1) (i32.const 16) (i32.const 10) (i32.const 32) (i32.const 7))
    (if (i64.ne (call $get_header_values (i32.const 1) (i32.const 0) (i32.const 6)
                                        (i32.const 1024) (i32.const 64))
                (i64.const 0))
      (then unreachable))
    (call $write_body (i32.const 1) (i32.const 64) (i32.const 10))
    (call $set_header_value (i32.const 1) (i32.const 16) (i32.const 10) (i32.const 48) (i32.const 4))))
