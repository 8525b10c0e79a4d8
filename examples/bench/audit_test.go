package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A run counts only when every request sent reached the upstream once and was logged allowed.
func TestAuditVoidsRuns(t *testing.T) {
	ok := tally{sent: 10, forwarded: 10, logged: true, decisions: map[string]uint64{"allowed": 10}}
	if v := ok.void(); v != "" {
		t.Errorf("a clean run is void: %s", v)
	}
	if v := (tally{sent: 10, forwarded: 10}).void(); v != "" {
		t.Errorf("a clean run of a proxy without a decision log is void: %s", v)
	}
	if v := (tally{sent: 10, forwarded: 10, hashes: 3, hashed: 30}).void(); v != "" {
		t.Errorf("a clean run of the control is void: %s", v)
	}
	for name, c := range map[string]struct {
		t    tally
		want string
	}{
		"duplicates":       {tally{sent: 10, forwarded: 6, logged: true, decisions: map[string]uint64{"allowed": 6, "duplicate": 4}}, "forwarded"},
		"duplicates alone": {tally{sent: 10, forwarded: 10, logged: true, decisions: map[string]uint64{"allowed": 10, "duplicate": 4}}, "4 duplicate deliveries"},
		"denied":           {tally{sent: 10, forwarded: 10, logged: true, decisions: map[string]uint64{"allowed": 10, "denied": 1}}, "other than allowed"},
		"lost records":     {tally{sent: 10, forwarded: 10, logged: true, decisions: map[string]uint64{"allowed": 9}}, "9 allowed"},
		"lost requests":    {tally{sent: 10, forwarded: 9}, "10 requests sent, 9 forwarded"},
		"nothing":          {tally{}, "no requests"},
		"control idle":     {tally{sent: 10, forwarded: 10, hashes: 3, hashed: 27}, "computed 27 sums for 10 requests, want 30"},
	} {
		if v := c.t.void(); !strings.Contains(v, c.want) {
			t.Errorf("%s: void() = %q, want it to say %q", name, v, c.want)
		}
	}
}

// The audit reads what the gateway appended since its last read, for one route, and leaves a
// record the writer has not finished for the next read.
func TestDecisionLogSince(t *testing.T) {
	p := filepath.Join(t.TempDir(), "decisions.log")
	rec := func(route, outcome string) string {
		return `{"time":"x","route":"` + route + `","remote_ip":"127.0.0.1","outcome":"` + outcome + `","status":200,"filters":[{"name":"f","outcome":"next"}]}` + "\n"
	}
	write := func(s string) {
		f, err := os.OpenFile(p, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString(s); err != nil {
			t.Fatal(err)
		}
	}
	write(rec("reference", "allowed") + rec("none", "allowed") + rec("reference", "duplicate"))
	l := &decisionLog{path: p}
	got, err := l.since("reference")
	if err != nil {
		t.Fatal(err)
	}
	if got["allowed"] != 1 || got["duplicate"] != 1 || len(got) != 2 {
		t.Errorf("first read: %v", got)
	}
	half := rec("reference", "allowed")
	write(rec("reference", "allowed") + half[:20])
	if got, _ = l.since("reference"); got["allowed"] != 1 || len(got) != 1 {
		t.Errorf("second read, a record cut off at the end: %v", got)
	}
	write(half[20:])
	if got, _ = l.since("reference"); got["allowed"] != 1 || len(got) != 1 {
		t.Errorf("third read, the record completed: %v", got)
	}
}

// A queued run counts only when every request sent was stored once and delivered under a
// distinct id: a lost row, a lost or dead delivery, or a log that disagrees voids it.
func TestAuditVoidsQueuedRuns(t *testing.T) {
	q := func(rows, delivered, dups, dead uint64) *queuedTally {
		return &queuedTally{rows: rows, delivered: delivered, dups: dups, dead: dead}
	}
	logged := func(queued, delivered uint64) map[string]uint64 {
		return map[string]uint64{"queued": queued, "delivered": delivered}
	}
	ok := tally{sent: 10, forwarded: 11, logged: true, decisions: logged(10, 10), queued: q(10, 10, 1, 0)}
	if v := ok.void(); v != "" {
		t.Errorf("a clean queued run (one re-delivery) is void: %s", v)
	}
	for name, c := range map[string]struct {
		t    tally
		want string
	}{
		"row lost":        {tally{sent: 10, forwarded: 9, logged: true, decisions: logged(10, 9), queued: q(9, 9, 0, 0)}, "10 accepted, 9 rows stored"},
		"delivery lost":   {tally{sent: 10, forwarded: 9, logged: true, decisions: logged(10, 9), queued: q(10, 9, 0, 0)}, "10 rows stored, 9 delivered"},
		"dead":            {tally{sent: 10, forwarded: 9, logged: true, decisions: logged(10, 9), queued: q(10, 9, 0, 1)}, "1 deliveries dead"},
		"unaccounted hit": {tally{sent: 10, forwarded: 12, logged: true, decisions: logged(10, 10), queued: q(10, 10, 1, 0)}, "the upstream served 12"},
		"not logged":      {tally{sent: 10, forwarded: 10, logged: true, decisions: logged(9, 10), queued: q(10, 10, 0, 0)}, "9 logged queued"},
		"other outcome":   {tally{sent: 10, forwarded: 10, logged: true, decisions: map[string]uint64{"queued": 10, "delivered": 10, "unavailable": 1}, queued: q(10, 10, 0, 0)}, "unavailable"},
	} {
		if v := c.t.void(); !strings.Contains(v, c.want) {
			t.Errorf("%s: void() = %q, want it to say %q", name, v, c.want)
		}
	}
}
