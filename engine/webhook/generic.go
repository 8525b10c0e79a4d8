package webhook

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"
	"slices"
	"strings"
	"unicode/utf8"
)

const defaultTemplate = "{body}"

// Template placeholder names.
const (
	phTimestamp = "timestamp"
	phID        = "id"
	phBody      = "body"
	phURL       = "url"
)

var (
	errNoSigHeader  = errors.New("the header option (the header that carries the signature) is required")
	errTemplate     = errors.New("bad template")
	errUnsignedBody = errors.New("template must sign {body}: a signature that does not cover the body lets anyone change it")
	errUnsignedTS   = errors.New("timestamp header is set but the template does not sign {timestamp}")
	errNoTSHeader   = errors.New("template uses {timestamp} but no timestamp header is set")
	errNoIDHeader   = errors.New("template uses {id} but no id header is set")
	errUnsignedID   = errors.New("opts.id_header is set but the template does not sign {id}: the header would be required and never checked, so anyone could put any id there (add {id} to the template, or drop id_header)")
	errUnsignedURL  = errors.New("url is set but the template does not sign {url}")
	errIDBoundary   = fmt.Errorf("%w: put a separator (such as \".\") between {id} and the placeholder beside it: where one ends and the next begins would be the sender's to move, and with it the id", errTemplate)
	errAlgorithm    = errors.New("algorithm must be sha1, sha256 or sha512")
	errSigEncoding  = errors.New("encoding must be hex or base64")
	errTemplateEOF  = fmt.Errorf("%w: unterminated placeholder", errTemplate)
	errTemplateName = fmt.Errorf("%w: unknown placeholder (want {timestamp}, {id}, {body} or {url})", errTemplate)
)

// genericParams are the "hmac" options, checked and resolved.
type genericParams struct {
	alg            *hashAlg
	size           int
	decode         func(*[maxSigLen]byte, string) ([]byte, bool)
	sigH, tsH, idH string
	tmpl           string
	usesURL        bool
	// idNot are the characters an id may not hold (0: none): the separators on either side
	// of {id} that lie between it and another placeholder. With none of them in it, the
	// signed string splits into id and neighbours one way only: a captured delivery cannot
	// be sent again with bytes moved between its id and its body, a fresh id (dedupe key)
	// under the same signature.
	idNot [4]rune
}

// genericParamsOf checks o for the "hmac" scheme: everything that can be wrong before a
// request is seen. Verify and CheckOptions both call it, so a policy that passes
// `hookwall check` cannot fail on these at request time.
func genericParamsOf(o *Options) (genericParams, error) {
	var p genericParams
	switch o.Algorithm {
	case "sha256", "":
		p.alg, p.size = algSHA256, sha256.Size
	case "sha1":
		p.alg, p.size = algSHA1, sha1.Size
	case "sha512":
		p.alg, p.size = algSHA512, sha512.Size
	default:
		return p, fmt.Errorf("%w, not %q", errAlgorithm, o.Algorithm)
	}
	p.decode = decodeHexSig
	switch o.Encoding {
	case "hex", "":
	case "base64":
		p.decode = decodeB64Sig
	default:
		return p, fmt.Errorf("%w, not %q", errSigEncoding, o.Encoding)
	}
	p.sigH = strings.ToLower(o.SigHeader)
	if p.sigH == "" {
		return p, errNoSigHeader
	}
	p.tsH, p.idH = strings.ToLower(o.TimestampHeader), strings.ToLower(o.IDHeader)
	p.tmpl = o.Template
	if p.tmpl == "" {
		p.tmpl = defaultTemplate
	}
	var uses struct{ ts, id, body bool }
	// While the template is walked, the separators that bound each {id} (idNot) are found:
	// a separator bounds the id only where a placeholder lies beyond it (text at the
	// template's start or end is fixed, whatever the id holds), and an {id} with no
	// separator before a neighbouring placeholder is refused (boundary).
	var (
		prev, prev2 bool   // whether the last and the one before it were placeholders
		n, sinceID  int    // idNot's length; tokens since the last {id} (0: none, or long ago)
		lastLit     string // the last literal run
		boundary    bool
	)
	add := func(r rune) {
		if slices.Contains(p.idNot[:n], r) {
			return
		}
		if n == len(p.idNot) {
			boundary = true // more separators than are kept: refused, never dropped
			return
		}
		p.idNot[n] = r
		n++
	}
	step := func(ph bool) {
		prev2, prev = prev, ph
		if sinceID > 0 {
			sinceID = (sinceID + 1) % 3
		}
	}
	if err := walkTemplate(p.tmpl, func(lit string) {
		lastLit = lit
		step(false)
	}, func(name string) {
		switch sinceID { // the side after an earlier {id}
		case 1: // {id}{name}
			boundary = true
		case 2: // {id}L{name}
			r, _ := utf8.DecodeRuneInString(lastLit)
			add(r)
		}
		if name == phID {
			switch {
			case prev: // {x}{id}
				boundary = true
			case prev2: // {x}L{id}
				r, _ := utf8.DecodeLastRuneInString(lastLit)
				add(r)
			}
		}
		step(true)
		switch name {
		case phTimestamp:
			uses.ts = true
		case phID:
			uses.id = true
			sinceID = 1
		case phURL:
			p.usesURL = true
		case phBody:
			uses.body = true
		}
	}); err != nil {
		return p, err
	}
	switch {
	case !uses.body:
		return p, errUnsignedBody
	case uses.ts && p.tsH == "":
		return p, errNoTSHeader
	case !uses.ts && p.tsH != "":
		return p, errUnsignedTS
	case uses.id && p.idH == "":
		return p, errNoIDHeader
	case !uses.id && p.idH != "":
		return p, errUnsignedID
	case !p.usesURL && o.URL != "":
		return p, errUnsignedURL
	case boundary:
		return p, errIDBoundary
	}
	return p, nil
}

