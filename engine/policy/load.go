package policy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/loader"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/tester"
)

// UnsafeBuiltins are removed from the capabilities unless explicitly allowed: they reach the
// network or the process environment from policy code (SSRF, secret leaks).
var unsafeBuiltins = []string{"http.send", "net.lookup_ip_addr", "opa.runtime"}

// UnsafeBuiltins returns the builtins that are off by default.
func UnsafeBuiltins() []string { return append([]string(nil), unsafeBuiltins...) }

// SecretSource resolves secret names for the verify builtin.
type SecretSource interface {
	Get(name string) ([]byte, bool)
}

// Options configure Load.
type Options struct {
	// AllowBuiltins re-enables unsafe builtins by name.
	AllowBuiltins []string
	// OPAOnly evaluates every package with OPA's topdown, never the compiled fast path
	// ([policies] evaluator = "opa").
	OPAOnly bool
	// Secrets backs opts.secret of hookwall.webhook.verify. Nil means no secrets.
	Secrets SecretSource
	// OAuth backs hookwall.oauth.verify (engine/oauth's Set). Nil means no issuers.
	OAuth OAuthVerifier
	// Now is the clock for timestamp checks; nil means time.Now.
	Now func() time.Time
	// IncludeTests makes Load compile the *_test.rego files with the policies, as strictly
	// (test runners read a tree with LoadTests instead).
	IncludeTests bool
}

// Set is a compiled policy directory. It is immutable and safe for concurrent use.
type Set struct {
	compiler *ast.Compiler
	store    storage.Store
	revision string
	files    []string
	packages map[string][]string // package path (no "data.") → rule names
	opts     Options
	// jsonReaders are the packages whose rules may read input.request.json; deps maps each
	// package to the packages it refers to (imports and data references).
	jsonReaders map[string]bool
	deps        map[string][]string
	// data is the base document (data files), which the fast path does not read.
	data map[string]any
	// secretRefs are the secret names each package passes to a builtin as constants.
	secretRefs map[string][]secretRef
	// credHeaders are the request headers each package hands to a builtin as credentials,
	// by name (credentialHeaders).
	credHeaders map[string][]string
}

// Revision is a content hash of every file that was loaded.
func (s *Set) Revision() string { return s.revision }

// Files returns the loaded file paths, sorted.
func (s *Set) Files() []string { return s.files }

// Packages returns the compiled package paths, sorted.
func (s *Set) Packages() []string {
	return slices.Sorted(maps.Keys(s.packages))
}

// hasPackage reports whether pkg ("routes.github") defines at least one rule.
func (s *Set) hasPackage(pkg string) bool {
	return len(s.packages[strings.TrimPrefix(pkg, "data.")]) > 0
}

// Rules returns the rule names pkg defines.
func (s *Set) Rules(pkg string) []string { return s.packages[strings.TrimPrefix(pkg, "data.")] }

// Load compiles the policies under dir, by the rule of files.go.
func Load(ctx context.Context, dir string, opts Options) (*Set, error) {
	if st, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	} else if !st.IsDir() {
		return nil, fmt.Errorf("policy: %s is not a directory", dir)
	}
	res, err := readTree([]string{dir}, opts.IncludeTests)
	if err != nil {
		return nil, err
	}
	return compile(res.ParsedModules(), res.Documents, revisionOf(res), opts)
}

// LoadModules compiles in-memory modules (path → source) and data; used by tests and bundles.
func LoadModules(ctx context.Context, sources map[string]string, data map[string]any, opts Options) (*Set, error) {
	mods, err := ParseModules(sources)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	for _, name := range slices.Sorted(maps.Keys(sources)) {
		h.Write([]byte(name))
		h.Write([]byte(sources[name]))
	}
	if data == nil {
		data = map[string]any{}
	}
	return compile(mods, data, hex.EncodeToString(h.Sum(nil))[:12], opts)
}

// ParseModules parses in-memory modules (path → source) as Load parses files: Rego v1, with
// annotations. Every parse error is reported, as "file:line: message".
func ParseModules(sources map[string]string) (map[string]*ast.Module, error) {
	mods := make(map[string]*ast.Module, len(sources))
	var errs ast.Errors
	for _, name := range slices.Sorted(maps.Keys(sources)) {
		m, err := ast.ParseModuleWithOpts(name, sources[name], ast.ParserOptions{RegoVersion: ast.RegoV1, ProcessAnnotation: true})
		if err != nil {
			var ae ast.Errors
			if errors.As(err, &ae) {
				errs = append(errs, ae...)
				continue
			}
			return nil, fmt.Errorf("policy: %s: %w", name, err)
		}
		mods[name] = m
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("policy: %w", describe(errs))
	}
	return mods, nil
}

