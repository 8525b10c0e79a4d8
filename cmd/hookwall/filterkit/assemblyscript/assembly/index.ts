// {{NAME}}: a hookwall filter in AssemblyScript (http-wasm ABI, no WASI).
//
// A request without an X-Tenant header is answered 403 here; any other goes on with the header
// X-Starter-Filter: assemblyscript added, and the label tenant=<value> for the policy.
//
// Build: npm install && npm run build   (asc with the stub runtime and no env.abort import)
// Test:  make test                      (hookwall filter test on requests/*.http)

@external("http_handler", "get_header_values")
declare function get_header_values(kind: u32, name: usize, nameLen: u32, buf: usize, bufLimit: u32): u64;
@external("http_handler", "set_header_value")
declare function set_header_value(kind: u32, name: usize, nameLen: u32, value: usize, valueLen: u32): void;
@external("http_handler", "set_status_code")
declare function set_status_code(code: u32): void;
@external("http_handler", "write_body")
declare function write_body(kind: u32, body: usize, len: u32): void;
@external("hookwall", "set_label")
declare function set_label(key: usize, keyLen: u32, value: usize, valueLen: u32): void;

const KIND_REQUEST: u32 = 0;
const KIND_RESPONSE: u32 = 1;
const BUF_LIMIT: u32 = 1024;
const values = new ArrayBuffer(BUF_LIMIT);

// utf8 passes a string to the host as UTF-8 bytes (AssemblyScript strings are UTF-16).
function utf8(s: string): ArrayBuffer {
  return String.UTF8.encode(s);
}

function setHeader(name: string, value: string): void {
  const n = utf8(name), v = utf8(value);
  set_header_value(KIND_REQUEST, changetype<usize>(n), n.byteLength, changetype<usize>(v), v.byteLength);
}

export function handle_request(): u64 {
  const name = utf8("x-tenant");
  const buf = changetype<usize>(values);
  // count << 32 | length of "value\0…"; nothing is written when it does not fit.
  const r = get_header_values(KIND_REQUEST, changetype<usize>(name), name.byteLength, buf, BUF_LIMIT);
  const count = <u32>(r >> 32), len = <u32>r;
  if (count == 0 || len > BUF_LIMIT || len <= 1) {
    set_status_code(403);
    const body = utf8("missing X-Tenant\n");
    write_body(KIND_RESPONSE, changetype<usize>(body), body.byteLength);
    return 0; // next=0: the filter answered
  }
  let n: u32 = 0;
  while (load<u8>(buf + n) != 0) n++; // the first value ends at its NUL
  setHeader("X-Starter-Filter", "assemblyscript");
  const key = utf8("tenant");
  set_label(changetype<usize>(key), key.byteLength, buf, n);
  return 1; // next=1: forward
}

export function handle_response(reqCtx: u32, isError: u32): void {}
