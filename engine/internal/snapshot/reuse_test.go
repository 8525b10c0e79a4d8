package snapshot

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hookwall/hookwall/engine/config"
	"github.com/hookwall/hookwall/engine/filter"
	"github.com/hookwall/hookwall/engine/policy"
)

const reuseConfig = `
[[filter]]
name = "f"
module = "f.wasm"
pool = 1

[[route]]
name = "a"
path = "/a"
upstream = "http://127.0.0.1:9"
policy = "routes.p"
filters = ["f"]
timeout = "{{TIMEOUT}}"

[[route]]
name = "b"
path = "/b"
upstream = "http://127.0.0.1:9"
policy = "routes.p"
timeout = "{{TIMEOUT}}"
`

// buildIn writes the policy, the guest and a config into dir and builds it on prev.
func buildIn(t *testing.T, host *filter.Host, dir, timeout, guest string, prev *Snapshot) *Snapshot {
	t.Helper()
	files := map[string]string{
		"policies/p.rego": "package routes.p\n\nallow := true\n",
		"f.wasm":          guest,
		"gateway.toml":    strings.ReplaceAll(reuseConfig, "{{TIMEOUT}}", timeout),
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := config.Load(filepath.Join(dir, "gateway.toml"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := Build(context.Background(), cfg, Options{Host: host, Previous: prev})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// newHost returns a filter host closed when the test ends.
func newHost(t *testing.T) *filter.Host {
	t.Helper()
	ctx := context.Background()
	host, err := filter.NewHost(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { host.Close(ctx) })
	return host
}

func guest(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "filter", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSnapshotsShareUnchangedParts(t *testing.T) {
	ctx := context.Background()
	host := newHost(t)
	dir := t.TempDir()
	var h Holder
	defer h.Close()

	s1 := buildIn(t, host, dir, "2s", guest(t, "tiny.wasm"), nil)
	h.Swap(s1)
	if s1.Routes[0].Client != s1.Routes[1].Client {
		t.Error("two routes to the same upstream have separate pools")
	}

	// Unchanged: the next snapshot shares the pool and the filter, and retiring s1 closes neither.
	s2 := buildIn(t, host, dir, "2s", guest(t, "tiny.wasm"), s1)
	if s2.Routes[0].Client != s1.Routes[0].Client || s2.Filters["f"] != s1.Filters["f"] {
		t.Fatal("an unchanged upstream or filter was rebuilt")
	}
	held := h.Acquire() // a request in flight on s1
	h.Swap(s2)
	held.Release() // s1 closes now
	inst, err := s2.Filters["f"].Acquire(ctx)
	if err != nil {
		t.Fatalf("closing the retired snapshot closed a filter the live one shares: %v", err)
	}
	inst.Release()

	// Changed: another timeout is another pool; another module is another filter, and the
	// retired one closes after its last request.
	s3 := buildIn(t, host, dir, "3s", guest(t, "hookwall.wasm"), s2)
	if s3.Routes[0].Client == s2.Routes[0].Client || s3.Filters["f"] == s2.Filters["f"] {
		t.Fatal("a changed upstream timeout or module was shared")
	}
	old := s2.Filters["f"]
	held = h.Acquire()
	h.Swap(s3)
	if inst, err := old.Acquire(ctx); err != nil {
		t.Fatalf("the retired filter closed while a request still held its snapshot: %v", err)
	} else {
		inst.Release()
	}
	held.Release()
	if _, err := old.Acquire(ctx); !errors.Is(err, filter.ErrClosed) {
		t.Fatalf("retired filter after its last request: %v, want ErrClosed", err)
	}
}

// A snapshot replaced before an older one's last request ends must not close the filter
// that request is still to use: the filter is shared by s1 and s2, s2 is replaced by s3
// (whose filter changed) while a request of s1's is in flight, and the filter closes only
// when that request releases s1.
func TestSharedFilterOutlivesANewerSnapshot(t *testing.T) {
	ctx := context.Background()
	host := newHost(t)
	dir := t.TempDir()
	var h Holder
	defer h.Close()

	s1 := buildIn(t, host, dir, "2s", guest(t, "tiny.wasm"), nil)
	h.Swap(s1)
	held := h.Acquire() // a request in flight on s1, before its filters ran
	s2 := buildIn(t, host, dir, "2s", guest(t, "tiny.wasm"), s1)
	h.Swap(s2) // unchanged: s2 shares s1's filter
	f := s1.Filters["f"]
	s3 := buildIn(t, host, dir, "2s", guest(t, "hookwall.wasm"), s2)
	if s3.Filters["f"] == f {
		t.Fatal("a changed filter was shared")
	}
	h.Swap(s3) // s2, with no request of its own, closes now
	inst, err := f.Acquire(ctx)
	if err != nil {
		t.Fatalf("the request of s1 cannot run its filter after s2 closed: %v", err)
	}
	inst.Release()
	held.Release() // the last holder of the old filter closes it
	if _, err := f.Acquire(ctx); !errors.Is(err, filter.ErrClosed) {
		t.Fatalf("the old filter after its last holder closed: %v, want ErrClosed", err)
	}
	if inst, err := s3.Filters["f"].Acquire(ctx); err != nil {
		t.Fatalf("the live snapshot's filter: %v", err)
	} else {
		inst.Release()
	}
}

// dirPolicies is a PolicySource that loads a policy directory, as a bundle would be loaded.
type dirPolicies string

func (d dirPolicies) Load(ctx context.Context, o policy.Options) (*policy.Set, error) {
	return policy.Load(ctx, string(d), o)
}

func (d dirPolicies) Revision() string { return "dir" }

// TestKeepInputsReadsNoFile: with KeepInputs (a new bundle on the live snapshot), the filters
// and the upstream pools are the previous snapshot's and no file the config names is read:
// the module file gone from disk does not matter. Another config is refused.
func TestKeepInputsReadsNoFile(t *testing.T) {
	host := newHost(t)
	dir := t.TempDir()
	s1 := buildIn(t, host, dir, "2s", guest(t, "tiny.wasm"), nil)
	defer s1.Release()
	if err := os.Remove(filepath.Join(dir, "f.wasm")); err != nil {
		t.Fatal(err)
	}
	o := Options{Host: host, Previous: s1, KeepInputs: true, Policies: dirPolicies(filepath.Join(dir, "policies"))}
	s2, err := Build(context.Background(), s1.Config, o)
	if err != nil {
		t.Fatalf("KeepInputs read the module file again: %v", err)
	}
	defer s2.Release()
	if s2.Filters["f"] != s1.Filters["f"] || s2.Routes[0].Client != s1.Routes[0].Client || s2.Secrets != s1.Secrets {
		t.Error("KeepInputs did not keep the previous snapshot's filter, pool and secrets")
	}
	other := *s1.Config
	if _, err := Build(context.Background(), &other, o); err == nil {
		t.Error("KeepInputs built a config other than the previous snapshot's")
	}
}
