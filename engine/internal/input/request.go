package input

import (
	"bytes"
	"crypto/tls"
	"hash/maphash"
	"strconv"
	"unsafe"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/valyala/fasthttp"

	"github.com/hookwall/hookwall/engine/internal/urlpath"
)

// Captured is input.request captured when the request arrived: every field copied flat into
// its Builder's arena, before any filter may change the request. The OPA object is built
// from the copy only when something asks for it (Object); Field and Header answer a single
// field or header from the copy, as the object would, without building it. A compiled
// policy that reads a few headers and passes the request to verify never builds it.
//
// A Captured belongs to its Builder: it is valid until the Builder's next Capture or Reset,
// and not safe for concurrent use.
type Captured struct {
	b   *Builder
	str [nStrFields]string
	// encoded: the body came with a Content-Encoding (gzip…) and the policy reads its JSON.
	encoded bool
	// headers are the lower-case names with their values, repeated names joined with ", "
	// (RFC 9110 section 5.3), in the order first seen.
	headers []field
	query   []field // in order, repeated names repeated
	tls     *tls.ConnectionState
	json    bool // parse the body into input.request.json (Meta.ParseJSON)
	indexed bool // the headers are in the Builder's index (past linearHeaders names)
	jsonLim JSONLimits
	// The parse's result, once ParseJSON ran: the value (nil when the body is not JSON) or
	// why it is refused.
	jsonDone bool
	jsonVal  ast.Value
	jsonErr  error

	obj, hdrObj ast.Object            // built on first use
	terms       [nStrFields]*ast.Term // the string fields' terms, once made
}

// field is one header or query parameter: its name as a term, its value, and the value's
// term once one was made.
type field struct {
	key  *ast.Term
	val  string
	term *ast.Term
	// first and last are the later values of a repeated header name (1-based indexes
	// into Builder.dups, 0 for none), joined once the capture has seen them all.
	first, last int32
}

// The string fields of input.request, by index into Captured.str.
const (
	fID = iota
	fMethod
	fScheme
	fHost
	fPath
	fURI
	fBody
	fRemoteIP
	fReceivedAt // a number's digits
	nStrFields
)

// strKeys are the keys of the string fields, in Captured.str's order.
var strKeys = [nStrFields]*ast.Term{kID, kMethod, kScheme, kHost, kPath, kURI, kBody, kRemoteIP, kReceivedAt}

func (r *Captured) reset() {
	b := r.b
	clear(r.headers)
	clear(r.query)
	*r = Captured{b: b, headers: r.headers[:0], query: r.query[:0]}
}

// Capture copies what input.request holds of req into the Builder and returns it; the
// Builder's previous capture becomes invalid.
func (b *Builder) Capture(req *fasthttp.Request, m *Meta) *Captured {
	r := &b.req
	r.b = b
	r.reset()
	h := &req.Header
	r.str = [nStrFields]string{
		fID: b.String(unsafeBytes(m.ID)), fMethod: b.String(h.Method()), fScheme: b.String(unsafeBytes(m.Scheme)),
		fHost: b.String(h.Host()), fPath: b.String(b.canonicalPath(req, m)), fURI: b.String(h.RequestURI()),
		fBody: b.String(req.Body()), fRemoteIP: b.String(unsafeBytes(m.RemoteIP)),
	}
	var num [20]byte
	r.str[fReceivedAt] = b.String(strconv.AppendInt(num[:0], m.ReceivedAt.UnixNano(), 10))
	r.encoded = false
	r.tls, r.json, r.jsonLim = m.TLS, m.ParseJSON, m.JSON
	b.clearIndex()
	for k, v := range h.All() {
		b.lower = append(b.lower[:0], k...)
		toLower(b.lower)
		// Every Content-Encoding line counts, not the first (Peek's): "identity" then "gzip"
		// is a gzipped body, which an upstream may inflate.
		if m.ParseJSON && !r.encoded && string(b.lower) == "content-encoding" {
			r.encoded = contentEncoded(v)
		}
		slot, i := r.find(unsafe.String(unsafe.SliceData(b.lower), len(b.lower)))
		if i >= 0 {
			// A repeated name: its value is kept aside and joined once, after the loop,
			// so the cost is linear in the header block however often a name repeats.
			start := len(b.dupVals)
			b.dupVals = append(b.dupVals, v...)
			b.dups = append(b.dups, dupValue{start: int32(start), end: int32(len(b.dupVals))})
			f, d := &r.headers[i], int32(len(b.dups))
			if f.last == 0 {
				f.first = d
			} else {
				b.dups[f.last-1].next = d
			}
			f.last = d
			continue
		}
		key := commonTerm(b.lower)
		if key == nil {
			key = b.str(b.lower)
		}
		r.headers = append(r.headers, field{key: key, val: b.String(v)})
		r.added(slot)
	}
	if len(b.dups) > 0 {
		r.joinRepeats()
	}
	for k, v := range req.URI().QueryArgs().All() {
		r.query = append(r.query, field{key: b.str(k), val: b.String(v)})
	}
	return r
}