// generic is the "hmac" scheme: a signature header (optional prefix, hex or
// base64) over HMAC-<algorithm>(secret, template), the template filled from
// the body, the URL and two named headers.
func (v *verifier) generic() (Result, error) {
	p, err := genericParamsOf(v.o)
	if err != nil {
		return Result{}, err
	}
	alg, size, decode, sigH, tsH, idH, tmpl := p.alg, p.size, p.decode, p.sigH, p.tsH, p.idH, p.tmpl
	var base string
	if p.usesURL {
		var (
			res Result
			ok  bool
			err error
		)
		if base, res, ok, err = v.requestURL(); !ok {
			return res, err
		}
	}
	keys, res, ok, err := v.prepare()
	if !ok {
		return res, err
	}

	sv := v.h.Get(sigH)
	if sv == "" {
		return missing(sigH), nil
	}
	if v.o.Prefix != "" {
		var found bool
		if sv, found = strings.CutPrefix(sv, v.o.Prefix); !found {
			return malformed(sigH), nil
		}
	}
	var buf [maxSigLen]byte
	sig, okDec := decode(&buf, sv)
	if !okDec || len(sig) != size {
		return malformed(sigH), nil
	}
	var ts, id string
	if tsH != "" {
		if ts = v.h.Get(tsH); ts == "" {
			return missing(tsH), nil
		}
		if res, ok := v.checkUnixSeconds(ts, tsH, defaultTolerance); !ok {
			return res, nil
		}
	}
	if idH != "" {
		if id = v.h.Get(idH); id == "" {
			return missing(idH), nil
		}
		if p.idHoldsSeparator(id) {
			return malformed(idH), nil
		}
	}
	uri, body := v.r.RequestURI, v.r.Body
	return single(v.o.MACs, keys, alg, sig, func(m hash.Hash) {
		// The template was validated above, so the walk cannot fail here.
		_ = walkTemplate(tmpl, func(lit string) { writeString(m, lit) }, func(name string) {
			switch name {
			case phTimestamp:
				writeString(m, ts)
			case phID:
				writeString(m, id)
			case phBody:
				_, _ = m.Write(body)
			case phURL:
				writeString(m, base)
				writeString(m, uri)
			}
		})
	}), nil
}

// idHoldsSeparator reports whether id holds one of p.idNot.
func (p *genericParams) idHoldsSeparator(id string) bool {
	for _, r := range p.idNot {
		if r != 0 && strings.ContainsRune(id, r) {
			return true
		}
	}
	return false
}

// walkTemplate calls lit for each literal run and ph for each placeholder name
// of t, in order. A "{" that does not open a known placeholder is an error, so
// a typo cannot silently drop a field from the signed string.
func walkTemplate(t string, lit func(string), ph func(string)) error {
	for t != "" {
		i := strings.IndexByte(t, '{')
		if i < 0 {
			lit(t)
			return nil
		}
		if i > 0 {
			lit(t[:i])
		}
		j := strings.IndexByte(t[i:], '}')
		if j < 0 {
			return errTemplateEOF
		}
		name := t[i+1 : i+j]
		switch name {
		case phTimestamp, phID, phBody, phURL:
			ph(name)
		default:
			return errTemplateName
		}
		t = t[i+j+1:]
	}
	return nil
}
