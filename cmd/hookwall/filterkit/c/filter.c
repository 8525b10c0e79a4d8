// {{NAME}}: a hookwall filter in C (http-wasm ABI, no libc, no WASI).
//
// A request without an X-Tenant header is answered 403 here; any other goes on with the header
// X-Starter-Filter: c added, and the label tenant=<value> for the policy.
//
// Build: clang --target=wasm32 -O2 -nostdlib -Wl,--no-entry -Wl,--export-dynamic -o filter.wasm filter.c
// Test:  make test   (hookwall filter test on requests/*.http)
#include <stdint.h>

#define IMPORT(mod, name) __attribute__((import_module(mod), import_name(name)))
#define EXPORT(name) __attribute__((export_name(name)))

IMPORT("http_handler", "get_header_values")
int64_t get_header_values(uint32_t kind, const char *name, uint32_t name_len, char *buf, uint32_t buf_limit);
IMPORT("http_handler", "set_header_value")
void set_header_value(uint32_t kind, const char *name, uint32_t name_len, const char *value, uint32_t value_len);
IMPORT("http_handler", "set_status_code")
void set_status_code(uint32_t code);
IMPORT("http_handler", "write_body")
void write_body(uint32_t kind, const char *body, uint32_t len);
IMPORT("hookwall", "set_label")
void set_label(const char *key, uint32_t key_len, const char *value, uint32_t value_len);

enum { KIND_REQUEST = 0, KIND_RESPONSE = 1 };

static char values[1024];

#define LIT(s) s, (uint32_t)(sizeof(s) - 1)

EXPORT("handle_request")
int64_t handle_request(void) {
  // count << 32 | length of "value\0…"; nothing is written when it does not fit.
  int64_t r = get_header_values(KIND_REQUEST, LIT("x-tenant"), values, sizeof values);
  uint32_t count = (uint32_t)(r >> 32), len = (uint32_t)r;
  if (count == 0 || len > sizeof values || len <= 1) {
    set_status_code(403);
    write_body(KIND_RESPONSE, LIT("missing X-Tenant\n"));
    return 0; // next=0: the filter answered
  }
  uint32_t n = 0;
  while (values[n] != 0) n++; // the first value ends at its NUL
  set_header_value(KIND_REQUEST, LIT("X-Starter-Filter"), LIT("c"));
  set_label(LIT("tenant"), values, n);
  return 1; // next=1: forward
}

EXPORT("handle_response")
void handle_response(uint32_t req_ctx, uint32_t is_error) {
  (void)req_ctx;
  (void)is_error;
}
