;; loop: handle_request never returns; the deadline must stop it.
;; Build: wat2wasm loop.wat -o loop.wasm
(module $loop
  (memory (export "memory") 1 1)
  (func (export "handle_request") (result i64)
    (loop $forever (br $forever))
    (i64.const 1)))
