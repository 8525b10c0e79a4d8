// Package vectors loads the published webhook signature test vectors for tests.
//
// The file is engine/webhook/testdata/webhook-vectors.json inside the repository, a copy of
// the providers' published vectors (CI checks it against the canonical file when one is at
// hand). Load fails the test when it is missing: the vectors are the external check of the
// signature schemes, never something to skip.
package vectors

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// Vector is one published or self-generated signed request.
type Vector struct {
	Provider  string            `json:"provider"`
	Name      string            `json:"name"`
	Expect    string            `json:"expect"` // "valid" | "invalid"
	Secret    *string           `json:"secret"`
	PublicKey *string           `json:"public_key"`
	Body      string            `json:"body"`
	Now       int64             `json:"now"`
	URL       string            `json:"url"`
	Tolerance int               `json:"tolerance_s"`
	Headers   map[string]string `json:"headers"`
}

// Key is the secret value the vector was signed with, or the public key it verifies with.
func (v *Vector) Key() string {
	if v.Secret != nil {
		return *v.Secret
	}
	if v.PublicKey != nil {
		return *v.PublicKey
	}
	return ""
}

// Scheme is the ready policy that verifies the vector, and the hookwall scheme of that name,
// but for svix: its policy verifies with the "standard" scheme.
func (v *Vector) Scheme() string {
	switch v.Provider {
	case "standard-webhooks":
		return "standard"
	case "ed25519-rfc8032":
		return "discord"
	}
	return v.Provider
}

// Path returns the vectors file's path under the module root (the directory with go.mod
// above the test's working directory), so any package's test finds it whatever its depth.
func Path() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "engine", "webhook", "testdata", "webhook-vectors.json")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// Load reads every vector.
func Load(tb testing.TB) []Vector {
	tb.Helper()
	raw, err := os.ReadFile(Path())
	if err != nil {
		tb.Fatalf("the published vectors must be in the repo: %v", err)
	}
	var vs []Vector
	if err := json.Unmarshal(raw, &vs); err != nil {
		tb.Fatalf("%s: %v", Path(), err)
	}
	if len(vs) == 0 {
		tb.Fatalf("%s: no vectors", Path())
	}
	return vs
}
