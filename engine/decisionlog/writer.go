package decisionlog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// FlushInterval bounds how long a record waits in the buffer.
const FlushInterval = 200 * time.Millisecond

// queueLen and queueBytes bound the records waiting for the writer, in number and in bytes
// (a record holds its request's headers, up to max_header each): past either, records are
// dropped, and counted.
const (
	queueLen   = 8192
	queueBytes = 64 << 20
)

// flushAt is how many bytes of waiting records wake the writer before FlushInterval. A file
// write is a blocking system call that, as a runtime trace under load shows, nearly always
// keeps its processor (the scheduler's monitor takes it back only from a call that outlasts
// one of its ticks, milliseconds apart under steady load): a 256 KiB write holds it about
// 100 µs. Each write also has a fixed cost, so fewer, larger writes (a quarter of a
// megabyte is about 250 records) cost the requests less in all: 32 KiB pieces, tried, took
// about 17 µs each, 136 µs a quarter megabyte.
const flushAt = 256 << 10

// keepCap bounds the batch buffer the writer keeps for reuse after a burst.
const keepCap = 1 << 20

var (
	newline = []byte{'\n'}
	errTorn = errors.New("decision log: the line a failed write cut short could not be ended")
)

// Stats counts what the log did.
type Stats struct {
	// Written records reached the file whole; Dropped ones did not (the queue was full, so
	// the disk was slower than the traffic, or a write failed before them); WriteErrors
	// counts failed writes and flushes (a full disk, an I/O error). A write that failed
	// part-way leaves its last record cut short in the file: the next write starts on a new
	// line, so only that one line is not JSON, and its record counts as dropped.
	Written, Dropped, WriteErrors uint64
	// Reopens counts successful Reopen calls.
	Reopens uint64
}

// Options tune a Logger.
type Options struct {
	// Mask names extra headers to mask (see NewMask); the default ones are always masked.
	Mask []string
	// Seal, when set, seals every captured body: the record carries it as body_sealed and
	// body_key, never in the clear (see Unseal). Nil logs captured bodies in the clear.
	Seal Sealer
}

// Sealer seals captured bodies; delivery.Keyring is one (the [delivery] encryption_keys).
type Sealer interface {
	// AppendSeal appends plain sealed, with aad bound in, to dst and returns it with the
	// id of the key that sealed it. It must not fail, and must not keep dst or plain.
	AppendSeal(dst, plain, aad []byte) ([]byte, string)
}

// Logger is a decision-log sink. A nil *Logger discards. Safe for concurrent use.
type Logger struct {
	// mu guards the batch the requests append to; the writer takes it whole. A request
	// wakes the writer only when the batch passes flushAt, not per record.
	mu      sync.Mutex
	batch   []byte
	pending int  // records in batch
	kicked  bool // a wake-up is on its way
	kick    chan struct{}

	path    string // the file Open opened; "" for other writers (Reopen is a no-op)
	out     io.Writer
	closer  io.Closer
	mask    *Mask
	seal    Sealer
	pool    sync.Pool // encoding scratch
	stamps  stamps    // the records' last formatted second
	written atomic.Uint64
	dropped atomic.Uint64
	errs    atomic.Uint64
	reopens atomic.Uint64
	reopen  chan reopenReq
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
	closed  atomic.Bool

	subMu  sync.Mutex
	subs   atomic.Pointer[[]*subscriber] // copied on write: the writer reads it without a lock
	subSeq int
}

type subscriber struct {
	id int
	fn func([]byte)
}

type reopenReq struct {
	f    *os.File
	done chan struct{}
}

// Open returns a Logger for spec: "off" (nil, discards), "stdout", or a file path (appended,
// created 0600).
func Open(spec string, o Options) (*Logger, error) {
	switch spec {
	case "off", "":
		return nil, nil
	case "stdout":
		return New(os.Stdout, nil, o), nil
	}
	f, err := openFile(spec)
	if err != nil {
		return nil, err
	}
	l := New(f, f, o)
	l.path = spec
	return l, nil
}

func openFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("decisionlog: %w", err)
	}
	return f, nil
}

// New returns a Logger writing to w; closer (may be nil) is closed by Close.
func New(w io.Writer, closer io.Closer, o Options) *Logger {
	l := &Logger{
		kick: make(chan struct{}, 1), out: w, closer: closer, mask: NewMask(o.Mask), seal: o.Seal,
		reopen: make(chan reopenReq), stop: make(chan struct{}), done: make(chan struct{}),
	}
	l.pool.New = func() any { b := make([]byte, 0, 1024); return &b }
	go l.run()
	return l
}

// Log encodes r and queues it. It never blocks.
func (l *Logger) Log(r *Record) {
	if l == nil || l.closed.Load() {
		return
	}
	bp := l.pool.Get().(*[]byte)
	*bp = r.appendJSON((*bp)[:0], l.mask, l.seal, &l.stamps)
	l.mu.Lock()
	if l.pending >= queueLen || len(l.batch)+len(*bp) > queueBytes {
		l.mu.Unlock()
		l.dropped.Add(1)
		l.pool.Put(bp)
		return
	}
	l.batch = append(l.batch, *bp...)
	l.pending++
	wake := len(l.batch) >= flushAt && !l.kicked
	if wake {
		l.kicked = true
	}
	l.mu.Unlock()
	if cap(*bp) <= 64<<10 {
		l.pool.Put(bp)
	}
	if wake {
		select {
		case l.kick <- struct{}{}:
		default:
		}
	}
}

