// Package tlsconf builds the TLS configurations of both sides of the gateway from the config:
// the public listener (HTTPS, optionally mTLS) and the client of an https upstream.
//
// Every configuration it returns has TLS 1.2 as its minimum version and Go's default cipher
// suites (no RC4, 3DES or static-RSA key exchange). Certificates and CA bundles are read when
// the function is called: the listener's files at start and again at every reload
// (Listener.Prepare, then Update.Apply with the new snapshot: new handshakes use the new files,
// and session tickets issued before are not resumed), an upstream's CA bundle at every snapshot
// build.
//
// With [server] client_ca set, the listener requires a client certificate that chains to one
// of the bundle's CAs; the handshake fails otherwise, before any request is read. The accepted
// certificate reaches the policy as input.request.tls.client_cert (subject, issuer, sha256).
//
// Errors name the config key ("server.tls_cert: …") and never contain key material. The
// returned *tls.Config values are not modified afterwards and are safe for concurrent use.
package tlsconf
