// Package httpsyntax holds the parts of HTTP's grammar (RFC 9110) the gateway checks names
// against: what a token is, and which header fields are hop-by-hop. The request parser, the
// forwarding proxy, the filter host and the policy's decision all check the same names, so
// they read them from here.
package httpsyntax

import "strings"

// IsToken reports whether s is a non-empty RFC 9110 token (section 5.6.2): a method or a
// header field name. Anything else could split a request written from it.
func IsToken[T ~string | ~[]byte](s T) bool {
	if len(s) == 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !tchar[s[i]] {
			return false
		}
	}
	return true
}

// tchar marks the bytes of a token. Read-only.
var tchar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range []byte("!#$%&'*+-.^_`|~") {
		t[c] = true
	}
	return t
}()

// IsFieldValue reports whether v can be a header field's value as the gateway writes one:
// no control character but horizontal tab, and no DEL (RFC 9110 section 5.5). CR, LF and NUL
// would split or end the line; the others a strict upstream refuses and a lax one may read
// as whitespace, so a value judged one way would be read another.
func IsFieldValue[T ~string | ~[]byte](v T) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// HopByHop are the connection-level header fields (RFC 9110 section 7.6.1), never passed on
// by a proxy; Connection comes first. Read-only.
var HopByHop = [...]string{
	"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// GatewayOwned are the request header fields only the gateway writes on a forwarded request,
// in place of any a client or a policy sent. The first four go on every one, in the order the
// server adds them: the client's address, host and scheme, and the request's id. The last two
// go on a queued route's deliveries only (the delivery's id and attempt), and are removed from
// every other: an upstream told to dedupe on the delivery id must not get one a client chose.
// Read-only.
var GatewayOwned = [...]string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Request-Id", "Hookwall-Delivery-Id", "Hookwall-Attempt"}

// IsHopByHop reports whether name (any case) is one of HopByHop.
func IsHopByHop(name string) bool {
	for _, h := range HopByHop {
		if strings.EqualFold(h, name) {
			return true
		}
	}
	return false
}

// IsHost reports whether v can be a Host field's value, uri-host[:port]: the characters of
// a reg-name, an IPv4 address or an IP literal in brackets, and a port (RFC 3986 section
// 3.2.2), so no userinfo ("@"), path, query or space. Empty is taken: an HTTP/1.0 request
// may send it so.
func IsHost[T ~string | ~[]byte](v T) bool {
	for i := 0; i < len(v); i++ {
		if !hostChar[v[i]] {
			return false
		}
	}
	return true
}

var hostChar = func() (t [256]bool) {
	t = tchar
	for _, c := range []byte("#^`|") { // a token's, no host's
		t[c] = false
	}
	for _, c := range []byte("(),;=:[]") { // sub-delims, the port's colon, an IP literal's brackets
		t[c] = true
	}
	return t
}()
