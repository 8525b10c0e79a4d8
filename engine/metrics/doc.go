// Package metrics is the Prometheus side of a gateway: one registry per Gateway (never the
// process-global one), fed on the request path through server.Observer and, at scrape time,
// from the components' own counters (filter pools, the state store, the decision log,
// reloads) through Sources. Go runtime and process metrics are included.
//
// Label values are route names, filter names, outcomes, status codes, error kinds and state
// operations: all bounded by the config or by code. Paths, hosts, IPs and anything else a
// client sends never become labels.
//
// The Observer methods are safe for concurrent use and do not allocate once a label
// combination has been seen: the children of each vector are cached in copy-on-write maps
// and lists. A route's children are found by its name without hashing it (a fixed table of
// names, the map behind it), and its requests counters and filter histograms by a scan of
// the route's own short lists, so a request on a route the table holds hashes no label value
// for them (the state operations, filter errors and shadow results are found in maps).
//
// # Series
//
// The series this package defines:
//
//	hookwall_requests_total{route,outcome,code}                 counter
//	hookwall_request_duration_seconds{route}                    histogram
//	hookwall_policy_duration_seconds{route}                     histogram
//	hookwall_filter_duration_seconds{route,filter}              histogram
//	hookwall_filter_errors_total{filter,kind}                   counter (trap, timeout, oom, pool, abi, error)
//	hookwall_filter_pool_size{filter}                           gauge
//	hookwall_filter_pool_max{filter}                            gauge
//	hookwall_filter_pool_instances{filter,state}                gauge (live, idle, in_use)
//	hookwall_filter_pool_waits_total{filter}                    counter*
//	hookwall_filter_instances_created_total{filter}             counter*
//	hookwall_filter_instances_discarded_total{filter}           counter*
//	hookwall_filter_instances_shrunk_total{filter}              counter*
//	hookwall_filter_log_dropped_bytes_total{filter}             counter* (guest log bytes over budget)
//	hookwall_upstream_duration_seconds{route}                   histogram
//	hookwall_upstream_errors_total{route}                       counter
//	hookwall_rate_limited_total{route}                          counter
//	hookwall_duplicates_total{route,state}                      counter (delivered, in_flight)
//	hookwall_shadow_evaluations_total{route,result}             counter (agree, disagree, error)
//	hookwall_evaluator_divergence_total{route}                  counter (cross-check differences)
//	hookwall_cross_checks_total{result}                         counter (checked, dropped, skipped)
//	hookwall_state_checks_total{result}                         counter (ok, error)
//	hookwall_state_backend_duration_seconds{op}                 histogram (Redis: admit, commit, release, ping)
//	hookwall_state_backend_errors_total{op}                     counter (Redis)
//	hookwall_state_keys                                         gauge (memory)
//	hookwall_state_bytes                                        gauge (memory)
//	hookwall_state_evictions_total                              counter (memory)
//	hookwall_decision_log_written_total                         counter
//	hookwall_decision_log_dropped_total                         counter
//	hookwall_decision_log_write_errors_total                    counter
//	hookwall_oauth_keys{issuer}                                 gauge (NewOAuthCollector; so are the next six)
//	hookwall_oauth_last_refresh_timestamp_seconds{issuer}       gauge
//	hookwall_oauth_key_fetches_total{issuer}                    counter
//	hookwall_oauth_key_fetch_failures_total{issuer}             counter
//	hookwall_oauth_keys_stale{issuer}                           gauge (1 or 0)
//	hookwall_oauth_introspections_total{issuer}                 counter
//	hookwall_oauth_introspection_errors_total{issuer}           counter
//	hookwall_reloads_total{result}                              counter (ok, error)
//	hookwall_config_last_reload_successful                      gauge (1 or 0)
//	hookwall_config_last_reload_success_timestamp_seconds       gauge
//	hookwall_revision_info{revision}                            gauge (always 1)
//	go_*, process_*                                             Go runtime and process
//
// * adds up over every module a filter's name had since the gateway started: a reload that
// replaces the module does not reset it.
//
// The gateway registers its own collectors on the same registry: the queued routes'
// hookwall_delivery_* and, with [watch], hookwall_anomalies_total and hookwall_watch_*.
package metrics
