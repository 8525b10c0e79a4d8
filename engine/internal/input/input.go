package input

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"net"
	"net/netip"
	"strconv"
	"time"
	"unsafe"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/valyala/fasthttp"

	"github.com/hookwall/hookwall/engine/internal/nametab"
)

// Meta is what the gateway knows about a request beyond its bytes.
type Meta struct {
	ID         string
	Scheme     string // "http" | "https"
	RemoteIP   string
	ReceivedAt time.Time
	RouteName  string
	RoutePath  string
	// Path is input.request.path: the canonical path the request was routed on
	// (engine/internal/urlpath). Empty means the request's own path made canonical, or kept
	// raw when it has no canonical form (tools and tests; the gateway always sets it).
	Path string
	// Route, when set, is input.route prebuilt by RouteObject (once per route, not per request).
	Route ast.Object
	TLS   *tls.ConnectionState
	// ParseJSON parses the body into input.request.json when it is JSON; set it only when the
	// policy reads it (parsing costs more than the rest of the document).
	ParseJSON bool
	// JSON bounds that parse (zero fields: the config defaults).
	JSON JSONLimits
	// Source, when set, is input.source: what the gateway's watcher knows of the client
	// (SourceObject). Absent when watching is off.
	Source ast.Object
}

var (
	kRequest    = ast.StringTerm("request")
	kRoute      = ast.StringTerm("route")
	kFilters    = ast.StringTerm("filters")
	kID         = ast.StringTerm("id")
	kMethod     = ast.StringTerm("method")
	kScheme     = ast.StringTerm("scheme")
	kHost       = ast.StringTerm("host")
	kPath       = ast.StringTerm("path")
	kURI        = ast.StringTerm("uri")
	kQuery      = ast.StringTerm("query")
	kHeaders    = ast.StringTerm("headers")
	kBody       = ast.StringTerm("body")
	kJSON       = ast.StringTerm("json")
	kRemoteIP   = ast.StringTerm("remote_ip")
	kTLS        = ast.StringTerm("tls")
	kVersion    = ast.StringTerm("version")
	kClientCert = ast.StringTerm("client_cert")
	kSubject    = ast.StringTerm("subject")
	kIssuer     = ast.StringTerm("issuer")
	kSHA256     = ast.StringTerm("sha256")
	kReceivedAt = ast.StringTerm("received_at")
	kName       = ast.StringTerm("name")
	kSource     = ast.StringTerm("source")
	kBlocked    = ast.StringTerm("blocked")
)

// sourceBlocked and sourceClear are the two input.source values, shared and never modified.
var (
	sourceBlocked = ast.NewObject([2]*ast.Term{kBlocked, ast.BooleanTerm(true)})
	sourceClear   = ast.NewObject([2]*ast.Term{kBlocked, ast.BooleanTerm(false)})
)

// SourceObject returns input.source: {"blocked": blocked}. The object is shared: do not
// modify it.
func SourceObject(blocked bool) ast.Object {
	if blocked {
		return sourceBlocked
	}
	return sourceClear
}

// Builder builds input documents with few allocations: every string is copied into one
// arena and every term comes from a slab, both reused across requests.
//
// # Notes
//
// Strings and terms in a value built by b are views of b's arena: they stay valid until the
// next Reset. Anything kept longer (state-store keys, labels) must be copied. A Builder is
// not safe for concurrent use; keep one per in-flight request (the server pools them).
type Builder struct {
	arena []byte
	slab  []ast.Term
	lower []byte
	path  []byte   // a canonical path when Meta.Path is empty
	req   Captured // the request captured last (Capture)
	// index maps a header name to its position in req.headers once a capture has more
	// than linearHeaders names (Captured.find); dupVals and dups hold the later values of
	// repeated names until they are joined.
	index   []int32
	dupVals []byte
	dups    []dupValue
	// jsonTerms and jsonPairs are the JSON parse's stacks, reused.
	jsonTerms []*ast.Term
	jsonPairs [][2]*ast.Term
}

// Reset makes b reusable; values built before become invalid.
func (b *Builder) Reset() {
	b.arena = b.arena[:0]
	b.slab = b.slab[:0]
	b.req.reset()
}

