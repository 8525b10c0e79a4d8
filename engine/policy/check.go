package policy

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/agnivade/levenshtein"
	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/hookwall/hookwall/engine/webhook"
)

// secretRef is a secret (or, with issuer set, an [[oauth]] issuer) named by a constant in a
// builtin call, and where.
type secretRef struct {
	name   string
	at     string // "file:line: builtin: opts.secret: "
	issuer bool
}

// checkCalls validates, before a policy set goes live, the arguments of hookwall's builtins
// that are written as constants: the scheme of hookwall.webhook.verify, its option names,
// durations, algorithm, encoding, and for "hmac" the header and template. Each of these would
// otherwise fail every request with 500, or verify less than its author thinks. Arguments
// computed at evaluation time (a function's parameter, a value from input) are checked when
// the call runs, as before.
//
// The secret names such calls use (opts.secret, hookwall.apikey.verify's second argument) are
// returned by package: whether [secrets] defines them matters only for a package a route
// serves, which Prepare checks (checkSecrets). Every problem is reported as
// "file:line: message", all at once.
func checkCalls(mods map[string]*ast.Module) (map[string][]secretRef, error) {
	refs := map[string][]secretRef{}
	names := slices.Sorted(maps.Keys(mods))
	var msgs []string
	for _, name := range names {
		mod := mods[name]
		pkg := strings.TrimPrefix(mod.Package.Path.String(), "data.")
		// A test names what its mocks provide: only a served module's secrets must exist.
		test := IsTestFile(name)
		visit := func(op *ast.Term, args []*ast.Term, loc *ast.Location) {
			var (
				err     error
				secrets []string
			)
			switch op.String() {
			case VerifyName:
				secrets, err = checkVerifyCall(args)
			case APIKeyName, OAuthName:
				secrets = apiKeySecret(args)
			default:
				return
			}
			where := at(loc, name) + op.String() + ": "
			if err != nil {
				msgs = append(msgs, where+err.Error())
			}
			arg := "opts.secret: "
			switch op.String() {
			case APIKeyName:
				arg = "secret: "
			case OAuthName:
				arg = "issuer: "
			}
			if !test {
				for _, s := range secrets {
					refs[pkg] = append(refs[pkg], secretRef{name: s, at: where + arg, issuer: op.String() == OAuthName})
				}
			}
		}
		ast.WalkTerms(mod, func(t *ast.Term) bool {
			if c, ok := t.Value.(ast.Call); ok && len(c) > 0 {
				loc := t.Location
				if loc == nil {
					loc = c[0].Location
				}
				visit(c[0], c[1:], loc)
			}
			return false
		})
		ast.WalkExprs(mod, func(e *ast.Expr) bool {
			if e.IsCall() {
				visit(e.OperatorTerm(), e.Operands(), e.Location)
			}
			return false
		})
	}
	return refs, compileErrors(msgs)
}

// compileErrors is nil for no messages, else a CompileError listing them.
func compileErrors(msgs []string) error {
	if len(msgs) == 0 {
		return nil
	}
	return &CompileError{Msgs: msgs, err: errors.New(strings.Join(msgs, "; "))}
}

// checkSecrets reports the secret names that pkg, or a package it refers to, passes to a
// builtin as constants and that the set's secret source does not define. A set without a
// secret source is not checked.
func (s *Set) checkSecrets(pkg string) error {
	if s.opts.Secrets == nil {
		return nil
	}
	var msgs []string
	for _, p := range s.reachable(pkg) {
		for _, r := range s.secretRefs[p] {
			check := knownSecret
			if r.issuer {
				check = s.knownIssuer
			}
			if err := check(s.opts.Secrets, r.name); err != nil {
				msgs = append(msgs, r.at+err.Error())
			}
		}
	}
	sort.Strings(msgs)
	return compileErrors(msgs)
}

// reachable is pkg and every package it refers to, directly or through another: the
// packages whose calls an evaluation of pkg may make.
func (s *Set) reachable(pkg string) []string {
	var out []string
	seen := map[string]bool{}
	queue := []string{pkg}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if seen[p] {
			continue
		}
		seen[p] = true
		out = append(out, p)
		for _, path := range s.deps[p] {
			for other := range s.packages {
				if !seen[other] && related(path, other) {
					queue = append(queue, other)
				}
			}
		}
	}
	return out
}

