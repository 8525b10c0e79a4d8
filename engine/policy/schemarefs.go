package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// schemaBuiltins are OPA's JSON Schema builtins. Their schema loader follows a "$ref" to
// whatever it names: an http(s) URL is fetched (OPA leaves the hosts to the capabilities'
// allow_net, which http.send shares) and a file: URL is read from the gateway's disk,
// whatever the capabilities say. A schema may come from the request itself, so either would
// let a sender drive the gateway's requests or learn its files through the decision.
// The value is the schema's operand: topdown hands a builtin its output operand too.
var schemaBuiltins = map[string]int{"json.match_schema": 1, "json.verify_schema": 0}

// OPA's evaluator finds a standard builtin's implementation by its name in OPA's own
// registry before any the query is given, so the guard replaces the registered one, once,
// before anything evaluates: topdown, the compiled evaluator (which takes its standard
// builtins from the same registry) and `hookwall test` all run the guarded one.
func init() {
	for name, arg := range schemaBuiltins {
		topdown.RegisterBuiltinFunc(name, localSchemaOnly(name, arg, topdown.GetBuiltin(name)))
	}
}

// localSchemaOnly runs next when its operand arg, the schema, refers to nothing outside
// itself, and fails the call otherwise.
func localSchemaOnly(name string, arg int, next topdown.BuiltinFunc) topdown.BuiltinFunc {
	return func(bctx topdown.BuiltinContext, args []*ast.Term, iter func(*ast.Term) error) error {
		if arg < len(args) {
			if err := checkSchemaRefs(args[arg].Value); err != nil {
				return &topdown.Error{Code: topdown.BuiltinErr, Message: name + ": " + err.Error(), Location: bctx.Location}
			}
		}
		return next(bctx, args, iter)
	}
}

// checkSchemaRefs refuses a schema (an object, or JSON text) that the loader would take
// outside itself or around in a circle:
//
//   - a "$ref" that is not a JSON pointer into the schema itself ("#" or "#/…"), or an
//     "$id", "id" or "$schema" naming a file (a fragment is resolved against the base an id
//     sets); an id below the root is refused too, since it would move what a pointer means;
//   - references that lead back to where they started without descending into the
//     instance (`{"$ref": "#"}`, or two definitions naming each other through allOf): the
//     validator would follow them until the goroutine's stack ran out, which ends the
//     process. A reference reached through properties, items and the like is fine: the
//     instance is finite.
//
// Anything else is left to OPA, which reports malformed schemas itself.
func checkSchemaRefs(v ast.Value) error {
	var doc any
	switch x := v.(type) {
	case ast.String:
		// Numbers kept as text, as OPA's loader reads them: a number out of float64's range
		// must not make this parse fail where the loader's succeeds.
		d := json.NewDecoder(strings.NewReader(string(x)))
		d.UseNumber()
		if err := d.Decode(&doc); err != nil {
			return fmt.Errorf("the schema is not JSON: %w", err)
		}
	case ast.Object, *ast.Array:
		var err error
		if doc, err = ast.JSON(x); err != nil {
			return fmt.Errorf("the schema is not JSON: %w", err)
		}
	default:
		return nil
	}
	c := refCheck{root: doc}
	if err := c.walk(doc, true); err != nil {
		return err
	}
	return c.cycles()
}

// refCheck holds a schema's same-instance edges: from each subschema to the subschemas
// that validate the very same instance (its $ref's target, allOf, anyOf, oneOf, not, if,
// then, else and schema dependencies). A subschema is known by its map's address.
type refCheck struct {
	root  any
	edges map[uintptr][]uintptr
}

// sameInstance are the keywords whose subschemas apply to the instance itself.
var sameInstance = map[string]bool{"allOf": true, "anyOf": true, "oneOf": true, "not": true, "if": true, "then": true, "else": true, "dependencies": true}

func id(m map[string]any) uintptr { return reflect.ValueOf(m).Pointer() }

func (c *refCheck) edge(from uintptr, to map[string]any) {
	if c.edges == nil {
		c.edges = map[uintptr][]uintptr{}
	}
	c.edges[from] = append(c.edges[from], id(to))
}

