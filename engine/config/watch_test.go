package config

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestWatchKeys(t *testing.T) {
	parse := func(t *testing.T, body string) (*Config, error) {
		t.Helper()
		return Parse("/etc/hookwall/gateway.toml", []byte(body+policiesRoute))
	}
	t.Run("absent is off", func(t *testing.T) {
		c, err := parse(t, "")
		if err != nil {
			t.Fatal(err)
		}
		if c.Watch.Enabled {
			t.Fatal("watching is on without a [watch] table")
		}
	})
	t.Run("table alone is on with defaults", func(t *testing.T) {
		c, err := parse(t, "[watch]\n")
		if err != nil {
			t.Fatal(err)
		}
		w := &c.Watch
		if !w.Enabled || w.Window.D() != time.Minute || w.Baseline.D() != time.Hour || w.MinEvents != 20 || w.Ratio != 10 ||
			w.MaxDenyRate != 5 || w.Block != BlockOff || w.BlockFor.D() != 10*time.Minute || w.MaxSources != 1<<16 {
			t.Fatalf("defaults: %+v", w)
		}
	})
	t.Run("per class overrides and block modes", func(t *testing.T) {
		c, err := parse(t, `
[secrets]
alerts = {env = "ALERTS"}
[watch]
min_events = 30
block = "policy"
never_block = ["10.0.0.0/8", "192.0.2.7"]
alert_url = "https://alerts.example/hook"
alert_secret = "alerts"
[watch.class.signature]
min_events = 5
ratio = 4
`)
		if err != nil {
			t.Fatal(err)
		}
		w := &c.Watch
		sig, replay := w.Rule(0), w.Rule(2)
		if sig.MinEvents != 5 || sig.Ratio != 4 || sig.MaxDenyRate != 5 || replay.MinEvents != 30 || replay.Ratio != 10 {
			t.Fatalf("rules: signature %+v replay %+v", sig, replay)
		}
		if w.Block != BlockPolicy || len(w.NeverBlockPrefixes()) != 2 {
			t.Fatalf("block %q never_block %v", w.Block, w.NeverBlockPrefixes())
		}
		c, err = parse(t, "[watch]\nblock = true\nenabled = false\n")
		if err != nil || c.Watch.Block != BlockOn || c.Watch.Enabled {
			t.Fatalf("block = true, enabled = false: %+v %v", c.Watch, err)
		}
	})
	for _, c := range []struct{ name, body, want string }{
		{"bad block", "[watch]\nblock = \"yes\"\n", `must be true, false or "policy"`},
		{"unknown class", "[watch.class.sig]\nratio = 3\n", `gateway.toml:1: watch.class.sig: unknown reason class`},
		{"unknown key", "[watch]\nwindoww = \"1m\"\n", `gateway.toml:2: watch.windoww: unknown key`},
		{"short window", "[watch]\nwindow = \"100ms\"\n", `watch.window: must be at least 1s`},
		{"ratio below 1", "[watch]\nratio = 0.5\n", `watch.ratio: must be >= 1`},
		{"bad cidr", "[watch]\nnever_block = [\"10.0.0.0/33\"]\n", `watch.never_block: "10.0.0.0/33" is not an IP or CIDR`},
		{"unsigned alerts", "[watch]\nalert_url = \"https://a.example/x\"\n", `watch.alert_secret: required with alert_url`},
		{"unknown secret", "[watch]\nalert_url = \"https://a.example/x\"\nalert_secret = \"nope\"\n", `no [secrets] entry named "nope"`},
		{"block_for over max", "[watch]\nblock_for = \"2h\"\nmax_block_for = \"1h\"\n", `watch.max_block_for: must be at least block_for`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := parse(t, c.body)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error containing %q", err, c.want)
			}
		})
	}
}

// TestWatchClassBlocks: the classes a client without the secret gets block by default; the
// ones a provider's own signed deliveries can get do not, unless their table says so.
func TestWatchClassBlocks(t *testing.T) {
	c, err := Parse("g.toml", []byte("[watch]\nblock = true\n[watch.class.rate_limit]\nblock = true\n[watch.class.token]\nblock = false\n"+minimal))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"signature": true, "timestamp": true, "replay": false, "rate_limit": true, "token": false, "policy": false}
	for i, name := range watchClasses {
		if got := c.Watch.Blocks(i); got != want[name] {
			t.Errorf("class %s blocks: %v, want %v", name, got, want[name])
		}
	}
}

// TestMappedPrefixesHoldTheirIPv4Clients: client addresses are compared unmapped, so an
// IPv4-mapped CIDR in trusted_proxies or never_block is read as the IPv4 prefix it maps;
// one shorter than /96 is refused.
func TestMappedPrefixesHoldTheirIPv4Clients(t *testing.T) {
	c, err := Parse("g.toml", []byte("[server]\ntrusted_proxies = [\"::ffff:10.0.0.0/104\"]\n[watch]\nnever_block = [\"::ffff:192.0.2.0/120\", \"::ffff:192.0.2.9\"]\n"+minimal))
	if err != nil {
		t.Fatal(err)
	}
	in := func(ps []netip.Prefix, a string) bool {
		for _, p := range ps {
			if p.Contains(netip.MustParseAddr(a)) {
				return true
			}
		}
		return false
	}
	for _, a := range []string{"192.0.2.9", "192.0.2.7"} {
		if !in(c.Watch.NeverBlockPrefixes(), a) {
			t.Errorf("never_block %v does not hold %s", c.Watch.NeverBlockPrefixes(), a)
		}
	}
	if in(c.Watch.NeverBlockPrefixes(), "192.0.3.1") {
		t.Errorf("never_block %v holds 192.0.3.1", c.Watch.NeverBlockPrefixes())
	}
	if !in(c.Server.Trusted(), "10.1.2.3") {
		t.Errorf("trusted_proxies %v does not hold 10.1.2.3", c.Server.Trusted())
	}
	_, err = Parse("g.toml", []byte("[server]\ntrusted_proxies = [\"::ffff:0.0.0.0/95\"]\n"+minimal))
	if err == nil || !strings.Contains(err.Error(), "shorter than /96") {
		t.Errorf("a mapped prefix shorter than /96: %v", err)
	}
}
