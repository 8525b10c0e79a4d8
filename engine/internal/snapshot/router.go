package snapshot

import (
	"bytes"
	"sort"
	"strings"
)

// router matches (host, path, method) to a route: a route with a host beats one without; an
// exact path beats a prefix; a longer prefix beats a shorter one; among routes with the same
// host and path (or prefix), the first that takes the method. A method never moves a request
// to a less specific route: when the most specific routes do not take it, the first of them
// is the match, and its method check answers 405. It is immutable after newRouter.
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

func (rt *router) match(host, path, method []byte) (*Route, bool) {
	if r := pick(rt.exact[string(path)], host, path, method); r != nil {
		return r, true
	}
	if r := pick(rt.prefixes, host, path, method); r != nil {
		return r, true
	}
	return nil, false
}

// pick returns the first route of rs (in precedence order) that matches host and path, or,
// when it does not take method, a later one with the same host and path (or prefix) that does.
func pick(rs []*Route, host, path, method []byte) *Route {
	var best *Route
	for _, r := range rs {
		if best == nil {
			if !hostMatches(r.Config.Host, host) || !bytes.HasPrefix(path, []byte(r.Config.Prefix)) {
				continue
			}
			if best = r; r.AllowsMethod(method) {
				return r
			}
			continue
		}
		if sameMatcher(r, best) && r.AllowsMethod(method) {
			return r
		}
	}
	return best
}

// sameMatcher reports whether a and b match the same requests but for their methods.
func sameMatcher(a, b *Route) bool {
	return strings.EqualFold(a.Config.Host, b.Config.Host) && a.Config.Path == b.Config.Path && a.Config.Prefix == b.Config.Prefix
}
