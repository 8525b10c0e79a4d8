package gateway

import (
	"strings"
	"testing"
	"time"

	"github.com/hookwall/hookwall/engine/config"
)

// TestRestartOnlyNamesEachSection: a change to a key the running gateway applies only at
// start ([server], [admin], [state], [log], [watch] with its thresholds, [delivery], [demo])
// is refused, naming the key and never its value; a change to the routes alone is not.
// (TestReloadRouteAddedWithoutRestart shows a refusal end to end.)
func TestRestartOnlyNamesEachSection(t *testing.T) {
	base := func() *config.Config { return &config.Config{File: "gateway.toml"} }
	for _, c := range []struct {
		key    string
		change func(*config.Config)
	}{
		{"server.listen", func(c *config.Config) { c.Server.Listen = "127.0.0.1:1" }},
		{"admin.token", func(c *config.Config) { c.Admin.Token = "s3cret-token" }},
		{"state.backend", func(c *config.Config) { c.State.Backend = config.StateBackend("redis") }},
		{"log.level", func(c *config.Config) { c.Log.Level = "debug" }},
		{"watch.window", func(c *config.Config) { c.Watch.Window = config.Duration(time.Minute) }},
		{"watch.min_events", func(c *config.Config) { c.Watch.MinEvents = 3 }},
		{"delivery.max_pending", func(c *config.Config) { c.Delivery.MaxPending = 10 }},
		{"demo.sink", func(c *config.Config) { c.Demo.Sink = "127.0.0.1:9" }},
	} {
		cur := base()
		c.change(cur)
		err := restartOnly(base(), cur)
		if err == nil || !strings.Contains(err.Error(), ": "+c.key+" changed: these need a restart") {
			t.Errorf("changing %s: %v, want a refusal naming it", c.key, err)
			continue
		}
		if strings.Contains(err.Error(), "s3cret-token") {
			t.Errorf("changing %s: the refusal quotes the value: %v", c.key, err)
		}
	}
	cur := base()
	cur.Routes = append(cur.Routes, config.Route{Name: "added"})
	if err := restartOnly(base(), cur); err != nil {
		t.Errorf("a route added: %v, want it applied", err)
	}
}
