package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const policiesRoute = `
[[route]]
name = "gh"
path = "/hooks/github"
upstream = "http://127.0.0.1:9000"
policy = "routes.github"
`

func TestPoliciesReloadKeys(t *testing.T) {
	cases := []struct {
		name  string
		toml  string
		check func(t *testing.T, p Policies)
	}{
		{"defaults", ``, func(t *testing.T, p Policies) {
			if !p.Watch || p.TestOnReload || p.BundleURL != "" || p.PollInterval != 0 || p.BundleVerificationAlg != "" {
				t.Errorf("defaults: %+v", p)
			}
			if p.CrossCheck != DefaultCrossCheck || p.OnDivergence != "opa" || p.CrossCheckMax != DefaultCrossCheckMax {
				t.Errorf("cross-check defaults: %v %q %d, want %v \"opa\" %d", p.CrossCheck, p.OnDivergence, p.CrossCheckMax, DefaultCrossCheck, DefaultCrossCheckMax)
			}
		}},
		{"cross-check off", "[policies]\ncross_check = 0\non_divergence = \"log\"\n", func(t *testing.T, p Policies) {
			if p.CrossCheck != 0 || p.OnDivergence != "log" {
				t.Errorf("cross_check = 0, on_divergence = \"log\": %v %q", p.CrossCheck, p.OnDivergence)
			}
		}},
		{"cross-check all", "[policies]\ncross_check = 1.0\n", func(t *testing.T, p Policies) {
			if p.CrossCheck != 1 {
				t.Errorf("cross_check = 1.0: %v", p.CrossCheck)
			}
		}},
		{"cross-check ceiling off", "[policies]\ncross_check_max = 0\n", func(t *testing.T, p Policies) {
			if p.CrossCheckMax != 0 {
				t.Errorf("cross_check_max = 0: %d", p.CrossCheckMax)
			}
		}},
		{"cross-check ceiling", "[policies]\ncross_check_max = 25\n", func(t *testing.T, p Policies) {
			if p.CrossCheckMax != 25 {
				t.Errorf("cross_check_max = 25: %d", p.CrossCheckMax)
			}
		}},
		{"watch off", "[policies]\nwatch = false\n", func(t *testing.T, p Policies) {
			if p.Watch {
				t.Error("watch = false was not kept")
			}
		}},
		{"bundle defaults", "[policies]\nbundle_url = \"https://bundles.example/b.tar.gz\"\nbundle_verification_key = \"keys/pub.pem\"\ntest_on_reload = true\n", func(t *testing.T, p Policies) {
			if p.PollInterval.D() != DefaultPollInterval || p.BundleVerificationAlg != DefaultBundleAlg || !p.TestOnReload {
				t.Errorf("bundle defaults: %+v", p)
			}
			if p.BundleVerificationKey != "/etc/hookwall/keys/pub.pem" {
				t.Errorf("key path not resolved against the config dir: %q", p.BundleVerificationKey)
			}
		}},
		{"bundle values", "[policies]\nbundle_url = \"http://127.0.0.1:8181/b.tar.gz\"\npoll_interval = \"250ms\"\nbundle_verification_key = \"/k.pem\"\nbundle_verification_alg = \"ES256\"\n", func(t *testing.T, p Policies) {
			if p.PollInterval.D() != 250*time.Millisecond || p.BundleVerificationAlg != "ES256" || p.BundleVerificationKey != "/k.pem" {
				t.Errorf("values: %+v", p)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("/etc/hookwall/gateway.toml", []byte(tc.toml+policiesRoute))
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c.Policies)
		})
	}
}

