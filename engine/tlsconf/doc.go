// Package tlsconf builds the TLS configurations of both sides of the gateway from the config:
// the public listener (HTTPS, optionally mTLS) and the client of an https upstream.
//
// Every configuration it returns has TLS 1.2 as its minimum version and Go's default cipher
// suites (no RC4, 3DES or static-RSA key exchange). Certificates and CA bundles are read once,
// when the function is called: the listener's files are read at start (changing them needs a
// restart) and an upstream's CA bundle at every snapshot build (a reload picks it up).
//
// With [server] client_ca set, the listener requires a client certificate that chains to one
// of the bundle's CAs; the handshake fails otherwise, before any request is read. The accepted
// certificate reaches the policy as input.request.tls.client_cert (subject, issuer, sha256).
//
// Errors name the config key ("server.tls_cert: …") and never contain key material. The
// returned *tls.Config values are not modified afterwards and are safe for concurrent use.
package tlsconf
