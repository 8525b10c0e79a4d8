// Package fastpath evaluates a route's decision package without OPA's topdown interpreter,
// for the subset of Rego that webhook policies are mostly written in.
//
// Compile reads the rules of one package from an OPA compiler (so parsing, type checking,
// safety reordering and the rewriting of nested terms are OPA's own) and turns each rule
// body into a chain of Go closures over numbered variable slots. Rules of other packages are
// compiled as references reach them, into the same program. Whatever it does not support it
// refuses at compile time with an *UnsupportedError that names the construct and its
// location; the caller then keeps topdown for that package. Nothing is refused at run time,
// so a Program either exists and covers its whole package, or does not exist.
//
// The subset: complete rules (with default and else), partial set rules (`contains`),
// partial object rules (`p[k] := v`), rules whose reference head adds one constant key
// (`labels.event := v`: labels is the object of the keys defined, empty when none is), and
// functions (with default and else; arguments that are variables or constants) of any
// package; bodies of expressions that are terms, unifications whose one side is a fresh
// variable or both sides are ground, iteration over collections through references with
// fresh variables, `not`, array, set and object comprehensions, calls to an allow-list of
// deterministic built-ins, to the hookwall built-ins and to functions; references to input,
// to local variables, to rules of any package, and to the base document when Options.Data
// gives it. Refused: `with`, `every`, comprehensions that topdown indexes, deeper reference
// heads, functions under a reference head (p.q.f(x): topdown makes p an object of the
// package document), a package that has nested packages or whose own document the base
// document holds values in, references to a whole package (or a document holding packages),
// to one key of a partial rule whose key is bound (topdown evaluates the rule for that key
// alone), to a function other than in a call, and to the base document when Options.Data is
// nil or overlaps the rule referred to. A reference into the base document reads its keys as
// topdown reads storage: a number by its text, an array index parsed from a string, any other
// key reaching nothing.
//
// Evaluation follows topdown's: every rule of the package's document is evaluated (with
// Only, that rule alone), other rules when first referred to, each at most once per
// evaluation; a function once per evaluation and arguments. A rule's definitions run in
// topdown's order, else branches when their definition yields nothing; rules whose values
// are all the same constant stop at the first that holds (topdown's early exit); a value
// that differs from another is a conflict error with topdown's message (without the list
// of values topdown appends), and so are two values of one object key. Topdown's rule index
// skips definitions that cannot hold for the input, and stops early among candidates that
// agree: that changes no value, only whether an error is raised, so a rule whose compiled
// evaluation fails is evaluated again the way topdown does, from the index's candidates. The
// one exception is a base document read by a variable key (data.m[input.k]): the index
// compares such keys as values, evaluation reads storage, so the index can rule out a
// definition that would hold; such rules take the index's candidates on every evaluation.
// The other is a number beyond float64's range, which OPA hashes by its spelling (1e400
// and 10e399 are equal and hash apart): rules holding one are refused.
//
// A value an evaluation returns never points into the run, which is pooled: the whole input
// as a value (loopback := input) gets a term of its own.
//
// The caller may hold input.request apart from the input document (a Request): then a
// reference to one of its fields or one named header reads that alone, a built-in of
// Options.RequestBuiltins whose operand is input.request (or a variable OPA bound to it)
// reads the request as the caller holds it, and the request object is asked for only where
// a rule uses the request, its headers or the whole input as a value.
//
// Work that grows with the input grows by iteration, and every 256 steps of iteration poll
// the caller's topdown.Cancel (or, without one, its context): past the deadline the
// evaluation fails with topdown's cancel error, so a slow policy fails closed.
//
// Contract: within the subset a Program's result is the document topdown computes for the
// same query and input: the same values, undefined where topdown is undefined, and an error
// where topdown in strict built-in error mode fails (a built-in's error, or conflicting
// values). The differential tests in engine/policy hold it to that.
package fastpath
