package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestForwardingKeys(t *testing.T) {
	c, err := Parse("g.toml", []byte(policiesRoute))
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.PathNormalization != PathReject || !slices.Equal(c.Server.StripHeaders(), ClientHeaders()) {
		t.Errorf("defaults: path_normalization %q, strip %v", c.Server.PathNormalization, c.Server.StripHeaders())
	}
	c, err = Parse("g.toml", []byte("[server]\npath_normalization = \"forward_canonical\"\nforward_client_headers = [\"x-real-ip\", \"Forwarded\"]\n"+policiesRoute))
	if err != nil {
		t.Fatal(err)
	}
	strip := c.Server.StripHeaders()
	if c.Server.PathNormalization != PathForwardCanonical || len(strip) != len(ClientHeaders())-2 ||
		slices.Contains(strip, "X-Real-Ip") || slices.Contains(strip, "Forwarded") || !slices.Contains(strip, "X-Original-Url") {
		t.Errorf("values: path_normalization %q, strip %v", c.Server.PathNormalization, strip)
	}
}

func TestForwardingKeysInvalid(t *testing.T) {
	for _, tc := range []struct{ name, toml, key, msg string }{
		{"mode", "[server]\npath_normalization = \"normalize\"\n", "server.path_normalization", `must be "reject" or "forward_canonical"`},
		{"header", "[server]\nforward_client_headers = [\"X-Forwarded-For\"]\n", "server.forward_client_headers", `"X-Forwarded-For" is not a header the gateway strips`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("g.toml", []byte(tc.toml+policiesRoute))
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("%T %v, want *Error", err, err)
			}
			if ce.File != "g.toml" || ce.Line != 2 || ce.Key != tc.key || !strings.Contains(ce.Msg, tc.msg) {
				t.Errorf("got %q (line %d key %q), want line 2 key %q containing %q", err, ce.Line, ce.Key, tc.key, tc.msg)
			}
		})
	}
}
