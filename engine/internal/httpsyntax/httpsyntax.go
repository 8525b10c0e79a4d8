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

// HopByHop are the connection-level header fields (RFC 9110 section 7.6.1), never passed on
// by a proxy; Connection comes first. Read-only.
var HopByHop = [...]string{
	"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// IsHopByHop reports whether name (any case) is one of HopByHop.
func IsHopByHop(name string) bool {
	for _, h := range HopByHop {
		if strings.EqualFold(h, name) {
			return true
		}
	}
	return false
}