// Stats returns the counters.
func (l *Logger) Stats() Stats {
	if l == nil {
		return Stats{}
	}
	return Stats{Written: l.written.Load(), Dropped: l.dropped.Load(), WriteErrors: l.errs.Load(), Reopens: l.reopens.Load()}
}

// Subscribe calls fn with every record the writer takes from the queue (one JSON line, with
// its newline), whether or not the write then succeeded, so a live view keeps working on a
// full disk. fn runs on the writer goroutine: it must be quick, must not call the Logger, and
// must copy line, which is reused after fn returns. Dropped records are not seen. cancel
// removes fn; it is idempotent. On a nil Logger, Subscribe does nothing.
func (l *Logger) Subscribe(fn func(line []byte)) (cancel func()) {
	if l == nil {
		return func() {}
	}
	l.subMu.Lock()
	defer l.subMu.Unlock()
	l.subSeq++
	id := l.subSeq
	var next []*subscriber
	if cur := l.subs.Load(); cur != nil {
		next = append(next, *cur...)
	}
	next = append(next, &subscriber{id: id, fn: fn})
	l.subs.Store(&next)
	return func() {
		l.subMu.Lock()
		defer l.subMu.Unlock()
		cur := l.subs.Load()
		if cur == nil {
			return
		}
		kept := make([]*subscriber, 0, len(*cur))
		for _, s := range *cur {
			if s.id != id {
				kept = append(kept, s)
			}
		}
		l.subs.Store(&kept)
	}
}

// ErrClosed is returned by Reopen after Close.
var ErrClosed = errors.New("decisionlog: closed")

// Reopen closes the log file and opens its path again, for logrotate's "move, then signal"
// (cmd/hookwall calls it on SIGUSR1). Everything queued before the call goes to the old file.
// A Logger writing to stdout or another writer is left as it is. When the path cannot be
// opened, the old file stays in use and the error is returned.
func (l *Logger) Reopen() error {
	if l == nil || l.path == "" {
		return nil
	}
	if l.closed.Load() {
		return ErrClosed
	}
	f, err := openFile(l.path)
	if err != nil {
		return err
	}
	req := reopenReq{f: f, done: make(chan struct{})}
	select {
	case l.reopen <- req:
		<-req.done
		l.reopens.Add(1)
		return nil
	case <-l.done:
		f.Close()
		return ErrClosed
	}
}

func (l *Logger) run() {
	defer close(l.done)
	t := time.NewTicker(FlushInterval)
	defer t.Stop()
	var spare []byte
	torn := false // the last write failed mid-record: the file does not end with a newline
	// flush writes the batch in one call: one syscall per batch, not per line.
	flush := func() {
		l.mu.Lock()
		b, n := l.batch, l.pending
		l.batch, l.pending, l.kicked = spare[:0], 0, false
		l.mu.Unlock()
		if n > 0 {
			if subs := l.subs.Load(); subs != nil {
				for rest := b; len(rest) > 0; {
					i := bytes.IndexByte(rest, '\n') + 1 // every record ends with one; no string holds one
					if i == 0 {
						i = len(rest)
					}
					for _, s := range *subs {
						s.fn(rest[:i])
					}
					rest = rest[i:]
				}
			}
			if torn {
				// A newline of its own: one more system call, after a failure only.
				if _, err := l.out.Write(newline); err == nil {
					torn = false
				}
			}
			var w int
			var err error
			if torn {
				err = errTorn // the cut line would swallow the batch's first record
			} else {
				w, err = l.out.Write(b)
			}
			if err != nil {
				// What was not written whole is lost; a failing disk must not wedge the log.
				l.errs.Add(1)
				whole := uint64(bytes.Count(b[:w], newline))
				l.written.Add(whole)
				l.dropped.Add(uint64(n) - whole)
				torn = torn || w > 0 && b[w-1] != '\n'
			} else {
				l.written.Add(uint64(n))
			}
		}
		spare = nil
		if cap(b) <= keepCap {
			spare = b
		}
	}
	for {
		select {
		case <-l.kick:
			flush()
		case <-t.C:
			flush()
		case req := <-l.reopen:
			flush()
			if torn {
				// End the cut line in the file it is in, not at the new file's start.
				_, _ = l.out.Write(newline)
				torn = false
			}
			if l.closer != nil {
				if err := l.closer.Close(); err != nil {
					l.errs.Add(1)
				}
			}
			l.out, l.closer = req.f, req.f
			close(req.done)
		case <-l.stop:
			flush()
			return
		}
	}
}

// Close flushes queued records and closes the file. Records logged after Close are dropped.
func (l *Logger) Close() error {
	if l == nil {
		return nil
	}
	var err error
	l.once.Do(func() {
		l.closed.Store(true)
		close(l.stop)
		<-l.done
		if l.closer != nil {
			err = l.closer.Close()
		}
	})
	return err
}