func revisionOf(res *loader.Result) string {
	h := sha256.New()
	for _, n := range slices.Sorted(maps.Keys(res.Modules)) {
		h.Write([]byte(n))
		h.Write(res.Modules[n].Raw)
	}
	fmt.Fprintf(h, "%v", res.Documents)
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// CheckAllowBuiltins refuses a name allow_builtins cannot turn on: one that is not among
// the builtins off by default.
func CheckAllowBuiltins(allow []string) error {
	for _, a := range allow {
		if !slices.Contains(unsafeBuiltins, a) {
			return fmt.Errorf("%q is not one of the builtins that are off by default (%s)", a, strings.Join(unsafeBuiltins, ", "))
		}
	}
	return nil
}

func capabilities(allow []string) (*ast.Capabilities, error) {
	if err := CheckAllowBuiltins(allow); err != nil {
		return nil, fmt.Errorf("policy: allow_builtins: %w", err)
	}
	caps := ast.CapabilitiesForThisVersion()
	allowed := map[string]bool{}
	for _, a := range allow {
		allowed[a] = true
	}
	kept := caps.Builtins[:0]
	for _, b := range caps.Builtins {
		off := false
		for _, u := range unsafeBuiltins {
			off = off || (b.Name == u && !allowed[u])
		}
		if !off {
			kept = append(kept, b)
		}
	}
	caps.Builtins = kept
	return caps, nil
}

// Capabilities are what a served policy may use, as an OPA capabilities document: OPA's
// builtins less the unsafe ones that allow does not re-enable, plus hookwall's own builtins with
// their types. Written to a file, it lets OPA's tools (opa check/fmt --capabilities, Regal, the
// Rego language server) accept hookwall policies and refuse what hookwall refuses.
func Capabilities(allow []string) (*ast.Capabilities, error) {
	caps, err := capabilities(allow)
	if err != nil {
		return nil, err
	}
	decls := customBuiltinDecls()
	for _, name := range slices.Sorted(maps.Keys(decls)) {
		caps.Builtins = append(caps.Builtins, decls[name])
	}
	return caps, nil
}

// NewTestRunner is OPA's test runner as hookwall runs Rego tests (`hookwall test`,
// [policies] test_on_reload): the serving capabilities less what allow does not re-enable, so
// a test cannot reach the network or environment a served policy could not; the hookwall
// builtins (TesterBuiltins: tests can mock them) with secrets and the clock now; builtin
// errors raised, as served; data as the store. Callers add their own reporting options.
func NewTestRunner(allow []string, secrets SecretSource, now func() time.Time, data map[string]any) (*tester.Runner, error) {
	builtins := TesterBuiltins(secrets, now)
	caps, err := capabilities(allow)
	if err != nil {
		return nil, err
	}
	for _, b := range builtins {
		caps.Builtins = append(caps.Builtins, b.Decl)
	}
	return tester.NewRunner().
		SetCompiler(ast.NewCompiler().WithCapabilities(caps).WithDefaultRegoVersion(ast.RegoV1)).
		SetStore(inmem.NewFromObjectWithOpts(data, inmem.OptRoundTripOnWrite(false))).
		AddCustomBuiltins(builtins).
		RaiseBuiltinErrors(true), nil
}

func compile(mods map[string]*ast.Module, data map[string]any, rev string, opts Options) (*Set, error) {
	caps, err := capabilities(opts.AllowBuiltins)
	if err != nil {
		return nil, err
	}
	for _, b := range customBuiltinDecls() {
		caps.Builtins = append(caps.Builtins, b)
	}
	c := ast.NewCompiler().
		WithCapabilities(caps).
		WithStrict(true).
		WithDefaultRegoVersion(ast.RegoV1).
		WithUseTypeCheckAnnotations(true)
	jsonReaders, deps := packageGraph(mods)
	c.Compile(mods)
	if c.Failed() {
		return nil, fmt.Errorf("policy: %w", describe(c.Errors))
	}
	secretRefs, err := checkCalls(mods)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	if err := checkHeaderKeys(c.Modules); err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	if err := checkUnconditionalConflicts(mods); err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	store := inmem.NewFromObjectWithOpts(data, inmem.OptRoundTripOnWrite(false))
	s := &Set{compiler: c, store: store, revision: rev, packages: map[string][]string{}, opts: opts, jsonReaders: jsonReaders, deps: deps, data: data,
		secretRefs: secretRefs, credHeaders: credentialHeaders(c.Modules)}
	for name, m := range c.Modules {
		s.files = append(s.files, name)
		pkg := strings.TrimPrefix(m.Package.Path.String(), "data.")
		for _, r := range m.Rules {
			rn := r.Head.Name.String()
			if rn == "" && len(r.Head.Reference) > 0 {
				rn = r.Head.Reference[0].String()
			}
			if !contains(s.packages[pkg], rn) {
				s.packages[pkg] = append(s.packages[pkg], rn)
			}
		}
	}
	sort.Strings(s.files)
	return s, nil
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// describe turns OPA errors into "file:line: message" lines, the form editors jump to.
func describe(err error) error {
	var ae ast.Errors
	if errors.As(err, &ae) {
		msgs := make([]string, 0, len(ae))
		for _, e := range ae {
			msg := e.Message
			// Off by default, a builtin is as unknown to the compiler as a typo: say how to
			// turn it on.
			if b, ok := strings.CutPrefix(msg, "undefined function "); ok && slices.Contains(unsafeBuiltins, b) {
				msg += fmt.Sprintf(" (off by default: it reaches the network or the process; [policies] allow_builtins = [%q] turns it on)", b)
			}
			if e.Location != nil {
				msgs = append(msgs, fmt.Sprintf("%s:%d: %s: %s", relPath(e.Location.File), e.Location.Row, e.Code, msg))
			} else {
				msgs = append(msgs, e.Code+": "+msg)
			}
		}
		return &CompileError{Msgs: msgs, err: err}
	}
	return err
}

// CompileError lists every compile problem, each as "file:line: message".
type CompileError struct {
	Msgs []string
	err  error
}

func (e *CompileError) Error() string {
	if len(e.Msgs) == 1 {
		return e.Msgs[0]
	}
	return fmt.Sprintf("%d errors:\n  %s", len(e.Msgs), strings.Join(e.Msgs, "\n  "))
}

func (e *CompileError) Unwrap() error { return e.err }

func relPath(p string) string {
	wd, err := os.Getwd()
	if err != nil {
		return p
	}
	if r, err := filepath.Rel(wd, p); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return p
}
