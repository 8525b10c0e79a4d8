package config

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Error is one problem in a config file. Line is 0 when it cannot be placed.
type Error struct {
	File string
	Line int
	Key  string
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

type validator struct {
	file string
	loc  *locator // where a key is, for messages
	set  written  // whether a key was written, for meaning
	errs []error
}

func (v *validator) errAt(path []any, format string, args ...any) {
	v.errs = append(v.errs, &Error{File: v.file, Line: v.loc.line(path...), Key: keyString(path), Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) join() error { return errors.Join(v.errs...) }

// keyString renders a key path as route[1].timeout (1-based index, as a user counts tables).
func keyString(path []any) string {
	var b strings.Builder
	for i, p := range path {
		switch p := p.(type) {
		case int:
			b.WriteString("[" + strconv.Itoa(p+1) + "]")
		case string:
			if i > 0 {
				b.WriteByte('.')
			}
			b.WriteString(p)
		}
	}
	return b.String()
}

// locator finds the line of a key in the raw TOML. BurntSushi/toml keeps key positions private,
// so this scans the text: good enough for messages, never used for decoding.
type locator struct {
	lines []string
}

func newLocator(raw []byte) *locator { return &locator{lines: strings.Split(string(raw), "\n")} }

var headerRe = regexp.MustCompile(`^\s*(\[\[?)\s*([A-Za-z0-9_.\-"]+)\s*\]\]?`)

// line returns the 1-based line of path ("server","listen") or ("route",2,"timeout") or 0.
// An index of -1 (or a missing index for an array table) matches any table of that name.
// A nil locator (a Config not parsed from text) places nothing.
func (l *locator) line(path ...any) int {
	if l == nil || len(path) == 0 {
		return 0
	}
	table, _ := path[0].(string)
	idx, rest := -1, path[1:]
	if len(rest) > 0 {
		if n, ok := rest[0].(int); ok {
			idx, rest = n, rest[1:]
		}
	}
	var key string
	if len(rest) > 0 {
		key, _ = rest[0].(string)
	}
	keyRe := regexp.MustCompile(`^\s*"?` + regexp.QuoteMeta(key) + `"?\s*=`)
	count, in, headerLine := -1, false, 0
	for i, ln := range l.lines {
		if m := headerRe.FindStringSubmatch(ln); m != nil {
			name := strings.Trim(m[2], `"`)
			in = false
			if name == table || strings.HasPrefix(name, table+".") {
				if m[1] == "[[" {
					count++
					in = idx < 0 || count == idx
				} else {
					in = true
				}
				if in && (key == "" || name == table+"."+key) {
					if key == "" || name == table+"."+key {
						return i + 1
					}
				}
				if in {
					headerLine = i + 1
				}
			}
			continue
		}
		if in && key != "" && keyRe.MatchString(ln) {
			return i + 1
		}
	}
	return headerLine
}
