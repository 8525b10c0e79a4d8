package lazyconn

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// counting counts the deadlines set on a real connection.
type counting struct {
	net.Conn
	reads, writes atomic.Int32
}

func (c *counting) SetReadDeadline(t time.Time) error {
	c.reads.Add(1)
	return c.Conn.SetReadDeadline(t)
}

func (c *counting) SetWriteDeadline(t time.Time) error {
	c.writes.Add(1)
	return c.Conn.SetWriteDeadline(t)
}

// pair returns both ends of a loopback TCP connection: ours wrapped (over a counting
// conn), and the peer.
func pair(t *testing.T) (*Conn, *counting, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := Listener{ln}.Accept()
		accepted <- c
	}()
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := <-accepted
	if c == nil {
		t.Fatal("accept failed")
	}
	lc, ok := c.(*Conn)
	if !ok {
		t.Fatalf("Listener accepted a %T, want a *Conn", c)
	}
	cnt := &counting{Conn: lc.Conn}
	lc.Conn = cnt
	t.Cleanup(func() { lc.Close(); peer.Close() })
	return lc, cnt, peer
}

// Deadlines that only move later, as fasthttp sets them at every request, arm the poller
// once; each request is still served.
func TestLaterDeadlinesArmOnce(t *testing.T) {
	c, cnt, peer := pair(t)
	buf := make([]byte, 1)
	for i := range 1000 {
		now := time.Now()
		if err := c.SetReadDeadline(now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := c.SetWriteDeadline(now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if _, err := peer.Write([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil || buf[0] != byte(i) {
			t.Fatalf("request %d: read %v, %v", i, buf, err)
		}
		if _, err := c.Write(buf); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(peer, buf); err != nil {
			t.Fatal(err)
		}
	}
	if r, w := cnt.reads.Load(), cnt.writes.Load(); r != 1 || w != 1 {
		t.Fatalf("1000 later deadlines armed the poller %d times for reads and %d for writes, want 1 and 1", r, w)
	}
}

// readAfter reads one byte from c and says how long it took and what it got.
func readAfter(c net.Conn) (time.Duration, error) {
	start := time.Now()
	_, err := c.Read(make([]byte, 1))
	return time.Since(start), err
}

// An earlier deadline is armed at once: the read ends at it, not at the later one armed.
func TestEarlierDeadlineArmsAtOnce(t *testing.T) {
	c, cnt, _ := pair(t)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	took, err := readAfter(c)
	if !errors.Is(err, os.ErrDeadlineExceeded) || took > 5*time.Second {
		t.Fatalf("read ended after %v with %v, want ErrDeadlineExceeded after 50ms", took, err)
	}
	if n := cnt.reads.Load(); n != 2 {
		t.Fatalf("armed %d times, want 2", n)
	}
}

// The armed deadline firing before the one asked for does not end the read: it resumes,
// and ends at the later one, or with the data that comes before it.
func TestEarlyFireResumes(t *testing.T) {
	c, _, peer := pair(t)
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Millisecond)) // armed
	_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	took, err := readAfter(c)
	if !errors.Is(err, os.ErrDeadlineExceeded) || took < 250*time.Millisecond {
		t.Fatalf("read ended after %v with %v, want ErrDeadlineExceeded after 300ms", took, err)
	}

	_ = c.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	time.AfterFunc(150*time.Millisecond, func() { _, _ = peer.Write([]byte("x")) })
	if took, err := readAfter(c); err != nil || took < 100*time.Millisecond {
		t.Fatalf("read ended after %v with %v, want the byte sent at 150ms", took, err)
	}

	// No deadline at all after an armed one: the read waits for the data.
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	_ = c.SetReadDeadline(time.Time{})
	time.AfterFunc(200*time.Millisecond, func() { _, _ = peer.Write([]byte("y")) })
	if took, err := readAfter(c); err != nil || took < 150*time.Millisecond {
		t.Fatalf("read ended after %v with %v, want the byte sent at 200ms", took, err)
	}
}

// A deadline in the past interrupts a blocked read at once, from another goroutine.
func TestPastDeadlineInterrupts(t *testing.T) {
	c, _, _ := pair(t)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	time.AfterFunc(50*time.Millisecond, func() { _ = c.SetReadDeadline(time.Unix(1, 0)) })
	took, err := readAfter(c)
	if !errors.Is(err, os.ErrDeadlineExceeded) || took > 5*time.Second {
		t.Fatalf("read ended after %v with %v, want ErrDeadlineExceeded at once", took, err)
	}
}

// A write the armed deadline cuts short resumes with what is left, under the later
// deadline, so the peer gets every byte once.
func TestEarlyFireResumesAWrite(t *testing.T) {
	c, _, peer := pair(t)
	payload := make([]byte, 64<<20) // more than the loopback socket buffers hold
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	_ = c.SetWriteDeadline(time.Now().Add(30 * time.Millisecond))
	_ = c.SetWriteDeadline(time.Now().Add(time.Minute))
	got := make(chan []byte, 1)
	go func() {
		time.Sleep(200 * time.Millisecond) // past the armed deadline
		b, _ := io.ReadAll(io.LimitReader(peer, int64(len(payload))))
		got <- b
	}()
	n, err := c.Write(payload)
	if err != nil || n != len(payload) {
		t.Fatalf("wrote %d of %d: %v", n, len(payload), err)
	}
	b := <-got
	if len(b) != len(payload) {
		t.Fatalf("the peer got %d bytes of %d", len(b), len(payload))
	}
	for i := range b {
		if b[i] != payload[i] {
			t.Fatalf("byte %d differs", i)
		}
	}
}

// Deadlines set from several goroutines while reads run: every read ends by the deadline
// last set for it (checked under -race in CI).
func TestConcurrentDeadlines(t *testing.T) {
	c, _, peer := pair(t)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
					_ = c.SetReadDeadline(time.Now().Add(time.Duration(time.Now().UnixNano()%50) * time.Millisecond))
				}
			}
		})
	}
	go func() {
		for range 200 {
			_, _ = peer.Write([]byte("z"))
			time.Sleep(time.Millisecond)
		}
	}()
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := c.Read(make([]byte, 16)); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	// The last deadline set wins: 20ms from now, and the read ends by it.
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	for {
		took, err := readAfter(c)
		if err == nil {
			continue // a byte still in flight
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) || took > 5*time.Second {
			t.Fatalf("read ended after %v with %v", took, err)
		}
		break
	}
}

// BenchmarkRequestDeadlines sets a connection's deadlines as fasthttp does for each
// keep-alive request it serves (the idle wait, the read, the write), on a loopback TCP
// connection as it is and wrapped.
func BenchmarkRequestDeadlines(b *testing.B) {
	for _, wrap := range []bool{false, true} {
		name := "net"
		if wrap {
			name = "lazyconn"
		}
		b.Run(name, func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			go func() {
				if c, err := ln.Accept(); err == nil {
					defer c.Close()
					_, _ = io.Copy(io.Discard, c)
				}
			}()
			var c net.Conn
			if c, err = net.Dial("tcp", ln.Addr().String()); err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			if wrap {
				c = Wrap(c)
			}
			for b.Loop() {
				_ = c.SetReadDeadline(time.Now().Add(time.Minute))
				_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
				_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
			}
		})
	}
}
