package policy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/tester"
	"github.com/open-policy-agent/opa/v1/topdown"
	"github.com/open-policy-agent/opa/v1/types"

	"github.com/hookwall/hookwall/engine/policy/internal/fastpath"
	"github.com/hookwall/hookwall/engine/webhook"
)

// VerifyName is the Rego name of the signature builtin.
const VerifyName = "hookwall.webhook.verify"

var verifyDecl = &rego.Function{
	Name: VerifyName,
	Decl: types.NewFunction(
		types.Args(
			types.Named("scheme", types.S).Description("signature scheme, e.g. \"github\""),
			types.Named("request", types.NewObject(nil, types.NewDynamicProperty(types.S, types.A))).Description("input.request"),
			types.Named("opts", types.NewObject(nil, types.NewDynamicProperty(types.S, types.A))).Description("{\"secret\": name or [names], \"tolerance\": \"5m\", \"url\": …}"),
		),
		types.Named("result", types.NewObject(nil, types.NewDynamicProperty(types.S, types.A))).Description("{\"valid\": bool, \"reason\": string}, and \"id\" (the signed message id) when \"standard\" verified"),
	),
	// Not memoized: OPA's memo key renders every argument as text, which for a request with
	// a body costs more than the HMAC it would save. Policies bind the result once instead.
	Nondeterministic: true, // depends on the clock (timestamp tolerance)
}

func customBuiltinDecls() map[string]*ast.Builtin {
	return map[string]*ast.Builtin{
		VerifyName: {Name: VerifyName, Decl: verifyDecl.Decl, Nondeterministic: true},
		APIKeyName: apiKeyBuiltin(),
		OAuthName:  oauthBuiltin(),
	}
}

// builtinDecls declares every builtin the policies compile against, by name.
func (s *Set) builtinDecls() map[string]*ast.Builtin {
	decls := make(map[string]*ast.Builtin, len(ast.BuiltinMap)+2)
	for name, b := range ast.BuiltinMap {
		decls[name] = b
	}
	for name, b := range customBuiltinDecls() {
		decls[name] = b
	}
	return decls
}

// fastBuiltins are hookwall's builtins for the fast path, with the errors topdown's wrapper
// would give them (rego.Function wraps its functions the same way).
func (s *Set) fastBuiltins() (map[string]topdown.BuiltinFunc, map[string]fastpath.RequestBuiltin) {
	v := verifier{secrets: s.opts.Secrets, now: s.opts.Now, cache: &optsCache{}, macs: &webhook.MACs{}, scratch: newScratchPool()}
	keys := newAPIKeys(s.opts.Secrets)
	oc := oauthCall{v: s.opts.OAuth, now: s.opts.Now}
	answer := func(name string, loc *ast.Location, t *ast.Term, err error, iter func(*ast.Term) error) error {
		if err != nil {
			return &topdown.Error{Code: topdown.BuiltinErr, Message: name + ": " + err.Error(), Location: loc}
		}
		if t == nil {
			return nil
		}
		return iter(t)
	}
	return map[string]topdown.BuiltinFunc{
			VerifyName: func(bctx topdown.BuiltinContext, a []*ast.Term, iter func(*ast.Term) error) error {
				t, err := v.call(bctx, a[0], a[1], a[2])
				return answer(VerifyName, bctx.Location, t, err, iter)
			},
			APIKeyName: func(bctx topdown.BuiltinContext, a []*ast.Term, iter func(*ast.Term) error) error {
				t, err := keys.call(bctx, a[0], a[1])
				return answer(APIKeyName, bctx.Location, t, err, iter)
			},
			OAuthName: func(bctx topdown.BuiltinContext, a []*ast.Term, iter func(*ast.Term) error) error {
				t, err := oc.call(bctx, a[0], a[1])
				return answer(OAuthName, bctx.Location, t, err, iter)
			},
		}, map[string]fastpath.RequestBuiltin{
			VerifyName: {Arg: 1, Func: func(bctx *topdown.BuiltinContext, req fastpath.Request, a []*ast.Term, iter func(*ast.Term) error) error {
				t, err := v.callCaptured(bctx, a[0], req, a[2])
				return answer(VerifyName, bctx.Location, t, err, iter)
			}, Prepare: func(consts []*ast.Term) fastpath.RequestFunc {
				p := v.prepare(consts[0], consts[2])
				if p == nil {
					return nil
				}
				return func(bctx *topdown.BuiltinContext, req fastpath.Request, a []*ast.Term, iter func(*ast.Term) error) error {
					t, err := p.callCaptured(bctx, a[0], req, a[2])
					return answer(VerifyName, bctx.Location, t, err, iter)
				}
			}},
		}
}

