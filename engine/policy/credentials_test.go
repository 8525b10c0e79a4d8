package policy

import (
	"context"
	"slices"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

// TestCredentialHeadersNotedBeforeTheCall: a policy that decides before it reaches
// hookwall.apikey.verify (a content type checked first) never hands the key to the builtin,
// yet the header the call reads is named in the policy; every evaluation notes its value as
// sensitive, on the compiled evaluator and topdown, with the request in the document or held
// apart. So are a header read into a local variable first, or bound by a rule of the
// package (presented := input.request.headers["…"]), hookwall.oauth.verify's token
// header, a generic hmac signature's opts.header, and one read by a package the route's
// package uses. A header name computed at evaluation cannot be named beforehand: its value
// is noted only when the builtin runs.
func TestCredentialHeadersNotedBeforeTheCall(t *testing.T) {
	const key = "k3y-0f-the-acme-c1ient-4ab9f0e2"
	src := map[string]string{
		"key.rego": `package routes.key

default allow := false

allow if {
	input.request.headers["content-type"] == "application/json"
	hookwall.apikey.verify(input.request.headers["x-acme-client"], "acme_keys")
}
`,
		"local.rego": `package routes.local

allow if {
	input.request.method == "PUT"
	k := input.request.headers["x-local-key"]
	hookwall.apikey.verify(k, "acme_keys")
}
`,
		"token.rego": `package routes.token

allow if {
	input.request.method == "PUT"
	hookwall.oauth.verify(input.request.headers["x-acme-bearer"], "acme").valid
}
`,
		"mac.rego": `package routes.mac

import data.lib.mac

allow if {
	input.request.method == "PUT"
	mac.ok
}
`,
		"lib/mac.rego": `package lib.mac

ok if hookwall.webhook.verify("hmac", input.request, {"secret": "acme_hmac", "header": "X-Acme-Mac"}).valid
`,
		"rule.rego": `package routes.rule

presented := input.request.headers["x-rule-key"]

allow if {
	input.request.method == "PUT"
	hookwall.apikey.verify(presented, "acme_keys")
}
`,
		"two.rego": `package routes.two

presented := input.request.headers["x-first-key"] if input.request.method == "PUT"

presented := input.request.headers["x-second-key"] if input.request.method == "PATCH"

allow if hookwall.apikey.verify(presented, "acme_keys")
`,
		"computed.rego": `package routes.computed

allow if {
	input.request.method == "PUT"
	hookwall.apikey.verify(input.request.headers[concat("-", ["x", "computed"])], "acme_keys")
}
`,
	}
	// No secret source and no issuers: no call is reached, and none is looked up.
	set, err := LoadModules(context.Background(), src, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		pkg, header string
		noted       bool
	}{
		{"routes.key", "X-Acme-Client", true},
		{"routes.local", "X-Local-Key", true},
		{"routes.rule", "X-Rule-Key", true},
		{"routes.two", "X-First-Key", true},
		{"routes.two", "X-Second-Key", true},
		{"routes.token", "X-Acme-Bearer", true},
		{"routes.mac", "X-Acme-Mac", true},
		{"routes.computed", "X-Computed", false},
	} {
		t.Run(c.pkg, func(t *testing.T) {
			q, err := set.Prepare(context.Background(), c.pkg)
			if err != nil {
				t.Fatal(err)
			}
			in := doc(requestValue("POST", "/", map[string]string{c.header: key, "Content-Type": "text/plain"}, "{}"))
			req := objRequest{in.(ast.Object).Get(ast.StringTerm("request")).Value.(ast.Object)}
			for _, e := range []struct {
				name string
				o    *EvalParams
				req  Request
			}{{"compiled", nil, nil}, {"topdown", &EvalParams{OPA: true}, nil}, {"request apart", nil, req}} {
				var s Sensitive
				ctx := context.WithValue(context.Background(), SensitiveKey{}, &s)
				d, err := q.EvalRequest(ctx, in, e.req, e.o)
				if err != nil {
					t.Fatalf("%s: %v", e.name, err)
				}
				if d.Allow {
					t.Fatalf("%s: allowed; the policy must decide before the call", e.name)
				}
				if got := slices.Contains(s.Values, key); got != c.noted {
					t.Errorf("%s: %s noted as sensitive: %v, want %v (noted: %d values)", e.name, c.header, got, c.noted, len(s.Values))
				}
			}
		})
	}
}

// TestCredentialHeaderIdioms: the usual ways of reading a credential header whose name is a
// constant are seen before the call as surely as the plain reference: the headers object
// bound to a variable first, object.get with a default, a variable copied into another, a
// value trimmed (or otherwise computed) on its way to the builtin, in the rule or in a rule
// of the package it binds. The header of a policy that decides before the call is noted.
func TestCredentialHeaderIdioms(t *testing.T) {
	const key = "k3y-0f-the-acme-c1ient-4ab9f0e2"
	src := map[string]string{
		"alias.rego": `package routes.alias

allow if {
	input.request.method == "PUT"
	h := input.request.headers
	hookwall.apikey.verify(h["x-alias-key"], "acme_keys")
}
`,
		"req.rego": `package routes.req

allow if {
	input.request.method == "PUT"
	r := input.request
	hookwall.apikey.verify(r.headers["x-req-key"], "acme_keys")
}
`,
		"objget.rego": `package routes.objget

allow if {
	input.request.method == "PUT"
	hookwall.apikey.verify(object.get(input.request.headers, "x-objget-key", ""), "acme_keys")
}
`,
		"copy.rego": `package routes.copy

allow if {
	input.request.method == "PUT"
	h := input.request.headers["x-copy-key"]
	k := h
	hookwall.apikey.verify(k, "acme_keys")
}
`,
		"trim.rego": `package routes.trim

allow if {
	input.request.method == "PUT"
	hookwall.oauth.verify(trim_prefix(input.request.headers["x-trim-token"], "Bearer "), "acme").valid
}
`,
		"split.rego": `package routes.split

allow if {
	input.request.method == "PUT"
	hookwall.apikey.verify(split(input.request.headers["x-split-key"], " ")[1], "acme_keys")
}
`,
		"rulecall.rego": `package routes.rulecall

presented := trim_space(object.get(input.request.headers, "x-rulecall-key", ""))

allow if {
	input.request.method == "PUT"
	hookwall.apikey.verify(presented, "acme_keys")
}
`,
	}
	set, err := LoadModules(context.Background(), src, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ pkg, header string }{
		{"routes.alias", "X-Alias-Key"},
		{"routes.req", "X-Req-Key"},
		{"routes.objget", "X-Objget-Key"},
		{"routes.copy", "X-Copy-Key"},
		{"routes.trim", "X-Trim-Token"},
		{"routes.rulecall", "X-Rulecall-Key"},
		{"routes.split", "X-Split-Key"},
	} {
		t.Run(c.pkg, func(t *testing.T) {
			q, err := set.Prepare(context.Background(), c.pkg)
			if err != nil {
				t.Fatal(err)
			}
			in := doc(requestValue("POST", "/", map[string]string{c.header: key}, "{}"))
			for _, e := range []struct {
				name string
				o    *EvalParams
			}{{"compiled", nil}, {"topdown", &EvalParams{OPA: true}}} {
				var s Sensitive
				ctx := context.WithValue(context.Background(), SensitiveKey{}, &s)
				d, err := q.EvalRequest(ctx, in, nil, e.o)
				if err != nil {
					t.Fatalf("%s: %v", e.name, err)
				}
				if d.Allow {
					t.Fatalf("%s: allowed; the policy must decide before the call", e.name)
				}
				if !slices.Contains(s.Values, key) {
					t.Errorf("%s: %s not noted as sensitive (noted: %d values)", e.name, c.header, len(s.Values))
				}
			}
		})
	}
}

// A package that hands a value computed from input.request.path to a credential builtin is
// known to by the query (CredentialPath), through a rule or a call; no header is named for
// it; one that reads the path for routing only is not.
func TestCredentialPath(t *testing.T) {
	src := map[string]string{
		"trim.rego": `package routes.trim

allow if hookwall.apikey.verify(trim_prefix(input.request.path, "/hooks/tg/"), "acme_keys")
`,
		"rule.rego": `package routes.rule

presented := split(input.request.path, "/")[3]

allow if {
	input.request.method == "POST"
	hookwall.apikey.verify(presented, "acme_keys")
}
`,
		"route.rego": `package routes.route

allow if {
	startswith(input.request.path, "/hooks/")
	hookwall.apikey.verify(input.request.headers["x-key"], "acme_keys")
}
`,
	}
	set, err := LoadModules(context.Background(), src, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		pkg  string
		path bool
	}{{"routes.trim", true}, {"routes.rule", true}, {"routes.route", false}} {
		t.Run(c.pkg, func(t *testing.T) {
			q, err := set.Prepare(context.Background(), c.pkg)
			if err != nil {
				t.Fatal(err)
			}
			if q.CredentialPath() != c.path {
				t.Errorf("CredentialPath() = %v, want %v", q.CredentialPath(), c.path)
			}
			for _, h := range q.credHeaders {
				if h == credPathName {
					t.Errorf("credential headers hold %q: %v", h, q.credHeaders)
				}
			}
		})
	}
}
