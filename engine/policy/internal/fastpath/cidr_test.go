package fastpath

import (
	"fmt"
	"net"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// cachedContains is net.cidr_contains (impl) with its first operand's network from c, as the
// compiled call makes it: quick where it answers, impl otherwise.
func cachedContains(c *cidrCache, impl topdown.BuiltinFunc) topdown.BuiltinFunc {
	return func(bctx topdown.BuiltinContext, ops []*ast.Term, iter func(*ast.Term) error) error {
		if t := c.quick(nil, ops); t != nil {
			return iter(t)
		}
		return impl(bctx, ops, iter)
	}
}

// TestCIDRCacheLooksAgainUnderItsLock: a request that missed a network another request cached
// while it parsed does not cache it a second time: a second entry in the scanned list would
// take the place of a later network, which the scan would then never reach.
func TestCIDRCacheLooksAgainUnderItsLock(t *testing.T) {
	c := &cidrCache{}
	c.mu.Lock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, ok := c.get("10.0.0.0/8"); !ok {
			t.Error("get(10.0.0.0/8): not a network")
		}
	}()
	time.Sleep(20 * time.Millisecond) // the request misses, parses and waits for the lock
	_, n, _ := net.ParseCIDR("10.0.0.0/8")
	c.nets.Store(&cidrSet{first: []cidrEntry{{s: "10.0.0.0/8", n: n}}, m: map[string]*net.IPNet{"10.0.0.0/8": n}})
	c.mu.Unlock()
	<-done
	if set := c.nets.Load(); len(set.first) != 1 || set.len() != 1 {
		t.Fatalf("after two requests cached one network: %d scanned, %d in the map; want 1 and 1", len(set.first), set.len())
	}
}

// TestCIDRContainsMatchesTopdown calls the cached net.cidr_contains and topdown's on every
// pair of networks and addresses, IPv4, IPv6, IPv4-mapped, zoned, CIDRs as the second
// operand, malformed strings and non-strings, each pair twice (the second from the cache):
// the answers and the errors must be topdown's.
func TestCIDRContainsMatchesTopdown(t *testing.T) {
	impl := topdown.GetBuiltin("net.cidr_contains")
	c := &cidrCache{}
	cached := cachedContains(c, impl)
	nets := []*ast.Term{
		ast.StringTerm("10.0.0.0/8"), ast.StringTerm("127.0.0.0/8"), ast.StringTerm("10.0.0.1/32"),
		ast.StringTerm("0.0.0.0/0"), ast.StringTerm("::/0"), ast.StringTerm("::1/128"),
		ast.StringTerm("2001:db8::/32"), ast.StringTerm("::ffff:10.0.0.0/104"), ast.StringTerm("10.0.0.0/33"),
		ast.StringTerm("10.0.0.1"), ast.StringTerm("bad"), ast.StringTerm(""), ast.IntNumberTerm(10),
	}
	addrs := []*ast.Term{
		ast.StringTerm("10.1.2.3"), ast.StringTerm("127.0.0.1"), ast.StringTerm("11.0.0.1"), ast.StringTerm("::1"),
		ast.StringTerm("::ffff:10.1.2.3"), ast.StringTerm("2001:db8::1"), ast.StringTerm("fe80::1%eth0"),
		ast.StringTerm("10.0.0.0/24"), ast.StringTerm("2001:db8::/48"), ast.StringTerm("0.0.0.0/0"),
		ast.StringTerm("nonsense"), ast.StringTerm(""), ast.IntNumberTerm(1), ast.NullTerm(),
		ast.StringTerm("::ffff:127.0.0.1"), ast.StringTerm("::1.2.3.4"), ast.StringTerm("010.1.2.3"),
		ast.StringTerm("10.1.2.3%eth0"), ast.StringTerm("[::1]"), ast.StringTerm(" 10.1.2.3"), ast.StringTerm("2001:DB8::1"),
	}
	call := func(f topdown.BuiltinFunc, a, b *ast.Term) string {
		var out *ast.Term
		err := f(topdown.BuiltinContext{}, []*ast.Term{a, b}, func(t *ast.Term) error { out = t; return nil })
		return fmt.Sprintf("%v %v", out, err)
	}
	// The compiled call's quick answer, with a run that keeps the last address parsed: each
	// pair asked twice, so that the second finds the address kept and the next pair another.
	r := &run{}
	hits, quick := 0, 0
	for round := range 2 {
		for _, a := range nets {
			for _, b := range addrs {
				want, got := call(impl, a, b), call(cached, a, b)
				if got != want {
					t.Errorf("round %d: net.cidr_contains(%v, %v) = %s, topdown %s", round, a, b, got, want)
				}
				if want == "true <nil>" {
					hits++
				}
				for range 2 {
					if q := c.quick(r, []*ast.Term{a, b}); q != nil {
						quick++
						if got := fmt.Sprintf("%v <nil>", q); got != want {
							t.Errorf("round %d: quick net.cidr_contains(%v, %v) = %s, topdown %s", round, a, b, got, want)
						}
					}
				}
			}
		}
	}
	if hits == 0 || c.nets.Load().len() == 0 || quick == 0 {
		t.Fatalf("no pair was contained (%d), nothing was cached (%d) or answered quick (%d): the table tests nothing", hits, c.nets.Load().len(), quick)
	}
}

