package policy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// Query is one route's prepared decision query. Safe for concurrent use.
type Query struct {
	pkg      string
	prepared rego.PreparedEvalQuery
	needJSON bool
}

// Package returns the queried package ("routes.github").
func (q *Query) Package() string { return q.pkg }

// NeedsJSON reports whether the package reads input.request.json (or the request as a whole),
// so the caller parses the body only when the policy can see the result.
func (q *Query) NeedsJSON() bool { return q.needJSON }

// Prepare prepares the decision query for pkg. It fails when pkg defines no rule.
func (s *Set) Prepare(ctx context.Context, pkg string) (*Query, error) {
	pkg = strings.TrimPrefix(pkg, "data.")
	if !s.HasPackage(pkg) {
		return nil, fmt.Errorf("policy: package %q is not defined by any .rego file under the policy dir", pkg)
	}
	if !contains(s.packages[pkg], "allow") {
		return nil, fmt.Errorf("policy: package %q has no allow rule; every request would be denied", pkg)
	}
	opts := []func(*rego.Rego){
		rego.Compiler(s.compiler),
		rego.Store(s.store),
		rego.Query("data." + pkg),
		rego.StrictBuiltinErrors(true),
	}
	opts = append(opts, s.builtinOptions()...)
	pq, err := rego.New(opts...).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("policy: prepare %s: %w", pkg, describe(err))
	}
	return &Query{pkg: pkg, prepared: pq, needJSON: s.needJSON}, nil
}

// Decision is what a route's package decided (design §3.3).
type Decision struct {
	Allow           bool
	Deny            []string
	Status          int
	RateLimit       *RateLimit
	Dedupe          *Dedupe
	UpstreamHeaders []Header
	Labels          map[string]any
}

// Denied reports whether the request must not be forwarded.
func (d *Decision) Denied() bool { return !d.Allow || len(d.Deny) > 0 }

// Header is one header the policy sets on the forwarded request.
type Header struct{ Name, Value string }

// RateLimit is the rate_limit obligation.
type RateLimit struct {
	Key   string
	Limit int64
	Per   time.Duration
	Burst int64
}

// Dedupe is the dedupe obligation.
type Dedupe struct {
	Key string
	TTL time.Duration
}

// EvalOption tunes one evaluation.
type EvalOption struct {
	// Tracer, when set, receives the rule trace (eval --explain).
	Tracer topdown.QueryTracer
}

// Eval evaluates the package on input. An error means the decision is unknown: the caller
// answers 500 and denies.
func (q *Query) Eval(ctx context.Context, input ast.Value, o *EvalOption) (Decision, error) {
	eo := []rego.EvalOption{rego.EvalParsedInput(input), rego.EvalMetrics(metrics.NoOp())}
	if o != nil && o.Tracer != nil {
		eo = append(eo, rego.EvalQueryTracer(o.Tracer))
	}
	rs, err := q.prepared.Eval(ctx, eo...)
	if err != nil {
		return Decision{}, fmt.Errorf("policy %s: %w", q.pkg, err)
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return Decision{Status: 403}, nil
	}
	obj, ok := rs[0].Expressions[0].Value.(map[string]any)
	if !ok {
		return Decision{}, fmt.Errorf("policy %s: package evaluated to %T, not an object", q.pkg, rs[0].Expressions[0].Value)
	}
	return decode(q.pkg, obj)
}

