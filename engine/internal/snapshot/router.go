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
	for _, rs := range rt.exact {
		linkSiblings(rs)
	}
	linkSiblings(rt.prefixes)
	return rt
}

// linkSiblings points each route of rs at the next one with the same host and path (or
// prefix), which only its methods tell apart: matching follows the chain only where there
// is one.
func linkSiblings(rs []*Route) {
	for i, r := range rs {
		for _, s := range rs[i+1:] {
			if sameMatcher(r, s) {
				r.sibling = s
				break
			}
		}
	}
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
// when it does not take method, a sibling (same host and path or prefix) that does. A route
// without siblings, the common case, is the match whatever the method: the server's method
// check answers 405, and a request's method is looked up once.
func pick(rs []*Route, host, path, method []byte) *Route {
	for _, r := range rs {
		if !hostMatches(r.Config.Host, host) || !bytes.HasPrefix(path, []byte(r.Config.Prefix)) {
			continue
		}
		for s := r; r.sibling != nil && s != nil; s = s.sibling {
			if s.AllowsMethod(method) {
				return s
			}
		}
		return r
	}
	return nil
}

// sameMatcher reports whether a and b match the same requests but for their methods.
func sameMatcher(a, b *Route) bool {
	return strings.EqualFold(a.Config.Host, b.Config.Host) && a.Config.Path == b.Config.Path && a.Config.Prefix == b.Config.Prefix
}
