// Package fastpath evaluates a route's decision package without OPA's topdown interpreter,
// for the subset of Rego that webhook policies are mostly written in.
//
// Compile reads the rules of one package from an OPA compiler (so parsing, type checking,
// safety reordering and the rewriting of nested terms are OPA's own) and turns each rule
// body into a chain of Go closures over numbered variable slots. Whatever it does not
// support it refuses at compile time with an *UnsupportedError that names the construct and
// its location; the caller then keeps topdown for that package. Nothing is refused at run
// time, so a Program either exists and covers its whole package, or does not exist.
//
// The subset: complete rules (with default), partial set rules (`contains`), bodies of
// expressions that are terms, unifications whose one side is a fresh variable or both sides
// are ground, iteration over collections through references with fresh variables, `not`,
// calls to an allow-list of deterministic built-ins and to the hookwall built-ins, and
// references to input, to local variables and to the package's own rules. Refused: functions
// of the package called from a rule, `with`, `else`, `every`, comprehensions, rules with
// reference heads, other packages, base documents (data files) and nested packages.
//
// Contract: within the subset a Program's result is the document topdown computes for the
// same query and input: the same values, undefined where topdown is undefined, and an error
// where topdown in strict built-in error mode fails (a built-in's error, or complete rules
// that produce two values). The differential tests in engine/policy hold it to that.
package fastpath