func (c *refCheck) walk(v any, root bool) error {
	switch x := v.(type) {
	case map[string]any:
		from := id(x)
		for _, k := range slices.Sorted(maps.Keys(x)) { // the first error found is the same every time
			val := x[k]
			if s, ok := val.(string); ok {
				if err := checkRef(k, s, root); err != nil {
					return err
				}
				if k == "$ref" {
					if t, ok := c.resolve(s); ok {
						c.edge(from, t)
					}
				}
			}
			if sameInstance[k] {
				c.link(from, k, val)
			}
			var err error
			switch {
			case dataKeywords[k]:
				// Values, not schemas: the loader follows nothing in them.
			case nameKeywords[k]:
				// Names (a property called "default" or "$ref") mapped to schemas.
				if m, ok := val.(map[string]any); ok {
					for _, n := range slices.Sorted(maps.Keys(m)) {
						if err = c.walk(m[n], false); err != nil {
							break
						}
					}
				} else {
					err = c.walk(val, false)
				}
			default:
				err = c.walk(val, false)
			}
			if err != nil {
				return err
			}
		}
	case []any:
		for _, val := range x {
			if err := c.walk(val, false); err != nil {
				return err
			}
		}
	}
	return nil
}

// dataKeywords hold instance values (const, enum) or annotations (default, examples):
// an "id" or "$ref" key inside them is data.
var dataKeywords = map[string]bool{"const": true, "enum": true, "default": true, "examples": true}

// nameKeywords map names to subschemas: their keys are names, not keywords.
var nameKeywords = map[string]bool{"properties": true, "patternProperties": true, "definitions": true, "$defs": true, "dependencies": true, "dependentSchemas": true}

// link adds the edges of a same-instance keyword: a schema, a list of them, or (for
// dependencies) an object whose schema values apply.
func (c *refCheck) link(from uintptr, key string, val any) {
	switch x := val.(type) {
	case map[string]any:
		if key == "dependencies" {
			for _, d := range x {
				if m, ok := d.(map[string]any); ok {
					c.edge(from, m)
				}
			}
			return
		}
		c.edge(from, x)
	case []any:
		for _, e := range x {
			if m, ok := e.(map[string]any); ok {
				c.edge(from, m)
			}
		}
	}
}

// resolve finds the subschema a "#/…" pointer names; false when it names none (OPA
// reports that).
func (c *refCheck) resolve(ref string) (map[string]any, bool) {
	frag, err := url.PathUnescape(strings.TrimPrefix(ref, "#"))
	if err != nil {
		return nil, false
	}
	cur := c.root
	if frag != "" {
		for _, tok := range strings.Split(strings.TrimPrefix(frag, "/"), "/") {
			tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
			switch x := cur.(type) {
			case map[string]any:
				cur = x[tok]
			case []any:
				i, err := strconv.Atoi(tok)
				if err != nil || i < 0 || i >= len(x) {
					return nil, false
				}
				cur = x[i]
			default:
				return nil, false
			}
		}
	}
	m, ok := cur.(map[string]any)
	return m, ok
}

// cycles reports a circle of same-instance edges.
func (c *refCheck) cycles() error {
	const (
		unseen = iota
		open
		done
	)
	state := map[uintptr]int{}
	var visit func(n uintptr) bool
	visit = func(n uintptr) bool {
		switch state[n] {
		case open:
			return true
		case done:
			return false
		}
		state[n] = open
		for _, m := range c.edges[n] {
			if visit(m) {
				return true
			}
		}
		state[n] = done
		return false
	}
	for n := range c.edges {
		if visit(n) {
			return errors.New("its references lead back to themselves without descending into the document (e.g. {\"$ref\": \"#\"}): the validator would never end")
		}
	}
	return nil
}

// checkRef judges one string member key: value of a schema; root says whether the member
// is the schema's own.
func checkRef(key, value string, root bool) error {
	switch key {
	case "$ref":
		if value != "#" && !strings.HasPrefix(value, "#/") {
			return fmt.Errorf("$ref %q: a schema may refer only to itself (\"#\" or \"#/…\"); the gateway fetches no remote or file schema", value)
		}
	case "$id", "id", "$schema":
		if u, err := url.Parse(value); err != nil || strings.EqualFold(u.Scheme, "file") {
			return fmt.Errorf("%s %q: a schema may not name a file", key, value)
		}
		if key != "$schema" && !root {
			return fmt.Errorf("%s %q below the schema's root: it would change what the references under it mean", key, value)
		}
	}
	return nil
}
