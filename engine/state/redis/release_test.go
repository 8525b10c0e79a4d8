package redis

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/hookwall/hookwall/engine/internal/redistest"
	"github.com/hookwall/hookwall/engine/state"
)

// slowLink is a TCP proxy to Redis. After Slow, the replies on the connections open then are
// held back for hold (the requests reach Redis at once: a slow return path), and what the
// client sends on connections opened later reaches Redis only once Open is called.
type slowLink struct {
	ln   net.Listener
	mu   sync.Mutex
	slow bool
	old  map[net.Conn]bool // connections open when Slow was called
	gate chan struct{}
	hold time.Duration
}

func startSlowLink(t *testing.T, target string, hold time.Duration) *slowLink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &slowLink{ln: ln, old: map[net.Conn]bool{}, gate: make(chan struct{}), hold: hold}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); l.Open(); wg.Wait() })
	var conns []net.Conn
	t.Cleanup(func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			l.mu.Lock()
			conns = append(conns, c, u)
			gated := l.slow // opened after Slow: its requests wait for Open
			l.mu.Unlock()
			wg.Add(2)
			go func() {
				defer wg.Done()
				defer u.Close()
				if gated {
					<-l.gate
				}
				_, _ = io.Copy(u, c)
			}()
			go func() {
				defer wg.Done()
				defer c.Close()
				buf := make([]byte, 4096)
				for {
					n, err := u.Read(buf)
					if n > 0 {
						l.mu.Lock()
						held := l.old[c]
						l.mu.Unlock()
						if held {
							time.Sleep(l.hold)
						}
						if _, werr := c.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
			l.mu.Lock()
			l.old[c] = false
			l.mu.Unlock()
		}
	}()
	return l
}

func (l *slowLink) Addr() string { return l.ln.Addr().String() }

// Slow makes the connections open now slow to answer and holds the requests of later ones.
func (l *slowLink) Slow() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.slow = true
	for c := range l.old {
		l.old[c] = true
	}
}

// Open lets the held requests through.
func (l *slowLink) Open() {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-l.gate:
	default:
		close(l.gate)
	}
}

// TestReleaseRepeatedLeavesAnotherClaim: gateway A releases its claim (its upstream failed);
// the release runs in Redis but its reply comes after A's timeout, so A makes the call again.
// Meanwhile gateway B claimed the key for the provider's retry. A's repeated release must leave
// B's claim alone: a third copy, while B's is in flight, is in flight (409), not new (which
// would send the delivery upstream twice at once).
func TestReleaseRepeatedLeavesAnotherClaim(t *testing.T) {
	srv := redistest.Start(t)
	link := startSlowLink(t, srv.Addr(), 300*time.Millisecond)
	a := newStore(t, Options{URL: "redis://" + link.Addr(), Prefix: "rel:", Timeout: 50 * time.Millisecond})
	b := newStore(t, Options{URL: srv.URL(), Prefix: "rel:", Timeout: time.Second})
	raw := rawClient(t, srv)
	ctx := context.Background()
	chk := &state.Check{Dedupe: state.Dedupe{Key: "delivery-1", TTL: time.Hour}, InFlight: 35 * time.Second}

	adm, err := a.Admit(ctx, chk)
	if err != nil || adm.Dedupe != state.DedupeNew || adm.Claim == 0 {
		t.Fatalf("A's admit: %+v %v", adm, err)
	}
	// A's release script is loaded (a first release, of another key), so that the release
	// below is one request.
	if err := a.ReleaseClaim(ctx, "other", 1); err != nil {
		t.Fatal(err)
	}
	link.Slow()
	done := make(chan error, 1)
	go func() {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second) // the server's settle deadline
		defer cancel()
		done <- a.ReleaseClaim(rctx, "delivery-1", adm.Claim)
	}()
	// The first release ran in Redis (its reply is held): the key is gone.
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := raw.Get(ctx, "rel:dd:delivery-1").Result()
		if errors.Is(err, goredis.Nil) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("A's release never ran in Redis (last GET: %v)", err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	if admB, err := b.Admit(ctx, chk); err != nil || admB.Dedupe != state.DedupeNew {
		t.Fatalf("B's admit of the released key: %+v %v", admB, err)
	}
	// A's first call has timed out by now; its repeat waits at the link until B has claimed.
	time.Sleep(100 * time.Millisecond)
	link.Open()
	if err := <-done; err != nil {
		t.Fatalf("A's release: %v", err)
	}
	if admC, err := b.Admit(ctx, chk); err != nil || admC.Dedupe != state.DedupeInFlight {
		t.Errorf("a copy while B's claim is in flight: %v %v, want in flight (409): A's repeated release dropped B's claim", admC.Dedupe, err)
	}
}