// at renders a call's position as "file:line: ".
func at(loc *ast.Location, file string) string {
	if loc != nil && loc.File != "" {
		file = loc.File
	}
	if loc == nil {
		return relPath(file) + ": "
	}
	return fmt.Sprintf("%s:%d: ", relPath(file), loc.Row)
}

// verifyOpts are the opts keys of hookwall.webhook.verify, in the order messages list them.
var verifyOpts = []string{"secret", "tolerance", "url", "algorithm", "header", "prefix", "encoding", "template", "timestamp_header", "id_header"}

// checkVerifyCall checks hookwall.webhook.verify(scheme, request, opts) as far as its
// arguments are constants, and returns the secret names it passes as constants.
func checkVerifyCall(args []*ast.Term) (secrets []string, err error) {
	if len(args) < 3 {
		return nil, nil // the type checker has reported it
	}
	scheme, ok := args[0].Value.(ast.String)
	if ok {
		if err := knownName("scheme", string(scheme), webhook.Schemes()); err != nil {
			return nil, err
		}
	}
	obj, ok := args[2].Value.(ast.Object)
	if !ok {
		return nil, nil
	}
	var o webhook.Options
	ground := true // every option is a constant: the scheme's own checks can run
	obj.Foreach(func(k, v *ast.Term) {
		if err != nil {
			return
		}
		ks, isStr := k.Value.(ast.String)
		if !isStr {
			if ast.IsConstant(k.Value) {
				err = fmt.Errorf("opts: key %v must be a string", k)
			}
			ground = false
			return
		}
		key := string(ks)
		if err = knownName("opts key", key, verifyOpts); err != nil {
			return
		}
		if !ast.IsConstant(v.Value) {
			ground = false
			return
		}
		if key == "secret" {
			secrets, err = secretNames(v)
			return
		}
		s, isStr := v.Value.(ast.String)
		if !isStr {
			err = fmt.Errorf("opts.%s must be a string", key)
			return
		}
		switch key {
		case "tolerance":
			o.Tolerance, err = parseTolerance(string(s))
		case "url":
			o.URL = string(s)
		case "algorithm":
			o.Algorithm = string(s)
		case "header":
			o.SigHeader = string(s)
		case "prefix":
			o.Prefix = string(s)
		case "encoding":
			o.Encoding = string(s)
		case "template":
			o.Template = string(s)
		case "timestamp_header":
			o.TimestampHeader = string(s)
		case "id_header":
			o.IDHeader = string(s)
		}
	})
	if err != nil || !ground || scheme == "" {
		return secrets, err
	}
	return secrets, webhook.CheckOptions(string(scheme), &o)
}

// knownIssuer reports an [[oauth]] issuer name the set's issuers lack (its first argument
// makes it a drop-in for knownSecret).
func (s *Set) knownIssuer(_ SecretSource, name string) error {
	if s.opts.OAuth != nil && s.opts.OAuth.Has(name) {
		return nil
	}
	return fmt.Errorf("no [[oauth]] issuer named %q in the config", name)
}

// apiKeySecret is the secret name hookwall.apikey.verify(presented, secret) (or the issuer
// name hookwall.oauth.verify(token, issuer)) passes as a constant, if any.
func apiKeySecret(args []*ast.Term) []string {
	if len(args) >= 2 {
		if name, ok := args[1].Value.(ast.String); ok {
			return []string{string(name)}
		}
	}
	return nil
}

// parseTolerance reads opts.tolerance, a positive Go duration.
func parseTolerance(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("opts.tolerance: invalid duration %q (a positive duration such as \"5m\" or \"300s\")", s)
	}
	return d, nil
}

// knownSecret reports a secret name that [secrets] does not define; nil source: not checked.
func knownSecret(secrets SecretSource, name string) error {
	if secrets == nil {
		return nil
	}
	if _, ok := secrets.Get(name); ok {
		return nil
	}
	msg := fmt.Sprintf("no secret named %q in [secrets]", name)
	if l, ok := secrets.(interface{ Names() []string }); ok {
		if near := nearest(name, l.Names()); near != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", near)
		}
	}
	return errors.New(msg)
}

