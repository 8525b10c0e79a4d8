package webhook

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestGenericIDBoundary: with the generic scheme, the id a policy dedupes on is signed between
// separators ("{timestamp}.{id}.{body}"). An id holding a separator could end elsewhere in
// the same signed string: a delivery captured with id "evt" and body {"a":1.5} was sent again
// with id `evt.{"a":1` and body "5}", verified, and was new to a dedupe keyed on the id. An
// id may not hold the separators beside {id}, and {id} may not touch another placeholder.
func TestGenericIDBoundary(t *testing.T) {
	k := hmacKey(t)
	ts := fmt.Sprint(testNow.Unix())
	o := Options{Secrets: [][]byte{k.secret}, Now: testNow, SigHeader: "x-sig", Template: "{timestamp}.{id}.{body}",
		TimestampHeader: "x-ts", IDHeader: "x-id"}
	sig := hexMAC(k.mac, ts+".evt."+`{"a":1.5}`)
	send := func(id, body string) Result {
		r := &Request{Method: "POST", Scheme: "https", Host: testHost, RequestURI: "/h",
			Header: header{"x-sig": sig, "x-ts": ts, "x-id": id}, Body: []byte(body)}
		return verify(t, "hmac", r, &o)
	}
	wantValid(t, send("evt", `{"a":1.5}`))
	wantInvalid(t, send(`evt.{"a":1`, "5}"), "malformed x-id")

	for _, tmpl := range []string{"{id}{body}", "{body}{id}", "{timestamp}{id}.{body}", "{url}{id}.{body}",
		// More separators around {id} than the check keeps: refused, not some left unchecked.
		"{timestamp}a{id}b{body}c{id}d{timestamp}e{id}f{body}"} {
		bad := Options{SigHeader: "x-sig", IDHeader: "x-id", Template: tmpl}
		if strings.Contains(tmpl, "{timestamp}") {
			bad.TimestampHeader = "x-ts"
		}
		if strings.Contains(tmpl, "{url}") {
			bad.URL = "https://" + testHost
		}
		if _, err := genericParamsOf(&bad); !errors.Is(err, errIDBoundary) {
			t.Errorf("template %q: %v, want %v", tmpl, err, errIDBoundary)
		}
	}
	// The characters excluded are those between the id and another placeholder, whole
	// characters however many bytes they take; text at the template's start or end bounds
	// nothing.
	for tmpl, want := range map[string]string{
		"{id}:{timestamp}:{body}":     ":",
		"{timestamp}·{id}·{body}":     "·",
		"id={id}&body={body}":         "&",
		"{timestamp}.{body}|id={id}":  "=",
		"{timestamp}.{body}.{id}.end": ".",
	} {
		good := Options{SigHeader: "x-sig", IDHeader: "x-id", Template: tmpl, TimestampHeader: "x-ts"}
		if !strings.Contains(tmpl, "{timestamp}") {
			good.TimestampHeader = ""
		}
		p, err := genericParamsOf(&good)
		got := ""
		for _, r := range p.idNot {
			if r != 0 {
				got += string(r)
			}
		}
		if err != nil || got != want {
			t.Errorf("template %q: idNot %q, %v; want %q", tmpl, got, err, want)
		}
	}
	// A separator of more than one byte still bounds the id.
	o.Template = "{timestamp}·{id}·{body}"
	sig = hexMAC(k.mac, ts+"·evt·"+`{"a":1·5}`)
	wantValid(t, send("evt", `{"a":1·5}`))
	wantInvalid(t, send(`evt·{"a":1`, "5}"), "malformed x-id")
	// An id may hold what borders it only at the template's ends.
	o.Template, o.TimestampHeader = "id={id}&body={body}", ""
	sig = hexMAC(k.mac, "id=YWI=&body="+`{}`)
	wantValid(t, send("YWI=", `{}`))
}
