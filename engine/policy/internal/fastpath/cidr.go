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
// policy's allowlist is a few constant CIDRs, parsed on every call otherwise. The networks
// are copied on write and read without a lock: every request reads them once per CIDR it
// tries, and a read lock's counter is written by every reader.
type cidrCache struct {
	mu   sync.Mutex // serializes the writers
	nets atomic.Pointer[cidrSet]
}

// cidrSet is one version of the cache, never written once published. first holds the first
// cidrScan networks cached, found by a scan that compares strings (an allowlist's few CIDRs:
// cheaper than hashing the string for the map, which holds them all).
type cidrSet struct {
	first []cidrEntry
	m     map[string]*net.IPNet
}

type cidrEntry struct {
	s string
	n *net.IPNet
}

// maxCIDRs bounds the cache: CIDRs that come from requests must not grow it without end.
// cidrScan is how many of them get is looks for by a scan before it looks in the map.
const (
	maxCIDRs = 1024
	cidrScan = 8
)

func (c *cidrCache) get(s string) (*net.IPNet, bool) {
	if set := c.nets.Load(); set != nil {
		for i := range set.first {
			if set.first[i].s == s {
				return set.first[i].n, true
			}
		}
		if len(set.m) > len(set.first) {
			if n, ok := set.m[s]; ok {
				return n, true
			}
		}
	}
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		return nil, false
	}
	c.mu.Lock()
	if nets := c.cached(); len(nets) < maxCIDRs {
		m := make(map[string]*net.IPNet, len(nets)+1)
		maps.Copy(m, nets)
		k := strings.Clone(s) // s may be a view of a request's buffer, reused after it
		m[k] = n
		set := &cidrSet{m: m}
		if old := c.nets.Load(); old != nil {
			set.first = old.first
		}
		if len(set.first) < cidrScan {
			set.first = append(set.first[:len(set.first):len(set.first)], cidrEntry{s: k, n: n})
		}
		c.nets.Store(set)
	}
	c.mu.Unlock()
	return n, true
}

// cached returns the networks cached so far (nil: none). The map is never written.
func (c *cidrCache) cached() map[string]*net.IPNet {
	if set := c.nets.Load(); set != nil {
		return set.m
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
