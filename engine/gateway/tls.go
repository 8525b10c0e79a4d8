package gateway

import (
	"fmt"

	"github.com/hookwall/hookwall/engine/config"
	"github.com/hookwall/hookwall/engine/tlsconf"
)

// listenerTLS reads the TLS files of both listeners: the public one's from [server], the admin
// one's from [admin]; nil means plain HTTP. The listeners keep the returned Listeners for their
// life; a reload renews their files (reloadTLS).
func listenerTLS(cfg *config.Config) (public, admin *tlsconf.Listener, err error) {
	public, err = tlsconf.NewListener(tlsconf.ServerFiles(&cfg.Server))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", cfg.File, err)
	}
	admin, err = tlsconf.NewListener(tlsconf.AdminFiles(&cfg.Admin))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", cfg.File, err)
	}
	return public, admin, nil
}

// reloadTLS re-reads the listeners' files named by cfg (whose [server] and [admin] keys
// restartOnly found unchanged) as part of a reload's checks. An unreadable or unparsable file
// fails the reload, naming the key and the file, and the files in force stay. apply puts the
// new files in force for new handshakes, with the new snapshot (a new client_ca also for the
// next request of every connection opened before: the server verifies its client certificate
// again); it does nothing when no file's contents changed.
func (g *Gateway) reloadTLS(cfg *config.Config) (apply func(), err error) {
	var updates []*tlsconf.Update
	for _, l := range []struct {
		l *tlsconf.Listener
		f tlsconf.Files
	}{
		{g.tls, tlsconf.ServerFiles(&cfg.Server)},
		{g.adminTLS, tlsconf.AdminFiles(&cfg.Admin)},
	} {
		if l.l == nil {
			continue
		}
		u, err := l.l.Prepare(l.f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", cfg.File, err)
		}
		updates = append(updates, u)
	}
	return func() {
		for _, u := range updates {
			if len(u.Changed) == 0 {
				continue
			}
			u.Apply()
			// Session tickets issued before are no longer resumed: those clients handshake in full.
			g.log.Info("listener TLS files reloaded; new handshakes use them", "changed", u.Changed)
		}
	}, nil
}
