//go:build unix

package sqlite_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hookwall/hookwall/engine/delivery/sqlite"
)

// A second Store on one file (another gateway: its leases would not see the first one's,
// and every delivery in flight would be sent twice at once) is refused while the first is
// open, naming the lock file and the holder's pid; after Close it opens.
func TestSecondOpenOfOneFileRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d.db")
	first, err := sqlite.Open(sqlite.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	second, err := sqlite.Open(sqlite.Options{Path: path})
	if err == nil {
		_ = second.Close()
		_ = first.Close()
		t.Fatal("a second Open of the file succeeded while the first was open")
	}
	for _, want := range []string{path + "-lock", "another gateway (pid " + strconv.Itoa(os.Getpid()) + ")"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if fi, err := os.Stat(path + "-lock"); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("lock file: %v, %v; want mode 0600", fi, err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	second, err = sqlite.Open(sqlite.Options{Path: path})
	if err != nil {
		t.Fatalf("Open after the first Store closed: %v", err)
	}
	if err := second.Close(); err != nil {
		t.Fatal(err)
	}
}

// lockHolderEnv makes the test binary a gateway that opens the store at its value, says
// "open" and waits to be killed (TestLockHolder).
const lockHolderEnv = "HOOKWALL_TEST_SQLITE_LOCK_HOLDER"

func TestLockHolder(t *testing.T) {
	path := os.Getenv(lockHolderEnv)
	if path == "" {
		t.Skip("the child of TestLockFreedWhenTheHolderIsKilled")
	}
	if _, err := sqlite.Open(sqlite.Options{Path: path}); err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString("open\n")
	time.Sleep(time.Minute)
}

// A gateway killed with -9 leaves its lock file behind but not its lock: the next start
// opens the store.
func TestLockFreedWhenTheHolderIsKilled(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockHolder$", "-test.count=1")
	cmd.Env = append(os.Environ(), lockHolderEnv+"="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if sc.Text() == "open" {
				lines <- "open"
			}
		}
		close(lines)
	}()
	select {
	case l, ok := <-lines:
		if !ok || l != "open" {
			t.Fatal("the child did not open the store")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the child did not open the store in 30s")
	}
	_, err = sqlite.Open(sqlite.Options{Path: path})
	if want := "another gateway (pid " + strconv.Itoa(cmd.Process.Pid) + ")"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Open while the child holds the store: %v; want an error saying %q", err, want)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	s, err := sqlite.Open(sqlite.Options{Path: path})
	if err != nil {
		t.Fatalf("Open after the holder was killed with -9: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}
