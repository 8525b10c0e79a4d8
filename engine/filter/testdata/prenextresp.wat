;; prenextresp: prenext with a response phase. It asks for buffer_response, sets what
;; prenext sets before next, and its response phase sets "X-Response-Phase: ran": a guest
;; whose instance the gateway keeps across the upstream call.
;; Build: wat2wasm prenextresp.wat -o prenextresp.wasm
(module $prenextresp
  (import "http_handler" "enable_features" (func $enable_features (param i32) (result i32)))
  (import "http_handler" "set_header_value" (func $set_header_value (param i32 i32 i32 i32 i32)))
  (import "http_handler" "write_body" (func $write_body (param i32 i32 i32)))
  (import "http_handler" "set_status_code" (func $set_status_code (param i32)))
  (memory (export "memory") 1 1)
  (data (i32.const 0) "X-Guest")           ;; 7 bytes
  (data (i32.const 8) "before")            ;; 6 bytes
  (data (i32.const 16) "guest;")           ;; 6 bytes
  (data (i32.const 32) "X-Response-Phase") ;; 16 bytes
  (data (i32.const 48) "ran")              ;; 3 bytes
  (func (export "handle_request") (result i64)
    (drop (call $enable_features (i32.const 2))) ;; buffer_response
    (call $set_header_value (i32.const 1) (i32.const 0) (i32.const 7) (i32.const 8) (i32.const 6))
    (call $write_body (i32.const 1) (i32.const 16) (i32.const 6))
    (call $set_status_code (i32.const 299))
    (i64.const 1))
  (func (export "handle_response") (param $req_ctx i32) (param $is_error i32)
    (call $set_header_value (i32.const 1) (i32.const 32) (i32.const 16) (i32.const 48) (i32.const 3))))
