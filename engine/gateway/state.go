package gateway

import (
	"fmt"
	"time"

	"github.com/hookwall/hookwall/engine/config"
	"github.com/hookwall/hookwall/engine/state"
	"github.com/hookwall/hookwall/engine/state/memory"
	"github.com/hookwall/hookwall/engine/state/redis"
)

// openStore opens the [state] backend. A Redis store does not dial here: the gateway starts
// while Redis is down and applies fail_mode until it returns.
func openStore(cfg *config.Config, observe func(op string, d time.Duration, err error)) (state.Store, error) {
	switch cfg.State.Backend {
	case "memory":
		return memory.New(memory.Options{MaxKeys: cfg.State.MaxKeys}), nil
	case "redis":
		s, err := redis.New(redis.Options{URL: cfg.State.URL, Timeout: cfg.State.Timeout.D(), Prefix: cfg.State.Prefix, Observe: observe})
		if err != nil {
			return nil, fmt.Errorf("%s: state.url: %w", cfg.File, err)
		}
		return s, nil
	}
	return nil, fmt.Errorf("%s: state.backend %q is not available in this build", cfg.File, cfg.State.Backend)
}
