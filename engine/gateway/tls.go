package gateway

import (
	"crypto/tls"
	"fmt"

	"github.com/hookwall/hookwall/engine/config"
	"github.com/hookwall/hookwall/engine/tlsconf"
)

// serverTLS builds the public listener's TLS configuration from [server]; nil means plain
// HTTP. The files are read here, once: the listener keeps this configuration until restart
// (restartOnly refuses a reload that changes [server]).
func serverTLS(cfg *config.Config) (*tls.Config, error) {
	c, err := tlsconf.Server(&cfg.Server)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.File, err)
	}
	return c, nil
}
