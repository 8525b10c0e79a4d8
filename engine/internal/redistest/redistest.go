// Package redistest runs a real redis-server for tests: a private process from PATH on a free
// 127.0.0.1 port, without persistence, stopped by PID in t.Cleanup.
//
// Without the binary the calling test is skipped with a message saying so, unless the CI
// environment variable is set: then it fails, because CI must never skip the Redis tests.
// The server can be killed, restarted on the same port, paused and resumed, to test outages.
package redistest

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Config selects optional server features.
type Config struct {
	// Password, when set, is required (requirepass) and put into URL.
	Password string
	// TLS serves only TLS (rediss://) with a certificate for 127.0.0.1 from a fresh test CA;
	// ClientTLS returns a client config that trusts it.
	TLS bool
}

// Server is one redis-server process (and its restarts). Its methods are safe for concurrent
// use.
type Server struct {
	t    testing.TB
	cfg  Config
	bin  string
	dir  string
	port int
	ctls *tls.Config

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	out  *lockedBuffer
}

// Start starts a plain redis-server (no password, no TLS).
func Start(t testing.TB) *Server { return StartConfig(t, Config{}) }

// StartConfig starts a redis-server with cfg and waits until it answers PING.
func StartConfig(t testing.TB, cfg Config) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("redistest: redis-server not in PATH and CI is set; install it (apt-get install -y redis-server)")
		}
		t.Skipf("redistest: redis-server not in PATH; install it (apt-get install -y redis-server) to run this test")
	}
	s := &Server{t: t, cfg: cfg, bin: bin, dir: t.TempDir()}
	if cfg.TLS {
		s.ctls = writeCerts(t, s.dir)
	}
	t.Cleanup(s.Kill)
	// A free port can be taken by someone else between probing and binding: try a few.
	var lastErr error
	for range 5 {
		s.port = freePort(t)
		if lastErr = s.launch(); lastErr == nil {
			return s
		}
	}
	t.Fatalf("redistest: start redis-server: %v", lastErr)
	return nil
}

// Addr is host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Port is the TCP port, the same across restarts.
func (s *Server) Port() int { return s.port }

// URL is the go-redis URL: redis:// or rediss://, with the password when there is one.
func (s *Server) URL() string {
	scheme := "redis"
	if s.cfg.TLS {
		scheme = "rediss"
	}
	auth := ""
	if s.cfg.Password != "" {
		auth = ":" + s.cfg.Password + "@"
	}
	return scheme + "://" + auth + s.Addr() + "/0"
}

// ClientTLS returns a client TLS config trusting the server's test CA (nil without TLS).
func (s *Server) ClientTLS() *tls.Config {
	if s.ctls == nil {
		return nil
	}
	return s.ctls.Clone()
}

// PID is the current process id, 0 when not running.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Kill stops the process with SIGKILL (by PID) and waits for it. It is idempotent.
func (s *Server) Kill() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

// Restart starts a new process on the same port (after Kill) and waits until it answers.
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	var err error
	// The old socket may linger for a moment; redis-server sets SO_REUSEADDR, so a short retry
	// is enough.
	for range 10 {
		if err = s.launch(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("redistest: restart redis-server on port %d: %v", s.port, err)
}

// Pause stops the process with SIGSTOP: connections stay open and nothing answers, like a
// server stuck on a slow command.
func (s *Server) Pause() { s.signal(syscall.SIGSTOP) }

// Resume continues a paused process with SIGCONT.
func (s *Server) Resume() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		s.t.Fatalf("redistest: signal %v: server not running", sig)
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("redistest: signal %v: %v", sig, err)
	}
}

func (s *Server) args() []string {
	port := strconv.Itoa(s.port)
	a := []string{
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", s.dir,
		"--daemonize", "no",
		"--loglevel", "warning",
	}
	if s.cfg.TLS {
		a = append(a,
			"--port", "0",
			"--tls-port", port,
			"--tls-cert-file", filepath.Join(s.dir, "server.pem"),
			"--tls-key-file", filepath.Join(s.dir, "server.key"),
			"--tls-ca-cert-file", filepath.Join(s.dir, "ca.pem"),
			"--tls-auth-clients", "no",
		)
	} else {
		a = append(a, "--port", port)
	}
	if s.cfg.Password != "" {
		a = append(a, "--requirepass", s.cfg.Password)
	}
	return a
}

// launch starts the process and waits for PING; on failure the process is gone again.
func (s *Server) launch() error {
	out := &lockedBuffer{}
	cmd := exec.Command(s.bin, s.args()...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("redistest: %w", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	s.mu.Lock()
	s.cmd, s.done, s.out = cmd, done, out
	s.mu.Unlock()

	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-done:
			s.mu.Lock()
			s.cmd = nil
			s.mu.Unlock()
			return fmt.Errorf("redistest: redis-server exited: %s", strings.TrimSpace(out.String()))
		default:
		}
		err := s.ping()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			s.Kill()
			return fmt.Errorf("redistest: redis-server not answering: %w; output: %s", err, strings.TrimSpace(out.String()))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ping speaks just enough RESP to know the server is serving (AUTH first when needed).
func (s *Server) ping() error {
	d := net.Dialer{Timeout: time.Second}
	var c net.Conn
	var err error
	if s.cfg.TLS {
		c, err = tls.DialWithDialer(&d, "tcp", s.Addr(), s.ctls)
	} else {
		c, err = d.Dial("tcp", s.Addr())
	}
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	r := bufio.NewReader(c)
	if s.cfg.Password != "" {
		if _, err := fmt.Fprintf(c, "*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n", len(s.cfg.Password), s.cfg.Password); err != nil {
			return err
		}
		if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "+OK") {
			return fmt.Errorf("auth: %q %v", line, err)
		}
	}
	if _, err := c.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return err
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return errors.New("unexpected reply " + strconv.Quote(line))
	}
	return nil
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("redistest: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// writeCerts creates a CA and a server certificate for 127.0.0.1 in dir and returns a client
// config that trusts the CA.
func writeCerts(t testing.TB, dir string) *tls.Config {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "redistest CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, ca, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, der []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("ca.pem", "CERTIFICATE", caDER)
	write("server.pem", "CERTIFICATE", srvDER)
	write("server.key", "EC PRIVATE KEY", keyDER)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

// lockedBuffer collects the process output; the exec goroutines write while tests read.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 64<<10 {
		return len(p), nil // enough to diagnose; never grow without bound
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
