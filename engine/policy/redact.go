package policy

import "strings"

// RedactQuoted returns an evaluation error's text with every quoted string in it replaced by
// "…": a builtin's error quotes its operand (time.parse_rfc3339_ns quotes the header it
// failed on), and the request's values must not reach the logs. The rest (file, line,
// error code, builtin) stays, to find the fault by.
func RedactQuoted(msg string) string {
	i := strings.IndexByte(msg, '"')
	if i < 0 {
		return msg
	}
	b := make([]byte, 0, len(msg))
	for i >= 0 {
		b = append(b, msg[:i]...)
		b = append(b, `"…"`...)
		// The closing quote is the next one not escaped by a backslash (Go's %q).
		j := i + 1
		for j < len(msg) && msg[j] != '"' {
			if msg[j] == '\\' {
				j++
			}
			j++
		}
		if j >= len(msg) {
			return string(b) // an unterminated quote: drop the rest
		}
		msg = msg[j+1:]
		i = strings.IndexByte(msg, '"')
	}
	return string(append(b, msg...))
}