func (s *Set) builtinOptions() []func(*rego.Rego) {
	return []func(*rego.Rego){
		rego.Function3(verifyDecl, verifier{secrets: s.opts.Secrets, now: s.opts.Now, cache: &optsCache{}, macs: &webhook.MACs{}, scratch: newScratchPool()}.call),
		newAPIKeys(s.opts.Secrets).option(),
		oauthCall{v: s.opts.OAuth, now: s.opts.Now}.option(),
	}
}

// TesterBuiltins returns the hookwall builtins for OPA's test runner, so *_test.rego files run
// with the production implementation (and can still mock it with `with`). hookwall.oauth.verify
// has no issuers there: a test mocks it.
func TesterBuiltins(secrets SecretSource, now func() time.Time) []*tester.Builtin {
	v := verifier{secrets: secrets, now: now}
	return []*tester.Builtin{{
		Decl: &ast.Builtin{Name: VerifyName, Decl: verifyDecl.Decl, Nondeterministic: true},
		Func: rego.Function3(verifyDecl, v.call),
	}, newAPIKeys(secrets).testerBuiltin(), oauthCall{now: now}.testerBuiltin()}
}

type verifier struct {
	secrets SecretSource
	now     func() time.Time
	// cache keeps parsed opts objects (nil: none): a policy passes the same few opts on every
	// request. macs keeps keyed HMAC states (nil: none). Both live as long as the policy set.
	cache *optsCache
	macs  *webhook.MACs
	// scratch pools verifyScratch (nil: none): the request view and the options escape into
	// webhook.Verify, two allocations a call otherwise.
	scratch *sync.Pool
}

// verifyScratch is one verification's request view and options.
type verifyScratch struct {
	req webhook.Request
	o   webhook.Options
}

// borrow returns a cleared scratch; give it back with giveBack.
func (v verifier) borrow() *verifyScratch {
	if v.scratch == nil {
		return &verifyScratch{}
	}
	return v.scratch.Get().(*verifyScratch)
}

// giveBack clears sc, so that no secret or request bytes stay reachable from the pool, and
// pools it.
func (v verifier) giveBack(sc *verifyScratch) {
	if v.scratch != nil {
		*sc = verifyScratch{}
		v.scratch.Put(sc)
	}
}

func newScratchPool() *sync.Pool {
	return &sync.Pool{New: func() any { return &verifyScratch{} }}
}

// optsCache maps opts objects, by value, to their parsed options (without Now). It holds at
// most optsCacheSize entries; past that, opts are parsed on every call.
type optsCache struct {
	mu sync.RWMutex
	m  map[int][]optsEntry
	n  int
}

type optsEntry struct {
	scheme string
	key    ast.Value // a copy: the caller's term may be a view of a request buffer
	opts   webhook.Options
	names  []string // opts.secret
	// secrets are names' values as last resolved, handed out again while the source still
	// returns the very same bytes (compared by address, not content: no secret is read).
	secrets *atomic.Pointer[[][]byte]
}

const optsCacheSize = 64

// cloneValue deep-copies v, strings included.
func cloneValue(v ast.Value) ast.Value {
	switch x := v.(type) {
	case ast.String:
		return ast.String(strings.Clone(string(x)))
	case ast.Number:
		return ast.Number(strings.Clone(string(x)))
	case *ast.Array:
		out := make([]*ast.Term, x.Len())
		for i := range out {
			out[i] = ast.NewTerm(cloneValue(x.Elem(i).Value))
		}
		return ast.NewArray(out...)
	case ast.Set:
		out := ast.NewSet()
		x.Foreach(func(e *ast.Term) { out.Add(ast.NewTerm(cloneValue(e.Value))) })
		return out
	case ast.Object:
		out := ast.NewObject()
		x.Foreach(func(k, e *ast.Term) { out.Insert(ast.NewTerm(cloneValue(k.Value)), ast.NewTerm(cloneValue(e.Value))) })
		return out
	}
	return v // null, booleans; refs and the like do not occur in a value
}

func (c *optsCache) get(scheme string, t *ast.Term) (webhook.Options, []string, *atomic.Pointer[[][]byte], bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, e := range c.m[t.Hash()] {
		if e.scheme == scheme && e.key.Compare(t.Value) == 0 {
			return e.opts, e.names, e.secrets, true
		}
	}
	return webhook.Options{}, nil, nil, false
}

