package gateway

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func secReadFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// secShipped reads a shipped file by its path in the repository (policies/, examples/policies/),
// so the gateway tests run the very files users get.
func secShipped(t *testing.T, rel string) string {
	t.Helper()
	return secReadFile(t, filepath.Join("..", "..", rel))
}

// secRawRequest writes raw HTTP/1.1 bytes to the public listener and reads the answer, for
// requests net/http will not produce (repeated headers in a chosen order).
func secRawRequest(t *testing.T, e *env, raw string) (int, string) {
	t.Helper()
	status, _, body := secRawAnswer(t, e, raw)
	return status, body
}

// secRawAnswer is secRawRequest with the answer's header.
func secRawAnswer(t *testing.T, e *env, raw string) (int, http.Header, string) {
	t.Helper()
	pub, _ := e.g.Addrs()
	c, err := net.DialTimeout("tcp", pub.String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	r, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return r.StatusCode, r.Header, string(b)
}
