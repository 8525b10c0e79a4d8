;; badptr: breaks the ABI in one way per case. The case number is the first
;; config byte (get_config). Every case must trap the guest, never the host.
;; $bad is an offset past the single page of memory; $edge starts 8 bytes
;; before its end, so a 64-byte region crosses it.
;; Build: wat2wasm badptr.wat -o badptr.wasm
(module $badptr
  (import "http_handler" "get_config" (func $get_config (param i32 i32) (result i32)))
  (import "http_handler" "log" (func $log (param i32 i32 i32)))
  (import "http_handler" "get_method" (func $get_method (param i32 i32) (result i32)))
  (import "http_handler" "set_method" (func $set_method (param i32 i32)))
  (import "http_handler" "get_uri" (func $get_uri (param i32 i32) (result i32)))
  (import "http_handler" "set_uri" (func $set_uri (param i32 i32)))
  (import "http_handler" "get_protocol_version" (func $get_protocol_version (param i32 i32) (result i32)))
  (import "http_handler" "get_header_names" (func $get_header_names (param i32 i32 i32) (result i64)))
  (import "http_handler" "get_header_values" (func $get_header_values (param i32 i32 i32 i32 i32) (result i64)))
  (import "http_handler" "set_header_value" (func $set_header_value (param i32 i32 i32 i32 i32)))
  (import "http_handler" "add_header_value" (func $add_header_value (param i32 i32 i32 i32 i32)))
  (import "http_handler" "remove_header" (func $remove_header (param i32 i32 i32)))
  (import "http_handler" "read_body" (func $read_body (param i32 i32 i32) (result i64)))
  (import "http_handler" "write_body" (func $write_body (param i32 i32 i32)))
  (import "http_handler" "get_source_addr" (func $get_source_addr (param i32 i32) (result i32)))
  (import "http_handler" "set_status_code" (func $set_status_code (param i32)))
  (import "hookwall" "set_label" (func $set_label (param i32 i32 i32 i32)))
  (import "hookwall" "get_route" (func $get_route (param i32 i32) (result i32)))
  (memory (export "memory") 1 1)
  (global $bad i32 (i32.const -16))
  (global $edge i32 (i32.const 65528))
  (data (i32.const 0) "x")
  (data (i32.const 16) "GET /x HTTP/1.1\0d\0a")
  (data (i32.const 48) "a\0d\0ab")
  (data (i32.const 64) "http://evil/")
  (func (export "handle_request") (result i64)
    (local $case i32)
    (drop (call $get_config (i32.const 1024) (i32.const 1)))
    (local.set $case (i32.load8_u (i32.const 1024)))
    (block $done
      (block $c28 (block $c27 (block $c26 (block $c25 (block $c24 (block $c23
      (block $c22 (block $c21 (block $c20 (block $c19 (block $c18 (block $c17
      (block $c16 (block $c15 (block $c14 (block $c13 (block $c12 (block $c11
      (block $c10 (block $c9 (block $c8 (block $c7 (block $c6 (block $c5
      (block $c4 (block $c3 (block $c2 (block $c1 (block $c0
        (br_table $c0 $c1 $c2 $c3 $c4 $c5 $c6 $c7 $c8 $c9 $c10 $c11 $c12 $c13
                  $c14 $c15 $c16 $c17 $c18 $c19 $c20 $c21 $c22 $c23 $c24 $c25
                  $c26 $c27 $c28 $done (local.get $case)))
      (drop (call $get_config (global.get $bad) (i32.const 64))) (br $done))        ;; 0
      (call $log (i32.const 0) (global.get $bad) (i32.const 16)) (br $done))        ;; 1
      (drop (call $get_method (global.get $bad) (i32.const 64))) (br $done))        ;; 2
      (call $set_method (global.get $bad) (i32.const 4)) (br $done))                ;; 3
      (drop (call $get_uri (global.get $bad) (i32.const 64))) (br $done))           ;; 4
      (call $set_uri (global.get $bad) (i32.const 4)) (br $done))                   ;; 5
      (drop (call $get_protocol_version (global.get $bad) (i32.const 64))) (br $done)) ;; 6
      (drop (call $get_header_names (i32.const 0) (global.get $bad) (i32.const 64))) (br $done)) ;; 7
      (drop (call $get_header_values (i32.const 0) (global.get $bad) (i32.const 4)
                                     (i32.const 128) (i32.const 64))) (br $done))    ;; 8
      (drop (call $get_header_values (i32.const 0) (i32.const 0) (i32.const 1)
                                     (global.get $bad) (i32.const 64))) (br $done))  ;; 9
      (call $set_header_value (i32.const 0) (global.get $bad) (i32.const 4) (i32.const 0) (i32.const 1)) (br $done)) ;; 10
      (call $set_header_value (i32.const 0) (i32.const 0) (i32.const 1) (global.get $bad) (i32.const 4)) (br $done)) ;; 11
      (call $add_header_value (i32.const 0) (global.get $bad) (i32.const 4) (i32.const 0) (i32.const 1)) (br $done)) ;; 12
      (call $remove_header (i32.const 0) (global.get $bad) (i32.const 4)) (br $done)) ;; 13
      (drop (call $read_body (i32.const 0) (global.get $bad) (i32.const 64))) (br $done)) ;; 14
      (call $write_body (i32.const 0) (global.get $bad) (i32.const 4)) (br $done))  ;; 15
      (drop (call $get_source_addr (global.get $bad) (i32.const 64))) (br $done))   ;; 16
      (call $set_label (global.get $bad) (i32.const 4) (i32.const 0) (i32.const 1)) (br $done)) ;; 17
      (drop (call $get_route (global.get $bad) (i32.const 64))) (br $done))         ;; 18
      (call $log (i32.const 0) (i32.const -65536) (i32.const 131072)) (br $done))   ;; 19 offset+len wraps
      (drop (call $read_body (i32.const 0) (i32.const 0) (i32.const 0))) (br $done)) ;; 20 zero buf_limit
      (drop (call $get_header_names (i32.const 9) (i32.const 0) (i32.const 64))) (br $done)) ;; 21 unknown kind
      (call $set_status_code (i32.const 1000)) (br $done))                          ;; 22 bad status
      (call $set_method (i32.const 16) (i32.const 17)) (br $done))                  ;; 23 method with CRLF
      (call $set_header_value (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 48) (i32.const 4)) (br $done)) ;; 24 value with CRLF
      (call $set_header_value (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 1)) (br $done)) ;; 25 trailer
      (call $write_body (i32.const 5) (i32.const 0) (i32.const 1)) (br $done))      ;; 26 unknown body kind
      (call $set_uri (i32.const 64) (i32.const 12)) (br $done))                     ;; 27 absolute URI
      (drop (call $get_uri (global.get $edge) (i32.const 64))) (br $done))          ;; 28 region crosses the end
    (i64.const 1)))
