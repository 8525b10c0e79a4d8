package lazyconn

import "bytes"

// answerHead reads the status lines at the head of each answer on a connection, as they
// arrive, to see whether one is 101 Switching Protocols. The connection then belongs to
// another protocol, whatever the HTTP client above made of the answer (fasthttp puts it
// back in its pool), and no request goes on it again (sending's ErrStale). It reads them as
// fasthttp does: empty lines before a status line are skipped, the version is any token and
// any number of spaces may follow it, and interim answers (100, 103) come before the final
// one. An answer whose head it cannot read within maxAnswerHead bytes counts as switched:
// the connection is closed, not trusted.
type answerHead struct {
	fresh    bool   // a request went out: the next bytes read start its answer
	deciding bool   // the answer's final status is not read yet
	switched bool   // an answer was 101: no more requests
	head     []byte // the bytes of this answer so far, while one Read did not decide
}

const maxAnswerHead = 8 << 10

// next is called as a request starts: the bytes read after it are its answer.
func (a *answerHead) next() { a.fresh = true }

// read takes the bytes b just read from the connection's plaintext.
func (a *answerHead) read(b []byte) {
	if a.fresh {
		a.fresh, a.deciding, a.head = false, true, a.head[:0]
	}
	if !a.deciding {
		return
	}
	buf := b
	if len(a.head) > 0 {
		a.head = append(a.head, b...)
		buf = a.head
	}
	switch statusHead(buf) {
	case headFinal:
		a.deciding, a.head = false, nil
	case headSwitching:
		a.deciding, a.switched, a.head = false, true, nil
	default: // more to read
		if len(buf) > maxAnswerHead {
			a.deciding, a.switched, a.head = false, true, nil
			return
		}
		if len(a.head) == 0 {
			a.head = append(make([]byte, 0, 2*len(b)), b...)
		}
	}
}

const (
	headMore = iota
	headFinal
	headSwitching
)

// statusHead reads the status lines at the start of an answer: headSwitching at a 101,
// headFinal at any other final status (or bytes no HTTP client would read as a status
// line: it then fails the exchange itself), headMore when they end before it can tell.
func statusHead(b []byte) int {
	for {
		for len(b) > 0 && (b[0] == '\r' || b[0] == '\n') {
			b = b[1:]
		}
		sp := bytes.IndexByte(b, ' ')
		if sp < 0 {
			if len(b) > 64 || bytes.IndexByte(b, '\n') >= 0 {
				return headFinal
			}
			return headMore
		}
		rest := b[sp:]
		for len(rest) > 0 && rest[0] == ' ' {
			rest = rest[1:]
		}
		if len(rest) < 3 {
			return headMore
		}
		code := rest[:3]
		for _, c := range code {
			if c < '0' || c > '9' {
				return headFinal
			}
		}
		switch {
		case string(code) == "101":
			return headSwitching
		case code[0] != '1':
			return headFinal
		}
		// An interim answer: its header block ends with an empty line, then the next
		// status line comes.
		end := bytes.Index(rest, []byte("\n\r\n"))
		if e := bytes.Index(rest, []byte("\n\n")); e >= 0 && (end < 0 || e < end) {
			end = e
		}
		if end < 0 {
			return headMore
		}
		b = rest[end+1:]
	}
}
