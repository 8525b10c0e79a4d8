package delivery_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/hookwall/hookwall/engine/delivery"
)

func TestHeadersRoundTrip(t *testing.T) {
	for _, c := range []struct {
		name string
		hs   []delivery.Header
	}{
		{"none", nil},
		{"one", []delivery.Header{{"Content-Type", "application/json"}}},
		{"empty value and repeated name", []delivery.Header{{"X-Empty", ""}, {"X-A", "1"}, {"X-A", "2"}}},
		{"long value", []delivery.Header{{"X-Long", strings.Repeat("v", 300)}, {"X-Utf8", "ünïcødé"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := delivery.DecodeHeaders(delivery.EncodeHeaders(c.hs))
			if err != nil || !reflect.DeepEqual(got, c.hs) {
				t.Errorf("DecodeHeaders(EncodeHeaders(%q)) = %q, %v", c.hs, got, err)
			}
		})
	}
}

func TestDecodeHeadersRefusesCorruptInput(t *testing.T) {
	good := delivery.EncodeHeaders([]delivery.Header{{"X-A", "1"}, {"X-B", "22"}})
	for _, c := range []struct {
		name string
		b    []byte
	}{
		{"truncated value", good[:len(good)-1]},
		{"name without value", good[:4]},
		{"length past the end", []byte{0x05, 'X'}},
		{"unterminated length", []byte{0x80}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if hs, err := delivery.DecodeHeaders(c.b); err == nil {
				t.Errorf("DecodeHeaders(%q) = %q, want an error", c.b, hs)
			}
		})
	}
}
