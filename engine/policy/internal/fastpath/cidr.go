package fastpath

import (
	"maps"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// cidrCache remembers the networks net.cidr_contains parsed from its first operand: a
// policy's allowlist is a few constant CIDRs, parsed on every call otherwise. The map is
// copied on write and read without a lock: every request reads it once per CIDR it tries,
// and a read lock's counter is written by every reader.
type cidrCache struct {
	mu   sync.Mutex // serializes the writers
	nets atomic.Pointer[map[string]*net.IPNet]
}

// maxCIDRs bounds the cache: CIDRs that come from requests must not grow it without end.
const maxCIDRs = 1024

func (c *cidrCache) get(s string) (*net.IPNet, bool) {
	nets := c.cached()
	if n, ok := nets[s]; ok {
		return n, true
	}
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		return nil, false
	}
	c.mu.Lock()
	if nets = c.cached(); len(nets) < maxCIDRs {
		m := make(map[string]*net.IPNet, len(nets)+1)
		maps.Copy(m, nets)
		m[strings.Clone(s)] = n // s may be a view of a request's buffer, reused after it
		c.nets.Store(&m)
	}
	c.mu.Unlock()
	return n, true
}

// cached returns the networks cached so far (nil: none). The map is never written.
func (c *cidrCache) cached() map[string]*net.IPNet {
	if m := c.nets.Load(); m != nil {
		return *m
	}
	return nil
}

// contains is net.cidr_contains (impl) with its first operand's network from the cache: quick
// where it answers, impl otherwise.
func (c *cidrCache) contains(impl topdown.BuiltinFunc) topdown.BuiltinFunc {
	return func(bctx topdown.BuiltinContext, ops []*ast.Term, iter func(*ast.Term) error) error {
		if t := c.quick(nil, ops); t != nil {
			return iter(t)
		}
		return impl(bctx, ops, iter)
	}
}

// quick is net.cidr_contains where both operands are strings, the first a CIDR and the second
// an IP address, with topdown's own test (IPNet.Contains of the address net.ParseIP gives);
// nil for anything else, errors included, which is the built-in's to answer. A run (nil: none)
// keeps the last address it parsed: an allowlist is tried against one address, CIDR by CIDR.
func (c *cidrCache) quick(r *run, ops []*ast.Term) *ast.Term {
	a, okA := ops[0].Value.(ast.String)
	b, okB := ops[1].Value.(ast.String)
	if !okA || !okB {
		return nil
	}
	var addr netip.Addr
	if r != nil && r.addrOK && r.addrText == string(b) {
		addr = r.addr
	} else {
		var err error
		// net.ParseIP is netip.ParseAddr refusing zones, without the allocation.
		if addr, err = netip.ParseAddr(string(b)); err != nil || addr.Zone() != "" {
			return nil
		}
		if r != nil {
			r.addrText, r.addr, r.addrOK = string(b), addr, true
		}
	}
	n, ok := c.get(string(a))
	if !ok {
		return nil
	}
	ip := addr.As16()
	return ast.InternedTerm(n.Contains(net.IP(ip[:])))
}
