package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// benchPostgres is a throwaway PostgreSQL cluster the benchmark started for the queued-pg
// setup.
type benchPostgres struct {
	url  string
	pid  int
	stop func()
}

// startBenchPostgres starts a private cluster (initdb and postgres from PATH or
// /usr/lib/postgresql/*/bin) in a temp dir on a free loopback port, as user nobody when
// the benchmark runs as root, with PostgreSQL's durable defaults (fsync on): the store is
// measured as a gateway would use it. prefix (taskset) runs it on the servers' cores.
// Without initdb it returns nil and why.
func startBenchPostgres(ctx context.Context, prefix []string, stderr io.Writer) (*benchPostgres, string, error) {
	bin := pgBin("initdb")
	if bin == "" {
		return nil, "initdb not installed", nil
	}
	dir, err := os.MkdirTemp("", "hookwall-bench-pg-")
	if err != nil {
		return nil, "", err
	}
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		// initdb and postgres refuse to run as root.
		u, err := user.Lookup("nobody")
		if err != nil {
			os.RemoveAll(dir)
			return nil, "", fmt.Errorf("running as root and no user nobody to run postgres as: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, "", err
		}
	}
	data := filepath.Join(dir, "data")
	initdb := exec.CommandContext(ctx, bin, "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	initdb.Dir = dir
	if out, err := initdb.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, "", fmt.Errorf("initdb: %w\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		os.RemoveAll(dir)
		return nil, "", err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	argv := append(append([]string{}, prefix...), filepath.Join(filepath.Dir(bin), "postgres"), "-D", data, "-p", strconv.Itoa(port), "-k", dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200")
	pg := exec.Command(argv[0], argv[1:]...)
	pg.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	pg.Dir = dir
	logf, err := os.Create(filepath.Join(dir, "postgres.log"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, "", err
	}
	pg.Stdout, pg.Stderr = logf, logf
	if err := pg.Start(); err != nil {
		logf.Close()
		os.RemoveAll(dir)
		return nil, "", fmt.Errorf("start postgres: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = pg.Wait(); close(done) }()
	stop := func() {
		_ = pg.Process.Signal(syscall.SIGINT) // fast shutdown
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = pg.Process.Kill()
			<-done
		}
		logf.Close()
		os.RemoveAll(dir)
	}
	url := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		conn, err := pgx.Connect(ctx, url)
		if err == nil {
			conn.Close(ctx)
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			log, _ := os.ReadFile(filepath.Join(dir, "postgres.log"))
			stop()
			fmt.Fprintf(stderr, "%s\n", log)
			return nil, "", fmt.Errorf("postgres did not start: %w", err)
		}
	}
	return &benchPostgres{url: url, pid: pg.Process.Pid, stop: stop}, "", nil
}

// pgBin finds a PostgreSQL program on PATH or where Debian's packages put it.
func pgBin(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + name)
	if len(matches) == 0 {
		return ""
	}
	return matches[len(matches)-1]
}
