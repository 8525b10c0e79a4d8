;; fuzzguest: the guest of FuzzHostFunctions. It calls host functions with
;; whatever pointers, lengths and kinds the request body holds, so the fuzzer
;; drives the host's checks from inside a real guest.
;;
;; handle_request reads the request body (read_body, up to 8192 bytes) to
;; offset 1024 and runs it as a list of 21-byte records:
;;
;;   u8 selector, u32 a, u32 b, u32 c, u32 d, u32 e   (little-endian)
;;
;; A selector with bit 7 clear runs in handle_request, with bit 7 set in
;; handle_response (after next). (selector & 0x7f) % 24 picks what the record
;; does, with a..e as raw arguments:
;;
;;    0 enable_features(a)          12 add_header_value(a, b, c, d, e)
;;    1 get_config(a, b)            13 remove_header(a, b, c)
;;    2 log_enabled(a)              14 read_body(a, b, c)
;;    3 log(a, b, c)                15 write_body(a, b, c)
;;    4 get_method(a, b)            16 get_status_code()
;;    5 set_method(a, b)            17 set_status_code(a)
;;    6 get_uri(a, b)               18 get_source_addr(a, b)
;;    7 set_uri(a, b)               19 hookwall.set_label(a, b, c, d)
;;    8 get_protocol_version(a, b)  20 hookwall.get_route(a, b)
;;    9 get_header_names(a, b, c)   21 return b<<32 | a from handle_request
;;   10 get_header_values(a..e)        (low half 0: the guest ends the request)
;;   11 set_header_value(a..e)      22 i32.store at a the value b
;;                                  23 memory.grow(a)
;;
;; A trailing partial record is ignored. handle_request returns 1 (next)
;; unless a record 21 says otherwise. handle_response walks the same records
;; (as guest memory holds them by then) and runs its own.
;;
;; Memory is 1 page, growable to 2; the records overwrite themselves when a
;; call writes into them, which is deterministic. Offsets 0-127 hold strings
;; for the fuzzer to point at:
;;   0 "x-fuzz"  8 "ok"  16 "POST"  24 "/fuzz?q=1"  40 "content-length"
;;   56 "transfer-encoding"  80 "chunked"  88 "host"  96 "a\r\nb"  104 "5"
;;
;; Build: wat2wasm fuzzguest.wat -o fuzzguest.wasm
(module $fuzzguest
  (import "http_handler" "enable_features" (func $enable_features (param i32) (result i32)))
  (import "http_handler" "get_config" (func $get_config (param i32 i32) (result i32)))
  (import "http_handler" "log_enabled" (func $log_enabled (param i32) (result i32)))
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
  (import "http_handler" "get_status_code" (func $get_status_code (result i32)))
  (import "http_handler" "set_status_code" (func $set_status_code (param i32)))
  (import "http_handler" "get_source_addr" (func $get_source_addr (param i32 i32) (result i32)))
  (import "hookwall" "set_label" (func $set_label (param i32 i32 i32 i32)))
  (import "hookwall" "get_route" (func $get_route (param i32 i32) (result i32)))
  (memory (export "memory") 1 2)
  (data (i32.const 0) "x-fuzz")
  (data (i32.const 8) "ok")
  (data (i32.const 16) "POST")
  (data (i32.const 24) "/fuzz?q=1")
  (data (i32.const 40) "content-length")
  (data (i32.const 56) "transfer-encoding")
  (data (i32.const 80) "chunked")
  (data (i32.const 88) "host")
  (data (i32.const 96) "a\0d\0ab")
  (data (i32.const 104) "5")

  (global $records i32 (i32.const 1024))
  (global $limit i32 (i32.const 8192))
  (global $len (mut i32) (i32.const 0))
  (global $result (mut i64) (i64.const 1))

  (func (export "handle_request") (result i64)
    (local $r i64)
    (local $n i32)
    (global.set $result (i64.const 1))
    (global.set $len (i32.const 0))
    ;; Read the body until end of body or the buffer is full.
    (block $read
      (loop $more
        (br_if $read (i32.ge_u (global.get $len) (global.get $limit)))
        (local.set $r (call $read_body (i32.const 0)
          (i32.add (global.get $records) (global.get $len))
          (i32.sub (global.get $limit) (global.get $len))))
        (local.set $n (i32.wrap_i64 (local.get $r)))
        (global.set $len (i32.add (global.get $len) (local.get $n)))
        (br_if $read (i64.ne (i64.shr_u (local.get $r) (i64.const 32)) (i64.const 0)))
        (br_if $more (i32.ne (local.get $n) (i32.const 0)))))
    (call $run (i32.const 0))
    (global.get $result))

  (func (export "handle_response") (param $req_ctx i32) (param $is_error i32)
    (call $run (i32.const 1)))

  (func $run (param $phase i32)
    (local $p i32)
    (local $sel i32)
    (local $end i32)
    (local $a i32) (local $b i32) (local $c i32) (local $d i32) (local $e i32)
    (local.set $p (global.get $records))
    (local.set $end (i32.add (global.get $records) (global.get $len)))
    (block $done
      (loop $next
        (br_if $done (i32.gt_u (i32.add (local.get $p) (i32.const 21)) (local.get $end)))
        (local.set $sel (i32.load8_u (local.get $p)))
        (local.set $a (i32.load offset=1 align=1 (local.get $p)))
        (local.set $b (i32.load offset=5 align=1 (local.get $p)))
        (local.set $c (i32.load offset=9 align=1 (local.get $p)))
        (local.set $d (i32.load offset=13 align=1 (local.get $p)))
        (local.set $e (i32.load offset=17 align=1 (local.get $p)))
        (block $out
          (br_if $out (i32.ne (i32.shr_u (local.get $sel) (i32.const 7)) (local.get $phase)))
          (block $s23 (block $s22 (block $s21 (block $s20 (block $s19 (block $s18
          (block $s17 (block $s16 (block $s15 (block $s14 (block $s13 (block $s12
          (block $s11 (block $s10 (block $s9 (block $s8 (block $s7 (block $s6
          (block $s5 (block $s4 (block $s3 (block $s2 (block $s1 (block $s0
            (br_table $s0 $s1 $s2 $s3 $s4 $s5 $s6 $s7 $s8 $s9 $s10 $s11 $s12
                      $s13 $s14 $s15 $s16 $s17 $s18 $s19 $s20 $s21 $s22 $s23 $out
              (i32.rem_u (i32.and (local.get $sel) (i32.const 0x7f)) (i32.const 24))))
          (drop (call $enable_features (local.get $a))) (br $out))
          (drop (call $get_config (local.get $a) (local.get $b))) (br $out))
          (drop (call $log_enabled (local.get $a))) (br $out))
          (call $log (local.get $a) (local.get $b) (local.get $c)) (br $out))
          (drop (call $get_method (local.get $a) (local.get $b))) (br $out))
          (call $set_method (local.get $a) (local.get $b)) (br $out))
          (drop (call $get_uri (local.get $a) (local.get $b))) (br $out))
          (call $set_uri (local.get $a) (local.get $b)) (br $out))
          (drop (call $get_protocol_version (local.get $a) (local.get $b))) (br $out))
          (drop (call $get_header_names (local.get $a) (local.get $b) (local.get $c))) (br $out))
          (drop (call $get_header_values (local.get $a) (local.get $b) (local.get $c)
                                         (local.get $d) (local.get $e))) (br $out))
          (call $set_header_value (local.get $a) (local.get $b) (local.get $c)
                                  (local.get $d) (local.get $e)) (br $out))
          (call $add_header_value (local.get $a) (local.get $b) (local.get $c)
                                  (local.get $d) (local.get $e)) (br $out))
          (call $remove_header (local.get $a) (local.get $b) (local.get $c)) (br $out))
          (drop (call $read_body (local.get $a) (local.get $b) (local.get $c))) (br $out))
          (call $write_body (local.get $a) (local.get $b) (local.get $c)) (br $out))
          (drop (call $get_status_code)) (br $out))
          (call $set_status_code (local.get $a)) (br $out))
          (drop (call $get_source_addr (local.get $a) (local.get $b))) (br $out))
          (call $set_label (local.get $a) (local.get $b) (local.get $c) (local.get $d)) (br $out))
          (drop (call $get_route (local.get $a) (local.get $b))) (br $out))
          (global.set $result (i64.or (i64.shl (i64.extend_i32_u (local.get $b)) (i64.const 32))
                                      (i64.extend_i32_u (local.get $a)))) (br $out))
          (i32.store align=1 (local.get $a) (local.get $b)) (br $out))
          (drop (memory.grow (local.get $a))))
        (local.set $p (i32.add (local.get $p) (i32.const 21)))
        (br $next)))))
