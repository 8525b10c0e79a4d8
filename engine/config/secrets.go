package config

import (
	"os"
	"sort"
	"strings"
)

// Secrets holds resolved secret values by name. Its String and GoString never print values, so a
// stray %v in a log line leaks nothing. Safe for concurrent reads.
type Secrets struct {
	m map[string][]byte
}

// Get returns the secret's value and whether it exists. The slice is shared: do not modify it.
func (s *Secrets) Get(name string) ([]byte, bool) {
	if s == nil {
		return nil, false
	}
	v, ok := s.m[name]
	return v, ok
}

// Names returns the secret names, sorted.
func (s *Secrets) Names() []string {
	if s == nil {
		return nil
	}
	out := make([]string, 0, len(s.m))
	for k := range s.m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (s *Secrets) String() string   { return "[secrets redacted]" }
func (s *Secrets) GoString() string { return "[secrets redacted]" }

// ResolveSecrets reads every [secrets] entry. getenv is os.LookupEnv in production. A missing
// or empty variable, or an unreadable or empty file, is an error naming the file, line and
// secret (never its value). File values have
// one trailing newline trimmed, as editors add one.
func (c *Config) ResolveSecrets(getenv func(string) (string, bool)) (*Secrets, error) {
	s := &Secrets{m: make(map[string][]byte, len(c.Secrets))}
	v := validator{file: c.File, loc: c.loc}
	names := make([]string, 0, len(c.Secrets))
	for n := range c.Secrets {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		ref := c.Secrets[name]
		switch {
		case ref.Env != "":
			val, ok := getenv(ref.Env)
			if !ok || val == "" {
				v.errAt([]any{"secrets", name}, "environment variable %s is not set", ref.Env)
				continue
			}
			s.m[name] = []byte(val)
		case ref.File != "":
			b, err := os.ReadFile(c.Abs(ref.File))
			if err != nil {
				v.errAt([]any{"secrets", name}, "cannot read secret file: %v", err)
				continue
			}
			val := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
			if val == "" {
				// As an unset variable: every request that needs it would fail with 500.
				v.errAt([]any{"secrets", name}, "secret file %s is empty", ref.File)
				continue
			}
			s.m[name] = []byte(val)
		}
	}
	if len(v.errs) > 0 {
		return nil, v.join()
	}
	return s, nil
}
