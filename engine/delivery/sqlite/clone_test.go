package sqlite

import (
	"reflect"
	"strings"
	"testing"

	"github.com/hookwall/hookwall/engine/delivery"
)

// The claims' in-memory copy of an enqueued record holds its headers as a stored record's
// are decoded, and is its own: a caller changing its slice afterwards changes nothing.
func TestCloneHeaders(t *testing.T) {
	for _, hs := range [][]delivery.Header{
		nil,
		{{Name: "", Value: ""}},
		{{Name: "X-Empty", Value: ""}, {Name: "X-A", Value: "1"}, {Name: "X-A", Value: "2"}},
		{{Name: "X-Long", Value: strings.Repeat("v", 300)}, {Name: "X-Utf8", Value: "ünïcødé"}},
	} {
		want, err := delivery.DecodeHeaders(delivery.EncodeHeaders(hs))
		if err != nil {
			t.Fatal(err)
		}
		got := cloneHeaders(hs)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("cloneHeaders(%q) = %q, want %q", hs, got, want)
		}
		if len(hs) > 0 {
			hs[0] = delivery.Header{Name: "Changed", Value: "changed"}
			if got[0] == hs[0] {
				t.Errorf("the copy shares its slice with the original")
			}
		}
	}
}
