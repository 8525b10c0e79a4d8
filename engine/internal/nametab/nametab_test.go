package nametab

import (
	"strconv"
	"sync"
	"testing"
	"unsafe"
)

// Every name put is answered with its own value; a name whose slots other names took is not
// answered, and never with another's value; at most Size names are held whatever is put.
func TestTable(t *testing.T) {
	var tab Table[int]
	held := map[string]int{}
	for i := range 5000 {
		name := "X-Name-" + strconv.Itoa(i)
		vacant := tab.Vacant(name)
		if put := tab.Put(name, i); put != vacant {
			t.Fatalf("%s: Put %v, but Vacant said %v", name, put, vacant)
		} else if put {
			held[name] = i
		}
		if tab.Put(name, -1) {
			t.Fatalf("%s put twice", name)
		}
	}
	if len(held) > Size || len(held) < Size*3/4 {
		t.Fatalf("%d names held, want at most %d and most slots used", len(held), Size)
	}
	for i := range 5000 {
		name := "X-Name-" + strconv.Itoa(i)
		v, ok := tab.Get(name)
		want, isHeld := held[name]
		if ok != isHeld || ok && v != want {
			t.Fatalf("Get(%s) = %d, %v; want %d, %v", name, v, ok, want, isHeld)
		}
	}
	if _, ok := tab.Get(""); ok {
		t.Fatal("the empty name found in a table it was never put in")
	}
}

// Put copies the name: a caller's buffer reused after the call changes nothing in the table.
func TestPutCopiesName(t *testing.T) {
	var tab Table[bool]
	buf := []byte("Authorization")
	name := string(buf)
	tab.Put(unsafe.String(&buf[0], len(buf)), true) // a view of the buffer, as a pooled record's
	copy(buf, "Xuthorization")
	if v, ok := tab.Get(name); !ok || !v {
		t.Fatalf("Get(%q) = %v, %v after the caller's buffer changed", name, v, ok)
	}
}

// Concurrent puts of the same names leave each slot with one of them and its own value.
func TestConcurrentPut(t *testing.T) {
	var tab Table[string]
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				n := strconv.Itoa((i * (g + 1)) % 700)
				tab.Put(n, n)
				if v, ok := tab.Get(n); ok && v != n {
					t.Errorf("Get(%s) = %s", n, v)
				}
			}
		}()
	}
	wg.Wait()
}
