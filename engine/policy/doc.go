// Package policy compiles the Rego policies of a gateway and evaluates route decisions.
//
// Load compiles every .rego file under a directory together (Rego v1, strict mode), with
// data.json / data.yaml / data.yml files as data; *_test.rego files are left out of serving, and hidden
// files and directories below the root are skipped (files.go has the rule; LoadTests reads a
// tree by it for OPA's test runner). Unsafe
// builtins (http.send, net.lookup_ip_addr, opa.runtime) are removed from the capabilities
// unless Options.AllowBuiltins names them, so a policy that calls one fails to compile.
//
// Prepare returns a Query for one route package, prepared once; Query.Eval is safe for
// concurrent use and takes the input as an ast.Value (no JSON round trip). Decisions fail
// closed: an undefined allow denies, a malformed decision rule is an evaluation error, and
// builtin errors are strict (an error never silently makes a deny rule undefined).
//
// A package inside the subset of internal/fastpath is evaluated by it instead of OPA's
// topdown, to the same decisions and errors (Query.Evaluator says which, and why not);
// Options.OPAOnly, a tracer or EvalParams.OPA keep topdown. Query.EvalRequest takes
// input.request apart from the document, as a Request the compiled evaluator reads fields
// and headers from without building the object (verify included); NeedsRequest and
// NeedsDocument say what a compiled package may read, so the caller can skip the rest.
//
// CrossCheck evaluates a sample of compiled decisions again with topdown, off the request
// path (Sample picks them without a lock or an allocation, Admit holds them under a
// per-second ceiling with one atomic word), yielding the processor every crossCheckQuantum
// of an evaluation (EvalParams.Yield) so that a check delays requests sharing the processor
// by that much, not by its whole length; a difference can move the query to topdown for the
// rest of its life (Query.Compiled then reports false).
//
// The hookwall.webhook.verify and hookwall.apikey.verify builtins are registered per query
// with the secrets of the snapshot that prepared it; secret values never become Rego values.
// hookwall.oauth.verify is registered the same way with the snapshot's [[oauth]] issuers
// (Options.OAuth). A builtin handed a credential from the request (an API key, a bearer
// token, a generic hmac signature) notes it in the *Sensitive the evaluation's context
// carries under SensitiveKey, so that the caller can keep it out of its logs whatever header
// it came in.
package policy
