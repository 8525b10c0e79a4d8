package metrics

// Divergence implements server.DivergenceObserver: one cross-checked compiled decision that
// topdown answered differently. It is called off the request path, once per divergence.
func (m *Metrics) Divergence(route string) {
	m.divergence.WithLabelValues(route).Inc()
}
