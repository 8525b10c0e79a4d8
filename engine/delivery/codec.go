package delivery

import (
	"encoding/binary"
	"errors"
)

// EncodeHeaders packs headers for a store column: for each, the name's and the value's
// length (uvarint) and bytes. Backends share it so a record reads the same everywhere.
func EncodeHeaders(hs []Header) []byte {
	n := 0
	for _, h := range hs {
		n += len(h.Name) + len(h.Value) + 4
	}
	b := make([]byte, 0, n)
	for _, h := range hs {
		b = binary.AppendUvarint(b, uint64(len(h.Name)))
		b = append(b, h.Name...)
		b = binary.AppendUvarint(b, uint64(len(h.Value)))
		b = append(b, h.Value...)
	}
	return b
}

var errBadHeaders = errors.New("delivery: stored headers are corrupt")

// DecodeHeaders is EncodeHeaders' inverse.
func DecodeHeaders(b []byte) ([]Header, error) {
	var hs []Header
	next := func() (string, bool) {
		l, n := binary.Uvarint(b)
		if n <= 0 || uint64(len(b)-n) < l {
			return "", false
		}
		s := string(b[n : n+int(l)])
		b = b[n+int(l):]
		return s, true
	}
	for len(b) > 0 {
		name, ok := next()
		if !ok {
			return nil, errBadHeaders
		}
		value, ok := next()
		if !ok {
			return nil, errBadHeaders
		}
		hs = append(hs, Header{name, value})
	}
	return hs, nil
}