func (c *optsCache) put(scheme string, t *ast.Term, o webhook.Options, names []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n >= optsCacheSize {
		return
	}
	if c.m == nil {
		c.m = map[int][]optsEntry{}
	}
	// Strings are cloned: an opts object built from the request holds views of its buffers.
	o.Now, o.Secrets = time.Time{}, nil
	for _, p := range []*string{&o.URL, &o.Algorithm, &o.SigHeader, &o.Prefix, &o.Encoding, &o.Template, &o.TimestampHeader, &o.IDHeader} {
		*p = strings.Clone(*p)
	}
	names = append([]string(nil), names...)
	for i := range names {
		names[i] = strings.Clone(names[i])
	}
	h := t.Hash()
	c.m[h] = append(c.m[h], optsEntry{scheme: strings.Clone(scheme), key: cloneValue(t.Value), opts: o, names: names,
		secrets: new(atomic.Pointer[[][]byte])})
	c.n++
}

var (
	keyValid  = ast.StringTerm("valid")
	keyReason = ast.StringTerm("reason")
	keyID     = ast.StringTerm("id")
	validTerm = ast.ObjectTerm(ast.Item(keyValid, ast.BooleanTerm(true)), ast.Item(keyReason, ast.StringTerm("")))
)

func (v verifier) call(bctx rego.BuiltinContext, schemeT, reqT, optsT *ast.Term) (*ast.Term, error) {
	scheme, ok := schemeT.Value.(ast.String)
	if !ok {
		return nil, errors.New("scheme must be a string")
	}
	reqObj, ok := reqT.Value.(ast.Object)
	if !ok {
		return nil, errors.New("request must be an object (pass input.request)")
	}
	sc := v.borrow()
	defer v.giveBack(sc)
	sc.req = webhook.Request{
		Method:     objString(reqObj, reqMethod),
		Scheme:     objString(reqObj, reqScheme),
		Host:       objString(reqObj, reqHost),
		RequestURI: requestURI(reqObj),
		Header:     headerView{obj: objObject(reqObj, reqHeaders)},
		Body:       unsafeBytes(objString(reqObj, reqBody)),
	}
	return v.verify(&bctx, string(scheme), sc, optsT)
}

// capturedRequest is input.request as the gateway captured it (engine/internal/input's Captured):
// verify reads its fields there, and no request object is built for it.
type capturedRequest interface {
	Text(key string) string
	Get(lowerName string) string
}

// callCaptured is call with input.request read from the request the gateway captured; a
// Request without the fields view is read from its object. bctx is read, never kept.
func (v verifier) callCaptured(bctx *rego.BuiltinContext, schemeT *ast.Term, r Request, optsT *ast.Term) (*ast.Term, error) {
	c, ok := r.(capturedRequest)
	if !ok {
		return v.call(*bctx, schemeT, ast.NewTerm(r.Object()), optsT)
	}
	scheme, ok := schemeT.Value.(ast.String)
	if !ok {
		return nil, errors.New("scheme must be a string")
	}
	sc := v.borrow()
	defer v.giveBack(sc)
	sc.req = capturedView(c)
	return v.verify(bctx, string(scheme), sc, optsT)
}

// capturedView is the request verify reads, read from the captured request.
func capturedView(c capturedRequest) webhook.Request {
	uri := c.Text("uri")
	if uri == "" {
		uri = c.Text("path")
	}
	return webhook.Request{
		Method: c.Text("method"), Scheme: c.Text("scheme"), Host: c.Text("host"), RequestURI: uri,
		Header: c, Body: unsafeBytes(c.Text("body")),
	}
}

// preparedVerify is verify at a call site whose scheme and opts are constants of the policy
// (the common hookwall.webhook.verify("github", input.request, {"secret": "github"})): the
// opts are parsed once, when the policy is compiled, and never looked up in the opts cache;
// the secrets are still looked up on every call, as the source decides what they are now.
type preparedVerify struct {
	v       verifier
	scheme  string
	opts    webhook.Options // without Now and Secrets
	names   []string
	secrets atomic.Pointer[[][]byte] // names' values as last resolved (resolveAgain)
}

