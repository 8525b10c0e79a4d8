package lazyconn

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// answerUnread plays a server that reads the first bytes of a request, answers it and
// closes, lingering when linger is set, while the client is still sending a body larger
// than both sockets' buffers hold. It returns what the client read back and its write's
// error.
func answerUnread(t *testing.T, linger bool) (got []byte, writeErr error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	served := make(chan error, 1)
	go func() {
		raw, err := ln.Accept()
		if err != nil {
			served <- err
			return
		}
		c := Wrap(raw)
		head := make([]byte, 16)
		if _, err := io.ReadFull(c, head); err != nil {
			served <- err
			return
		}
		if _, err := c.Write([]byte("413 answer")); err != nil {
			served <- err
			return
		}
		if linger {
			c.Linger()
		}
		served <- c.Close()
	}()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	// A send buffer of its own size stays that size (the kernel tunes only the ones left
	// unset), so the body cannot all wait in buffers while the server reads none of it.
	client.(*net.TCPConn).SetWriteBuffer(64 << 10)       //nolint:errcheck
	client.SetDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
	_, writeErr = client.Write(bytes.Repeat([]byte("b"), 768<<10))
	got, _ = io.ReadAll(client)
	client.Close()
	if err := <-served; err != nil {
		t.Fatalf("server: %v", err)
	}
	return got, writeErr
}

// A Conn asked to linger lets a client that is still sending a body it will not read finish
// sending, and read the answer; closed at once, the same client is reset mid-body, which
// is what lingering is for.
func TestLingerLetsTheClientReadTheAnswer(t *testing.T) {
	if got, werr := answerUnread(t, true); werr != nil || string(got) != "413 answer" {
		t.Errorf("lingering close: the client's write returned %v and it read %q, want no error and %q", werr, got, "413 answer")
	}
	if _, werr := answerUnread(t, false); werr == nil {
		t.Errorf("closed at once with 768 KiB unread, the client's write succeeded: the test does not reach the reset it guards against")
	}
}

// A lingering Close waits no longer than LingerTimeout for a peer that neither sends nor
// closes.
func TestLingerIsBounded(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	raw, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	c := Wrap(raw)
	c.Linger()
	start := time.Now()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < LingerTimeout/2 || took > LingerTimeout+time.Second {
		t.Errorf("a lingering Close with a silent peer took %v, want about %v", took, LingerTimeout)
	}
	// The client saw the FIN: its read ends.
	client.SetReadDeadline(time.Now().Add(time.Second)) //nolint:errcheck
	if n, err := client.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Errorf("the client read %d bytes, %v after the lingering close, want EOF", n, err)
	}
}
