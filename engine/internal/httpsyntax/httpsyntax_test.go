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