// prepare returns verify made for the constant scheme and opts; nil when either is not a
// constant, or the opts do not parse (the call then reports why, on every evaluation, as
// before).
func (v verifier) prepare(schemeT, optsT *ast.Term) *preparedVerify {
	if schemeT == nil || optsT == nil {
		return nil
	}
	scheme, ok := schemeT.Value.(ast.String)
	optObj, isObj := optsT.Value.(ast.Object)
	if !ok || !isObj {
		return nil
	}
	o, names, err := v.options(string(scheme), optObj, &rego.BuiltinContext{})
	if err != nil {
		return nil
	}
	o.Now, o.Secrets = time.Time{}, nil
	return &preparedVerify{v: v, scheme: string(scheme), opts: o, names: names}
}

// callCaptured is verifier.callCaptured with the prepared scheme and opts (schemeT and optsT
// are their terms, for a request that is not a captured one).
func (p *preparedVerify) callCaptured(bctx *rego.BuiltinContext, schemeT *ast.Term, r Request, optsT *ast.Term) (*ast.Term, error) {
	c, ok := r.(capturedRequest)
	if !ok {
		return p.v.callCaptured(bctx, schemeT, r, optsT)
	}
	sc := p.v.borrow()
	defer p.v.giveBack(sc)
	sc.req = capturedView(c)
	var err error
	if sc.o, err = p.v.forCall(p.scheme, p.opts, p.names, &p.secrets, bctx); err != nil {
		return nil, err
	}
	return p.v.check(bctx.Context, p.scheme, sc)
}

// verify checks sc.req with the options optsT names, parsed into sc.o.
func (v verifier) verify(bctx *rego.BuiltinContext, scheme string, sc *verifyScratch, optsT *ast.Term) (*ast.Term, error) {
	optObj, ok := optsT.Value.(ast.Object)
	if !ok {
		return nil, errors.New("opts must be an object")
	}
	var err error
	if sc.o, err = v.cachedOptions(scheme, optsT, optObj, bctx); err != nil {
		return nil, err
	}
	return v.check(bctx.Context, scheme, sc)
}

// check verifies sc.req with sc.o, its secrets and clock set. A generic "hmac" signature is
// noted as sensitive in ctx: its header's name is the policy's own, which the decision log's
// mask may not know (every named scheme's header is one it knows).
func (v verifier) check(ctx context.Context, scheme string, sc *verifyScratch) (*ast.Term, error) {
	if scheme == "hmac" && sc.o.SigHeader != "" {
		noteSensitive(ctx, sc.req.Header.Get(sc.o.SigHeader)) // options lower-cased it
	}
	sc.o.MACs = v.macs
	res, err := webhook.Verify(scheme, &sc.req, &sc.o)
	if err != nil {
		return nil, err
	}
	if res.Valid && res.ID != "" {
		// The id the signature covers, for a dedupe key: the library keys on it rather than on
		// a header it would pick itself, so the key is always the id this check verified.
		return ast.ObjectTerm(ast.Item(keyValid, ast.BooleanTerm(true)), ast.Item(keyReason, ast.StringTerm("")),
			ast.Item(keyID, ast.StringTerm(res.ID))), nil
	}
	if res.Valid {
		return validTerm, nil
	}
	return ast.ObjectTerm(ast.Item(keyValid, ast.BooleanTerm(false)), ast.Item(keyReason, ast.StringTerm(res.Reason))), nil
}

var (
	optSecret          = ast.StringTerm("secret")
	optTolerance       = ast.StringTerm("tolerance")
	optURL             = ast.StringTerm("url")
	optAlgorithm       = ast.StringTerm("algorithm")
	optHeader          = ast.StringTerm("header")
	optPrefix          = ast.StringTerm("prefix")
	optEncoding        = ast.StringTerm("encoding")
	optTemplate        = ast.StringTerm("template")
	optTimestampHeader = ast.StringTerm("timestamp_header")
	optIDHeader        = ast.StringTerm("id_header")
)

// cachedOptions is options, parsed once per distinct opts object; the secrets are looked up
// by name on every call all the same.
func (v verifier) cachedOptions(scheme string, optsT *ast.Term, optObj ast.Object, bctx *rego.BuiltinContext) (webhook.Options, error) {
	if v.cache != nil {
		if o, names, last, ok := v.cache.get(scheme, optsT); ok {
			return v.forCall(scheme, o, names, last, bctx)
		}
	}
	o, names, err := v.options(scheme, optObj, bctx)
	if err == nil && v.cache != nil {
		v.cache.put(scheme, optsT, o, names)
	}
	return o, err
}

