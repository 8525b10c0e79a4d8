package snapshot

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hookwall/hookwall/engine/config"
	"github.com/hookwall/hookwall/engine/internal/testutil"
)

// TestRevisionNamesTheConfigParsed: a snapshot's revision names the gateway.toml it was
// built from, whatever the file holds by the time the build ends: a reload whose file was
// written again while it built (an editor's second save) reported the revision of the newer
// text while serving the older, and then the same revision again once it loaded the newer.
func TestRevisionNamesTheConfigParsed(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteFile(t, filepath.Join(dir, "policies", "a.rego"), "package routes.a\n\nallow := true\n")
	path := filepath.Join(dir, "gateway.toml")
	text := func(upstream string) string {
		return "[server]\nlisten = \"127.0.0.1:0\"\n[policies]\ndir = \"policies\"\n\n[[route]]\nname = \"a\"\npath = \"/a\"\nupstream = \"" + upstream + "\"\npolicy = \"routes.a\"\n"
	}
	host := newHost(t)
	revision := func(cfg *config.Config) string {
		t.Helper()
		s, err := Build(context.Background(), cfg, Options{Host: host})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Release()
		return s.Revision
	}
	load := func(upstream string) *config.Config {
		t.Helper()
		testutil.WriteFile(t, path, text(upstream))
		cfg, err := config.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	a := load("http://127.0.0.1:1")
	testutil.WriteFile(t, path, text("http://127.0.0.1:2")) // written again after a was read
	raced := revision(a)
	b := revision(load("http://127.0.0.1:2"))
	again := revision(load("http://127.0.0.1:1"))
	if raced != again || raced == b || strings.TrimSpace(raced) == "" {
		t.Errorf("revision of the first text built while the file held the second: %q; of the first: %q; of the second: %q", raced, again, b)
	}
}
