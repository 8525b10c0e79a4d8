package redistest

import (
	"fmt"
	"strings"
	"testing"
)

func TestKillRestartPause(t *testing.T) {
	s := Start(t)
	pid, port := s.PID(), s.Port()
	if pid == 0 || port == 0 {
		t.Fatalf("pid %d port %d", pid, port)
	}
	if err := s.ping(); err != nil {
		t.Fatal(err)
	}
	s.Kill()
	if s.PID() != 0 {
		t.Fatal("PID after Kill")
	}
	if err := s.ping(); err == nil {
		t.Fatal("killed server still answers")
	}
	s.Restart()
	if s.Port() != port || s.PID() == 0 || s.PID() == pid {
		t.Fatalf("restart: port %d (was %d), pid %d (was %d)", s.Port(), port, s.PID(), pid)
	}
	if err := s.ping(); err != nil {
		t.Fatalf("restarted server: %v", err)
	}
	s.Pause()
	if err := s.ping(); err == nil {
		t.Fatal("paused server answers")
	}
	s.Resume()
	if err := s.ping(); err != nil {
		t.Fatalf("resumed server: %v", err)
	}
}

func TestPasswordRequired(t *testing.T) {
	s := StartConfig(t, Config{Password: "pw"})
	if !strings.Contains(s.URL(), ":pw@") {
		t.Fatalf("URL %q lacks the password", s.URL())
	}
	s.cfg.Password = "" // ping without AUTH must be refused
	if err := s.ping(); err == nil {
		t.Fatal("server answered PING without AUTH")
	}
}

// recTB records Skipf/Fatalf instead of ending the real test.
type recTB struct {
	testing.TB
	skip, fatal string
}

type stop struct{}

func (r *recTB) Skipf(f string, a ...any)  { r.skip = fmt.Sprintf(f, a...); panic(stop{}) }
func (r *recTB) Fatalf(f string, a ...any) { r.fatal = fmt.Sprintf(f, a...); panic(stop{}) }

func startRecorded(t *testing.T) *recTB {
	r := &recTB{TB: t}
	func() {
		defer func() {
			if v := recover(); v != nil {
				if _, ok := v.(stop); !ok {
					panic(v)
				}
			}
		}()
		Start(r)
	}()
	return r
}

// Without the binary: skip with a reason locally, fail under CI.
func TestMissingBinary(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv("CI", "")
	if r := startRecorded(t); !strings.Contains(r.skip, "redis-server not in PATH") || r.fatal != "" {
		t.Fatalf("without CI: skip %q fatal %q", r.skip, r.fatal)
	}
	t.Setenv("CI", "true")
	if r := startRecorded(t); !strings.Contains(r.fatal, "CI is set") || r.skip != "" {
		t.Fatalf("with CI: skip %q fatal %q", r.skip, r.fatal)
	}
}
