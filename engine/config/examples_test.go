package config

import "testing"

// The fleet example's config stays valid: one PostgreSQL delivery store, the route queued,
// deliveries sealed.
func TestFleetExampleLoads(t *testing.T) {
	c, err := Load("../../examples/fleet/gateway.toml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Delivery.Store != "postgres" || len(c.Delivery.EncryptionKeys) != 1 || !c.AnyQueued() || c.State.Backend != "redis" {
		t.Fatalf("fleet example: store %q, keys %v, queued %v, state %q", c.Delivery.Store, c.Delivery.EncryptionKeys, c.AnyQueued(), c.State.Backend)
	}
}
