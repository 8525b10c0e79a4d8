package webhook

import (
	"bytes"
	"encoding/json"
)

// topLevelField finds key among the members of the JSON object in data and
// returns its raw value. It only locates the member, without validating the
// whole document: callers use it on bodies whose signature already verified.
// ok is false when data is not an object or the key appears twice (parsers
// disagree on which duplicate wins, so neither is trusted).
func topLevelField(data []byte, key string) (val []byte, found, ok bool) {
	i := skipWS(data, 0)
	if i >= len(data) || data[i] != '{' {
		return nil, false, false
	}
	i = skipWS(data, i+1)
	if i < len(data) && data[i] == '}' {
		return nil, false, true
	}
	for {
		if i >= len(data) || data[i] != '"' {
			return nil, false, false
		}
		end, escaped, okStr := scanString(data, i)
		if !okStr {
			return nil, false, false
		}
		rawKey := data[i+1 : end-1]
		i = skipWS(data, end)
		if i >= len(data) || data[i] != ':' {
			return nil, false, false
		}
		i = skipWS(data, i+1)
		start := i
		var okVal bool
		if i, okVal = skipValue(data, i); !okVal {
			return nil, false, false
		}
		if keyEquals(rawKey, escaped, key) {
			if found {
				return nil, false, false
			}
			val, found = data[start:i], true
		}
		i = skipWS(data, i)
		if i >= len(data) {
			return nil, false, false
		}
		switch data[i] {
		case ',':
			i = skipWS(data, i+1)
		case '}':
			return val, found, true
		default:
			return nil, false, false
		}
	}
}

func skipWS(d []byte, i int) int {
	for i < len(d) && (d[i] == ' ' || d[i] == '\t' || d[i] == '\n' || d[i] == '\r') {
		i++
	}
	return i
}

// scanString expects d[i] == '"' and returns the index just past the closing
// quote, and whether the string holds escapes. It jumps between quotes with
// IndexByte; a quote closes the string when an even run of backslashes
// precedes it.
func scanString(d []byte, i int) (end int, escaped, ok bool) {
	for j := i + 1; ; {
		k := bytes.IndexByte(d[j:], '"')
		if k < 0 {
			return len(d), escaped, false
		}
		q := j + k
		if bytes.IndexByte(d[j:q], '\\') >= 0 {
			escaped = true
		}
		run := 0
		for p := q - 1; p > i && d[p] == '\\'; p-- {
			run++
		}
		if run%2 == 0 {
			return q + 1, escaped, true
		}
		j = q + 1
	}
}

// skipValue returns the index just past the value starting at d[i]. Nesting
// is tracked with a counter, not recursion, so deep input cannot exhaust the
// stack.
func skipValue(d []byte, i int) (int, bool) {
	if i >= len(d) {
		return i, false
	}
	switch d[i] {
	case '"':
		end, _, ok := scanString(d, i)
		return end, ok
	case '{', '[':
		depth := 0
		for i < len(d) {
			// Only quotes and brackets matter inside a container.
			k := bytes.IndexAny(d[i:], `"{}[]`)
			if k < 0 {
				return len(d), false
			}
			i += k
			switch d[i] {
			case '"':
				end, _, ok := scanString(d, i)
				if !ok {
					return end, false
				}
				i = end
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1, true
				}
			}
			i++
		}
		return i, false
	case ',', ':', '}', ']':
		return i, false
	default:
		start := i
		for i < len(d) {
			switch d[i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return i, i > start
			}
			i++
		}
		return i, i > start
	}
}

// keyEquals compares a raw (still quoted-content) JSON key with key, decoding
// escapes only when the key has any.
func keyEquals(raw []byte, escaped bool, key string) bool {
	if !escaped {
		return string(raw) == key
	}
	quoted := make([]byte, 0, len(raw)+2)
	quoted = append(append(append(quoted, '"'), raw...), '"')
	var s string
	if err := json.Unmarshal(quoted, &s); err != nil {
		return false
	}
	return s == key
}
