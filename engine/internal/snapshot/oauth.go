package snapshot

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/hookwall/hookwall/engine/config"
	"github.com/hookwall/hookwall/engine/oauth"
)

// buildOAuth makes the snapshot's [[oauth]] issuers. An issuer whose configuration and
// secrets are unchanged is prev's own, shared: a reload keeps its keys and cached answers
// and fetches nothing for it (it stops when the last set holding it closes).
func buildOAuth(cfg *config.Config, secrets *config.Secrets, prev *Snapshot, log *slog.Logger, now func() time.Time) (*oauth.Set, error) {
	if len(cfg.OAuth) == 0 {
		return nil, nil
	}
	cfgs := make([]oauth.Config, 0, len(cfg.OAuth))
	for i := range cfg.OAuth {
		c := &cfg.OAuth[i]
		oc := oauth.Config{
			Name: c.Name, Issuer: c.Issuer, JWKSURL: c.JWKSURL, Audiences: c.Audiences, Algorithms: c.Algorithms,
			Leeway: c.Leeway.D(), IntrospectionURL: c.IntrospectionURL, ClientID: c.ClientID,
			CacheTTL: c.CacheTTL.D(), MaxStale: c.MaxStale.D(), MaxKeys: c.MaxKeys, Timeout: c.Timeout.D(),
		}
		// config.Parse checked that the names exist; Build resolved them.
		if c.ClientSecret != "" {
			oc.ClientSecret, _ = secrets.Get(c.ClientSecret)
		}
		if c.HMACSecret != "" {
			s, _ := secrets.Get(c.HMACSecret)
			oc.HMACSecrets = [][]byte{s}
		}
		cfgs = append(cfgs, oc)
	}
	var prevSet *oauth.Set
	if prev != nil {
		prevSet = prev.OAuth
	}
	set, err := oauth.NewSet(cfgs, prevSet, log, now)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.File, err)
	}
	return set, nil
}
