package config

import (
	"strings"
	"testing"
)

// TestWatchMaxBlocks: [watch] max_blocks defaults to 10000, takes a value from 1 to 2^20,
// and anything else is refused with the file, line and key.
func TestWatchMaxBlocks(t *testing.T) {
	parse := func(body string) (*Config, error) {
		return Parse("/etc/hookwall/gateway.toml", []byte(body+policiesRoute))
	}
	c, err := parse("[watch]\n")
	if err != nil || c.Watch.MaxBlocks != DefaultWatchMaxBlocks || DefaultWatchMaxBlocks != 10000 {
		t.Fatalf("default: %d %v, want 10000", c.Watch.MaxBlocks, err)
	}
	for _, n := range []string{"1", "500", "1048576"} {
		c, err := parse("[watch]\nmax_blocks = " + n + "\n")
		if err != nil || c.Watch.MaxBlocks == 0 {
			t.Fatalf("max_blocks = %s: %+v %v", n, c.Watch.MaxBlocks, err)
		}
	}
	for _, n := range []string{"0", "-1", "1048577"} {
		_, err := parse("[watch]\nwindow = \"1m\"\nmax_blocks = " + n + "\n")
		want := "gateway.toml:3: watch.max_blocks: must be between 1 and 1048576"
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("max_blocks = %s: %v, want an error containing %q", n, err, want)
		}
	}
}
