;; tiny: the smallest useful guest. handle_request reads the method (one host
;; call, like a real filter) and lets the request through.
;; Build: wat2wasm tiny.wat -o tiny.wasm
(module $tiny
  (import "http_handler" "get_method" (func $get_method
    (param $buf i32) (param $buf_limit i32) (result i32)))
  (memory (export "memory") 1 1)
  (func (export "handle_request") (result i64)
    (drop (call $get_method (i32.const 0) (i32.const 16)))
    (i64.const 1))
  (func (export "handle_response") (param $req_ctx i32) (param $is_error i32)))
