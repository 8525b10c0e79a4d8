// Package config reads and validates gateway.toml.
//
// Load decodes strictly: an unknown key, a value of the wrong type or a value out of range is an
// error that names the file, the line and the key ("gateway.toml:12: route[1].timeout: …").
// Durations are strings ("5s", "250ms") and sizes are strings ("64KiB", "1MiB"). Relative paths
// (policy dir, filter modules, secret files, TLS files) are resolved against the config file's
// directory, so the gateway behaves the same whatever its working directory.
//
// A *Config is immutable once Load returns: callers share it read-only. Secrets are not part of
// the Config; ResolveSecrets reads them into a Secrets value that never prints its contents.
package config
