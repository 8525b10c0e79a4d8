package rawreq

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/hookwall/hookwall/engine/internal/httpsyntax"
)

// Limits of Parse.
const (
	MaxSize    = 64 << 20 // bytes of input
	MaxHeaders = 1000     // header lines
)

// Header is one header line as written (name case kept).
type Header struct{ Name, Value string }

// Request is a parsed request. Body is a copy; Request shares nothing with Parse's input.
type Request struct {
	Method string
	Target string // request-target as written: origin-form, absolute-form, …
	Proto  string // "HTTP/1.1" or "HTTP/1.0" (an HTTP/2 capture is read as HTTP/1.1)
	Header []Header
	Body   []byte
	// Chunked is set when the body arrived with Transfer-Encoding: chunked (Body is decoded).
	Chunked bool
}

// Get returns the value of the first header named name (any case) and whether there is one.
func (r *Request) Get(name string) (string, bool) {
	for _, h := range r.Header {
		if strings.EqualFold(h.Name, name) {
			return h.Value, true
		}
	}
	return "", false
}

// Parse reads a raw request or `curl --trace` output (see the package doc).
func Parse(b []byte) (*Request, error) {
	if len(b) > MaxSize {
		return nil, fmt.Errorf("rawreq: input is %d bytes, more than %d", len(b), MaxSize)
	}
	if isTrace(b) {
		raw, err := fromTrace(b)
		if err != nil {
			return nil, err
		}
		b = raw
	}
	return parseRaw(b)
}

// Wire returns r as canonical HTTP/1.1 bytes: CRLF line ends, and a body framed by
// Content-Length (set to len(Body), replacing a stale one) or, when r.Chunked, by one chunk.
func (r *Request) Wire() []byte {
	var b bytes.Buffer
	b.Grow(64 + len(r.Body) + 32*len(r.Header))
	b.WriteString(r.Method)
	b.WriteByte(' ')
	b.WriteString(r.Target)
	b.WriteByte(' ')
	b.WriteString(r.Proto)
	b.WriteString("\r\n")
	for _, h := range r.Header {
		if strings.EqualFold(h.Name, "Content-Length") || strings.EqualFold(h.Name, "Transfer-Encoding") {
			continue
		}
		b.WriteString(h.Name)
		b.WriteString(": ")
		b.WriteString(h.Value)
		b.WriteString("\r\n")
	}
	switch {
	case r.Chunked:
		b.WriteString("Transfer-Encoding: chunked\r\n\r\n")
		if len(r.Body) > 0 {
			b.WriteString(strconv.FormatInt(int64(len(r.Body)), 16))
			b.WriteString("\r\n")
			b.Write(r.Body)
			b.WriteString("\r\n")
		}
		b.WriteString("0\r\n\r\n")
	case len(r.Body) > 0 || r.hasHeader("Content-Length"):
		b.WriteString("Content-Length: ")
		b.WriteString(strconv.Itoa(len(r.Body)))
		b.WriteString("\r\n\r\n")
		b.Write(r.Body)
	default:
		b.WriteString("\r\n")
	}
	return b.Bytes()
}

// Into reads Wire() into req with fasthttp's request parser, as the gateway's listener reads
// a request: header names normalised, a head over maxHeader bytes refused (an
// *fasthttp.ErrSmallBuffer), a body over maxBody refused (fasthttp.ErrBodyTooLarge), and an
// "Expect: 100-continue" body read as the listener reads it after its 100 answer.
func (r *Request) Into(req *fasthttp.Request, maxHeader, maxBody int) error {
	br := bufio.NewReaderSize(bytes.NewReader(r.Wire()), max(maxHeader, 16))
	if err := req.ReadLimitBody(br, maxBody); err != nil {
		return fmt.Errorf("rawreq: %w", err)
	}
	if req.MayContinue() {
		if err := req.ContinueReadBody(br, maxBody); err != nil {
			return fmt.Errorf("rawreq: %w", err)
		}
	}
	return nil
}

func (r *Request) hasHeader(name string) bool {
	_, ok := r.Get(name)
	return ok
}

// lineReader splits the head into lines ending in CRLF or LF, counting them for messages.
type lineReader struct {
	b    []byte
	pos  int
	line int
}

// next returns the next line without its end, and whether a line end was found.
func (l *lineReader) next() ([]byte, bool) {
	if l.pos >= len(l.b) {
		return nil, false
	}
	l.line++
	rest := l.b[l.pos:]
	i := bytes.IndexByte(rest, '\n')
	if i < 0 {
		l.pos = len(l.b)
		return rest, false
	}
	l.pos += i + 1
	line := rest[:i]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	return line, true
}

