package rawreq

import (
	"bytes"
	"errors"
	"fmt"
)

// Section markers of `curl --trace` output; a --trace-time prefix may precede them.
var (
	sendHeader = []byte("=> Send header")
	sendData   = []byte("=> Send data")
	recvHeader = []byte("<= Recv header")
)

// isTrace reports whether b is curl trace output: its first line is a trace section line
// ("== Info: …", "=> Send header, …"), a raw request's is a request line.
func isTrace(b []byte) bool {
	lr := &lineReader{b: b}
	line, _ := lr.next()
	if isTimestamp(line) {
		line = line[16:]
	}
	return bytes.HasPrefix(line, []byte("== ")) || bytes.HasPrefix(line, []byte("=> ")) || bytes.HasPrefix(line, []byte("<= "))
}

// isTimestamp reports whether line starts with --trace-time's "HH:MM:SS.micros ".
func isTimestamp(line []byte) bool {
	return len(line) >= 16 && line[2] == ':' && line[5] == ':' && line[8] == '.' && line[15] == ' '
}

// fromTrace rebuilds the bytes curl sent for the first request of a `curl --trace` dump: its
// "Send header" section and the "Send data" sections after it (a 100-continue answer may come
// in between), up to the next request.
func fromTrace(b []byte) ([]byte, error) {
	var out []byte
	var in, seenHeader bool
	lr := &lineReader{b: b}
	for {
		line, ok := lr.next()
		if !ok && len(line) == 0 {
			break
		}
		switch {
		case bytes.Contains(line, sendHeader):
			if seenHeader {
				return out, nil // the next request (a redirect, a reused connection)
			}
			seenHeader, in = true, true
			continue
		case bytes.Contains(line, sendData):
			in = seenHeader
			continue
		case bytes.HasPrefix(line, []byte("=>")), bytes.HasPrefix(line, []byte("<=")), bytes.HasPrefix(line, []byte("==")),
			bytes.Contains(line, recvHeader), isTimedMarker(line):
			in = false
			continue
		}
		if !in {
			continue
		}
		row, err := hexRow(line)
		if err != nil {
			return nil, fmt.Errorf("rawreq: curl trace line %d: %w", lr.line, err)
		}
		out = append(out, row...)
	}
	if !seenHeader {
		return nil, errors.New("rawreq: curl trace has no \"=> Send header\" section")
	}
	return out, nil
}

// isTimedMarker matches a --trace-time section line of another kind ("12:00:00.000000 <= …").
func isTimedMarker(line []byte) bool {
	if !isTimestamp(line) {
		return false
	}
	m := line[16:]
	return bytes.HasPrefix(m, []byte("=>")) || bytes.HasPrefix(m, []byte("<=")) || bytes.HasPrefix(m, []byte("=="))
}

// hexRow decodes one data row: "0000: 50 4f 53 54 … POST …". curl prints an offset, ": ",
// then 16 columns of "hh " (blank for a short last row), then the bytes as ASCII; the hex
// columns are read, never the ASCII ones.
func hexRow(line []byte) ([]byte, error) {
	colon := bytes.IndexByte(line, ':')
	if colon < 1 || colon > 16 || len(line) < colon+2 || line[colon+1] != ' ' {
		if len(bytes.TrimSpace(line)) == 0 {
			return nil, nil
		}
		return nil, fmt.Errorf("not a data row: %q", clip(line))
	}
	for _, c := range line[:colon] {
		if unhex(c) < 0 {
			return nil, fmt.Errorf("not a data row: %q", clip(line))
		}
	}
	cols := line[colon+2:]
	var row []byte
	for i := 0; i < 16; i++ {
		at := i * 3
		if at+2 > len(cols) {
			break
		}
		hi, lo := unhex(cols[at]), unhex(cols[at+1])
		sep := at+2 == len(cols) || cols[at+2] == ' '
		if hi < 0 || lo < 0 || !sep {
			if i == 0 && cols[0] != ' ' {
				return nil, errors.New("no hex bytes: curl --trace-ascii output loses bytes; capture with curl --trace FILE")
			}
			break // the padding of a short last row
		}
		row = append(row, byte(hi<<4|lo))
	}
	return row, nil
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
