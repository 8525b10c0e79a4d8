package lazyconn

import "testing"

// TestAnswerHeadFindsSwitchingProtocols: a 101 is found however the answer's head arrives
// (split across reads, after empty lines, after interim answers, with a loose version or
// spaces, as fasthttp reads them), and a final answer is not taken for one.
func TestAnswerHeadFindsSwitchingProtocols(t *testing.T) {
	for _, c := range []struct {
		name     string
		reads    []string
		switched bool
	}{
		{"200 in one read", []string{"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"}, false},
		{"101 in one read", []string{"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n"}, true},
		{"101 split in the version", []string{"HTTP/1.", "1 101 Switching Protocols\r\n\r\n"}, true},
		{"101 split in the code", []string{"HTTP/1.1 1", "01 Switching\r\n\r\n"}, true},
		{"200 split in the code", []string{"HTTP/1.1 2", "00 OK\r\n\r\n"}, false},
		{"101 after 100 Continue", []string{"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 101 Switching\r\n\r\n"}, true},
		{"101 after 103, split", []string{"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n", "\r\nHTTP/1.1 101 S\r\n\r\n"}, true},
		{"200 after 100 Continue", []string{"HTTP/1.1 100 Continue\r\n\r\n", "HTTP/1.1 200 OK\r\n\r\n"}, false},
		{"101 after empty lines", []string{"\r\n\r\nHTTP/1.1 101 S\r\n\r\n"}, true},
		{"101 after two spaces", []string{"HTTP/1.1  101 S\r\n\r\n"}, true},
		{"101 under another version token", []string{"HTTP/2.0 101 S\r\n\r\n"}, true},
		{"garbage", []string{"not an answer at all, just bytes\r\n"}, false},
		{"a head that never ends", []string{"HTTP/1.1 100 Continue\r\n", string(make([]byte, maxAnswerHead+1))}, true},
	} {
		var a answerHead
		a.next()
		for _, r := range c.reads {
			a.read([]byte(r))
		}
		if a.switched != c.switched {
			t.Errorf("%s: switched %t, want %t", c.name, a.switched, c.switched)
		}
		// The body after a final answer is not read as a status line.
		if !c.switched {
			a.read([]byte("HTTP/1.1 101 in a body\r\n"))
			if a.switched {
				t.Errorf("%s: a body after the final answer was taken for a 101", c.name)
			}
		}
	}
}
