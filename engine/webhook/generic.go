package webhook

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"
	"strings"
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
	errNoSigHeader  = errors.New("sig_header option is required")
	errTemplate     = errors.New("bad template")
	errUnsignedTS   = errors.New("timestamp header is set but the template does not sign {timestamp}")
	errNoTSHeader   = errors.New("template uses {timestamp} but no timestamp header is set")
	errNoIDHeader   = errors.New("template uses {id} but no id header is set")
	errAlgorithm    = errors.New("algorithm must be sha1, sha256 or sha512")
	errSigEncoding  = errors.New("encoding must be hex or base64")
	errTemplateEOF  = fmt.Errorf("%w: unterminated placeholder", errTemplate)
	errTemplateName = fmt.Errorf("%w: unknown placeholder (want {timestamp}, {id}, {body} or {url})", errTemplate)
)

// generic is the "hmac" scheme: a signature header (optional prefix, hex or
// base64) over HMAC-<algorithm>(secret, template), the template filled from
// the body, the URL and two named headers.
func (v *verifier) generic() (Result, error) {
	o := v.o
	var (
		alg  *hashAlg
		size int
	)
	switch o.Algorithm {
	case "sha256", "":
		alg, size = algSHA256, sha256.Size
	case "sha1":
		alg, size = algSHA1, sha1.Size
	case "sha512":
		alg, size = algSHA512, sha512.Size
	default:
		return Result{}, errAlgorithm
	}
	decode := decodeHexSig
	switch o.Encoding {
	case "hex", "":
	case "base64":
		decode = decodeB64Sig
	default:
		return Result{}, errSigEncoding
	}
	sigH := strings.ToLower(o.SigHeader)
	if sigH == "" {
		return Result{}, errNoSigHeader
	}
	tsH, idH := strings.ToLower(o.TimestampHeader), strings.ToLower(o.IDHeader)
	tmpl := o.Template
	if tmpl == "" {
		tmpl = defaultTemplate
	}
	var uses struct{ ts, id, url bool }
	if err := walkTemplate(tmpl, func(string) {}, func(name string) {
		switch name {
		case phTimestamp:
			uses.ts = true
		case phID:
			uses.id = true
		case phURL:
			uses.url = true
		}
	}); err != nil {
		return Result{}, err
	}
	switch {
	case uses.ts && tsH == "":
		return Result{}, errNoTSHeader
	case !uses.ts && tsH != "":
		return Result{}, errUnsignedTS
	case uses.id && idH == "":
		return Result{}, errNoIDHeader
	}
	var base string
	if uses.url {
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
	if o.Prefix != "" {
		var found bool
		if sv, found = strings.CutPrefix(sv, o.Prefix); !found {
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