// TestCIDRCacheIsBounded: networks from requests do not grow the cache past maxCIDRs, and
// past it every network is still parsed and answered.
func TestCIDRCacheIsBounded(t *testing.T) {
	c := &cidrCache{}
	cached := cachedContains(c, topdown.GetBuiltin("net.cidr_contains"))
	for i := range maxCIDRs + 100 {
		cidr := fmt.Sprintf("10.%d.%d.0/24", i/256, i%256)
		addr := fmt.Sprintf("10.%d.%d.7", i/256, i%256)
		var out *ast.Term
		if err := cached(topdown.BuiltinContext{}, []*ast.Term{ast.StringTerm(cidr), ast.StringTerm(addr)},
			func(t *ast.Term) error { out = t; return nil }); err != nil || out == nil || !out.Equal(ast.BooleanTerm(true)) {
			t.Fatalf("net.cidr_contains(%q, %q) = %v, %v; want true", cidr, addr, out, err)
		}
	}
	if c.nets.Load().len() != maxCIDRs {
		t.Fatalf("the cache holds %d networks, want the bound %d", c.nets.Load().len(), maxCIDRs)
	}
	// Asked again, each network is found (the first ones by the scan, the rest in the map)
	// and answers for its own addresses only.
	for i := range maxCIDRs + 100 {
		cidr := fmt.Sprintf("10.%d.%d.0/24", i/256, i%256)
		for j, want := range []bool{true, false} {
			addr := fmt.Sprintf("10.%d.%d.7", i/256, (i+j)%256)
			got := c.quick(nil, []*ast.Term{ast.StringTerm(cidr), ast.StringTerm(addr)})
			if got == nil || !got.Equal(ast.BooleanTerm(want)) {
				t.Fatalf("again: net.cidr_contains(%q, %q) = %v; want %v", cidr, addr, got, want)
			}
		}
	}
	if n := len(c.nets.Load().first); n != cidrScan {
		t.Errorf("%d networks found by the scan, want %d", n, cidrScan)
	}
}

