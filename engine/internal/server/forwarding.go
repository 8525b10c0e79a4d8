package server

import (
	"bytes"
	"errors"
	"iter"
	"strings"
	"unsafe"

	"github.com/valyala/fasthttp"

	"github.com/hookwall/hookwall/engine/config"
	"github.com/hookwall/hookwall/engine/decisionlog"
	"github.com/hookwall/hookwall/engine/internal/httpsyntax"
	"github.com/hookwall/hookwall/engine/internal/input"
	"github.com/hookwall/hookwall/engine/internal/snapshot"
	"github.com/hookwall/hookwall/engine/internal/urlpath"
	"github.com/hookwall/hookwall/engine/policy"
)

// splitTarget splits an origin-form request-target into its path and the rest ("?" and the
// query as received; empty when there is none).
func splitTarget(uri []byte) (path, rest []byte) {
	if i := bytes.IndexByte(uri, '?'); i >= 0 {
		return uri[:i], uri[i:]
	}
	return uri, nil
}

// routePath makes the request's path canonical (engine/internal/urlpath): the path the route
// is matched on, input.request.path, the logged path and the path forwarded. A path with no
// canonical form, a fragment, or (under path_normalization = "reject") a path an upstream
// could read as another, is answered 400; ok is then false. The returned path is valid until
// x is reset.
func routePath(ctx *fasthttp.RequestCtx, mode string, x *exchange) (path []byte, ok bool) {
	rec := &x.rec
	raw, rest := splitTarget(ctx.Request.Header.RequestURI())
	r := urlpath.Clean(x.pathBuf, raw)
	if r.Class != urlpath.Canonical && r.Path != nil {
		x.pathBuf = r.Path[:0]
	}
	reason := ""
	semi := bytes.IndexByte(rest, ';') >= 0
	switch {
	case r.Class == urlpath.Invalid, r.Class == urlpath.Ambiguous && mode != config.PathForwardCanonical:
		reason = r.Reason
	case bytes.IndexByte(rest, '#') >= 0:
		reason = urlpath.ReasonFragment
	case semi && mode != config.PathForwardCanonical:
		reason = reasonQuerySemicolon
	}
	if reason != "" {
		writeError(ctx, fasthttp.StatusBadRequest, "Bad Request")
		rec.Outcome, rec.Status, rec.Error = decisionlog.OutcomeError, fasthttp.StatusBadRequest, reason
		return nil, false
	}
	if r.Class != urlpath.Canonical {
		rec.Path = x.in.String(r.Path)
		x.rewrite = true
	}
	if semi {
		x.rewrite = true // forward_canonical: the query's ";" goes as %3B (useCanonicalPath)
	}
	return r.Path, true
}

// reasonQuerySemicolon: fasthttp, and so input.request.query, splits the query on "&"
// alone, while Rack before 3, Python before 3.9.2 and Go before 1.17 split on ";" too:
// "?a=1;admin=true" is one pair to the policy and two to such an upstream.
const reasonQuerySemicolon = "a ';' in the query, which some servers read as a separator"

// appendQuery appends the query rest (with its "?") to b, each ";" as "%3B", which every
// parser reads as data, as the policy did.
func appendQuery(b, rest []byte) []byte {
	for {
		i := bytes.IndexByte(rest, ';')
		if i < 0 {
			return append(b, rest...)
		}
		b = append(append(b, rest[:i]...), "%3B"...)
		rest = rest[i+1:]
	}
}

// rawPath returns the request's path as received, for the decision log of a request that
// is refused before routePath.
func rawPath(ctx *fasthttp.RequestCtx, in *input.Builder) string {
	return in.String(rawTarget(ctx))
}

// rawTarget returns the path of the request-target as received (valid until the handler
// returns).
func rawTarget(ctx *fasthttp.RequestCtx) []byte {
	raw, _ := splitTarget(ctx.Request.Header.RequestURI())
	return raw
}

// useCanonicalPath puts the canonical path in the request's target, the query kept as
// received but for its ";"s (appendQuery), so the filters see the path the route and the
// policy judged.
func useCanonicalPath(req *fasthttp.Request, path []byte, fw *forwarding) {
	_, rest := splitTarget(req.Header.RequestURI())
	fw.buf = appendQuery(append(fw.buf[:0], path...), rest)
	req.SetRequestURIBytes(fw.buf)
}

