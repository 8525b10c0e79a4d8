// Package gateway wires a running hookwall: it loads the config, builds and swaps snapshots,
// and runs the public listener, the admin listener and the optional demo sink until its
// context ends, then drains in-flight requests.
//
// Reload builds a complete new snapshot off the hot path and swaps it in only when every
// part of it is valid; a failed reload leaves the live snapshot serving and is reported in the
// log and in Status. Listener addresses and limits ([server], [admin]) and the state backend
// need a restart: a reload that changes them is refused as a whole, with a message saying so,
// so the running gateway never serves a config it only half applied.
package gateway