// knownName reports a name that is not one of known, with the nearest known name.
func knownName(what, name string, known []string) error {
	for _, k := range known {
		if k == name {
			return nil
		}
	}
	msg := fmt.Sprintf("unknown %s %q", what, name)
	if near := nearest(name, known); near != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", near)
	}
	return fmt.Errorf("%s; known: %s", msg, strings.Join(known, ", "))
}

// nearest is the known name closest to name by edit distance, ignoring case, when it is close
// enough to be a likely typo.
func nearest(name string, known []string) string {
	best, bestD := "", len(name)/2+2
	for _, k := range known {
		if d := levenshtein.ComputeDistance(strings.ToLower(name), strings.ToLower(k)); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// The provider library's Standard Webhooks packages, and their rules that read the message id
// from webhook-id or svix-id, the headers verify reads when it is given no prefix.
var (
	standardLibs     = []ast.Ref{ast.MustParseRef("data.hookwall.lib.providers.standard"), ast.MustParseRef("data.hookwall.lib.providers.svix")}
	providersVerify  = ast.MustParseRef("data.hookwall.lib.providers.verify") // verify(scheme, secret, opts)
	headerKeyedRules = []string{"dedupe", "dedupe_key", "message_id"}
)

// checkHeaderKeys refuses a package that verifies Standard Webhooks under a header prefix of
// its own (verify_with's, the library's verify("standard", …)'s or the builtin's opts.prefix,
// other than the default "webhook-") and
// keys deliveries with the library's dedupe, dedupe_key or message_id: those read webhook-id or
// svix-id, which that verification does not read, so the key would be a header the sender did
// not sign (a captured delivery replayed with a fresh one would be forwarded again), or no key
// at all. dedupe_of(result) keys on the id the check verified. It reads the compiled modules
// (references resolved, arguments bound to local variables); a prefix the compiler cannot see
// (computed at evaluation, or from a package of the policy's own) is not found. Test files are
// skipped: they state what their mocks do.
func checkHeaderKeys(mods map[string]*ast.Module) error {
	type use struct{ at, what string }
	prefixed := map[string]use{} // package → a call that verifies under a prefix
	keyed := map[string][]use{}  // package → its references to a header-keyed rule
	walkCalls(mods, func(name string, m *ast.Module, bound map[ast.Var]*ast.Term, e *ast.Expr) {
		pkg := m.Package.Path.String()
		args := e.Operands()
		var opts *ast.Term
		switch op := e.Operator(); {
		case op.Equal(verifyRef), op.Equal(providersVerify):
			// The builtin's (scheme, request, opts) and the library's generic
			// (scheme, secret, opts): opts third either way.
			if len(args) > 2 && args[0].Value.Compare(ast.String("standard")) == 0 {
				opts = args[2]
			}
		case len(op) > 0 && isStandardLib(op[:len(op)-1]) && op[len(op)-1].Value.Compare(ast.String("verify_with")) == 0:
			if len(args) > 1 {
				opts = args[1]
			}
		}
		if opts == nil {
			return
		}
		if p, ok := ownPrefix(resolveLocal(opts, bound)); ok {
			if _, seen := prefixed[pkg]; !seen {
				prefixed[pkg] = use{at: at(e.Location, name), what: p}
			}
		}
	})
	for _, name := range slices.Sorted(maps.Keys(mods)) {
		if IsTestFile(name) {
			continue
		}
		m := mods[name]
		pkg := m.Package.Path.String()
		ast.WalkTerms(m, func(t *ast.Term) bool {
			ref, ok := t.Value.(ast.Ref)
			if !ok || len(ref) < 6 || !isStandardLib(ref[:5]) {
				return false
			}
			rule, ok := ref[5].Value.(ast.String)
			if ok && slices.Contains(headerKeyedRules, string(rule)) {
				keyed[pkg] = append(keyed[pkg], use{at: at(t.Location, name), what: ref[:6].String()})
			}
			return false
		})
	}
	var msgs []string
	for pkg, refs := range keyed {
		p, ok := prefixed[pkg]
		if !ok {
			continue
		}
		for _, r := range refs {
			msgs = append(msgs, fmt.Sprintf("%s%s reads the message id from webhook-id or svix-id, but %s verifies under opts.prefix %s (%s): "+
				"that check does not read those headers, so the key would be one the sender did not sign and a replay with a fresh one "+
				"would be forwarded again; key on the id the check verified: dedupe := %s.dedupe_of(sig), sig being the verify_with result",
				r.at, r.what, strings.TrimPrefix(pkg, "data."), p.what, strings.TrimSuffix(p.at, ": "), libName(r.what)))
		}
	}
	sort.Strings(msgs)
	return compileErrors(msgs)
}

// isStandardLib reports whether ref is one of the library's Standard Webhooks packages.
func isStandardLib(ref ast.Ref) bool {
	for _, l := range standardLibs {
		if ref.Equal(l) {
			return true
		}
	}
	return false
}

// libName is "standard" or "svix" for a reference into one of those packages.
func libName(ref string) string {
	if strings.HasPrefix(ref, "data.hookwall.lib.providers.svix.") {
		return "svix"
	}
	return "standard"
}

// ownPrefix reports whether opts names a header prefix other than the default "webhook-",
// and how it is written: a constant in quotes, else the term. An opts the compiler cannot
// see into (a variable from elsewhere) is not reported.
func ownPrefix(opts *ast.Term) (string, bool) {
	obj, ok := opts.Value.(ast.Object)
	if !ok {
		return "", false
	}
	p := obj.Get(optPrefix)
	if p == nil {
		return "", false
	}
	if s, ok := p.Value.(ast.String); ok {
		if strings.EqualFold(string(s), "webhook-") || s == "" {
			return "", false
		}
		return strconv.Quote(string(s)), true
	}
	return p.String(), true
}

// checkUnconditionalConflicts refuses a complete rule defined once with no condition and
// again with another constant: `allow := false` written for `default allow := false` beside
// `allow if { … }` conflicts wherever the other definition holds, so every request it would
// allow fails with 500 (eval_conflict_error), which neither OPA's compiler nor its check
// reports. Definitions of the same value or a computed one, defaults and else chains are
// left alone.
func checkUnconditionalConflicts(mods map[string]*ast.Module) error {
	type def struct {
		file string
		rule *ast.Rule
	}
	byRef := map[string][]def{}
	for _, name := range slices.Sorted(maps.Keys(mods)) {
		if IsTestFile(name) {
			continue
		}
		m := mods[name]
		for _, r := range m.Rules {
			if r.Default || len(r.Head.Args) > 0 || r.Head.RuleKind() != ast.SingleValue || r.Head.Value == nil {
				continue
			}
			key := m.Package.Path.Extend(r.Head.Ref().GroundPrefix()).String()
			byRef[key] = append(byRef[key], def{name, r})
		}
	}
	var msgs []string
	for _, key := range slices.Sorted(maps.Keys(byRef)) {
		defs := byRef[key]
		for _, d := range defs {
			if !unconditional(d.rule) || !ast.IsConstant(d.rule.Head.Value.Value) {
				continue
			}
			for _, o := range defs {
				// A computed value may equal the constant whenever it is defined: only two
				// constants that differ are sure to conflict.
				if o.rule == d.rule || !ast.IsConstant(o.rule.Head.Value.Value) || o.rule.Head.Value.Equal(d.rule.Head.Value) {
					continue
				}
				name := strings.TrimPrefix(key, "data.")
				msgs = append(msgs, fmt.Sprintf("%srule %s := %s has no condition, and %s gives it %s: whenever that definition's body holds the two conflict and the request fails with 500 (eval_conflict_error); for a fallback value write `default %s := %s`",
					at(d.rule.Location, d.file), name, d.rule.Head.Value, strings.TrimSuffix(at(o.rule.Location, o.file), ": "), o.rule.Head.Value, d.rule.Head.Ref(), d.rule.Head.Value))
				break
			}
		}
	}
	return compileErrors(msgs)
}

// unconditional reports whether r's body is the `true` the parser gives a rule without one.
func unconditional(r *ast.Rule) bool {
	if len(r.Body) != 1 || r.Else != nil || r.Body[0].Negated || len(r.Body[0].With) > 0 {
		return false
	}
	t, ok := r.Body[0].Terms.(*ast.Term)
	return ok && ast.BooleanTerm(true).Equal(t)
}