// canonicalPath returns m.Path, or else req's path made canonical (raw when it has no
// canonical form). The bytes are valid until the next call.
func (b *Builder) canonicalPath(req *fasthttp.Request, m *Meta) []byte {
	if m.Path != "" {
		return unsafeBytes(m.Path)
	}
	raw := req.URI().PathOriginal()
	r := urlpath.Clean(b.path, raw)
	if r.Class == urlpath.Invalid {
		return raw
	}
	if r.Class != urlpath.Canonical {
		b.path = r.Path
	}
	return r.Path
}

// header returns the index of the header named name (lower-case), -1 when there is none.
func (r *Captured) header(name string) int {
	_, i := r.find(name)
	return i
}

// hashSeed seeds the header index: names are the sender's, so their slots must not be
// predictable (a sender choosing colliding names would make every lookup a scan).
var hashSeed = maphash.MakeSeed()

// dupValue is a later value of a repeated header name: dupVals[start:end], and the 1-based
// index of the next one (0 for none).
type dupValue struct{ start, end, next int32 }

// linearHeaders is how many names are looked up by a scan: for the dozen headers a webhook
// carries a scan is cheaper than hashing. Past it the names go into the index, so a lookup
// costs at most this many comparisons, or a hash and a probe.
const linearHeaders = 16

// clearIndex readies the Builder's repeated values for a new capture (Captured.indexed,
// zero, says the index is not in use yet).
func (b *Builder) clearIndex() {
	b.dupVals, b.dups = b.dupVals[:0], b.dups[:0]
}

// find looks name (lower-case) up: it returns the header's position, or -1 and, when the
// index is in use, the free slot where it would go (open addressing, linear probing).
func (r *Captured) find(name string) (slot, i int) {
	if !r.indexed {
		for j := range r.headers {
			if string(r.headers[j].key.Value.(ast.String)) == name {
				return 0, j
			}
		}
		return 0, -1
	}
	idx := r.b.index
	mask := uint64(len(idx) - 1)
	for s := maphash.String(hashSeed, name) & mask; ; s = (s + 1) & mask {
		x := idx[s]
		if x == 0 {
			return int(s), -1
		}
		if string(r.headers[x-1].key.Value.(ast.String)) == name {
			return int(s), int(x - 1)
		}
	}
}

// added records the header just appended, at slot (from find); past linearHeaders names
// the index is built, and it doubles whenever it is half full.
func (r *Captured) added(slot int) {
	n := len(r.headers)
	switch {
	case !r.indexed && n <= linearHeaders:
		return
	case !r.indexed:
		r.indexed = true
		r.rebuild(4 * linearHeaders)
	case 2*n >= len(r.b.index):
		r.rebuild(2 * len(r.b.index))
	default:
		r.b.index[slot] = int32(n)
	}
}

