package oauth

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"time"
)

// Set is the issuers of one snapshot, by name. Build it with NewSet; it is immutable after.
type Set struct {
	issuers map[string]*Issuer
}

// NewSet builds the issuers of cfgs, sharing prev's issuer of the same name when its
// configuration digest is unchanged, and starts the new ones. On error nothing is started.
func NewSet(cfgs []Config, prev *Set, logger *slog.Logger, now func() time.Time) (*Set, error) {
	s := &Set{issuers: map[string]*Issuer{}}
	var fresh []*Issuer
	for _, c := range cfgs {
		if _, dup := s.issuers[c.Name]; dup {
			return nil, fmt.Errorf("oauth %q: duplicate issuer name", c.Name)
		}
		is, err := newIssuer(c, logger, now)
		if err != nil {
			return nil, err
		}
		if old := prev.get(c.Name); old != nil && old.hash == is.hash {
			s.issuers[c.Name] = old
			continue
		}
		s.issuers[c.Name] = is
		fresh = append(fresh, is)
	}
	for _, is := range s.issuers {
		is.holders.Add(1)
	}
	for _, is := range fresh {
		is.Start()
	}
	return s, nil
}

func (s *Set) get(name string) *Issuer {
	if s == nil {
		return nil
	}
	return s.issuers[name]
}

// Has reports whether s has an issuer named name.
func (s *Set) Has(name string) bool { return s.get(name) != nil }

// Issuer returns the issuer named name, nil when there is none.
func (s *Set) Issuer(name string) *Issuer { return s.get(name) }

// Verify is Issuer(name).Verify; an unknown name is an error (a policy naming an issuer
// that gateway.toml does not configure).
func (s *Set) Verify(ctx context.Context, name, token string, now time.Time) (Result, error) {
	is := s.get(name)
	if is == nil {
		return Result{}, fmt.Errorf("no [[oauth]] issuer named %q", name)
	}
	return is.Verify(ctx, token, now), nil
}

// Stats returns every issuer's stats, sorted by name.
func (s *Set) Stats() []Stats {
	if s == nil {
		return nil
	}
	out := make([]Stats, 0, len(s.issuers))
	for _, is := range s.issuers {
		out = append(out, is.Stats())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Close lets go of s's issuers: each stops once no set holds it, whatever the order the
// sets close in (a set replaced by a newer one may still be serving a request when the
// newer one closes). Call it once. Safe on nil.
func (s *Set) Close() {
	if s == nil {
		return
	}
	for _, is := range s.issuers {
		if is.holders.Add(-1) == 0 {
			is.Close()
		}
	}
}