func parseRaw(b []byte) (*Request, error) {
	lr := &lineReader{b: b}
	// A client may send empty lines before the request line (RFC 9112 section 2.2); skip a few.
	var line []byte
	for range 8 {
		var ok bool
		line, ok = lr.next()
		if !ok && len(line) == 0 {
			return nil, errors.New("rawreq: empty input: want a request line such as \"POST /hooks/github HTTP/1.1\"")
		}
		if len(line) > 0 {
			break
		}
	}
	r := &Request{}
	if err := r.parseRequestLine(line); err != nil {
		return nil, fmt.Errorf("rawreq: line %d: %w", lr.line, err)
	}
	for {
		line, ok := lr.next()
		if len(line) == 0 {
			break // the blank line, or the file ends after the head (no body)
		}
		if len(r.Header) >= MaxHeaders {
			return nil, fmt.Errorf("rawreq: more than %d header lines", MaxHeaders)
		}
		h, err := parseHeader(line)
		if err != nil {
			return nil, fmt.Errorf("rawreq: line %d: %w", lr.line, err)
		}
		r.Header = append(r.Header, h)
		if !ok {
			break
		}
	}
	if err := r.readBody(b[lr.pos:]); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Request) parseRequestLine(line []byte) error {
	parts := strings.Split(string(line), " ")
	if len(parts) != 3 {
		return fmt.Errorf("request line %q: want METHOD TARGET HTTP/1.1, separated by single spaces", clip(line))
	}
	method, target, proto := parts[0], parts[1], parts[2]
	if !httpsyntax.IsToken(method) {
		return fmt.Errorf("request line: method %q is not a token", clip([]byte(method)))
	}
	if target == "" {
		return errors.New("request line: empty target")
	}
	for i := 0; i < len(target); i++ {
		if c := target[i]; c <= ' ' || c == 0x7f {
			return fmt.Errorf("request line: target %q has a control character or space", clip([]byte(target)))
		}
	}
	switch proto {
	case "HTTP/1.1", "HTTP/1.0":
	case "HTTP/2", "HTTP/2.0", "HTTP/3":
		proto = "HTTP/1.1" // curl shows h2/h3 requests in HTTP/1 form; the semantics are the same
	default:
		return fmt.Errorf("request line: version %q: want HTTP/1.1", clip([]byte(proto)))
	}
	r.Method, r.Target, r.Proto = method, target, proto
	return nil
}

func parseHeader(line []byte) (Header, error) {
	if line[0] == ' ' || line[0] == '\t' {
		return Header{}, errors.New("obsolete line folding (a header line starting with a space or tab) is not accepted")
	}
	i := bytes.IndexByte(line, ':')
	if i <= 0 {
		return Header{}, fmt.Errorf("header line %q has no \"Name:\"", clip(line))
	}
	name := string(line[:i])
	if !httpsyntax.IsToken(name) {
		return Header{}, fmt.Errorf("header name %q is not a token (no spaces before the colon)", clip(line[:i]))
	}
	value := bytes.Trim(line[i+1:], " \t")
	for _, c := range value {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return Header{}, fmt.Errorf("header %s has a control character in its value", name)
		}
	}
	return Header{Name: name, Value: string(value)}, nil
}

func (r *Request) readBody(rest []byte) error {
	te, hasTE := r.Get("Transfer-Encoding")
	cl, hasCL := r.Get("Content-Length")
	if hasTE {
		if hasCL {
			return errors.New("rawreq: both Content-Length and Transfer-Encoding (request smuggling shape; the gateway answers 400)")
		}
		codings := strings.Split(te, ",")
		if !strings.EqualFold(strings.TrimSpace(codings[len(codings)-1]), "chunked") || len(codings) > 1 {
			return fmt.Errorf("rawreq: Transfer-Encoding %q: only \"chunked\" is read", te)
		}
		body, n, err := dechunk(rest)
		if err != nil {
			return fmt.Errorf("rawreq: chunked body: %w", err)
		}
		if !onlyNewlines(rest[n:]) {
			return fmt.Errorf("rawreq: %d bytes after the chunked body", len(rest)-n)
		}
		r.Body, r.Chunked = body, true
		return nil
	}
	if hasCL {
		n, err := strconv.ParseInt(strings.TrimSpace(cl), 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("rawreq: Content-Length %q is not a length", cl)
		}
		if n > int64(len(rest)) {
			return fmt.Errorf("rawreq: the body is %d bytes, Content-Length says %d", len(rest), n)
		}
		if !onlyNewlines(rest[n:]) {
			return fmt.Errorf("rawreq: %d bytes after the Content-Length body (fix Content-Length, or remove it to take the rest of the file)", int64(len(rest))-n)
		}
		r.Body = bytes.Clone(rest[:n])
		return nil
	}
	if onlyNewlines(rest) {
		return nil
	}
	r.Body = bytes.Clone(rest)
	return nil
}

// dechunk decodes a chunked body; n is how many bytes of b it used.
func dechunk(b []byte) (body []byte, n int, err error) {
	lr := &lineReader{b: b}
	body = []byte{}
	for {
		line, ok := lr.next()
		if !ok {
			return nil, 0, errors.New("truncated chunk size line")
		}
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i] // chunk extensions carry nothing the gateway reads
		}
		size, err := strconv.ParseUint(string(bytes.TrimSpace(line)), 16, 31)
		if err != nil {
			return nil, 0, fmt.Errorf("bad chunk size %q", clip(line))
		}
		if size == 0 {
			// The blank line: the gateway refuses a request with trailer fields (400), which
			// the policy would not see, so a capture with them is not one it would evaluate.
			t, ok := lr.next()
			if len(t) != 0 {
				return nil, 0, errors.New("trailer fields after the last chunk: the gateway refuses them (400)")
			}
			if !ok {
				return nil, 0, errors.New("truncated trailer section")
			}
			return body, lr.pos, nil
		}
		if uint64(len(b)-lr.pos) < size {
			return nil, 0, fmt.Errorf("chunk of %d bytes, %d left", size, len(b)-lr.pos)
		}
		if len(body)+int(size) > MaxSize {
			return nil, 0, errors.New("body too large")
		}
		body = append(body, b[lr.pos:lr.pos+int(size)]...)
		lr.pos += int(size)
		if end, ok := lr.next(); !ok || len(end) != 0 {
			return nil, 0, errors.New("chunk data not followed by a line end")
		}
	}
}

func onlyNewlines(b []byte) bool {
	for _, c := range b {
		if c != '\r' && c != '\n' {
			return false
		}
	}
	return true
}

// clip bounds what an error message quotes.
func clip(b []byte) string {
	if len(b) > 80 {
		return string(b[:80]) + "…"
	}
	return string(b)
}