// rebuild makes an empty index of size slots (a power of two) and puts every header in it.
func (r *Captured) rebuild(size int) {
	b := r.b
	if cap(b.index) >= size {
		b.index = b.index[:size]
		clear(b.index)
	} else {
		b.index = make([]int32, size)
	}
	mask := uint64(size - 1)
	for j := range r.headers {
		s := maphash.String(hashSeed, string(r.headers[j].key.Value.(ast.String))) & mask
		for b.index[s] != 0 {
			s = (s + 1) & mask
		}
		b.index[s] = int32(j + 1)
	}
}

// joinRepeats joins each repeated name's values with ", " (RFC 9110 section 5.3), in arrival
// order, each in one copy.
func (r *Captured) joinRepeats() {
	b := r.b
	for i := range r.headers {
		f := &r.headers[i]
		if f.first == 0 {
			continue
		}
		buf := append(b.lower[:0], f.val...)
		for d := f.first; d != 0; d = b.dups[d-1].next {
			v := b.dups[d-1]
			buf = append(append(buf, ", "...), b.dupVals[v.start:v.end]...)
		}
		f.val = b.String(buf)
		b.lower = buf[:0]
	}
}

// ParseJSON parses the body into input.request.json, once, when Meta.ParseJSON asked for
// it. It returns a *JSONError when the body is JSON over a limit (Meta.JSON): the request
// is then refused with its status, and input.request.json is absent. A body that is not
// JSON is no error: input.request.json is absent. Object calls it; a caller that must
// refuse before any rule runs calls it first.
func (r *Captured) ParseJSON() error {
	if !r.json || r.jsonDone {
		return r.jsonErr
	}
	r.jsonDone = true
	if r.encoded && len(r.str[fBody]) > 0 {
		r.jsonErr = errJSONEncoded
		return r.jsonErr
	}
	v, ok, err := r.b.parseJSON(r.str[fBody], r.jsonLim)
	if ok {
		r.jsonVal = v
	}
	r.jsonErr = err
	return err
}

// Object returns input.request. It is built once per capture; OPA never modifies an input
// value, and neither may the caller.
func (r *Captured) Object() ast.Object {
	if r.obj != nil {
		return r.obj
	}
	b := r.b
	obj := ast.NewObjectWithCapacity(14)
	for i, k := range strKeys {
		obj.Insert(k, r.strTerm(i))
	}
	obj.Insert(kQuery, b.term(r.queryObject()))
	obj.Insert(kHeaders, b.term(r.headersObject()))
	if r.ParseJSON() == nil && r.jsonVal != nil {
		obj.Insert(kJSON, b.term(r.jsonVal))
	}
	if r.tls != nil {
		obj.Insert(kTLS, ast.NewTerm(tlsInfo(r.tls)))
	}
	r.obj = obj
	return obj
}

func (r *Captured) headersObject() ast.Object {
	if r.hdrObj != nil {
		return r.hdrObj
	}
	obj := ast.NewObjectWithCapacity(len(r.headers))
	for i := range r.headers {
		obj.Insert(r.headers[i].key, r.valueTerm(&r.headers[i]))
	}
	r.hdrObj = obj
	return obj
}

// queryObject maps each parameter name to the list of its values, in order.
func (r *Captured) queryObject() ast.Object {
	if len(r.query) == 0 {
		return emptyObject
	}
	obj := ast.NewObjectWithCapacity(len(r.query))
	for i := range r.query {
		key, val := r.query[i].key, r.valueTerm(&r.query[i])
		if prev := obj.Get(key); prev != nil {
			// Append returns a new array; the old value stays in the object otherwise.
			obj.Insert(key, ast.NewTerm(prev.Value.(*ast.Array).Append(val)))
			continue
		}
		obj.Insert(key, ast.ArrayTerm(val))
	}
	return obj
}

func (r *Captured) valueTerm(f *field) *ast.Term {
	if f.term == nil {
		f.term = r.b.term(ast.String(f.val))
	}
	return f.term
}

// strTerm returns the term of string field i, made once.
func (r *Captured) strTerm(i int) *ast.Term {
	if r.terms[i] == nil {
		if i == fReceivedAt {
			r.terms[i] = r.b.term(ast.Number(r.str[i]))
		} else {
			r.terms[i] = r.b.term(ast.String(r.str[i]))
		}
	}
	return r.terms[i]
}

