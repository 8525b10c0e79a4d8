package postgres

import (
	"context"
	"slices"
	"testing"
)

// localhost is let through unverified because it is this machine: a resolver that says
// otherwise (a hosts file without it, and a DNS answer pointing elsewhere) is not followed.
func TestLocalhostResolvesToLoopbackOnly(t *testing.T) {
	answers := map[string][]string{"localhost": {"10.0.0.9", "127.0.0.1"}, "LOCALHOST.": {"10.0.0.9"}, "db.example": {"10.0.0.9"}}
	lookup := loopbackLookup(func(_ context.Context, host string) ([]string, error) { return slices.Clone(answers[host]), nil })
	if got, err := lookup(context.Background(), "localhost"); err != nil || !slices.Equal(got, []string{"127.0.0.1"}) {
		t.Errorf("localhost: %v %v, want 127.0.0.1 alone", got, err)
	}
	if got, err := lookup(context.Background(), "LOCALHOST."); err == nil {
		t.Errorf("localhost resolving elsewhere only: %v, want an error", got)
	}
	if got, err := lookup(context.Background(), "db.example"); err != nil || !slices.Equal(got, []string{"10.0.0.9"}) {
		t.Errorf("another name: %v %v, want its answer unchanged (its certificate is verified)", got, err)
	}
}