const slabSize = 64

// term returns a fresh term holding v.
func (b *Builder) term(v ast.Value) *ast.Term {
	if len(b.slab) == cap(b.slab) {
		// A new slab: terms already handed out keep the old one alive.
		b.slab = make([]ast.Term, 0, slabSize)
	}
	b.slab = append(b.slab, ast.Term{Value: v})
	return &b.slab[len(b.slab)-1]
}

// str returns a string term whose bytes are a copy of p in the arena.
func (b *Builder) str(p []byte) *ast.Term {
	return b.term(ast.String(b.String(p)))
}

// String returns a copy of p in the arena, valid until the next Reset.
func (b *Builder) String(p []byte) string {
	if len(p) == 0 {
		return ""
	}
	if cap(b.arena)-len(b.arena) < len(p) {
		// A new arena: strings already handed out keep the old one alive.
		n := 2 * cap(b.arena)
		if n < len(p)+4096 {
			n = len(p) + 4096
		}
		b.arena = make([]byte, 0, n)
	}
	start := len(b.arena)
	b.arena = append(b.arena, p...)
	return unsafe.String(&b.arena[start], len(p))
}

// Request returns input.request for req with a one-off Builder (tools and tests).
func Request(req *fasthttp.Request, m *Meta) ast.Object {
	var b Builder
	return b.Request(req, m)
}

// RouteObject returns input.route for a route; build it once per route and share it (it is
// never modified).
func RouteObject(name, path string) ast.Object {
	return ast.NewObject([2]*ast.Term{kName, ast.StringTerm(name)}, [2]*ast.Term{kPath, ast.StringTerm(path)})
}

// emptyObject stands for every empty input.filters and input.request.query. OPA never
// modifies an input value, and neither does this package once it is built.
var emptyObject = ast.NewObject()

// Document returns the whole input: {"request": req, "route": {...}, "filters": filters},
// with "source": m.Source when set. A nil req or filters is an empty object.
func Document(req ast.Object, m *Meta, filters ast.Object) ast.Object {
	if filters == nil {
		filters = emptyObject
	}
	if req == nil {
		req = emptyObject
	}
	route := m.Route
	if route == nil {
		route = RouteObject(m.RouteName, m.RoutePath)
	}
	if m.Source != nil {
		return ast.NewObject(
			[2]*ast.Term{kRequest, ast.NewTerm(req)},
			[2]*ast.Term{kRoute, ast.NewTerm(route)},
			[2]*ast.Term{kFilters, ast.NewTerm(filters)},
			[2]*ast.Term{kSource, ast.NewTerm(m.Source)},
		)
	}
	return ast.NewObject(
		[2]*ast.Term{kRequest, ast.NewTerm(req)},
		[2]*ast.Term{kRoute, ast.NewTerm(route)},
		[2]*ast.Term{kFilters, ast.NewTerm(filters)},
	)
}

// commonNames are the lower-case names most webhooks carry.
var commonNames = []string{
	"accept", "accept-encoding", "authorization", "content-length", "content-type", "host", "user-agent",
	"x-forwarded-for", "x-forwarded-proto", "x-request-id",
	"x-github-delivery", "x-github-event", "x-github-hook-id", "x-github-hook-installation-target-id",
	"x-github-hook-installation-target-type", "x-hub-signature", "x-hub-signature-256",
	"stripe-signature", "x-slack-request-timestamp", "x-slack-signature",
	"x-shopify-hmac-sha256", "x-shopify-topic", "x-shopify-webhook-id", "x-shopify-shop-domain",
	"x-twilio-signature", "webhook-id", "webhook-timestamp", "webhook-signature",
	"svix-id", "svix-timestamp", "svix-signature",
}

// commonHeaders holds commonNames as shared terms, so a request's names cost no copy when they
// are among them: finding a name costs no hash of the whole name and one or two comparisons
// (nametab). Filled when the package loads, read-only after.
var commonHeaders = func() *nametab.Table[*ast.Term] {
	t := new(nametab.Table[*ast.Term])
	for _, n := range commonNames {
		if !t.Put(n, ast.StringTerm(n)) {
			panic("input: the common header name " + n + " has no free slot in its table")
		}
	}
	return t
}()