// TestCIDRCacheKeepsItsKeys: a network given as a view of a buffer that is then reused (as a
// request's captured strings are, once the request ends) is cached under its own copy: the
// cache's keys still read as the networks asked for.
func TestCIDRCacheKeepsItsKeys(t *testing.T) {
	c := &cidrCache{}
	cached := cachedContains(c, topdown.GetBuiltin("net.cidr_contains"))
	buf := []byte("10.0.0.0/8")
	view := unsafe.String(&buf[0], len(buf))
	var out *ast.Term
	if err := cached(topdown.BuiltinContext{}, []*ast.Term{ast.StringTerm(view), ast.StringTerm("10.1.2.3")},
		func(t *ast.Term) error { out = t; return nil }); err != nil || out == nil || !out.Equal(ast.BooleanTerm(true)) {
		t.Fatalf("net.cidr_contains(10.0.0.0/8, 10.1.2.3) = %v, %v; want true", out, err)
	}
	copy(buf, "11.0.0.0/8") // the next request's bytes
	for k := range c.nets.Load().m {
		if k != "10.0.0.0/8" {
			t.Fatalf("the cache's key now reads %q: it shares the caller's buffer", k)
		}
	}
	for _, e := range c.nets.Load().first {
		if e.s != "10.0.0.0/8" {
			t.Fatalf("the scanned network's key now reads %q: it shares the caller's buffer", e.s)
		}
	}
}

// TestCIDRCacheConcurrent: evaluations read the cache while others add to it (the map is
// replaced, never written): every answer is right, and the race detector sees no race.
func TestCIDRCacheConcurrent(t *testing.T) {
	c := &cidrCache{}
	cached := cachedContains(c, topdown.GetBuiltin("net.cidr_contains"))
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				n := (g*37 + i) % 150 // the goroutines add the same networks and new ones
				cidr, in, out := fmt.Sprintf("10.%d.0.0/16", n), fmt.Sprintf("10.%d.1.2", n), fmt.Sprintf("10.%d.1.2", n+1)
				for _, tc := range []struct {
					addr string
					want bool
				}{{in, true}, {out, false}} {
					var got *ast.Term
					err := cached(topdown.BuiltinContext{}, []*ast.Term{ast.StringTerm(cidr), ast.StringTerm(tc.addr)},
						func(t *ast.Term) error { got = t; return nil })
					if err != nil || got == nil || !got.Equal(ast.BooleanTerm(tc.want)) {
						t.Errorf("net.cidr_contains(%q, %q) = %v, %v; want %v", cidr, tc.addr, got, err, tc.want)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if n := c.nets.Load().len(); n != 150 {
		t.Errorf("%d networks cached, want the 150 asked for", n)
	}
}

// TestMemberMatchesTopdown: the compiled call's quick x in xs answers as topdown's
// internal.member_2 for members and non-members of sets, arrays and objects (1 and 1.0 among
// them) and for collections that are none of those.
func TestMemberMatchesTopdown(t *testing.T) {
	impl := topdown.GetBuiltin("internal.member_2")
	xs := []string{`"a"`, `1`, `1.0`, `2`, `null`, `true`, `[1]`, `{"k": "a"}`, `{"a"}`, `"k"`, `"abc"`}
	colls := []string{`{"a", 1}`, `["a", 1, [1]]`, `{"k": "a", "n": null}`, `"abc"`, `1`, `null`, `set()`, `[]`, `{}`,
		`{[1], {"k": "a"}, {"a"}}`, `[true, 1.0]`}
	in := 0
	for _, xsrc := range xs {
		for _, csrc := range colls {
			ops := []*ast.Term{ast.MustParseTerm(xsrc), ast.MustParseTerm(csrc)}
			var want *ast.Term
			if err := impl(topdown.BuiltinContext{}, ops, func(t *ast.Term) error { want = t; return nil }); err != nil {
				t.Fatal(err)
			}
			if got := member(nil, ops); got == nil || !got.Equal(want) {
				t.Errorf("%s in %s = %v, topdown %v", xsrc, csrc, got, want)
			}
			if want.Equal(ast.BooleanTerm(true)) {
				in++
			}
		}
	}
	if in < 8 {
		t.Fatalf("only %d pairs are members: the table tests little", in)
	}
}
