package decisionlog

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// FlushInterval bounds how long a record waits in the buffer.
const FlushInterval = 200 * time.Millisecond

const queueLen = 8192

// Stats counts what the log did.
type Stats struct {
	Written, Dropped, WriteErrors uint64
}

// Logger is a decision-log sink. A nil *Logger discards. Safe for concurrent use.
type Logger struct {
	ch      chan *[]byte
	out     io.Writer
	closer  io.Closer
	pool    sync.Pool
	written atomic.Uint64
	dropped atomic.Uint64
	errs    atomic.Uint64
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
	closed  atomic.Bool
	// onWrite is called after each record reached the writer (tests, status page).
	onWrite func([]byte)
}

// Open returns a Logger for spec: "off" (nil, discards), "stdout", or a file path (appended,
// created 0600).
func Open(spec string) (*Logger, error) {
	switch spec {
	case "off", "":
		return nil, nil
	case "stdout":
		return New(os.Stdout, nil), nil
	}
	f, err := os.OpenFile(spec, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("decisionlog: %w", err)
	}
	return New(f, f), nil
}

// New returns a Logger writing to w; closer (may be nil) is closed by Close.
func New(w io.Writer, closer io.Closer) *Logger {
	l := &Logger{ch: make(chan *[]byte, queueLen), out: w, closer: closer, stop: make(chan struct{}), done: make(chan struct{})}
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
	*bp = r.AppendJSON((*bp)[:0])
	select {
	case l.ch <- bp:
	default:
		l.dropped.Add(1)
		l.pool.Put(bp)
	}
}

// Stats returns the counters.
func (l *Logger) Stats() Stats {
	if l == nil {
		return Stats{}
	}
	return Stats{Written: l.written.Load(), Dropped: l.dropped.Load(), WriteErrors: l.errs.Load()}
}

func (l *Logger) run() {
	defer close(l.done)
	bw := bufio.NewWriterSize(l.out, 64<<10)
	t := time.NewTicker(FlushInterval)
	defer t.Stop()
	write := func(bp *[]byte) {
		if _, err := bw.Write(*bp); err != nil {
			l.errs.Add(1)
			bw.Reset(l.out) // drop what is buffered; a failing disk must not wedge the log
		} else {
			l.written.Add(1)
			if l.onWrite != nil {
				l.onWrite(*bp)
			}
		}
		if cap(*bp) <= 64<<10 {
			l.pool.Put(bp)
		}
	}
	flush := func() {
		if bw.Buffered() > 0 {
			if err := bw.Flush(); err != nil {
				l.errs.Add(1)
				bw.Reset(l.out)
			}
		}
	}
	drain := func() {
		for n := 0; n < queueLen; n++ {
			select {
			case bp := <-l.ch:
				write(bp)
			default:
				return
			}
		}
	}
	for {
		select {
		case bp := <-l.ch:
			write(bp)
			// Take what is queued before flushing: one syscall per batch, not per line.
			drain()
			if bw.Buffered() > 32<<10 {
				flush()
			}
		case <-t.C:
			flush()
		case <-l.stop:
			drain()
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