// forCall completes o, parsed once (without Now and Secrets) from opts naming the secrets
// names, for one call: the secrets as the source has them now (last holds them as last
// resolved) and the verification time.
func (v verifier) forCall(scheme string, o webhook.Options, names []string, last *atomic.Pointer[[][]byte], bctx *rego.BuiltinContext) (webhook.Options, error) {
	var err error
	if o.Secrets, err = v.resolveAgain(names, last); err != nil {
		return o, fmt.Errorf("%s(%q): %w", VerifyName, scheme, err)
	}
	o.Now = v.clock(bctx)
	return o, nil
}

// clock is the verification time: the configured clock, else the evaluation's time.
func (v verifier) clock(bctx *rego.BuiltinContext) time.Time {
	if v.now != nil {
		return v.now()
	}
	if bctx.Time != nil {
		if n, ok := bctx.Time.Value.(ast.Number); ok {
			if ns, ok := n.Int64(); ok {
				return time.Unix(0, ns)
			}
		}
	}
	return time.Time{}
}

// options reads opts with direct lookups (no iteration closure): this runs on every request.
func (v verifier) options(scheme string, o ast.Object, bctx *rego.BuiltinContext) (out webhook.Options, names []string, err error) {
	out.Now = v.clock(bctx)
	wrap := func(err error) error { return fmt.Errorf("%s(%q): %w", VerifyName, scheme, err) }
	found := 0
	if t := o.Get(optSecret); t != nil {
		found++
		if names, err = secretNames(t); err != nil {
			return out, nil, wrap(err)
		}
		if out.Secrets, err = v.resolve(names); err != nil {
			return out, nil, wrap(err)
		}
	}
	if t := o.Get(optTolerance); t != nil {
		found++
		s, ok := t.Value.(ast.String)
		if !ok {
			return out, nil, wrap(errors.New("opts.tolerance must be a duration string such as \"5m\""))
		}
		if out.Tolerance, err = parseTolerance(string(s)); err != nil {
			return out, nil, wrap(err)
		}
	}
	for _, f := range []struct {
		key   *ast.Term
		dst   *string
		lower bool
	}{
		{optURL, &out.URL, false}, {optAlgorithm, &out.Algorithm, false}, {optHeader, &out.SigHeader, true},
		{optPrefix, &out.Prefix, false}, {optEncoding, &out.Encoding, false}, {optTemplate, &out.Template, false},
		{optTimestampHeader, &out.TimestampHeader, true}, {optIDHeader, &out.IDHeader, true},
	} {
		t := o.Get(f.key)
		if t == nil {
			continue
		}
		found++
		s, ok := t.Value.(ast.String)
		if !ok {
			return out, nil, wrap(fmt.Errorf("opts.%s must be a string", string(f.key.Value.(ast.String))))
		}
		*f.dst = string(s)
		if f.lower {
			*f.dst = strings.ToLower(*f.dst)
		}
	}
	if found != o.Len() {
		for _, k := range o.Keys() {
			ks, ok := k.Value.(ast.String)
			if !ok {
				return out, nil, wrap(fmt.Errorf("opts: key %v must be a string", k))
			}
			if err := knownName("opts key", string(ks), verifyOpts); err != nil {
				return out, nil, wrap(err)
			}
		}
	}
	return out, names, nil
}

// secretNames reads opts.secret: one name or a list of names.
func secretNames(val *ast.Term) ([]string, error) {
	var names []string
	add := func(t *ast.Term) error {
		name, ok := t.Value.(ast.String)
		if !ok {
			return errors.New("opts.secret must be a secret name or a list of names")
		}
		names = append(names, string(name))
		return nil
	}
	var err error
	switch x := val.Value.(type) {
	case ast.String:
		err = add(val)
	case *ast.Array:
		x.Foreach(func(t *ast.Term) {
			if err == nil {
				err = add(t)
			}
		})
	case ast.Set:
		x.Foreach(func(t *ast.Term) {
			if err == nil {
				err = add(t)
			}
		})
	default:
		err = errors.New("opts.secret must be a secret name or a list of names")
	}
	return names, err
}

// secret returns the secret name of src (nil: none), or an error naming it.
func secret(src SecretSource, name string) ([]byte, error) {
	if src != nil {
		if b, ok := src.Get(name); ok {
			return b, nil
		}
	}
	return nil, fmt.Errorf("no secret named %q in [secrets]", name)
}

