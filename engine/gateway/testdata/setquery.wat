;; setquery: a filter that sets the target to /hooks/x?a=1;admin=true, a pair the policy
;; never saw to an upstream that splits the query on ";". Under path_normalization =
;; "reject" the gateway refuses it; under "forward_canonical" it forwards the ";" as %3B.
;; Used by TestFilterCannotForwardAnAmbiguousPath.
;; Build: wat2wasm setquery.wat -o setquery.wasm
(module $setquery
  (import "http_handler" "set_uri" (func $seturi (param i32 i32)))
  (memory (export "memory") 1 1)
  (data (i32.const 0) "/hooks/x?a=1;admin=true")
  (func (export "handle_request") (result i64)
    (call $seturi (i32.const 0) (i32.const 23))
    (i64.const 1))
  (func (export "handle_response") (param i32 i32)))
