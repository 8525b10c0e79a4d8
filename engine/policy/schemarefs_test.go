package policy

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// TestSchemaRefsStayInsideTheSchema: json.match_schema and json.verify_schema refuse a
// schema that refers outside itself, whether the policy wrote it or the request sent it,
// in both evaluators: a remote "$ref" is not fetched (the server counts no request) and a
// file's contents do not reach the decision. A schema that refers to its own definitions
// still validates.
func TestSchemaRefsStayInsideTheSchema(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"type": "object"}`))
	}))
	defer srv.Close()
	secret := filepath.Join(t.TempDir(), "secret.json")
	if err := os.WriteFile(secret, []byte(`{"type": "object", "properties": {"v": {"enum": ["s3cr3t"]}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	fileURL := "file://" + secret

	cases := []struct {
		name, src, body string
		refused         bool
	}{
		{"a remote $ref the policy wrote", `json.match_schema({}, {"$ref": "` + srv.URL + `/s.json"})`, "", true},
		{"a remote $ref to verify_schema", `json.verify_schema({"$ref": "` + srv.URL + `/v.json"})`, "", true},
		{"a remote $ref under definitions", `json.match_schema({"a": 1}, {"properties": {"a": {"$ref": "` + srv.URL + `/d.json"}}})`, "", true},
		{"a file $ref the request sent", `json.match_schema({"v": "s3cr3t"}, input.request.body)`, `{"$ref": "` + fileURL + `"}`, true},
		{"a relative $ref against a file id", `json.match_schema({"v": "s3cr3t"}, input.request.body)`, `{"$id": "` + fileURL + `", "$ref": "secret.json"}`, true},
		{"a fragment against a file id", `json.match_schema({"v": "s3cr3t"}, input.request.body)`, `{"$id": "` + fileURL + `", "$ref": "#"}`, true},
		{"a file $ref in upper case", `json.match_schema({"v": "s3cr3t"}, input.request.body)`, `{"$ref": "FILE://` + secret + `"}`, true},
		{"a reference to the root from the root", `json.match_schema({}, input.request.body)`, `{"$ref": "#"}`, true},
		{"two definitions naming each other", `json.match_schema({}, {"definitions": {"a": {"allOf": [{"$ref": "#/definitions/b"}]}, "b": {"anyOf": [{"$ref": "#/definitions/a"}]}}, "$ref": "#/definitions/a"})`, "", true},
		{"a circle through not and a dependency", `json.match_schema({"k": 1}, input.request.body)`, `{"definitions": {"a": {"not": {"$ref": "#/definitions/b"}}, "b": {"dependencies": {"k": {"$ref": "#/definitions/a"}}}}, "$ref": "#/definitions/a"}`, true},
		{"an id below the root", `json.match_schema({}, input.request.body)`, `{"definitions": {"a": {"$id": "https://example.com/a", "$ref": "#"}}, "$ref": "#/definitions/a"}`, true},
		{"a plain-name fragment", `json.match_schema({}, input.request.body)`, `{"$ref": "#node"}`, true},
		{"a recursive tree schema", `json.match_schema({"children": [{"children": []}, {"children": [{"children": []}]}]}, {"definitions": {"node": {"type": "object", "properties": {"children": {"type": "array", "items": {"$ref": "#/definitions/node"}}}}}, "$ref": "#/definitions/node"})`, "", false},
		{"a pointer with escapes", `json.match_schema({"a": "x"}, {"definitions": {"s/t": {"type": "string"}}, "properties": {"a": {"$ref": "#/definitions/s~1t"}}})`, "", false},
		{"a remote $ref beside a number past float64", `json.match_schema({}, input.request.body)`, `{"x": 1e400, "$ref": "` + srv.URL + `/big.json"}`, true},
		{"a file $ref beside a number past float64", `json.match_schema({"v": "s3cr3t"}, input.request.body)`, `{"x": 1e400, "$ref": "` + fileURL + `"}`, true},
		{"a circle beside a number past float64", `json.match_schema({}, input.request.body)`, `{"x": 1e400, "$ref": "#"}`, true},
		{"a schema that is not JSON", `json.match_schema({}, input.request.body)`, `{"$ref": "` + fileURL + `"`, true},
		{"a file $ref under a property named default", `json.match_schema({"default": 1}, input.request.body)`, `{"properties": {"default": {"$ref": "` + fileURL + `"}}}`, true},
		{"an id in examples: the loader takes ids from examples", `json.match_schema({"id": "evt_1"}, {"type": "object", "examples": [{"id": "evt_1"}]})`, "", true},
		{"a pointer into default", `json.match_schema({}, input.request.body)`, `{"default": {"$ref": "#"}, "$ref": "#/default"}`, true},
		{"a pointer into examples", `json.match_schema({}, input.request.body)`, `{"examples": [{"$ref": "#"}], "$ref": "#/examples/0"}`, true},
		{"a pointer to the properties map", `json.match_schema({}, input.request.body)`, `{"properties": {"$ref": {"type": "string"}}, "$ref": "#/properties"}`, true},
		{"a pointer into const", `json.match_schema({"v": "s3cr3t"}, input.request.body)`, `{"const": {"$ref": "` + fileURL + `"}, "$ref": "#/const"}`, true},
		{"a circle through default", `json.match_schema({}, input.request.body)`, `{"default": {"allOf": [{"$ref": "#"}]}, "allOf": [{"$ref": "#/default"}]}`, true},
		{"a root id with a fragment", `json.match_schema({}, input.request.body)`, `{"$id": "` + srv.URL + `/rootid.json#/bar", "definitions": {"a": {}}, "$ref": "#/definitions/a"}`, true},
		{"a root id that is a pointer", `json.match_schema({}, input.request.body)`, `{"$id": "#/definitions/a", "definitions": {"a": {"type": "object"}}, "$ref": "#/definitions/a"}`, true},
		{"an id in default", `json.match_schema({}, input.request.body)`, `{"default": {"$id": "#/definitions/a", "$ref": "` + srv.URL + `/idtrick.json"}, "definitions": {"a": {}}, "$ref": "#/definitions/a"}`, true},
		{"a percent-encoded pointer", `json.match_schema({}, input.request.body)`, `{"definitions": {"a/b": {}}, "$ref": "#/definitions/a%2Fb"}`, true},
		{"a reference in a schema that is an array", `json.verify_schema(input.request.body)`, `[{"$ref": "#/definitions/a"}, {"$ref": "` + srv.URL + `/arr.json"}]`, true},
		{"$defs", `json.match_schema({"a": 1}, {"$defs": {"n": {"type": "integer"}}, "properties": {"a": {"$ref": "#/$defs/n"}}})`, "", false},
		{"an id in const is data", `json.match_schema({"a": {"id": "x"}}, {"properties": {"a": {"const": {"id": "x"}}}})`, "", false},
		{"properties named $ref and id", `json.match_schema({"$ref": "x", "id": "y"}, {"properties": {"$ref": {"type": "string"}, "id": {"type": "string"}}})`, "", false},
		{"a local $ref", `json.match_schema({"a": "x"}, {"definitions": {"s": {"type": "string"}}, "properties": {"a": {"$ref": "#/definitions/s"}}})`, "", false},
		{"a local $ref as JSON text", `json.match_schema({"a": "x"}, input.request.body)`, `{"$id": "https://example.com/order", "definitions": {"s": {"type": "string"}}, "properties": {"a": {"$ref": "#/definitions/s"}}}`, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := "package p\n\ndefault allow := false\n\nallow if {\n\tr := " + c.src + "\n\tr[0]\n}\n"
			set, err := LoadModules(context.Background(), map[string]string{"p.rego": src}, nil, Options{})
			if err != nil {
				t.Fatal(err)
			}
			q := prepareCompiled(t, set, "p")
			in := doc(requestValue("POST", "/", nil, c.body))
			d, err := evalBoth(t, q, in, nil)
			switch {
			case c.refused && (err == nil || !strings.Contains(err.Error(), "json.")):
				t.Errorf("decided %+v, err %v; want the call refused", d, err)
			case !c.refused && (err != nil || !d.Allow):
				t.Errorf("decided %+v, err %v; want allowed", d, err)
			}
		})
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the schema server got %d requests, want none", n)
	}
}
