package snapshot

import (
	"bytes"
	"sort"
	"strings"
)

// router matches (host, path) to a route: a route with a host beats one without; an exact
// path beats a prefix; a longer prefix beats a shorter one. It is immutable after newRouter.
type router struct {
	exact    map[string][]*Route // path → routes (host-specific first)
	prefixes []*Route            // longest prefix first, host-specific first
}

func newRouter(routes []*Route) router {
	rt := router{exact: map[string][]*Route{}}
	for _, r := range routes {
		if r.Config.Path != "" {
			rt.exact[r.Config.Path] = append(rt.exact[r.Config.Path], r)
		} else {
			rt.prefixes = append(rt.prefixes, r)
		}
	}
	for _, rs := range rt.exact {
		sort.SliceStable(rs, func(i, j int) bool { return rs[i].Config.Host != "" && rs[j].Config.Host == "" })
	}
	sort.SliceStable(rt.prefixes, func(i, j int) bool {
		a, b := rt.prefixes[i].Config, rt.prefixes[j].Config
		if len(a.Prefix) != len(b.Prefix) {
			return len(a.Prefix) > len(b.Prefix)
		}
		return a.Host != "" && b.Host == ""
	})
	return rt
}

func hostMatches(want string, host []byte) bool {
	if want == "" {
		return true
	}
	if i := bytes.LastIndexByte(host, ':'); i >= 0 && !bytes.Contains(host[i:], []byte("]")) {
		host = host[:i]
	}
	return strings.EqualFold(want, string(host))
}

func (rt *router) match(host, path []byte) (*Route, bool) {
	for _, r := range rt.exact[string(path)] {
		if hostMatches(r.Config.Host, host) {
			return r, true
		}
	}
	for _, r := range rt.prefixes {
		if bytes.HasPrefix(path, []byte(r.Config.Prefix)) && hostMatches(r.Config.Host, host) {
			return r, true
		}
	}
	return nil, false
}
