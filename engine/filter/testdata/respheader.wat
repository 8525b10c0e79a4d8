;; respheader: forwards every request, and in its response phase sets the response header
;; "X-Response-Phase: ran" (it asks for buffer_response first, which a response header set
;; after next needs). A guest whose response phase does something: the gateway keeps its
;; instance until the upstream answered and calls handle_response.
;; Build: wat2wasm respheader.wat -o respheader.wasm
(module $respheader
  (import "http_handler" "enable_features"
    (func $enable_features (param i32) (result i32)))
  (import "http_handler" "set_header_value"
    (func $set_header_value (param i32 i32 i32 i32 i32)))
  (memory (export "memory") 1 1)
  (data (i32.const 0) "X-Response-Phase") ;; 16 bytes
  (data (i32.const 16) "ran")              ;; 3 bytes
  (func (export "handle_request") (result i64)
    (drop (call $enable_features (i32.const 2))) ;; buffer_response
    (i64.const 1))
  (func (export "handle_response") (param $req_ctx i32) (param $is_error i32)
    (call $set_header_value (i32.const 1) (i32.const 0) (i32.const 16) (i32.const 16) (i32.const 3))))
