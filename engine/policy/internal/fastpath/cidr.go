package fastpath

import (
	"net"
	"net/netip"
	"strings"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// cidrCache remembers the networks net.cidr_contains parsed from its first operand: a
// policy's allowlist is a few constant CIDRs, parsed on every call otherwise.
type cidrCache struct {
	mu   sync.RWMutex
	nets map[string]*net.IPNet
}

// maxCIDRs bounds the cache: CIDRs that come from requests must not grow it without end.
const maxCIDRs = 1024

func (c *cidrCache) get(s string) (*net.IPNet, bool) {
	c.mu.RLock()
	n, ok := c.nets[s]
	c.mu.RUnlock()
	if ok {
		return n, true
	}
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		return nil, false
	}
	c.mu.Lock()
	if len(c.nets) < maxCIDRs {
		if c.nets == nil {
			c.nets = map[string]*net.IPNet{}
		}
		c.nets[strings.Clone(s)] = n // s may be a view of a request's buffer, reused after it
	}
	c.mu.Unlock()
	return n, true
}

// contains is net.cidr_contains (impl) with its first operand's network from the cache. It
// answers itself only where both operands are strings, the first a CIDR and the second an
// IP address, with topdown's own test (IPNet.Contains of the address net.ParseIP gives);
// anything else, errors included, is impl's to answer.
func (c *cidrCache) contains(impl topdown.BuiltinFunc) topdown.BuiltinFunc {
	return func(bctx topdown.BuiltinContext, ops []*ast.Term, iter func(*ast.Term) error) error {
		a, okA := ops[0].Value.(ast.String)
		b, okB := ops[1].Value.(ast.String)
		if okA && okB {
			// net.ParseIP is netip.ParseAddr refusing zones, without the allocation.
			if addr, err := netip.ParseAddr(string(b)); err == nil && addr.Zone() == "" {
				if n, ok := c.get(string(a)); ok {
					ip := addr.As16()
					return iter(ast.InternedTerm(n.Contains(net.IP(ip[:]))))
				}
			}
		}
		return impl(bctx, ops, iter)
	}
}
