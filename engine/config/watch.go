package config

import (
	"cmp"
	"fmt"
	"net/netip"
	"net/url"
	"sort"
	"time"
)

// Watch is the [watch] table: anomaly detection per source and route, alerts and blocks.
// It is on when the table is present (Enabled defaults to true there) and off without it.
type Watch struct {
	Enabled bool `toml:"enabled"`
	// Window is the sliding window refusals are counted over; Baseline the time constant of
	// the slow average each window is compared with.
	Window   Duration `toml:"window"`
	Baseline Duration `toml:"baseline"`
	// WatchRule holds the thresholds of every reason class; Class overrides them per class
	// (signature, timestamp, replay, rate_limit, token, policy, malformed).
	WatchRule
	Class map[string]WatchClass `toml:"class"`
	// Block is false (report only), true (refuse the source with 429 for BlockFor, doubling on
	// each repeat up to MaxBlockFor) or "policy" (mark it: input.source.blocked).
	Block       BlockMode `toml:"block"`
	BlockFor    Duration  `toml:"block_for"`
	MaxBlockFor Duration  `toml:"max_block_for"`
	// NeverBlock lists addresses and CIDRs that are watched and reported but never blocked.
	NeverBlock []string `toml:"never_block"`
	// IPv6Prefix is the length of the prefix an IPv6 client is watched and blocked by: a
	// host is given a whole /64 (or more), and would otherwise leave a block by taking the
	// next address of it. 128 watches each address apart.
	IPv6Prefix int `toml:"ipv6_prefix"`
	// AlertURL receives each anomaly as a POST signed with the Standard Webhooks scheme under
	// the [secrets] entry AlertSecret ("whsec_" followed by base64).
	AlertURL    string `toml:"alert_url"`
	AlertSecret string `toml:"alert_secret"`
	// MaxSources bounds the sources (client IPs and senders) tracked at once; the least
	// recently seen is evicted, and counted, when a new one needs room.
	MaxSources int `toml:"max_sources"`
	// MaxBlocks bounds the blocks held at once, placed here or read from the fleet. A full
	// table keeps the blocks it holds and places no new one until some end or are lifted:
	// anomalies are still raised, logged and alerted, and the refused blocks counted.
	MaxBlocks int `toml:"max_blocks"`

	neverBlock []netip.Prefix
	rules      [len(watchClasses)]WatchRule
	blocks     [len(watchClasses)]bool
}

// WatchClass is a [watch.class.NAME] table: the class's thresholds, and whether its
// anomalies block the client IP when [watch] block is on.
type WatchClass struct {
	WatchRule
	// Block absent: true for the classes only a client that cannot prove who it is gets
	// (signature, timestamp, token); false for rate_limit and policy, whose refusals a
	// provider's own signed deliveries get when an outsider makes it send many (starring a
	// public repository makes GitHub send a "star" event a policy refuses), so blocking on
	// them would refuse the provider's next genuine delivery; for replay, whose duplicates
	// are a provider's retries of deliveries answered late (and cost nothing: none is
	// forwarded); and for malformed (JSON over the gateway's limits, say), which an
	// outsider can also have a provider send (a comment of the largest size on a public
	// repository).
	Block *bool `toml:"block"`
}

// WatchRule is one set of anomaly thresholds. A zero field takes the [watch] value.
type WatchRule struct {
	// MinEvents is the fewest refusals in a window that can raise an anomaly.
	MinEvents int `toml:"min_events"`
	// Ratio raises an anomaly when a window holds Ratio times the baseline's refusals.
	Ratio float64 `toml:"ratio"`
	// MaxDenyRate raises an anomaly, whatever the baseline, when the window's refusals
	// average more than this many a second; 0 turns the rule off. Absent, a class takes the
	// [watch] value (default 5).
	MaxDenyRate float64 `toml:"max_deny_rate"`
}

// watchClasses are the reason classes refusals are counted by, in a fixed order.
var watchClasses = [...]string{"signature", "timestamp", "replay", "rate_limit", "token", "policy", "malformed"}

// BlockMode is [watch] block: a boolean or "policy".
type BlockMode string

// Block modes.
const (
	BlockOff    BlockMode = ""
	BlockOn     BlockMode = "true"
	BlockPolicy BlockMode = "policy"
)

// UnmarshalTOML implements toml.Unmarshaler.
func (b *BlockMode) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case bool:
		*b = BlockOff
		if v {
			*b = BlockOn
		}
		return nil
	case string:
		if v == "policy" {
			*b = BlockPolicy
			return nil
		}
	}
	return fmt.Errorf("must be true, false or \"policy\", not %v", v)
}

// [watch] defaults.
const (
	DefaultWatchWindow      = time.Minute
	DefaultWatchBaseline    = time.Hour
	DefaultWatchMinEvents   = 20
	DefaultWatchRatio       = 10
	DefaultWatchMaxDenyRate = 5
	DefaultWatchBlockFor    = 10 * time.Minute
	DefaultWatchMaxBlockFor = 24 * time.Hour
	DefaultWatchMaxSources  = 1 << 16
	DefaultWatchMaxBlocks   = 10000
	DefaultWatchIPv6Prefix  = 64
	// MaxWatchMaxBlocks is the largest max_blocks accepted.
	MaxWatchMaxBlocks = 1 << 20
)

// NeverBlockPrefixes returns the parsed never_block list. The slice is shared: do not modify it.
func (w *Watch) NeverBlockPrefixes() []netip.Prefix { return w.neverBlock }

// Rule returns the thresholds of the reason class at index i of watchClasses.
func (w *Watch) Rule(i int) WatchRule { return w.rules[i] }

