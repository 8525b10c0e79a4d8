package fastpath

import (
	"maps"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/open-policy-agent/opa/v1/ast"
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
	if n := c.nets.Load().lookup(s); n != nil {
		return n, true
	}
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// Looked up again under the lock: another request may have cached s meanwhile, and a
	// second entry for it in first would leave a later CIDR out of the scan's reach.
	old := c.nets.Load()
	if cached := old.lookup(s); cached != nil {
		return cached, true
	}
	if old.len() >= maxCIDRs {
		return n, true
	}
	k := strings.Clone(s) // s may be a view of a request's buffer, reused after it
	next := &cidrSet{m: make(map[string]*net.IPNet, old.len()+1)}
	if old != nil {
		maps.Copy(next.m, old.m)
		next.first = old.first[:len(old.first):len(old.first)]
	}
	next.m[k] = n
	if len(next.first) < cidrScan {
		next.first = append(next.first, cidrEntry{s: k, n: n})
	}
	c.nets.Store(next)
	return n, true
}

// lookup returns the network cached for s, nil when set (nil: none yet) has none.
func (set *cidrSet) lookup(s string) *net.IPNet {
	if set == nil {
		return nil
	}
	for i := range set.first {
		if set.first[i].s == s {
			return set.first[i].n
		}
	}
	return set.m[s]
}

// len returns how many networks set (nil: none yet) holds.
func (set *cidrSet) len() int {
	if set == nil {
		return 0
	}
	return len(set.m)
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
