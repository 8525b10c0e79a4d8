// Package snapshot builds the immutable runtime view of one configuration: routes and their
// router, prepared policy queries, upstream clients, loaded filters and resolved secrets.
//
// A Snapshot never changes once Build returns. The gateway holds the live one in a Holder
// (an atomic pointer); each request Acquires it once, uses it throughout, and Releases it.
// A replaced snapshot is closed (its filter pools and idle upstream connections) only after
// its last in-flight request has released it.
package snapshot
