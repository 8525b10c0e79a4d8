;; respbody: handle_response replaces the response body with "replaced" and
;; appends "!" (the first write of a phase replaces, later ones append).
;; When the first config byte is 1, handle_request enables buffer_response
;; first, for this request only; otherwise the write after next must trap.
;; Build: wat2wasm respbody.wat -o respbody.wasm
(module $respbody
  (import "http_handler" "get_config" (func $get_config (param i32 i32) (result i32)))
  (import "http_handler" "enable_features" (func $enable_features (param i32) (result i32)))
  (import "http_handler" "write_body" (func $write_body (param i32 i32 i32)))
  (memory (export "memory") 1 1)
  (data (i32.const 0) "replaced!")
  (func (export "handle_request") (result i64)
    (drop (call $get_config (i32.const 1024) (i32.const 1)))
    (if (i32.eq (i32.load8_u (i32.const 1024)) (i32.const 1))
      (then
        ;; buffer_response must be granted
        (if (i32.eqz (i32.and (call $enable_features (i32.const 2)) (i32.const 2)))
          (then unreachable))))
    (i64.const 1))
  (func (export "handle_response") (param $req_ctx i32) (param $is_error i32)
    (call $write_body (i32.const 1) (i32.const 0) (i32.const 8))
    (call $write_body (i32.const 1) (i32.const 8) (i32.const 1))))
