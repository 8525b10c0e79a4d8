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

	for _, tmpl := range []string{"{id}{body}", "{body}{id}", "{timestamp}{id}.{body}", "{url}{id}.{body}"} {
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
	good := o
	good.Template = "{id}:{timestamp}:{body}"
	if p, err := genericParamsOf(&good); err != nil || p.idNot != ":" {
		t.Errorf("template %q: idNot %q, %v; want \":\"", good.Template, p.idNot, err)
	}
}
