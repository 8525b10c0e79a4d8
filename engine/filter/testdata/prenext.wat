;; prenext: before next, sets the response header "X-Guest: before", writes "guest;" to the
;; response body and sets the status 299, then forwards the request. It has no response
;; phase (prenextresp is the same with one): what it set before next is in the answer, the
;; upstream's answer merged into it.
;; Build: wat2wasm prenext.wat -o prenext.wasm
(module $prenext
  (import "http_handler" "set_header_value" (func $set_header_value (param i32 i32 i32 i32 i32)))
  (import "http_handler" "write_body" (func $write_body (param i32 i32 i32)))
  (import "http_handler" "set_status_code" (func $set_status_code (param i32)))
  (memory (export "memory") 1 1)
  (data (i32.const 0) "X-Guest")  ;; 7 bytes
  (data (i32.const 8) "before")   ;; 6 bytes
  (data (i32.const 16) "guest;")  ;; 6 bytes
  (func (export "handle_request") (result i64)
    (call $set_header_value (i32.const 1) (i32.const 0) (i32.const 7) (i32.const 8) (i32.const 6))
    (call $write_body (i32.const 1) (i32.const 16) (i32.const 6))
    (call $set_status_code (i32.const 299))
    (i64.const 1)))
