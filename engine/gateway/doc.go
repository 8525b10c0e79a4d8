// Package gateway wires a running hookwall: it loads the config, builds and swaps snapshots,
// and runs the public listener, the admin listener and the optional demo sink until its
// context ends, then drains in-flight requests.
//
// It is the one way into the engine for a program: New and Run serve; Check loads and
// compiles a configuration as New would, and its Evaluate dry-runs a captured request
// (ParseCapture) through the same pipeline. The parts only the gateway puts together (the
// listener and its request path, snapshots, the Rego input, capture parsing) live under
// engine/internal, so a tool cannot assemble a gateway of its own that decides differently.
//
// Reload builds a complete new snapshot off the hot path and swaps it in only when every
// part of it is valid; a failed reload leaves the live snapshot serving and is reported in the
// log and in Status. Listener addresses and limits ([server], [admin]), the state backend
// ([state]), the decision log ([log]), the traffic watcher ([watch]), the delivery store
// ([delivery]), the demo sink ([demo]) and a gateway's first queued route, when it started
// with none, need a restart:
// a reload that changes them is refused as a whole, with a message naming the keys, so the
// running gateway never serves a config it only half applied. The watcher lives as long as the gateway: its windows and blocks survive reloads.
//
// A reload is triggered by SIGHUP (cmd/hookwall), POST /-/reload (which answers the new
// revision, or 422 with the error), a file change, or a new OPA bundle. Reloads are serialised;
// each is counted in Status (Reloads, Failures) and logged with its trigger.
//
// File watch ([policies] watch, default true) watches directories, never files: the policy
// dir with every subdirectory (new ones included), and the directories of gateway.toml, the
// filter modules, the secret files and the bundle verification key. Editors' rename-over-write
// and Kubernetes' "..data" symlink swaps are seen. Events are debounced (100 ms, at most 1 s)
// into one reload. After every reload attempt the watches are re-targeted to the newest config
// that parsed, so a moved filter module is followed and nothing accumulates.
//
// With [policies] bundle_url the policies come from an OPA bundle instead of the dir. The
// gateway starts only once it has fetched a valid bundle; then it polls every poll_interval
// with If-None-Match, and a 304 costs nothing. A bundle that fails compilation or, with
// test_on_reload, its *_test.rego tests is refused and the previous one keeps serving; it is
// not downloaded again until the server's ETag changes. One that fails verification
// (bundle_verification_key) or cannot be read is refused as well, but OPA's downloader forgets
// the ETag of a download that failed, so it is downloaded again at every poll.
package gateway