// forwarding is what the gateway sets on the forwarded request, beside what the filters
// left: it owns the X-Forwarded-* and X-Request-Id headers and applies the policy's
// upstream_headers, each replacing every copy the client sent, after hop-by-hop stripping
// (so a client's Connection header cannot remove them). Its buffers are reused.
type forwarding struct {
	peer    string          // the connection's peer address
	strip   uint32          // client headers stripped ([server] forward_client_headers): config's StripMarks
	headers []policy.Header // the policy's upstream_headers
	buf     []byte          // the upstream target, X-Forwarded-For
	path    []byte          // the canonical path of the upstream target
	host    []byte          // the Host the request came with, before the filters (pickRoute)
	// prior is the X-Forwarded-For list a trusted proxy sent, copied before the filters ran
	// (buildMeta): the list forwarded is the one input.request.remote_ip was read from, not
	// one a filter wrote. Empty when the peer is not a trusted proxy or sent none.
	prior []byte
	// ambiguousOK is [server] path_normalization = "forward_canonical": a path an upstream
	// could read as another is forwarded in its canonical form, whoever set it. Under
	// "reject" a filter's is refused as a client's is.
	ambiguousOK bool
}

// setForwarding fills x.fwd for the stage that stores or forwards the request.
func (x *exchange) setForwarding() {
	fw, sc := &x.fwd, &x.snap.Config.Server
	fw.peer = x.peer
	fw.strip, fw.headers = sc.StripMarks(), x.dec.UpstreamHeaders
	fw.ambiguousOK = sc.PathNormalization == config.PathForwardCanonical
}

func (fw *forwarding) reset() {
	*fw = forwarding{buf: fw.buf[:0], path: fw.path[:0], host: fw.host[:0], prior: fw.prior[:0]}
}

var (
	errFilterPath          = errors.New("a filter set a request path that has no canonical form")
	errFilterQuery         = errors.New(`a filter set a query with a ";", which some servers read as a separator, refused under [server] path_normalization = "reject"`)
	errFilterAmbiguousPath = errors.New(`a filter set a request path an upstream could read as another (an encoded slash or backslash, or an escape encoded twice), refused under [server] path_normalization = "reject"`)
)

// prepare readies req's header and target for the upstream of route.
func (fw *forwarding) prepare(req *fasthttp.Request, route *snapshot.Route, meta *input.Meta) error {
	h := &req.Header
	hops, strip, anyOwned, underscore := forwardedNames(h.All(), fw.strip)
	stripHop(h, hops)
	for i, name := range clientHeaders {
		if strip&(1<<i) != 0 {
			h.Del(name)
		}
	}
	if underscore {
		// The client's were refused or dropped before anything ran ([server]
		// underscore_headers): these are a filter's, and go the same way.
		dropUnderscoreFields(h)
	}
	// The framing is the gateway's: fasthttp writes the body's own length when there is a
	// body, but a GET's or HEAD's stored Content-Length (or Transfer-Encoding) as it is, and
	// a filter may have set one on a request without a body. The upstream would read the
	// next request on the connection as its body.
	if h.ContentLength() != 0 && len(req.Body()) == 0 && (h.IsGet() || h.IsHead()) {
		h.SetContentLength(0)
	}

	// X-Forwarded-For: the list a trusted proxy sent (as received), then the peer.
	fw.buf = fw.buf[:0]
	if len(fw.prior) > 0 {
		fw.buf = append(append(fw.buf, fw.prior...), ", "...)
	}
	fw.buf = append(fw.buf, fw.peer...)
	// The gateway's own headers replace every copy the client sent. The names are given in
	// canonical form, so fasthttp does not normalise a copy of each; none is one it keeps
	// apart (Host, Content-Type, …).
	if anyOwned {
		for _, name := range httpsyntax.GatewayOwned {
			h.Del(name)
		}
	}
	h.SetCanonical(unsafeBytes(httpsyntax.GatewayOwned[0]), fw.buf)
	h.SetCanonical(unsafeBytes(httpsyntax.GatewayOwned[1]), fw.host) // the Host the route matched, not a filter's
	h.SetCanonical(unsafeBytes(httpsyntax.GatewayOwned[2]), unsafeBytes(meta.Scheme))
	h.SetCanonical(unsafeBytes(httpsyntax.GatewayOwned[3]), unsafeBytes(meta.ID))
	for _, ph := range fw.headers {
		h.Del(ph.Name)
		h.Set(ph.Name, ph.Value)
	}

	// The target is made canonical again: a filter may have set another. The route's base
	// path is joined to a canonical path, which has no dot segment to climb out of it with.
	path, rest := splitTarget(h.RequestURI())
	r := urlpath.Clean(fw.path, path)
	switch r.Class {
	case urlpath.Invalid:
		return errFilterPath
	case urlpath.Ambiguous:
		if !fw.ambiguousOK {
			return errFilterAmbiguousPath
		}
		fw.path = r.Path[:0]
	case urlpath.Canonical:
	default:
		fw.path = r.Path[:0]
	}
	if bytes.IndexByte(rest, ';') >= 0 {
		// A filter's (the client's was refused, or encoded, before the filters ran).
		if !fw.ambiguousOK {
			return errFilterQuery
		}
	}
	fw.buf = appendQuery(append(append(fw.buf[:0], route.BasePath...), r.Path...), rest)
	if len(rest) == 0 && bytes.Equal(fw.buf, h.RequestURI()) {
		// The target stays as it is, and has no query: fasthttp's parse of it (made when the
		// request was read) stays valid, and the client writes the path it parsed back as
		// received, byte for byte. Setting it again would only make the client parse it
		// again. A query is always set again: the client would rebuild it from the query
		// arguments the capture parsed, not write it as received.
		return nil
	}
	req.SetRequestURIBytes(fw.buf)
	return nil
}