func decode(pkg string, obj map[string]any) (Decision, error) {
	d := Decision{Status: 403}
	bad := func(rule, want string, v any) error {
		return fmt.Errorf("policy %s: rule %s must be %s, got %s", pkg, rule, want, typeName(v))
	}
	if v, ok := obj["allow"]; ok {
		b, ok := v.(bool)
		if !ok {
			return Decision{}, bad("allow", "a boolean", v)
		}
		d.Allow = b
	}
	if v, ok := obj["deny"]; ok {
		arr, ok := v.([]any)
		if !ok {
			return Decision{}, bad("deny", "a set of strings", v)
		}
		for _, r := range arr {
			s, ok := r.(string)
			if !ok {
				return Decision{}, bad("deny", "a set of strings", r)
			}
			d.Deny = append(d.Deny, s)
		}
		sort.Strings(d.Deny)
	}
	if v, ok := obj["status"]; ok {
		n, err := asInt(v)
		if err != nil || n < 400 || n > 599 {
			return Decision{}, bad("status", "an HTTP error status (400-599)", v)
		}
		d.Status = int(n)
	}
	if v, ok := obj["rate_limit"]; ok {
		m, ok := v.(map[string]any)
		if !ok {
			return Decision{}, bad("rate_limit", `an object {"key", "limit", "per"}`, v)
		}
		rl := &RateLimit{}
		var err error
		if rl.Key, ok = m["key"].(string); !ok || rl.Key == "" {
			return Decision{}, bad("rate_limit.key", "a non-empty string", m["key"])
		}
		if rl.Limit, err = asInt(m["limit"]); err != nil || rl.Limit < 1 {
			return Decision{}, bad("rate_limit.limit", "an integer >= 1", m["limit"])
		}
		if rl.Per, err = asDuration(m["per"]); err != nil || rl.Per <= 0 {
			return Decision{}, bad("rate_limit.per", `a duration string such as "1m"`, m["per"])
		}
		if b, ok := m["burst"]; ok {
			if rl.Burst, err = asInt(b); err != nil || rl.Burst < 1 {
				return Decision{}, bad("rate_limit.burst", "an integer >= 1", b)
			}
		}
		d.RateLimit = rl
	}
	if v, ok := obj["dedupe"]; ok {
		m, ok := v.(map[string]any)
		if !ok {
			return Decision{}, bad("dedupe", `an object {"key", "ttl"}`, v)
		}
		dd := &Dedupe{}
		if dd.Key, ok = m["key"].(string); !ok || dd.Key == "" {
			return Decision{}, bad("dedupe.key", "a non-empty string", m["key"])
		}
		var err error
		if dd.TTL, err = asDuration(m["ttl"]); err != nil || dd.TTL <= 0 {
			return Decision{}, bad("dedupe.ttl", `a duration string such as "24h"`, m["ttl"])
		}
		d.Dedupe = dd
	}
	if v, ok := obj["upstream_headers"]; ok {
		m, ok := v.(map[string]any)
		if !ok {
			return Decision{}, bad("upstream_headers", "an object of strings", v)
		}
		for k, hv := range m {
			s, ok := hv.(string)
			if !ok {
				return Decision{}, bad("upstream_headers."+k, "a string", hv)
			}
			d.UpstreamHeaders = append(d.UpstreamHeaders, Header{Name: k, Value: s})
		}
		sort.Slice(d.UpstreamHeaders, func(i, j int) bool { return d.UpstreamHeaders[i].Name < d.UpstreamHeaders[j].Name })
	}
	if v, ok := obj["labels"]; ok {
		m, ok := v.(map[string]any)
		if !ok {
			return Decision{}, bad("labels", "an object", v)
		}
		d.Labels = m
	}
	return d, nil
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "undefined"
	case bool:
		return "a boolean"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case []any:
		return "an array or set"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

func asInt(v any) (int64, error) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, errors.New("not a number")
	}
	return n.Int64()
}

func asDuration(v any) (time.Duration, error) {
	s, ok := v.(string)
	if !ok {
		return 0, errors.New("not a string")
	}
	return time.ParseDuration(s)
}

// readsJSON reports whether the modules may observe input.request.json: a reference to
// input.request.json, or to input / input.request as a whole (which could be indexed later),
// other than as the request argument of hookwall.webhook.verify. It reads the modules as
// parsed: the compiler rewrites call arguments into local variables.
func readsJSON(mods map[string]*ast.Module) bool {
	verifyArgs := map[*ast.Term]bool{}
	for _, m := range mods {
		ast.WalkTerms(m, func(t *ast.Term) bool {
			if call, ok := t.Value.(ast.Call); ok && len(call) >= 4 && call[0].Value.Compare(verifyRef) == 0 {
				verifyArgs[call[2]] = true
			}
			return false
		})
		ast.WalkExprs(m, func(e *ast.Expr) bool {
			if terms, ok := e.Terms.([]*ast.Term); ok && len(terms) >= 4 && terms[0].Value.Compare(verifyRef) == 0 {
				verifyArgs[terms[2]] = true
			}
			return false
		})
	}
	found := false
	for _, m := range mods {
		ast.WalkTerms(m, func(t *ast.Term) bool {
			if found {
				return true
			}
			ref, ok := t.Value.(ast.Ref)
			if !ok || len(ref) == 0 || !ref[0].Equal(ast.InputRootDocument) {
				return false
			}
			switch {
			case len(ref) == 1:
				found = !verifyArgs[t]
			case ref[1].Value.Compare(ast.String("request")) != 0:
			case len(ref) == 2:
				found = !verifyArgs[t]
			case ref[2].Value.Compare(ast.String("json")) == 0:
				found = true
			case !isConstString(ref[2]):
				found = true // input.request[x]: could be "json"
			}
			return false
		})
	}
	return found
}

func isConstString(t *ast.Term) bool {
	_, ok := t.Value.(ast.String)
	return ok
}

var verifyRef = ast.MustParseRef("hookwall.webhook.verify")
