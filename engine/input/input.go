package input

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/valyala/fasthttp"
)

// Meta is what the gateway knows about a request beyond its bytes.
type Meta struct {
	ID         string
	Scheme     string // "http" | "https"
	RemoteIP   string
	ReceivedAt time.Time
	RouteName  string
	RoutePath  string
	TLS        *tls.ConnectionState
	// ParseJSON parses the body into input.request.json when it is JSON; set it only when the
	// policy reads it (parsing costs more than the rest of the document).
	ParseJSON bool
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
)

// Request returns input.request for req.
func Request(req *fasthttp.Request, m *Meta) ast.Object {
	h := &req.Header
	items := make([][2]*ast.Term, 0, 12)
	items = append(items,
		[2]*ast.Term{kID, ast.StringTerm(m.ID)},
		[2]*ast.Term{kMethod, ast.StringTerm(string(h.Method()))},
		[2]*ast.Term{kScheme, ast.StringTerm(m.Scheme)},
		[2]*ast.Term{kHost, ast.StringTerm(string(h.Host()))},
		[2]*ast.Term{kPath, ast.StringTerm(string(req.URI().PathOriginal()))},
		[2]*ast.Term{kURI, ast.StringTerm(string(h.RequestURI()))},
		[2]*ast.Term{kQuery, ast.NewTerm(query(req))},
		[2]*ast.Term{kHeaders, ast.NewTerm(headers(h))},
		[2]*ast.Term{kBody, ast.StringTerm(string(req.Body()))},
		[2]*ast.Term{kRemoteIP, ast.StringTerm(m.RemoteIP)},
		[2]*ast.Term{kReceivedAt, ast.IntNumberTerm(int(m.ReceivedAt.UnixNano()))},
	)
	if m.ParseJSON {
		if v, ok := parseJSON(req); ok {
			items = append(items, [2]*ast.Term{kJSON, ast.NewTerm(v)})
		}
	}
	if m.TLS != nil {
		items = append(items, [2]*ast.Term{kTLS, ast.NewTerm(tlsInfo(m.TLS))})
	}
	return ast.NewObject(items...)
}

// Document returns the whole input: {"request": req, "route": {...}, "filters": filters}.
func Document(req ast.Object, m *Meta, filters ast.Object) ast.Object {
	if filters == nil {
		filters = ast.NewObject()
	}
	route := ast.NewObject([2]*ast.Term{kName, ast.StringTerm(m.RouteName)}, [2]*ast.Term{kPath, ast.StringTerm(m.RoutePath)})
	return ast.NewObject(
		[2]*ast.Term{kRequest, ast.NewTerm(req)},
		[2]*ast.Term{kRoute, ast.NewTerm(route)},
		[2]*ast.Term{kFilters, ast.NewTerm(filters)},
	)
}

// headers lower-cases names and joins repeated values with ", " (RFC 9110 §5.3).
func headers(h *fasthttp.RequestHeader) ast.Object {
	obj := ast.NewObjectWithCapacity(h.Len())
	var lower []byte
	for k, v := range h.All() {
		lower = append(lower[:0], k...)
		toLower(lower)
		key := ast.StringTerm(string(lower))
		if prev := obj.Get(key); prev != nil {
			joined := string(prev.Value.(ast.String)) + ", " + string(v)
			obj.Insert(key, ast.StringTerm(joined))
			continue
		}
		obj.Insert(key, ast.StringTerm(string(v)))
	}
	return obj
}

func toLower(b []byte) {
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + ('a' - 'A')
		}
	}
}

// query maps each parameter name to the list of its values, in order.
func query(req *fasthttp.Request) ast.Object {
	args := req.URI().QueryArgs()
	obj := ast.NewObjectWithCapacity(args.Len())
	for k, v := range args.All() {
		key := ast.StringTerm(string(k))
		val := ast.StringTerm(string(v))
		if prev := obj.Get(key); prev != nil {
			prev.Value.(*ast.Array).Append(val)
			continue
		}
		obj.Insert(key, ast.ArrayTerm(val))
	}
	return obj
}

func parseJSON(req *fasthttp.Request) (ast.Value, bool) {
	ct := req.Header.ContentType()
	body := req.Body()
	if len(body) == 0 {
		return nil, false
	}
	if len(ct) > 0 && !bytes.Contains(ct, []byte("json")) {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil || dec.More() {
		return nil, false
	}
	v, err := ast.InterfaceToValue(x)
	if err != nil {
		return nil, false
	}
	return v, true
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

// ClientIP returns the client address: the peer, unless the peer is a trusted proxy, in which
// case the right-most X-Forwarded-For entry that is not itself trusted. A spoofed header from
// an untrusted peer is ignored.
func ClientIP(peer net.Addr, xff []byte, trusted []netip.Prefix) string {
	ip := peerAddr(peer)
	if !ip.IsValid() {
		return ""
	}
	if len(trusted) == 0 || !inAny(ip, trusted) || len(xff) == 0 {
		return ip.String()
	}
	parts := bytes.Split(xff, []byte(","))
	for i := len(parts) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(string(bytes.TrimSpace(parts[i])))
		if err != nil {
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
