package config

import "github.com/BurntSushi/toml"

// written is the file's keys as the TOML decoder read them, whatever their spelling: a
// [table] header, a dotted key, an inline table or a quoted key all land at the same path.
// Defaults and "only applies with" checks ask it whether a key was written; the locator's
// line scan only places messages, since it also matches text inside a multi-line string
// and misses the other spellings.
type written map[string]any

func newWritten(raw []byte) written {
	var m map[string]any
	if _, err := toml.Decode(string(raw), &m); err != nil {
		return nil // unreachable: the same bytes were decoded into the Config first
	}
	return m
}

// has reports whether the key at path was written: ("delivery", "keep_dead"), or
// ("route", 2, "retry") for the third route's, in a [[route]] table or an inline array.
func (w written) has(path ...any) bool {
	var cur any = map[string]any(w)
	for _, p := range path {
		switch p := p.(type) {
		case string:
			m, ok := cur.(map[string]any)
			if !ok {
				return false
			}
			if cur, ok = m[p]; !ok {
				return false
			}
		case int:
			switch s := cur.(type) {
			case []map[string]any:
				if p < 0 || p >= len(s) {
					return false
				}
				cur = s[p]
			case []any:
				if p < 0 || p >= len(s) {
					return false
				}
				cur = s[p]
			default:
				return false
			}
		default:
			return false
		}
	}
	return true
}