func TestPoliciesReloadKeysInvalid(t *testing.T) {
	cases := []struct {
		name, toml string
		line       int
		key, msg   string
	}{
		{"poll without bundle", "[policies]\npoll_interval = \"1s\"\n", 2, "policies.poll_interval", "only applies with bundle_url"},
		{"key without bundle", "[policies]\ndir = \"p\"\nbundle_verification_key = \"k.pem\"\n", 3, "policies.bundle_verification_key", "only applies with bundle_url"},
		{"bad scheme", "[policies]\nbundle_url = \"ftp://x/b.tar.gz\"\n", 2, "policies.bundle_url", "scheme must be http or https"},
		{"no host", "[policies]\nbundle_url = \"http:///b.tar.gz\"\n", 2, "policies.bundle_url", "missing host"},
		{"credentials", "[policies]\nbundle_url = \"https://u:p@x/b.tar.gz\"\n", 2, "policies.bundle_url", "must not carry credentials"},
		{"poll too fast", "[policies]\nbundle_url = \"https://x/b.tar.gz\"\npoll_interval = \"10ms\"\n", 3, "policies.poll_interval", "at least 100ms"},
		{"alg without key", "[policies]\nbundle_url = \"https://x/b.tar.gz\"\nbundle_verification_alg = \"RS256\"\n", 3, "policies.bundle_verification_alg", "needs bundle_verification_key"},
		{"unknown alg", "[policies]\nbundle_url = \"https://x/b.tar.gz\"\nbundle_verification_key = \"k\"\nbundle_verification_alg = \"none\"\n", 4, "policies.bundle_verification_alg", "must be one of"},
		{"watch not bool", "[policies]\nwatch = \"yes\"\n", 2, "policies.watch", ""},
		{"cross-check above 1", "[policies]\ncross_check = 1.5\n", 2, "policies.cross_check", "between 0 and 1"},
		{"cross-check negative", "[policies]\ndir = \"p\"\ncross_check = -0.1\n", 3, "policies.cross_check", "between 0 and 1"},
		{"cross-check not a number", "[policies]\ncross_check = \"1%\"\n", 2, "policies.cross_check", ""},
		{"cross-check ceiling negative", "[policies]\ndir = \"p\"\ncross_check_max = -1\n", 3, "policies.cross_check_max", "0 for no ceiling"},
		{"cross-check ceiling not an integer", "[policies]\ncross_check_max = 2.5\n", 2, "policies.cross_check_max", ""},
		{"cross-check ceiling a string", "[policies]\ncross_check_max = \"100/s\"\n", 2, "policies.cross_check_max", ""},
		{"unknown on_divergence", "[policies]\non_divergence = \"panic\"\n", 2, "policies.on_divergence", "must be \"opa\" or \"log\""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { wantError(t, tc.toml+policiesRoute, tc.line, tc.key, tc.msg) })
	}
}

// wantError parses src as g.toml and wants one *Error at line and key with msg in it.
func wantError(t *testing.T, src string, line int, key, msg string) {
	t.Helper()
	_, err := Parse("g.toml", []byte(src))
	if err == nil {
		t.Fatal("accepted")
	}
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("%T %v, want *Error", err, err)
	}
	if ce.File != "g.toml" || ce.Line != line || ce.Key != key || !strings.Contains(ce.Msg, msg) {
		t.Errorf("got %q (line %d key %q), want line %d key %q containing %q", err, ce.Line, ce.Key, line, key, msg)
	}
}

func TestTimerSlackKey(t *testing.T) {
	for _, tc := range []struct {
		name, toml string
		want       time.Duration
	}{
		{"default", "", DefaultTimerSlack},
		{"off", "[server]\ntimer_slack = \"0\"\n", 0},
		{"set", "[server]\ntimer_slack = \"250us\"\n", 250 * time.Microsecond},
		{"at the limit", "[server]\ntimer_slack = \"10ms\"\n", LimitTimerSlack},
	} {
		c, err := Parse("g.toml", []byte(tc.toml+policiesRoute))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := c.Server.TimerSlack.D(); got != tc.want {
			t.Errorf("%s: timer_slack %v, want %v", tc.name, got, tc.want)
		}
	}
	wantError(t, "[server]\ntimer_slack = \"11ms\"\n"+policiesRoute, 2, "server.timer_slack", "at most 10ms")
	wantError(t, "[server]\ntimer_slack = \"-1ms\"\n"+policiesRoute, 2, "server.timer_slack", "negative")
}
