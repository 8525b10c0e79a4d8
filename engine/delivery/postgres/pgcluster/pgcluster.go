// Package pgcluster starts a private, throwaway PostgreSQL cluster: initdb and postgres
// from PATH or /usr/lib/postgresql/*/bin, in a temp dir, on a free 127.0.0.1 port, run as
// user nobody when the caller is root (initdb and postgres refuse to run as root), with
// trust authentication for the superuser postgres. Stop shuts it down and removes the dir.
//
// It imports no testing code, so both the tests' helper (pgtest) and the benchmark binary
// start their clusters with it.
package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrNoInitdb is returned by Start when no initdb is installed.
var ErrNoInitdb = errors.New("initdb not installed (neither in PATH nor in /usr/lib/postgresql/*/bin)")

// Options say how the cluster runs.
type Options struct {
	// Durable keeps PostgreSQL's defaults (initdb syncs, fsync on), so that the store is
	// measured as a gateway would use it. Off, for tests that kill gateways, not the
	// database: a throwaway cluster need not survive a power cut.
	Durable bool
	// Prefix runs postgres under another program (taskset pinning it to some cores).
	Prefix []string
	// TLSCert and TLSKey (PEM), when set, make the server offer TLS (ssl = on) with them,
	// beside clear text: a client chooses with its sslmode.
	TLSCert, TLSKey []byte
}

// Cluster is a running cluster.
type Cluster struct {
	URL  string // superuser URL of the database postgres
	PID  int    // of the postmaster (or of Prefix's program, which execs it)
	stop func()
}

// Stop shuts the cluster down (fast shutdown; killed after 10 s) and removes its dir.
// Calling it again does nothing.
func (c *Cluster) Stop() { c.stop() }

// Start starts a cluster and waits (up to 30 s) until it accepts connections. Without
// initdb it returns ErrNoInitdb.
func Start(ctx context.Context, o Options) (*Cluster, error) {
	bin := findBin("initdb")
	if bin == "" {
		return nil, ErrNoInitdb
	}
	dir, err := os.MkdirTemp("", "hookwall-pg-")
	if err != nil {
		return nil, err
	}
	c, err := start(ctx, o, bin, dir)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return c, nil
}

func start(ctx context.Context, o Options, bin, dir string) (*Cluster, error) {
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		u, err := user.Lookup("nobody")
		if err != nil {
			return nil, fmt.Errorf("running as root and no user nobody to run postgres as: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	initArgs := []string{"-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8"}
	pgArgs := []string{"-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200"}
	if !o.Durable {
		initArgs = append(initArgs, "--no-sync")
		pgArgs = append(pgArgs, "-c", "fsync=off")
	}
	initdb := exec.CommandContext(ctx, bin, initArgs...)
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	initdb.Dir = dir
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	if len(o.TLSCert) > 0 {
		// The key must belong to the server's user and be readable by it alone.
		certFile, keyFile := filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
		for _, f := range []struct {
			path string
			b    []byte
		}{{certFile, o.TLSCert}, {keyFile, o.TLSKey}} {
			if err := os.WriteFile(f.path, f.b, 0o600); err != nil {
				return nil, err
			}
			if cred != nil {
				if err := os.Chown(f.path, int(cred.Uid), int(cred.Gid)); err != nil {
					return nil, err
				}
			}
		}
		pgArgs = append(pgArgs, "-c", "ssl=on", "-c", "ssl_cert_file="+certFile, "-c", "ssl_key_file="+keyFile)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	argv := append(append([]string{}, o.Prefix...), filepath.Join(filepath.Dir(bin), "postgres"), "-D", data, "-p", strconv.Itoa(port), "-k", dir)
	argv = append(argv, pgArgs...)
	pg := exec.Command(argv[0], argv[1:]...)
	pg.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	pg.Dir = dir
	logPath := filepath.Join(dir, "postgres.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	pg.Stdout, pg.Stderr = logf, logf
	if err := pg.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = pg.Wait(); close(done) }()
	var once sync.Once
	c := &Cluster{
		URL: fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port),
		PID: pg.Process.Pid,
		stop: func() {
			once.Do(func() {
				_ = pg.Process.Signal(syscall.SIGINT) // fast shutdown
				select {
				case <-done:
				case <-time.After(10 * time.Second):
					_ = pg.Process.Kill()
					<-done
				}
				logf.Close()
				_ = os.RemoveAll(dir)
			})
		},
	}
	if err := WaitReady(ctx, c.URL, 30*time.Second); err != nil {
		log, _ := os.ReadFile(logPath)
		c.Stop()
		return nil, fmt.Errorf("postgres did not start: %w\n%s", err, log)
	}
	return c, nil
}

// WaitReady waits until the server at url accepts a connection (one that starts, or
// recovers from a crash), for up to timeout, and returns the last error when it does not.
func WaitReady(ctx context.Context, url string, timeout time.Duration) error {
	for deadline := time.Now().Add(timeout); ; time.Sleep(50 * time.Millisecond) {
		conn, err := pgx.Connect(ctx, url)
		if err == nil {
			conn.Close(ctx)
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
	}
}

func findBin(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + name)
	if len(matches) == 0 {
		return ""
	}
	return matches[len(matches)-1]
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
