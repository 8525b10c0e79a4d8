package config

import (
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

// fuzzFile is the path every fuzzed config claims to come from; each error must name it.
const fuzzFile = "fuzz/gateway.toml"

// FuzzParse feeds arbitrary bytes to the config loader. The seed corpus is in
// testdata/fuzz/FuzzParse (valid configs, each kind of invalid one, broken TOML).
//
// Beyond "no panic": every error is a *Error naming the file, and a config that parses
// holds the invariants the rest of the gateway relies on without re-checking.
func FuzzParse(f *testing.F) {
	f.Add([]byte(minimal))
	f.Add([]byte("[server]\nmax_body = \"1MiB\"\nread_timeout = \"10s\"\n" + minimal))
	f.Add([]byte("[[route]]\nname = 1\n"))
	f.Add([]byte("[server\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		c, err := Parse(fuzzFile, raw)
		if err != nil {
			checkFuzzError(t, err)
			return
		}
		checkInvariants(t, c)
		// Parsing is a pure function of the bytes.
		again, err := Parse(fuzzFile, raw)
		if err != nil {
			t.Fatalf("second parse of the same bytes failed: %v", err)
		}
		if !reflect.DeepEqual(c, again) {
			t.Fatalf("two parses of the same bytes differ:\n%+v\n%+v", c, again)
		}
	})
}

func checkFuzzError(t *testing.T, err error) {
	t.Helper()
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	if len(errs) == 0 {
		t.Fatalf("empty joined error: %v", err)
	}
	for _, e := range errs {
		var ce *Error
		if !errors.As(e, &ce) {
			t.Fatalf("error %T %q is not a *config.Error", e, e)
		}
		if ce.File != fuzzFile || !strings.HasPrefix(e.Error(), fuzzFile+":") {
			t.Fatalf("error does not name the file %q: %q", fuzzFile, e)
		}
		if ce.Msg == "" {
			t.Fatalf("error without a message: %q", e)
		}
	}
}

func checkInvariants(t *testing.T, c *Config) {
	t.Helper()
	s := &c.Server
	if s.MaxBody <= 0 || s.MaxHeader <= 0 || s.ReadTimeout <= 0 || s.WriteTimeout <= 0 || s.IdleTimeout <= 0 {
		t.Fatalf("server limits must be set and positive: %+v", s)
	}
	if s.MaxConns < 0 || s.MaxConnsPerIP < 0 {
		t.Fatalf("negative connection limits: %+v", s)
	}
	if s.MaxHeaders <= 0 || s.MaxJSONElements <= 0 || s.MaxJSONDepth <= 0 || s.MaxJSONDepth > LimitMaxJSONDepth {
		t.Fatalf("request limits must be set and positive: %+v", s)
	}
	if len(s.Trusted()) != len(s.TrustedProxies) {
		t.Fatalf("trusted_proxies %v parsed to %v", s.TrustedProxies, s.Trusted())
	}
	if s.Listen == "" || c.Admin.Listen == "" {
		t.Fatalf("listen addresses must be set: %q %q", s.Listen, c.Admin.Listen)
	}
	if c.State.FailMode != "closed" && c.State.FailMode != "open" {
		t.Fatalf("fail_mode %q", c.State.FailMode)
	}
	if c.State.Backend != "memory" && c.State.Backend != "redis" {
		t.Fatalf("backend %q", c.State.Backend)
	}
	filters := map[string]bool{}
	for _, fl := range c.Filters {
		if fl.Name == "" || fl.Module == "" || fl.Pool < 1 || fl.Memory < 64<<10 || (fl.OnError != "deny" && fl.OnError != "skip") {
			t.Fatalf("filter passed validation with bad values: %+v", fl)
		}
		if fl.Timeout == 0 && !fl.NoDeadline {
			t.Fatalf("filter %q has neither a deadline nor an explicit timeout = \"0\"", fl.Name)
		}
		filters[fl.Name] = true
	}
	if len(c.Routes) == 0 {
		t.Fatal("a config without routes parsed")
	}
	names := map[string]bool{}
	for i := range c.Routes {
		r := &c.Routes[i]
		if r.Name == "" || names[r.Name] {
			t.Fatalf("route name %q empty or duplicate", r.Name)
		}
		names[r.Name] = true
		if (r.Path == "") == (r.Prefix == "") || !strings.HasPrefix(r.Path+r.Prefix, "/") {
			t.Fatalf("route %q: path %q prefix %q", r.Name, r.Path, r.Prefix)
		}
		u := r.UpstreamURL()
		if u == nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			t.Fatalf("route %q: upstream %q parsed to %v", r.Name, r.Upstream, u)
		}
		if _, err := url.Parse(r.Upstream); err != nil {
			t.Fatalf("route %q: upstream %q: %v", r.Name, r.Upstream, err)
		}
		if r.Timeout <= 0 || r.MaxResponseBody <= 0 {
			t.Fatalf("route %q: timeout %v, max_response_body %d", r.Name, r.Timeout, r.MaxResponseBody)
		}
		if !validPackagePath(r.Policy) {
			t.Fatalf("route %q: policy %q", r.Name, r.Policy)
		}
		for _, m := range r.Methods {
			if !knownMethods[m] {
				t.Fatalf("route %q: method %q", r.Name, m)
			}
		}
		for _, fn := range r.Filters {
			if !filters[fn] {
				t.Fatalf("route %q names unknown filter %q", r.Name, fn)
			}
		}
	}
}