// commonTerm returns the shared term of name (lower-case), nil when it is not a common name.
func commonTerm(name []byte) *ast.Term {
	t, _ := commonHeaders.Get(unsafe.String(unsafe.SliceData(name), len(name)))
	return t
}

func toLower(b []byte) {
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + ('a' - 'A')
		}
	}
}

func tlsInfo(cs *tls.ConnectionState) ast.Object {
	obj := ast.NewObject([2]*ast.Term{kVersion, ast.StringTerm(tlsVersion(cs.Version))})
	if len(cs.PeerCertificates) > 0 {
		c := cs.PeerCertificates[0]
		sum := sha256.Sum256(c.Raw)
		obj.Insert(kClientCert, ast.NewTerm(ast.NewObject(
			[2]*ast.Term{kSubject, ast.StringTerm(c.Subject.String())},
			[2]*ast.Term{kIssuer, ast.StringTerm(c.Issuer.String())},
			[2]*ast.Term{kSHA256, ast.StringTerm(hex.EncodeToString(sum[:]))},
		)))
	}
	return obj
}

func tlsVersion(v uint16) string {
	switch v {
	case tls.VersionTLS10:
		return "1.0"
	case tls.VersionTLS11:
		return "1.1"
	case tls.VersionTLS12:
		return "1.2"
	case tls.VersionTLS13:
		return "1.3"
	}
	return strconv.Itoa(int(v))
}

// TrustedPeer reports whether the connection's peer is in trusted ([server] trusted_proxies):
// only then is the X-Forwarded-For it sent believed.
func TrustedPeer(peer net.Addr, trusted []netip.Prefix) bool {
	ip := peerAddr(peer)
	return ip.IsValid() && inAny(ip, trusted)
}

// ClientIP returns the client address: the peer, unless the peer is a trusted proxy, in which
// case the right-most X-Forwarded-For entry that is not itself trusted. A spoofed header from
// an untrusted peer is ignored.
func ClientIP(peer net.Addr, xff []byte, trusted []netip.Prefix) string {
	return ClientIPOr(peer, "", xff, trusted)
}

// ClientIPOr is ClientIP, answering peerText (when not "") where the client is a TCP peer
// itself: the caller formatted the peer's IP already (net.IP's String), and the common case
// then costs no second string.
func ClientIPOr(peer net.Addr, peerText string, xff []byte, trusted []netip.Prefix) string {
	ip := peerAddr(peer)
	if !ip.IsValid() {
		return ""
	}
	if len(trusted) == 0 || !inAny(ip, trusted) || len(xff) == 0 {
		if _, tcp := peer.(*net.TCPAddr); tcp && peerText != "" {
			return peerText
		}
		return ip.String()
	}
	parts := bytes.Split(xff, []byte(","))
	for i := len(parts) - 1; i >= 0; i-- {
		a, ok := forwardedAddr(bytes.TrimSpace(parts[i]))
		if !ok {
			break
		}
		a = a.Unmap()
		ip = a
		if !inAny(a, trusted) {
			break
		}
	}
	return ip.String()
}

// forwardedAddr reads one X-Forwarded-For entry: an address, or an address with a port
// ("203.0.113.9:443", "[2001:db8::1]:443", as some load balancers write it). An address with
// a zone names no client and is refused, as is anything else.
func forwardedAddr(e []byte) (netip.Addr, bool) {
	a, err := netip.ParseAddr(string(e))
	if err != nil {
		ap, perr := netip.ParseAddrPort(string(e))
		if perr != nil {
			return netip.Addr{}, false
		}
		a = ap.Addr()
	}
	return a, a.Zone() == ""
}

func peerAddr(a net.Addr) netip.Addr {
	switch x := a.(type) {
	case *net.TCPAddr:
		ip, ok := netip.AddrFromSlice(x.IP)
		if !ok {
			return netip.Addr{}
		}
		return ip.Unmap()
	case nil:
		return netip.Addr{}
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

func inAny(a netip.Addr, ps []netip.Prefix) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
