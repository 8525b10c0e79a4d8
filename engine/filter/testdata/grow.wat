;; grow: handle_request grows memory one page at a time until memory.grow
;; fails (-1), then traps, as a guest whose allocator ran out would.
;; Build: wat2wasm grow.wat -o grow.wasm
(module $grow
  (memory (export "memory") 1)
  (func (export "handle_request") (result i64)
    (loop $more
      (br_if $more (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
    unreachable))