// Blocks reports whether an anomaly of the reason class at index i of watchClasses blocks
// its client IP (when [watch] block is on).
func (w *Watch) Blocks(i int) bool { return w.blocks[i] }

// blockingClasses are the classes whose anomalies block by default (WatchClass.Block).
var blockingClasses = map[string]bool{"signature": true, "timestamp": true, "token": true}

// applyDefaults fills absent keys; defined reports whether a key under [watch] was set, so
// that an explicit max_deny_rate = 0 turns the rule off rather than taking the default.
func (w *Watch) applyDefaults(defined func(k ...string) bool) {
	w.Window = cmp.Or(w.Window, Duration(DefaultWatchWindow))
	w.Baseline = cmp.Or(w.Baseline, Duration(DefaultWatchBaseline))
	w.MinEvents = cmp.Or(w.MinEvents, DefaultWatchMinEvents)
	w.Ratio = cmp.Or(w.Ratio, DefaultWatchRatio)
	w.BlockFor = cmp.Or(w.BlockFor, Duration(DefaultWatchBlockFor))
	w.MaxBlockFor = cmp.Or(w.MaxBlockFor, Duration(DefaultWatchMaxBlockFor))
	w.MaxSources = cmp.Or(w.MaxSources, DefaultWatchMaxSources)
	w.IPv6Prefix = cmp.Or(w.IPv6Prefix, DefaultWatchIPv6Prefix)
	if !defined("max_blocks") {
		w.MaxBlocks = DefaultWatchMaxBlocks
	}
	if !defined("max_deny_rate") {
		w.MaxDenyRate = DefaultWatchMaxDenyRate
	}
	for i, name := range watchClasses {
		wc := w.Class[name]
		r := wc.WatchRule
		w.blocks[i] = blockingClasses[name]
		if wc.Block != nil {
			w.blocks[i] = *wc.Block
		}
		r.MinEvents = cmp.Or(r.MinEvents, w.MinEvents)
		r.Ratio = cmp.Or(r.Ratio, w.Ratio)
		if !defined("class", name, "max_deny_rate") {
			r.MaxDenyRate = w.MaxDenyRate
		}
		w.rules[i] = r
	}
}

func (c *Config) validateWatch(v *validator) {
	w := &c.Watch
	at := func(k ...any) []any { return append([]any{"watch"}, k...) }
	if w.Window.D() < time.Second {
		v.errAt(at("window"), "must be at least 1s")
	}
	if w.Baseline < w.Window {
		v.errAt(at("baseline"), "must be at least the window (%v)", w.Window.D())
	}
	checkRule := func(r WatchRule, k ...any) {
		if r.MinEvents < 0 {
			v.errAt(append(at(k...), "min_events"), "must be >= 1")
		}
		if r.Ratio < 0 || (r.Ratio > 0 && r.Ratio < 1) {
			v.errAt(append(at(k...), "ratio"), "must be >= 1 (a window this many times its baseline)")
		}
		if r.MaxDenyRate < 0 {
			v.errAt(append(at(k...), "max_deny_rate"), "must be >= 0 (refusals a second; 0 is off)")
		}
	}
	checkRule(w.WatchRule)
	names := make([]string, 0, len(w.Class))
	for name := range w.Class {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		known := false
		for _, c := range watchClasses {
			known = known || c == name
		}
		if !known {
			v.errAt(at("class", name), "unknown reason class %q (one of signature, timestamp, replay, rate_limit, token, policy, malformed)", name)
			continue
		}
		checkRule(w.Class[name].WatchRule, "class", name)
	}
	if w.MaxBlockFor < w.BlockFor {
		v.errAt(at("max_block_for"), "must be at least block_for (%v)", w.BlockFor.D())
	}
	if w.IPv6Prefix < 32 || w.IPv6Prefix > 128 {
		v.errAt(at("ipv6_prefix"), "must be between 32 and 128 (bits of an IPv6 client's address watched as one source)")
	}
	if w.MaxSources < 1024 {
		v.errAt(at("max_sources"), "must be at least 1024")
	}
	if w.MaxBlocks < 1 || w.MaxBlocks > MaxWatchMaxBlocks {
		v.errAt(at("max_blocks"), "must be between 1 and %d", MaxWatchMaxBlocks)
	}
	for _, p := range w.NeverBlock {
		pfx, err := parsePrefix(p)
		if err != nil {
			v.errAt(at("never_block"), "%q is not an IP or CIDR: %v", p, err)
			continue
		}
		w.neverBlock = append(w.neverBlock, pfx)
	}
	if w.AlertURL != "" {
		u, err := url.Parse(w.AlertURL)
		switch {
		case err != nil:
			v.errAt(at("alert_url"), "invalid URL: %v", urlErrorCause(err))
		case u.Scheme != "http" && u.Scheme != "https":
			v.errAt(at("alert_url"), "scheme must be http or https, not %q", u.Scheme)
		case u.Host == "":
			v.errAt(at("alert_url"), "missing host in %q", RedactURL(w.AlertURL))
		case u.User != nil:
			v.errAt(at("alert_url"), "must not carry credentials")
		}
		if w.AlertSecret == "" {
			v.errAt(at("alert_secret"), "required with alert_url: alerts are signed (a [secrets] name)")
		}
	}
	if w.AlertSecret != "" {
		if _, ok := c.Secrets[w.AlertSecret]; !ok {
			v.errAt(at("alert_secret"), "no [secrets] entry named %q", w.AlertSecret)
		}
		if w.AlertURL == "" {
			v.errAt(at("alert_secret"), "only applies with alert_url")
		}
	}
}
