package sqlite

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
)

// errLocked is lockFile's error when another open file holds the lock.
var errLocked = errors.New("locked")

// lockSuffix names the lock file beside the database: Open takes an exclusive lock on it and
// holds it until Close. The leases are in the gateway's memory, so a second gateway on the
// same file would send every delivery in flight again at once; it is refused instead.
const lockSuffix = "-lock"

// fileLock is the lock a Store holds on its database's lock file.
type fileLock struct{ f *os.File }

// lock takes the exclusive lock on path's lock file (created 0600), and writes this
// process's pid into it. It fails, naming the file and the pid it holds, when another
// gateway (or another Store of this process) has it. The kernel drops the lock when its
// holder exits, however it ends: a gateway killed with -9 leaves nothing to clean up. The
// file is never removed (a file removed while another process opens it would let two hold
// locks, on two files of one name).
func lock(path string) (*fileLock, error) {
	name := path + lockSuffix
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("delivery/sqlite: lock file: %w", err)
	}
	if err := lockFile(f); err != nil {
		_ = f.Close()
		if errors.Is(err, errLocked) {
			holder := "another gateway"
			if b, rerr := os.ReadFile(name); rerr == nil {
				if pid, perr := strconv.Atoi(string(bytes.TrimSpace(b))); perr == nil && pid > 0 {
					holder = fmt.Sprintf("another gateway (pid %d)", pid)
				}
			}
			return nil, fmt.Errorf("delivery/sqlite: %s is locked by %s: the SQLite delivery store is opened by one gateway at a time (its leases live in that gateway's memory, so a second one would deliver every delivery in flight again); stop it, or give this gateway another [delivery] path", name, holder)
		}
		return nil, fmt.Errorf("delivery/sqlite: lock %s: %w", name, err)
	}
	// The pid is for the message above only: the lock is the kernel's.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &fileLock{f: f}, nil
}

// unlock releases the lock (closing the file does); the file stays.
func (l *fileLock) unlock() error {
	if l == nil {
		return nil
	}
	return l.f.Close()
}
