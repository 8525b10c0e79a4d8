;; guestframing: what a filter must not be able to send to the upstream. It makes the request
;; a GET without a body carrying "Content-Length: 40" (the upstream would read the next
;; request on the connection as its body), adds "X_Forwarded_For: 6.6.6.6" (read as
;; X-Forwarded-For by many servers) and sets Host to attacker.example (the gateway's
;; X-Forwarded-Host must stay the Host the route matched). Used by TestGuestCannotReframe.
;; Build: wat2wasm guestframing.wat -o guestframing.wasm
(module $guestframing
  (import "http_handler" "set_header_value" (func $set (param i32 i32 i32 i32 i32)))
  (import "http_handler" "add_header_value" (func $add (param i32 i32 i32 i32 i32)))
  (import "http_handler" "set_method" (func $setm (param i32 i32)))
  (import "http_handler" "write_body" (func $wb (param i32 i32 i32)))
  (memory (export "memory") 1 1)
  (data (i32.const 0)   "Content-Length")
  (data (i32.const 32)  "40")
  (data (i32.const 64)  "GET")
  (data (i32.const 96)  "X_Forwarded_For")
  (data (i32.const 128) "6.6.6.6")
  (data (i32.const 160) "Host")
  (data (i32.const 192) "attacker.example")
  (func (export "handle_request") (result i64)
    (call $wb (i32.const 0) (i32.const 0) (i32.const 0))
    (call $setm (i32.const 64) (i32.const 3))
    (call $set (i32.const 0) (i32.const 0) (i32.const 14) (i32.const 32) (i32.const 2))
    (call $add (i32.const 0) (i32.const 96) (i32.const 15) (i32.const 128) (i32.const 7))
    (call $set (i32.const 0) (i32.const 160) (i32.const 4) (i32.const 192) (i32.const 16))
    (i64.const 1)))
