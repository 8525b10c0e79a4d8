package server

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/hookwall/hookwall/engine/config"
	"github.com/hookwall/hookwall/engine/tlsconf/tlstest"
)

// A body over max_body is answered 413 before it is read, and the connection closed. The
// client is then still sending the body; had the gateway closed at once, with the body
// unread, the kernel would reset the connection and the client would get "connection
// reset" in place of the 413. The client here sends 768 KiB against a max_body of 64 KiB,
// through a send buffer that cannot hold it, in plain HTTP and under TLS, and must finish
// sending it and read the 413.
func TestOversizedBodyGets413NotAReset(t *testing.T) {
	up := startUpstream(t)
	dir := openPolicyDir(t)
	cfgText := `
[server]
max_body = "64KiB"
[policies]
dir = "policies"
[[route]]
name = "open"
path = "/hook"
upstream = "http://` + up + `"
policy = "routes.open"
`
	ca := tlstest.NewCA(t, "gateway CA")
	for _, tc := range []struct {
		name string
		tls  bool
	}{{"plain", false}, {"tls", true}} {
		t.Run(tc.name, func(t *testing.T) {
			_, gw := startServer(t, filepath.Join(dir, "gateway.toml"), cfgText, func(_ *config.Config, o *Options) {
				if tc.tls {
					o.TLS = &tls.Config{Certificates: []tls.Certificate{ca.Server(t, "127.0.0.1").TLS}}
				}
			})
			raw, err := net.Dial("tcp", gw)
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			// A send buffer set stays its size: the body cannot wait in it while the gateway
			// reads none of it.
			raw.(*net.TCPConn).SetWriteBuffer(64 << 10)       //nolint:errcheck
			raw.SetDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
			var conn net.Conn = raw
			if tc.tls {
				conn = tls.Client(raw, &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"})
			}
			body := bytes.Repeat([]byte("b"), 768<<10)
			head := fmt.Sprintf("POST /hook HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(body))
			if _, err := io.WriteString(conn, head); err != nil {
				t.Fatal(err)
			}
			if _, err := conn.Write(body); err != nil {
				t.Fatalf("sending the body after the gateway answered: %v (the connection was reset, not closed gracefully)", err)
			}
			var resp fasthttp.Response
			if err := resp.Read(bufio.NewReader(conn)); err != nil {
				t.Fatalf("reading the answer: %v", err)
			}
			if resp.StatusCode() != fasthttp.StatusRequestEntityTooLarge {
				t.Errorf("status %d, want 413", resp.StatusCode())
			}
		})
	}
}
