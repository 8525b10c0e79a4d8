;; setxff: a filter that writes X-Forwarded-For (6.6.6.6). The forwarded list must stay the
;; one the policy's remote_ip was read from: a trusted proxy's as received, then the peer.
;; Used by TestFilterCannotForgeTheForwardedClient.
;; Build: wat2wasm setxff.wat -o setxff.wasm
(module $setxff
  (import "http_handler" "set_header_value" (func $set (param i32 i32 i32 i32 i32)))
  (memory (export "memory") 1 1)
  (data (i32.const 0)  "X-Forwarded-For")
  (data (i32.const 32) "6.6.6.6")
  (func (export "handle_request") (result i64)
    (call $set (i32.const 0) (i32.const 0) (i32.const 15) (i32.const 32) (i32.const 7))
    (i64.const 1))
  (func (export "handle_response") (param i32 i32)))