// resolve looks the named secrets up, on every call: the source decides what they are now.
func (v verifier) resolve(names []string) ([][]byte, error) {
	out := make([][]byte, 0, len(names))
	for _, name := range names {
		b, err := secret(v.secrets, name)
		if err != nil {
			return nil, fmt.Errorf("opts.secret: %w", err)
		}
		out = append(out, b)
	}
	return out, nil
}

// resolveAgain is resolve for names resolved before into last: while the source returns the
// same bytes for every name, the slice made then is handed out again (read-only: nothing
// writes to a verification's secrets) rather than made anew on every request. Each secret is
// still looked up once a call: the source decides what it is now.
func (v verifier) resolveAgain(names []string, last *atomic.Pointer[[][]byte]) ([][]byte, error) {
	var prev [][]byte
	if p := last.Load(); p != nil && len(*p) == len(names) && len(names) > 0 {
		prev = *p
	}
	var out [][]byte
	for i, name := range names {
		b, err := secret(v.secrets, name)
		if err != nil {
			return nil, fmt.Errorf("opts.secret: %w", err)
		}
		if out == nil && prev != nil && sameBytes(b, prev[i]) {
			continue
		}
		if out == nil {
			out = append(make([][]byte, 0, len(names)), prev[:min(i, len(prev))]...)
		}
		out = append(out, b)
	}
	if out == nil && prev != nil {
		return prev, nil
	}
	if out == nil {
		out = [][]byte{}
	}
	keep := out // its own variable: storing &out would put out on the heap on every call
	last.Store(&keep)
	return out, nil
}

// sameBytes reports whether a and b are the very same bytes (address and length), not
// whether they hold the same content: no secret is read to decide.
func sameBytes(a, b []byte) bool {
	return len(a) == len(b) && len(a) > 0 && &a[0] == &b[0]
}

// headerView reads headers from input.request.headers without copying them into a map.
type headerView struct{ obj ast.Object }

func (h headerView) Get(name string) string {
	if h.obj == nil {
		return ""
	}
	key, ok := headerTerms[name]
	if !ok {
		key = ast.StringTerm(name)
	}
	t := h.obj.Get(key)
	if t == nil {
		return ""
	}
	s, _ := t.Value.(ast.String)
	return string(s)
}

// headerTerms are prebuilt lookup keys for the headers the schemes read, so a lookup does not
// allocate a term. Read-only after init.
var headerTerms = func() map[string]*ast.Term {
	m := map[string]*ast.Term{}
	for _, h := range []string{
		"x-hub-signature-256", "stripe-signature", "x-slack-signature", "x-slack-request-timestamp",
		"x-shopify-hmac-sha256", "x-twilio-signature", "content-type", "webhook-id", "webhook-timestamp",
		"webhook-signature", "svix-id", "svix-timestamp", "svix-signature", "x-square-hmacsha256-signature",
		"paddle-signature", "x-pagerduty-signature", "x-twilio-email-event-webhook-signature",
		"x-twilio-email-event-webhook-timestamp", "x-signature-ed25519", "x-signature-timestamp",
		"x-zm-signature", "x-zm-request-timestamp", "linear-signature",
	} {
		m[h] = ast.StringTerm(h)
	}
	return m
}()

var (
	reqMethod  = ast.StringTerm("method")
	reqScheme  = ast.StringTerm("scheme")
	reqHost    = ast.StringTerm("host")
	reqURI     = ast.StringTerm("uri")
	reqPath    = ast.StringTerm("path")
	reqHeaders = ast.StringTerm("headers")
	reqBody    = ast.StringTerm("body")
)

func objString(o ast.Object, key *ast.Term) string {
	t := o.Get(key)
	if t == nil {
		return ""
	}
	s, _ := t.Value.(ast.String)
	return string(s)
}

func objObject(o ast.Object, key *ast.Term) ast.Object {
	t := o.Get(key)
	if t == nil {
		return nil
	}
	obj, _ := t.Value.(ast.Object)
	return obj
}

// requestURI prefers the raw request URI the input builder records, so the signed URL is the
// one received (query order and escaping intact).
func requestURI(o ast.Object) string {
	if u := objString(o, reqURI); u != "" {
		return u
	}
	return objString(o, reqPath)
}

// unsafeBytes views s as bytes without copying; webhook.Verify only reads Body.
func unsafeBytes(s string) []byte {
	if s == "" {
		return nil
	}
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

var _ topdown.QueryTracer // tracer type is part of EvalParams
