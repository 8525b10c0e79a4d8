package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A secret that cannot be resolved is a bad value like any other: its error names the file,
// the line and the key (design.md §5), so the user finds the entry to fix.
func TestUnresolvedSecretNamesTheLine(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "g.toml")
	if err := os.WriteFile(filepath.Join(dir, "empty.txt"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	src := "[secrets]\n" +
		"a = {env = \"HW_UNSET\"}\n" +
		"b = {file = \"missing.txt\"}\n" +
		"c = {file = \"empty.txt\"}\n" +
		"\n[secrets.d]\nenv = \"HW_UNSET_TOO\"\n" +
		minimal
	c, err := Parse(path, []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ResolveSecrets(func(string) (string, bool) { return "", false })
	if err == nil {
		t.Fatal("unresolvable secrets resolved")
	}
	for _, want := range []string{path + ":2: secrets.a: ", path + ":3: secrets.b: ", path + ":4: secrets.c: ", path + ":6: secrets.d: "} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not contain %q:\n%v", want, err)
		}
	}
}
