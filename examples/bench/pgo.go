package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/pprof/profile"
)

// pgoProfiles gathers the gateway's CPU profile over each measured round of its setups, for
// profile-guided optimisation: merged, they are cmd/hookwall/default.pgo, which `go build`
// and `go run` of the command use on their own (README "Performance").
type pgoProfiles struct {
	admin    adminAPI
	profiles []*profile.Profile
}

// maxProfileSecs bounds one profile: the admin listener's write timeout (30 s) refuses a
// longer one. A longer round is profiled for its first maxProfileSecs seconds.
const maxProfileSecs = 25

// during runs load while the gateway's CPU profile is taken for d (in whole seconds, at least
// one, at most maxProfileSecs), and keeps the profile. A profile the gateway did not give is
// an error: a run meant to write one must not write a part of one.
func (g *pgoProfiles) during(ctx context.Context, d time.Duration, load func() error) error {
	secs := min(maxProfileSecs, max(1, int(d/time.Second)))
	var (
		p    *profile.Profile
		perr error
		wg   sync.WaitGroup
	)
	wg.Go(func() { p, perr = g.fetch(ctx, secs) })
	lerr := load()
	wg.Wait()
	if lerr != nil {
		return lerr
	}
	if perr != nil {
		return fmt.Errorf("-pgo: the gateway's CPU profile: %w", perr)
	}
	g.profiles = append(g.profiles, p)
	return nil
}

// fetch takes a CPU profile of secs seconds from the admin API's /debug/pprof/profile.
func (g *pgoProfiles) fetch(ctx context.Context, secs int) (*profile.Profile, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(secs)*time.Second+30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+g.admin.addr+"/debug/pprof/profile?seconds="+strconv.Itoa(secs), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+g.admin.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(msg)))
	}
	return profile.Parse(resp.Body)
}

// write merges the profiles into path (gzipped protobuf, as `go build -pgo` reads it).
func (g *pgoProfiles) write(path string) (samples int, err error) {
	if len(g.profiles) == 0 {
		return 0, errors.New("-pgo: no round of a hookwall setup was profiled (-setups names none?)")
	}
	merged, err := profile.Merge(g.profiles)
	if err != nil {
		return 0, fmt.Errorf("-pgo: merging the profiles: %w", err)
	}
	if len(merged.Sample) == 0 {
		return 0, errors.New("-pgo: the profiles hold no sample")
	}
	// Written beside path and renamed over it: a failed write leaves the old profile whole.
	f, err := os.CreateTemp(filepath.Dir(path), ".pgo-*")
	if err != nil {
		return 0, fmt.Errorf("-pgo: %w", err)
	}
	defer os.Remove(f.Name())
	if err := merged.Write(f); err != nil {
		f.Close()
		return 0, fmt.Errorf("-pgo: %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return 0, fmt.Errorf("-pgo: %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return 0, fmt.Errorf("-pgo: %w", err)
	}
	return len(merged.Sample), nil
}

// withAdminToken gives the benchmark's gateway an admin token when its config has none:
// pprof is served only with one. The gateway then runs on a copy of the config (configCopy)
// with a fresh random token; cleanup removes the copy.
func (o *benchOpts) withAdminToken() (cleanup func(), err error) {
	if o.adminToken != "" {
		return func() {}, nil
	}
	var raw [16]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, err
	}
	token := hex.EncodeToString(raw[:])
	added := false
	c, err := o.configCopy("pgo", func(text string, _ gatewayCopy) string {
		if i := strings.Index(text, "\n[admin]\n"); i >= 0 {
			added = true
			at := i + len("\n[admin]\n")
			return text[:at] + "token = " + strconv.Quote(token) + "\n" + text[at:]
		}
		return text
	})
	if err != nil {
		return nil, err
	}
	if !added {
		c.cleanup()
		return nil, fmt.Errorf("%s has no [admin] section to add a token to: pprof is served only with [admin] token set", o.cfgPath)
	}
	o.cfgPath, o.gateway, o.admin, o.decisions, o.deliveries, o.adminToken = c.path, c.gateway, c.admin, c.decisions, c.deliveries, token
	return c.cleanup, nil
}
