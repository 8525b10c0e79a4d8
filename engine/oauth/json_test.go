package oauth

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// parseClaims agrees with encoding/json (UseNumber) on what both accept, and refuses what
// encoding/json refuses.
func TestParseClaimsMatchesEncodingJSON(t *testing.T) {
	for _, doc := range []string{
		`{}`, ` {"a" : 1 } `, `{"sub":"svc","aud":["a","b"],"exp":1700000000,"n":-1.5e+3,"f":0.25,"t":true,"x":false,"z":null}`,
		`{"nested":{"a":[{"b":[]},{}],"c":"\u00e9\n\"q\"\\"}}`, `{"big":123456789012345678901234567890}`, `{"s":"ünïcødé ☃"}`,
		`{"a":1,}`, `{"a":01}`, `{"a":1.}`, `{"a":.5}`, `{"a":-}`, `{"a":1e}`, `{"a":tru}`, `{"a":"x}`, `[1]`, `"s"`, `{"a":1}x`,
		`{"a":"\x01"}`, `{"a" 1}`, `{"a":1 "b":2}`, `{a:1}`, `{"a":[1,]}`, `{"a":"\q"}`, ``, `{`,
	} {
		got, gerr := parseClaims([]byte(doc))
		d := json.NewDecoder(bytes.NewReader([]byte(doc)))
		d.UseNumber()
		var want map[string]any
		werr := d.Decode(&want)
		if werr == nil && d.More() {
			werr = errBadJSON
		}
		if werr == nil && want == nil {
			werr = errBadJSON
		}
		if (gerr == nil) != (werr == nil) {
			t.Errorf("%s: parseClaims err %v, encoding/json err %v", doc, gerr, werr)
			continue
		}
		if gerr == nil && !reflect.DeepEqual(got, want) {
			t.Errorf("%s: parseClaims %#v, encoding/json %#v", doc, got, want)
		}
	}
	for _, doc := range []string{`{"a":1,"a":2}`, "{\"a\":\"\xff\"}", `{"a":` + string(bytes.Repeat([]byte("["), 40)) + string(bytes.Repeat([]byte("]"), 40)) + `}`} {
		if _, err := parseClaims([]byte(doc)); err == nil {
			t.Errorf("%q: accepted (duplicate name, invalid UTF-8 or too deep)", doc)
		}
	}
}

func FuzzParseClaims(f *testing.F) {
	f.Add([]byte(`{"sub":"svc","aud":["a"],"exp":1700000000,"x":{"y":null}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := parseClaims(b)
		if err != nil {
			return
		}
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber()
		var want map[string]any
		if werr := d.Decode(&want); werr != nil || d.More() {
			t.Fatalf("parseClaims accepted what encoding/json refuses: %q (%v)", b, werr)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: %#v vs %#v", b, got, want)
		}
	})
}
