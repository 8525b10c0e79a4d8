;; setpath: a filter that sets the request path to /hooks/x/..%2F..%2Fadmin, which an
;; upstream that decodes %2F before it splits the path reads as /admin. Under
;; path_normalization = "reject" the gateway refuses it as it refuses a client's.
;; Used by TestFilterCannotForwardAnAmbiguousPath.
;; Build: wat2wasm setpath.wat -o setpath.wasm
(module $setpath
  (import "http_handler" "set_uri" (func $seturi (param i32 i32)))
  (memory (export "memory") 1 1)
  (data (i32.const 0) "/hooks/x/..%2F..%2Fadmin")
  (func (export "handle_request") (result i64)
    (call $seturi (i32.const 0) (i32.const 24))
    (i64.const 1))
  (func (export "handle_response") (param i32 i32)))