// Field returns input.request[key]: what Object holds there, nil when it holds nothing.
func (r *Captured) Field(key string) *ast.Term {
	if i := textField(key); i >= 0 {
		return r.strTerm(i)
	}
	switch key {
	case "received_at":
		return r.strTerm(fReceivedAt)
	case "headers":
		return r.b.term(r.headersObject())
	case "query":
		return r.Object().Get(kQuery)
	case "json":
		return r.Object().Get(kJSON)
	case "tls":
		return r.Object().Get(kTLS)
	}
	return nil
}

// Header returns input.request.headers[name]: nil when the request has no header of that
// (lower-case) name.
func (r *Captured) Header(name string) *ast.Term {
	if i := r.header(name); i >= 0 {
		return r.valueTerm(&r.headers[i])
	}
	return nil
}

// Text returns the string field key of input.request ("method", "host", "uri", "body"…),
// "" when there is none. The string is a view of the arena: copy it to keep it.
func (r *Captured) Text(key string) string {
	if i := textField(key); i >= 0 {
		return r.str[i]
	}
	return ""
}

// textField is the index into Captured.str of the string field key, -1 for none (and for
// received_at, a number). verify reads six fields a call, a policy's rules more: a switch,
// not a scan of strKeys comparing each key (TestTextFieldsAreStrKeys keeps the two in step).
func textField(key string) int {
	switch key {
	case "id":
		return fID
	case "method":
		return fMethod
	case "scheme":
		return fScheme
	case "host":
		return fHost
	case "path":
		return fPath
	case "uri":
		return fURI
	case "body":
		return fBody
	case "remote_ip":
		return fRemoteIP
	}
	return -1
}

// Get returns the value of the header named lowerName, "" when there is none.
func (r *Captured) Get(lowerName string) string {
	if i := r.header(lowerName); i >= 0 {
		return r.headers[i].val
	}
	return ""
}

// Handover returns a copy of r that another goroutine may build input.request from (Object,
// Field…) after r's request has ended, for the cross-check's worker: the copy has a Builder
// of its own, and r's Builder gives up its arena and term slab, so nothing the copy points
// to is written again (the Builder's next strings and terms go to fresh ones). It copies no
// string: the cost on the request path is the header and query lists. r stays valid for
// its request. The copy builds its own object rather than share r's, so the request path
// and the worker never read one lazily built object at once; the JSON body value, when r
// parsed it, is shared (built, never changed).
func (r *Captured) Handover() *Captured {
	old := r.b
	c := &Captured{b: &Builder{}}
	c.str, c.encoded, c.tls, c.json, c.jsonLim = r.str, r.encoded, r.tls, r.json, r.jsonLim
	c.jsonDone, c.jsonVal, c.jsonErr = r.jsonDone, r.jsonVal, r.jsonErr
	c.headers, c.query = handedOver(r.headers), handedOver(r.query)
	if r.indexed {
		c.indexed = true
		c.rebuild(len(old.index))
	}
	old.arena, old.slab = nil, nil
	return c
}

// handedOver copies fs for Handover: the names and values, not the value terms (made by the
// request's Builder) nor the repeats' marks (the values are joined by then).
func handedOver(fs []field) []field {
	c := make([]field, len(fs))
	for i, f := range fs {
		c[i] = field{key: f.key, val: f.val}
	}
	return c
}

// Request returns input.request for req, as received.
func (b *Builder) Request(req *fasthttp.Request, m *Meta) ast.Object {
	return b.Capture(req, m).Object()
}

func unsafeBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// contentEncoded reports whether a Content-Encoding line's value says the body is encoded
// (anything but empty or "identity" alone: a list "identity, gzip" is encoded): a body sent
// gzipped is judged as the bytes that came, and an upstream that inflates it would read a
// JSON value the policy never saw.
func contentEncoded(v []byte) bool {
	v = bytes.TrimSpace(v)
	return len(v) > 0 && !bytes.EqualFold(v, []byte("identity"))
}