// requestIDHeader carries the decision id, to the upstream and in the answer, in canonical
// form.
const requestIDHeader = "X-Request-Id"

// clientHeaders are the client headers a configuration may strip, in the order of its
// StripMarks.
var clientHeaders = config.ClientHeaders()

// forwardedName is a name forwardedNames looks for: its marks in each set it belongs to.
type forwardedName struct {
	name   string
	hop    uint16 // bit i for hopHeaders[i] (hopsIn's marks)
	client uint32 // bit i for clientHeaders[i]
	owned  bool   // one of httpsyntax.GatewayOwned
}

// forwardedByLength lists the names of hopHeaders, clientHeaders and httpsyntax.GatewayOwned by their
// length, so that forwardedNames compares a header's name with those of its length alone.
// Every one is shorter than the table.
var forwardedByLength = func() (t [33][]forwardedName) {
	add := func(name string, n forwardedName) {
		row := t[len(name)]
		for i := range row {
			if strings.EqualFold(row[i].name, name) {
				row[i].hop |= n.hop
				row[i].client |= n.client
				row[i].owned = row[i].owned || n.owned
				return
			}
		}
		n.name = name
		t[len(name)] = append(row, n)
	}
	for i, name := range hopHeaders {
		add(name, forwardedName{hop: 1 << i})
	}
	for i, name := range clientHeaders {
		add(name, forwardedName{client: 1 << i})
	}
	for _, name := range httpsyntax.GatewayOwned {
		add(name, forwardedName{owned: true})
	}
	return t
}()

// marksOf returns the entry of forwardedByLength that k is (any case), the zero entry for
// any other name. The table merges a name listed in two sets, so one entry at most matches.
func marksOf(k []byte) forwardedName {
	if len(k) < len(forwardedByLength) {
		for _, n := range forwardedByLength[len(k)] {
			if bytes.EqualFold(k, unsafeBytes(n.name)) {
				return n
			}
		}
	}
	return forwardedName{}
}

// forwardedNames is prepare's one pass over the names of a request's header (all): the
// marks of the hop-by-hop headers present (hopsIn's), the marks of the client headers
// present that stripMarks strips (config's StripMarks), whether any of the gateway's own
// headers is present (any case), and whether a name has an underscore. Most requests carry none of them, and deleting each name
// would scan the headers once per name; one pass for the three sets, and a name is compared
// only with the names of its length, resolved when the program starts. The answers are of
// the header as received: stripping hop-by-hop headers first only removes names, so a name
// found absent stays absent.
func forwardedNames(all iter.Seq2[[]byte, []byte], stripMarks uint32) (hops uint16, strip uint32, anyOwned, underscore bool) {
	for k := range all {
		n := marksOf(k)
		hops |= n.hop
		strip |= n.client
		anyOwned = anyOwned || n.owned
		underscore = underscore || bytes.IndexByte(k, '_') >= 0
	}
	return hops, strip & stripMarks, anyOwned, underscore
}

// unsafeBytes views s as bytes for fasthttp's []byte setters, which copy them.
func unsafeBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }
