package decisionlog

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestDiskFullCutsOneLineAndCountsWhatItLost fills a real (tmpfs) file system while the
// decision log writes a batch: the write stops part-way through a record (ENOSPC). Every
// record logged is then either in the file whole or counted dropped, the one record cut
// short is the only line that is not JSON, and once space is back the next batch starts on a
// line of its own (it was appended to the cut record, whose line swallowed its first one).
func TestDiskFullCutsOneLineAndCountsWhatItLost(t *testing.T) {
	path, filler := nearlyFullDisk(t)
	l, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	st1 := overfill(l)
	// Space comes back (logrotate compressed something, an operator cleaned up).
	os.Remove(filler)
	for i := 100; i < 105; i++ {
		l.Log(record(i))
	}
	time.Sleep(3 * FlushInterval)
	_ = l.Close()
	st2 := l.Stats()
	data, _ := os.ReadFile(path)
	invalid, found := readLines(data)
	if st1.WriteErrors == 0 {
		t.Fatalf("the disk never filled: %+v", st1)
	}
	if invalid != 1 {
		t.Errorf("%d lines are not JSON, want 1 (the record the full disk cut short)", invalid)
	}
	if got := uint64(len(found)); st2.Written != got || st2.Written+st2.Dropped != 45 {
		t.Errorf("45 records logged: %d whole in the file, stats %+v (written + dropped must be 45, written the ones in the file)", got, st2)
	}
	for i := 100; i < 105; i++ {
		if id := fmt.Sprintf("batch-record-%04d", i); !found[id] {
			t.Errorf("record %s, logged after space came back, is not in the file whole", id)
		}
	}
}

// TestDiskFullThenRotated: a log rotated (moved, then Reopen) right after a write a full disk
// cut short ends the cut line in the old file; the new file starts with a record.
func TestDiskFullThenRotated(t *testing.T) {
	path, filler := nearlyFullDisk(t)
	l, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if st := overfill(l); st.WriteErrors == 0 {
		t.Fatalf("the disk never filled: %+v", st)
	}
	os.Remove(filler)
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := l.Reopen(); err != nil {
		t.Fatal(err)
	}
	l.Log(record(100))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	old, _ := os.ReadFile(path + ".1")
	cur, _ := os.ReadFile(path)
	if len(old) == 0 || old[len(old)-1] != '\n' {
		t.Errorf("the rotated file does not end its last line (%d bytes)", len(old))
	}
	if invalid, found := readLines(cur); invalid != 0 || !found["batch-record-0100"] || !bytes.HasPrefix(cur, []byte("{")) {
		t.Errorf("the new file: %d lines not JSON, starts %q", invalid, cur[:min(len(cur), 20)])
	}
}

// nearlyFullDisk mounts a 64 KiB tmpfs (root only; skipped otherwise) and fills all but 8 KiB
// of it with a file; it returns the log's path and the filler's.
func nearlyFullDisk(t *testing.T) (path, filler string) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", dir).Run() })
	filler = filepath.Join(dir, "filler")
	f, _ := os.Create(filler)
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	f.Close()
	fi, _ := os.Stat(filler)
	if err := os.Truncate(filler, fi.Size()-8192); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "decisions.log"), filler
}

// record is a record of about 1.2 KB named batch-record-NNNN.
func record(i int) *Record {
	r := sampleRecord()
	r.DecisionID = fmt.Sprintf("batch-record-%04d", i)
	r.Headers = append(r.Headers, Header{"X-Pad", strings.Repeat("p", 300)})
	return r
}

// overfill logs 40 records, more than the 8 KiB left, and returns the stats once written.
func overfill(l *Logger) Stats {
	for i := range 40 {
		l.Log(record(i))
	}
	time.Sleep(3 * FlushInterval)
	return l.Stats()
}

// readLines counts data's lines that are not JSON and returns the decision ids of the others.
func readLines(data []byte) (invalid int, found map[string]bool) {
	found = map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var v struct {
			DecisionID string `json:"decision_id"`
		}
		if json.Unmarshal(sc.Bytes(), &v) != nil {
			invalid++
			continue
		}
		found[v.DecisionID] = true
	}
	return invalid, found
}

// shortWriter writes its first batch only in part, failing as a full disk does, then all.
type shortWriter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	failed bool
}

func (w *shortWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.failed && len(p) > 1 {
		w.failed = true
		n := len(p) - len(p)/6 // halfway into the last of three records
		w.buf.Write(p[:n])
		return n, syscall.ENOSPC
	}
	return w.buf.Write(p)
}

// TestShortWriteCutsOneLine is TestDiskFullCutsOneLineAndCountsWhatItLost where no tmpfs can
// be mounted: a write that fails part-way through its batch's last record.
func TestShortWriteCutsOneLine(t *testing.T) {
	w := &shortWriter{}
	l := New(w, nil, Options{})
	for i := range 3 {
		r := sampleRecord()
		r.DecisionID = fmt.Sprintf("first-%d", i)
		l.Log(r)
	}
	time.Sleep(3 * FlushInterval)
	r := sampleRecord()
	r.DecisionID = "after"
	l.Log(r)
	_ = l.Close()
	st := l.Stats()
	lines := strings.Split(strings.TrimSuffix(w.buf.String(), "\n"), "\n")
	var ids []string
	for _, line := range lines {
		var v struct {
			DecisionID string `json:"decision_id"`
		}
		if json.Unmarshal([]byte(line), &v) != nil {
			ids = append(ids, "(not JSON)")
			continue
		}
		ids = append(ids, v.DecisionID)
	}
	if want := []string{"first-0", "first-1", "(not JSON)", "after"}; !slices.Equal(ids, want) {
		t.Errorf("lines %q, want %q", ids, want)
	}
	if st.Written != 3 || st.Dropped != 1 || st.WriteErrors != 1 {
		t.Errorf("stats %+v, want 3 written, 1 dropped, 1 write error", st)
	}
}
