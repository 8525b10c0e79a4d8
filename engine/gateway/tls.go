package gateway

import (
	"fmt"

	"github.com/hookwall/hookwall/engine/config"
	"github.com/hookwall/hookwall/engine/tlsconf"
)

// serverTLS reads the public listener's TLS files from [server]; nil means plain HTTP. The
// listener keeps the returned Listener for its life; a reload renews its files (reloadTLS).
func serverTLS(cfg *config.Config) (*tlsconf.Listener, error) {
	l, err := tlsconf.NewListener(&cfg.Server)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.File, err)
	}
	return l, nil
}

// reloadTLS re-reads the listener's files named by cfg (whose [server] keys restartOnly found
// unchanged) as part of a reload's checks. An unreadable or unparsable file fails the reload,
// naming the key and the file, and the files in force stay. apply puts the new files in force
// for new handshakes, with the new snapshot; it does nothing when no file's contents changed.
func (g *Gateway) reloadTLS(cfg *config.Config) (apply func(), err error) {
	if g.tls == nil {
		return func() {}, nil
	}
	u, err := g.tls.Prepare(&cfg.Server)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.File, err)
	}
	return func() {
		if len(u.Changed) == 0 {
			return
		}
		u.Apply()
		// Session tickets issued before are no longer resumed: those clients handshake in full.
		g.log.Info("listener TLS files reloaded; new handshakes use them", "changed", u.Changed)
	}, nil
}
