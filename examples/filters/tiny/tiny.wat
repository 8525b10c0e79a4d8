;; tiny: a hookwall filter in hand-written WebAssembly text, to show that
;; any language that can produce a wasm module works: no SDK, no WASI.
;;
;; On every request it adds the request header `X-Hookwall-Route: <route>`
;; (the route name from the hookwall host module) to what is forwarded, and
;; sets the label tiny=seen for the policy.
;;
;; Build (wabt): wat2wasm tiny.wat -o tiny.wasm
;; The committed tiny.wasm is that output; examples/filters tests check it
;; is current when wat2wasm is installed.
(module
  (import "http_handler" "set_header_value"
    (func $set_header_value (param $kind i32) (param $name i32) (param $name_len i32)
                            (param $value i32) (param $value_len i32)))
  (import "hookwall" "get_route"
    (func $get_route (param $buf i32) (param $buf_limit i32) (result i32)))
  (import "hookwall" "set_label"
    (func $set_label (param $key i32) (param $key_len i32) (param $value i32) (param $value_len i32)))

  (memory (export "memory") 1 1)

  (data (i32.const 0) "X-Hookwall-Route")  ;; 16 bytes
  (data (i32.const 16) "tiny")              ;; label key
  (data (i32.const 20) "seen")              ;; label value
  (data (i32.const 24) "?")                 ;; value when the route name is too long
  ;; [64, 320): buffer for the route name

  (func (export "handle_request") (result i64)
    (local $len i32)
    ;; get_route writes nothing when the name does not fit in 256 bytes.
    (local.set $len (call $get_route (i32.const 64) (i32.const 256)))
    (if (i32.gt_u (local.get $len) (i32.const 256))
      (then (call $set_header_value (i32.const 0) (i32.const 0) (i32.const 16) (i32.const 24) (i32.const 1)))
      (else (call $set_header_value (i32.const 0) (i32.const 0) (i32.const 16) (i32.const 64) (local.get $len))))
    (call $set_label (i32.const 16) (i32.const 4) (i32.const 20) (i32.const 4))
    (i64.const 1))  ;; next=1: forward the request

  (func (export "handle_response") (param $req_ctx i32) (param $is_error i32))
)
