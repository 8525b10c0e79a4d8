package server

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hookwall/hookwall/engine/config"
	"github.com/hookwall/hookwall/engine/decisionlog"
	"github.com/hookwall/hookwall/engine/internal/testutil"
)

// TestRefusedRequestRecordsOnlyWhatWasRead: the decision log's request.method and
// request.path are the client's (design.md §6). A request whose header block the listener
// could not read (over max_header, malformed) has none to record: fasthttp's defaults for an
// unread header, GET and /, are no client's, so the record leaves both empty, as it does for
// a refused TLS handshake. A request refused after its header was read (a body over
// max_body) records its own.
func TestRefusedRequestRecordsOnlyWhatWasRead(t *testing.T) {
	dir := openPolicyDir(t)
	logBuf := &testutil.Buffer{}
	var dlog *decisionlog.Logger
	_, addr := startServer(t, filepath.Join(dir, "gateway.toml"), `
[server]
max_body = "1KiB"
max_header = "4KiB"
[policies]
dir = "policies"
[[route]]
name = "open"
path = "/hooks/x"
upstream = "http://127.0.0.1:1"
policy = "routes.open"
`, func(_ *config.Config, o *Options) {
		dlog = decisionlog.New(logBuf, nil, decisionlog.Options{})
		o.Log = dlog
	})
	cases := []struct {
		name, raw    string
		status       int
		method, path string
	}{
		{"header block too large", "POST /hooks/x HTTP/1.1\r\nHost: a\r\nX-Big: " + strings.Repeat("a", 8<<10) + "\r\nContent-Length: 0\r\n\r\n", 431, "", ""},
		{"malformed header", "POST /hooks/x HTTP/1.1\r\nHost a\r\nContent-Length: 0\r\n\r\n", 400, "", ""},
		{"body over max_body", "PUT /hooks/x HTTP/1.1\r\nHost: a\r\nContent-Length: 2048\r\n\r\n" + strings.Repeat("b", 2048), 413, "PUT", "/hooks/x"},
	}
	for _, c := range cases {
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = io.WriteString(conn, c.raw)
		answer, _ := io.ReadAll(conn)
		conn.Close()
		if want := []byte(" " + strconv.Itoa(c.status) + " "); !bytes.Contains(answer, want) {
			t.Fatalf("%s: answer %q, want status %d", c.name, answer, c.status)
		}
	}
	dlog.Close()
	lines := bytes.Split(bytes.TrimSpace(logBuf.Bytes()), []byte("\n"))
	if len(lines) != len(cases) {
		t.Fatalf("%d records, want %d:\n%s", len(lines), len(cases), logBuf.String())
	}
	for i, c := range cases {
		var rec struct {
			Status  int `json:"status"`
			Request struct {
				Method string `json:"method"`
				Path   string `json:"path"`
			} `json:"request"`
		}
		if err := json.Unmarshal(lines[i], &rec); err != nil {
			t.Fatal(err)
		}
		if rec.Status != c.status || rec.Request.Method != c.method || rec.Request.Path != c.path {
			t.Errorf("%s: record status %d method %q path %q, want %d %q %q:\n%s", c.name, rec.Status, rec.Request.Method, rec.Request.Path, c.status, c.method, c.path, lines[i])
		}
	}
}
