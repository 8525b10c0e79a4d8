package config

import (
	"strings"
	"testing"
)

// An invalid [watch] alert_url must not echo its password in the error, as the upstream
// URL check does not.
func TestWatchAlertURLErrorsHidePassword(t *testing.T) {
	for _, tc := range []struct{ url, password, want string }{
		{"https://alice:Sup3r%zzSecret@alerts.example.com/x", "%zz", `invalid URL escape`},
		{"https://alice:Sup3rSecret@/x", "Sup3rSecret", "missing host"},
	} {
		body := "[secrets]\nalerts = {env = \"ALERTS\"}\n[watch]\nalert_url = \"" + tc.url + "\"\nalert_secret = \"alerts\"\n"
		_, err := Parse("/etc/hookwall/gateway.toml", []byte(body+policiesRoute))
		if err == nil {
			t.Fatalf("alert_url %q: no error", tc.url)
		}
		msg := err.Error()
		if !strings.Contains(msg, "watch.alert_url") || !strings.Contains(msg, tc.want) {
			t.Errorf("alert_url %q: error %q does not report %q at watch.alert_url", tc.url, msg, tc.want)
		}
		if strings.Contains(msg, tc.password) || strings.Contains(msg, "Secret") {
			t.Errorf("alert_url %q: error shows the password: %s", tc.url, msg)
		}
	}
}
