// Package snapshot builds the immutable runtime view of one configuration: routes and their
// router, prepared policy queries, upstream clients, loaded filters and resolved secrets.
//
// A Snapshot never changes once Build returns. The gateway holds the live one in a Holder
// (an atomic pointer); each request Acquires it once, uses it throughout, and Releases it.
// A replaced snapshot is closed (its filter pools and idle upstream connections) only after
// its last in-flight request has released it.
//
// Consecutive snapshots share what did not change: a filter whose module bytes, config,
// limits and on_error hash the same (no recompile, same pool), an upstream connection pool
// whose scheme, address, TLS server name, CA, timeout and max_response_body are the same
// (keep-alive connections survive a reload), and the [[oauth]] issuers whose settings are
// (their key sets and caches).
// A filter, an issuer or an upstream pool shared by several snapshots closes with the last of
// them to close, whatever their order: a request of an older snapshot may outlive a newer
// one (TestSharedFilterOutlivesANewerSnapshot).
package snapshot
