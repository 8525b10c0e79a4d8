package httpsyntax

import "testing"

func TestIsToken(t *testing.T) {
	for s, want := range map[string]bool{
		"X-Tenant": true, "GET": true, "!#$%&'*+-.^_`|~09azAZ": true,
		"": false, "X Bad": false, "X-Tag-a: b": false, "a\r\n": false, "é": false, "a\x00": false, "(x)": false,
	} {
		if IsToken(s) != want || IsToken([]byte(s)) != want {
			t.Errorf("IsToken(%q) = %v, want %v", s, !want, want)
		}
	}
}

func TestIsHopByHop(t *testing.T) {
	for s, want := range map[string]bool{"connection": true, "UPGRADE": true, "Te": true, "X-Te": false, "Host": false} {
		if IsHopByHop(s) != want {
			t.Errorf("IsHopByHop(%q) = %v, want %v", s, !want, want)
		}
	}
}

func TestIsHost(t *testing.T) {
	for s, want := range map[string]bool{
		"gw.example": true, "gw.example:8443": true, "[2001:db8::1]:8080": true, "192.0.2.1": true, "": true,
		"xn--bcher-kva.example": true, "a_b.example": true, "a%41.example": true, "!$&'()*+,;=": true,
		"admin:pw@host": false, "gw/x": false, "gw?x": false, "gw#x": false, "gw x": false, "gw\x00": false,
		"gw`": false, "gw|": false, "gw^": false, "gw\\x": false, "é.example": false,
	} {
		if IsHost(s) != want || IsHost([]byte(s)) != want {
			t.Errorf("IsHost(%q) = %v, want %v", s, !want, want)
		}
	}
}
