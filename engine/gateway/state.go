package gateway

import (
	"fmt"
	"time"

	"github.com/hookwall/hookwall/engine/config"
	"github.com/hookwall/hookwall/engine/state"
	"github.com/hookwall/hookwall/engine/state/memory"
	"github.com/hookwall/hookwall/engine/state/redis"
)

// openStore opens the [state] backend behind state.Bound, so no backend is handed a key
// longer than state.MaxKeyLen. A Redis store does not dial here: the gateway starts while
// Redis is down and applies fail_mode until it returns.
func openStore(cfg *config.Config, observe func(op string, d time.Duration, err error)) (*state.Bounded, error) {
	switch cfg.State.Backend {
	case config.StateMemory:
		return state.Bound(memory.New(memory.Options{MaxKeys: cfg.State.MaxKeys, MaxBytes: int64(cfg.State.MaxBytes)})), nil
	case config.StateRedis:
		s, err := redis.New(redis.Options{URL: cfg.State.URL, Timeout: cfg.State.Timeout.D(), Prefix: cfg.State.Prefix, Observe: observe})
		if err != nil {
			return nil, fmt.Errorf("%s: state.url: %w", cfg.File, err)
		}
		return state.Bound(s), nil
	}
	return nil, fmt.Errorf("%s: state.backend %q is not available in this build", cfg.File, cfg.State.Backend)
}
