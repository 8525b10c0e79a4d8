package input

import (
	"bytes"
	"encoding/json"
	"errors"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

// referenceJSON is what input.request.json held before the parse was the Builder's own:
// encoding/json's value (numbers as json.Number) through ast.InterfaceToValue, for a body
// that is exactly one JSON value and whitespace.
func referenceJSON(body string) (ast.Value, bool) {
	dec := json.NewDecoder(strings.NewReader(body))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		return nil, false
	}
	if strings.TrimLeft(body[dec.InputOffset():], " \t\r\n") != "" {
		return nil, false
	}
	v, err := ast.InterfaceToValue(x)
	if err != nil {
		return nil, false
	}
	return v, true
}

// longNumber reports whether encoding/json's token stream of body, up to its first error,
// holds a number of more than maxJSONNumber bytes.
func longNumber(body string) bool {
	dec := json.NewDecoder(strings.NewReader(body))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		if n, ok := tok.(json.Number); ok && len(n) > maxJSONNumber {
			return true
		}
	}
}

// repeatedKey reports whether encoding/json's token stream of body, up to its first error,
// holds an object with a key twice (keys as the decoder unescapes them).
func repeatedKey(body string) bool {
	dec := json.NewDecoder(strings.NewReader(body))
	dec.UseNumber()
	type level struct {
		keys   map[string]bool // nil in an array
		expect bool            // the next token of an object is a key
	}
	var stack []level
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		top := len(stack) - 1
		switch tok {
		case json.Delim('{'):
			if top >= 0 && stack[top].keys != nil {
				stack[top].expect = true
			}
			stack = append(stack, level{keys: map[string]bool{}, expect: true})
			continue
		case json.Delim('['):
			if top >= 0 && stack[top].keys != nil {
				stack[top].expect = true
			}
			stack = append(stack, level{})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:top]
			continue
		}
		if top < 0 || stack[top].keys == nil {
			continue
		}
		if stack[top].expect {
			k, _ := tok.(string)
			if stack[top].keys[k] {
				return true
			}
			stack[top].keys[k] = true
		}
		stack[top].expect = !stack[top].expect
	}
}

var unlimited = JSONLimits{MaxDepth: 10_000, MaxElements: 1 << 30}

