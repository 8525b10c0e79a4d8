;; respwrite: a response-phase filter that replaces the response body (as a redactor of the
;; upstream's answer does): enable_features(buffer_response), then write_body(response).
;; Build: wat2wasm respwrite.wat -o respwrite.wasm
(module
  (import "http_handler" "enable_features" (func $feat (param i32) (result i32)))
  (import "http_handler" "write_body" (func $wb (param i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "REDACTED")
  (func (export "handle_request") (result i64)
    (drop (call $feat (i32.const 2)))
    (i64.const 1))
  (func (export "handle_response") (param $ctx i32) (param $isError i32)
    (call $wb (i32.const 1) (i32.const 0) (i32.const 8))))
