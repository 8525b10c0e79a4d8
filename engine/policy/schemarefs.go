package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"reflect"
	"slices"
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
// outside itself or around in a circle. The loader is lenient: it fetches a "$ref" to a URL,
// reads a file: one, resolves a pointer into any part of the document (data and name maps
// included) as a schema, and takes ids from data too. So the check is strict, and refuses:
//
//   - a "$ref", anywhere, other than "#" (the root), "#/definitions/NAME" or
//     "#/$defs/NAME" (NAME one token, "~0" and "~1" its only escapes, no "%");
//   - an "$id" or "id" anywhere below the root but inside const and enum (the only values
//     the loader takes no id from), and at the root one that names a file or carries a
//     fragment (the loader files the document under it, fragment and all); a "$schema"
//     that names a file;
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
	if err := c.walk(doc, true, false); err != nil {
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

func (c *refCheck) walk(v any, root, data bool) error {
	switch x := v.(type) {
	case map[string]any:
		from := id(x)
		for _, k := range slices.Sorted(maps.Keys(x)) { // the first error found is the same every time
			val := x[k]
			if s, ok := val.(string); ok {
				if err := checkRef(k, s, root, data); err != nil {
					return err
				}
				if k == "$ref" && !data {
					if t, ok := c.resolve(s); ok {
						c.edge(from, t)
					}
				}
			}
			if sameInstance[k] && !data {
				c.link(from, k, val)
			}
			if err := c.walk(val, false, data || opaqueKeywords[k]); err != nil {
				return err
			}
		}
	case []any:
		for _, val := range x {
			if err := c.walk(val, false, data); err != nil {
				return err
			}
		}
	}
	return nil
}

// opaqueKeywords hold instance values the loader neither takes ids from nor can be pointed
// into (a "$ref" names the root or a definition only): an "id" key inside them is data.
var opaqueKeywords = map[string]bool{"const": true, "enum": true}

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

// resolve finds the subschema a local reference (localRef) names; false when it names
// none (OPA reports that).
func (c *refCheck) resolve(ref string) (map[string]any, bool) {
	cur := c.root
	if ref != "#" {
		keyword, name, ok := splitDefinitionRef(ref)
		if !ok {
			return nil, false
		}
		root, _ := c.root.(map[string]any) // a schema is an object, but the text may be anything
		defs, _ := root[keyword].(map[string]any)
		cur = defs[name]
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
// is the schema's own, data whether it is inside const or enum.
func checkRef(key, value string, root, data bool) error {
	switch key {
	case "$ref":
		if !localRef(value) {
			return fmt.Errorf("$ref %q: a schema may refer only to itself (\"#\") or to one of its definitions (\"#/definitions/NAME\", \"#/$defs/NAME\"); the gateway fetches no remote or file schema", value)
		}
	case "$id", "id", "$schema":
		if data {
			return nil
		}
		u, err := url.Parse(value)
		if err != nil || strings.EqualFold(u.Scheme, "file") {
			return fmt.Errorf("%s %q: a schema may not name a file", key, value)
		}
		if key == "$schema" {
			return nil
		}
		if !root {
			return fmt.Errorf("%s %q below the schema's root: it would change what the references under it mean", key, value)
		}
		if strings.Contains(value, "#") && value != "#" && !strings.HasSuffix(value, "#") {
			return fmt.Errorf("%s %q: an id with a fragment would file the schema under it", key, value)
		}
	}
	return nil
}

// localRef reports whether ref is "#", "#/definitions/NAME" or "#/$defs/NAME".
func localRef(ref string) bool {
	_, _, ok := splitDefinitionRef(ref)
	return ref == "#" || ok
}

// splitDefinitionRef splits "#/definitions/NAME" or "#/$defs/NAME" into the keyword and
// NAME, unescaped: one JSON pointer token, "~0" and "~1" its only escapes, no "%" (which
// the loader would decode into another token).
func splitDefinitionRef(ref string) (keyword, name string, ok bool) {
	for _, keyword = range []string{"definitions", "$defs"} {
		if name, ok = strings.CutPrefix(ref, "#/"+keyword+"/"); ok {
			break
		}
	}
	if !ok || name == "" || strings.ContainsAny(name, "/%") {
		return "", "", false
	}
	for i := strings.IndexByte(name, '~'); i >= 0; {
		if i+1 >= len(name) || (name[i+1] != '0' && name[i+1] != '1') {
			return "", "", false
		}
		if j := strings.IndexByte(name[i+2:], '~'); j >= 0 {
			i += 2 + j
		} else {
			i = -1
		}
	}
	return keyword, strings.ReplaceAll(strings.ReplaceAll(name, "~1", "/"), "~0", "~"), true
}