// FuzzJSON checks the Builder's parse against encoding/json, the maintained parser it
// replaces: the same bodies are JSON, and each gives the same value (invalid UTF-8, lone
// surrogates, repeated keys and numbers included). Run: go test -fuzz FuzzJSON ./engine/input
func FuzzJSON(f *testing.F) {
	for _, s := range []string{
		`{"a":1,"b":[true,false,null],"c":{"d":"e"}}`, ` [ ] `, `{}`, `"\u00e9\ud83d\ude00\ud800x\\\/\b\f\n\r\t"`,
		"\"\xff\xfe bad utf-8 \xed\xa0\x80\"", `{"a":1,"a":2}`, `-0.5e+10`, `1E5`, `0`, `01`, `1.`, `.5`, `-`, `[1,]`,
		`{"a" 1}`, `{"a":1}}`, `{"a":1} x`, `tru`, `nul`, `"\x01"`, `"\u12"`, `[[[[[]]]]]`, "\"\t\"", `123456789012345678901234567890`,
		"\xef\xbb\xbf{}", "{\x00}\x00", "\x00{", "1\x00", `{"n":1e99999999999}`, `1e99999999999`, ` {"a":Infinity}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		var b Builder
		got, ok, err := b.parseJSON(body, unlimited)
		want, wantOK := referenceJSON(body)
		if err == errJSONUnicode && !wantOK {
			return // a BOM, or UTF-16/32: refused when a policy reads the json, never JSON to encoding/json
		}
		if err == errJSONNumber {
			if !longNumber(body) {
				t.Fatalf("%q: refused for a long number; encoding/json's tokens show none", body)
			}
			return
		}
		if err == errJSONMalformed {
			if wantOK || !startsAsContainer(body) {
				t.Fatalf("%q: refused as an object or array that is not JSON; encoding/json reads it: %v", body, wantOK)
			}
			return
		}
		if err == errJSONNumberRange {
			if !json.Valid([]byte(body)) {
				t.Fatalf("%q: refused for a number out of range, but encoding/json finds the body not JSON", body)
			}
			return
		}
		repeated := repeatedKey(body)
		if err == errJSONRepeatedKey {
			if !repeated {
				t.Fatalf("%q: refused for a key twice; encoding/json's tokens show none", body)
			}
			return
		}
		if ok && repeated {
			t.Fatalf("%q: parsed, but encoding/json's tokens show an object with a key twice", body)
		}
		if err != nil {
			t.Fatalf("%q: %v with no limit in reach (encoding/json reads it: %v)", body, err, wantOK)
		}
		if ok != wantOK {
			t.Fatalf("%q: JSON = %v, encoding/json says %v", body, ok, wantOK)
		}
		if ok && got.Compare(want) != 0 {
			t.Fatalf("%q: parsed to %v, encoding/json to %v", body, got, want)
		}
	})
}

func TestJSONLimits(t *testing.T) {
	deep := strings.Repeat("[", 9000) + strings.Repeat("]", 9000)
	many := "[" + strings.Repeat("{},", 349_999) + "{}]"
	cases := []struct {
		name, body string
		lim        JSONLimits
		want       error
	}{
		{"deep", deep, JSONLimits{}, errJSONDepth},
		{"deep, then not json", strings.Repeat(`{"a":`, 100) + "x", JSONLimits{}, errJSONDepth},
		{"at the depth limit", strings.Repeat("[", 64) + strings.Repeat("]", 64), JSONLimits{}, nil},
		{"one past it", strings.Repeat("[", 65) + strings.Repeat("]", 65), JSONLimits{}, errJSONDepth},
		{"many empty objects", many, JSONLimits{}, errJSONElements},
		{"at the element limit", "[1,2,3]", JSONLimits{MaxElements: 4}, nil},
		{"one past it", "[1,2,3,4]", JSONLimits{MaxElements: 4}, errJSONElements},
		// Tiny containers cost more heap per byte than the budget allows.
		{"over the budget", "[" + strings.Repeat(`{"":0},`, 150_000) + "0]", JSONLimits{MaxElements: 1 << 30}, errJSONBudget},
		// OPA reads a number in time quadratic in its digits: a megabyte of them took seconds.
		{"a number at the length limit", `{"n":1` + strings.Repeat("0", maxJSONNumber-1) + `}`, JSONLimits{}, nil},
		{"one digit more", `{"n":1` + strings.Repeat("0", maxJSONNumber) + `}`, JSONLimits{}, errJSONNumber},
		{"a long mantissa with an exponent", `[1.` + strings.Repeat("5", 1<<20) + `e1]`, JSONLimits{}, errJSONNumber},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var b Builder
			_, _, err := b.parseJSON(c.body, c.lim)
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			var je *JSONError
			if c.want != nil && (!errors.As(err, &je) || je.Status != 413 && je.Status != 422) {
				t.Fatalf("err %v is not a JSONError with 413 or 422", err)
			}
		})
	}
}

// heapPerParse returns the heap bytes one parse of body allocates, averaged over runs.
func heapPerParse(body string, lim JSONLimits) uint64 {
	var b Builder
	const runs = 5
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range runs {
		b.Reset()
		b.parseJSON(body, lim)
	}
	runtime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / runs
}

// TestJSONCostBound measures the heap one parse allocates: for bodies the parse accepts it
// stays within the budget relative to the body (the estimate is not too low), for the shapes
// that amplify most it stays small because the parse stops, and a realistic payload is far
// from the budget.
func TestJSONCostBound(t *testing.T) {
	var obj, arr, realistic bytes.Buffer
	obj.WriteString("[")
	arr.WriteString("[")
	realistic.WriteString(`{"commits":[`)
	for i := range 4000 {
		if i > 0 {
			obj.WriteString(",")
			arr.WriteString(",")
			realistic.WriteString(",")
		}
		obj.WriteString(`{"a":` + strconv.Itoa(i) + `,"b":"x","c":null}`)
		arr.WriteString(`[` + strconv.Itoa(i) + `,"y"]`)
		realistic.WriteString(`{"id":"` + strconv.Itoa(1e9+i) + `fa8e2b6c17a3bc1f2c7d0e9b0a4c5d6e7f8","message":"Fix the parser, see #` + strconv.Itoa(i) +
			`","timestamp":"2026-01-01T00:00:00Z","url":"https://github.com/octo/hello/commit/` + strconv.Itoa(i) + `","author":{"name":"Octo Cat","email":"octo@example.com","username":"octo"},"added":[],"removed":[],"modified":["README.md"]}`)
	}
	obj.WriteString("]")
	arr.WriteString("]")
	realistic.WriteString(`]}`)
	for _, c := range []struct {
		name   string
		body   string
		refuse bool
	}{
		{"small objects", obj.String(), false},
		{"small arrays", arr.String(), false},
		{"realistic", realistic.String(), false},
		{"empty objects", "[" + strings.Repeat("{},", 349_999) + "{}]", true},
		{"nested arrays", "[" + strings.Repeat(`[0],`, 90_000) + "0]", true},
		{"one-key objects", "[" + strings.Repeat(`{"":0},`, 49_000) + "0]", true},
		{"one-key objects, fewer", "[" + strings.Repeat(`{"":0},`, 3_000) + "0]", false},
		{"deep", strings.Repeat("[", 9000) + strings.Repeat("]", 9000), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			var b Builder
			_, ok, err := b.parseJSON(c.body, JSONLimits{})
			if (err != nil) != c.refuse || !c.refuse && !ok {
				t.Fatalf("ok %v err %v, want refused %v", ok, err, c.refuse)
			}
			heap := heapPerParse(c.body, JSONLimits{})
			budget := uint64(jsonCostPerByte*len(c.body) + jsonCostBase)
			t.Logf("%d body bytes: %d heap bytes per parse (%.1f per byte), budget %d", len(c.body), heap, float64(heap)/float64(len(c.body)), budget)
			if heap > budget {
				t.Errorf("the parse allocated %d bytes, over its budget of %d: the cost estimate is too low", heap, budget)
			}
			if c.name == "realistic" && heap > budget/3 {
				t.Errorf("a realistic payload uses %d of a %d budget: the budget would refuse real traffic", heap, budget)
			}
		})
	}
}

// TestJSONViewsOfTheBody checks that strings without escapes cost no copy, and that the
// parse's value does not change when the Builder is reused for another body (the value is
// valid until Reset, and only Reset recycles the arena).
func TestJSONViewsOfTheBody(t *testing.T) {
	var b Builder
	body := b.String([]byte(`{"key":"a plain string","esc":"\u00e9"}`))
	v, ok, err := b.parseJSON(body, JSONLimits{})
	if !ok || err != nil {
		t.Fatal(ok, err)
	}
	want, _ := referenceJSON(body)
	for range 3 {
		b.parseJSON(b.String([]byte(`{"key":"other","esc":"\u00e8"}`)), JSONLimits{})
	}
	if v.Compare(want) != 0 {
		t.Fatalf("value changed: %v, want %v", v, want)
	}
	n := testing.AllocsPerRun(100, func() {
		b.parseJSON(`"a plain string with no escapes at all"`, JSONLimits{})
	})
	if n > 1 {
		t.Fatalf("a plain string allocates %v times, want at most 1 (the value's interface; the text is a view of the body, the term from the slab)", n)
	}
}
