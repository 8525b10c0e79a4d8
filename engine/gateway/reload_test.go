package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/hookwall/hookwall/engine/filter"
	"github.com/hookwall/hookwall/engine/internal/testutil"
)

const flipAllow = "package routes.flip\n\nallow := true\n"

const flipDeny = "package routes.flip\n\nallow := false\n\nstatus := 451\n"

// guardedPolicy allows only when the guard filter labelled the request verdict=ok, which the
// hookwall.wasm test guest does and tiny.wasm does not: the status tells which module ran.
const guardedPolicy = `package routes.guarded

default allow := false

allow if input.filters.guard.labels.verdict == "ok"

status := 451
`

const reloadConfig = `
[server]
listen = "127.0.0.1:0"

[admin]
listen = "127.0.0.1:0"

[policies]
dir = "policies"
{{POLICIES}}

[log]
decisions = "off"

[[route]]
name = "flip"
path = "/hooks/flip"
upstream = "{{UPSTREAM}}"
policy = "routes.flip"
`

const guardConfig = `
[[filter]]
name = "guard"
module = "filters/guard.wasm"
pool = 2

[[route]]
name = "guarded"
path = "/hooks/guarded"
upstream = "{{UPSTREAM}}"
policy = "routes.guarded"
filters = ["guard"]
`

// testGuest reads a committed test guest of the filter package (built from its .wat).
func testGuest(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "filter", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// startReload runs a gateway with the flip route; policies adds keys to [policies], extra
// adds tables.
func startReload(t testing.TB, policies, extra string, files map[string]string, o Options) (*env, *upstream) {
	t.Helper()
	up := startUpstream(t)
	if files == nil {
		files = map[string]string{}
	}
	if _, ok := files["policies/routes/flip.rego"]; !ok {
		files["policies/routes/flip.rego"] = flipAllow
	}
	cfg := strings.NewReplacer("{{UPSTREAM}}", up.URL(), "{{POLICIES}}", policies).Replace(reloadConfig + extra)
	return startEnv(t, cfg, files, o), up
}

// post sends an empty POST and returns the status; it never fails the test, so load
// goroutines can count errors.
func (e *env) post(path string) (int, error) {
	r, err := client.Post(e.base+path, "application/json", nil)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, r.Body)
	r.Body.Close()
	return r.StatusCode, nil
}

func (e *env) mustPost(path string) int {
	e.t.Helper()
	st, err := e.post(path)
	if err != nil {
		e.t.Fatalf("POST %s: %v", path, err)
	}
	return st
}

// adminStatus is GET /-/status.
func (e *env) adminStatus() statusDoc {
	e.t.Helper()
	r, err := client.Get(e.admin + "/-/status")
	if err != nil {
		e.t.Fatal(err)
	}
	defer r.Body.Close()
	var doc statusDoc
	if err := json.NewDecoder(r.Body).Decode(&doc); err != nil {
		e.t.Fatal(err)
	}
	return doc
}

// adminReload is POST /-/reload, as the README's curl command sends it: the HTTP status and
// the JSON answer.
func (e *env) adminReload() (int, map[string]string) {
	e.t.Helper()
	req, err := http.NewRequest("POST", e.admin+"/-/reload", nil)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set(AdminHeader, "1")
	r, err := client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer r.Body.Close()
	out := map[string]string{}
	if err := json.NewDecoder(r.Body).Decode(&out); err != nil {
		e.t.Fatal(err)
	}
	return r.StatusCode, out
}

func (e *env) path(rel string) string { return filepath.Join(e.dir, rel) }

func TestReloadUnderLoadFlipsPolicy(t *testing.T) {
	e, _ := startReload(t, "", "", nil, Options{})
	policy := e.path("policies/routes/flip.rego")
	const (
		clients  = 4
		duration = 2 * time.Second
		maxReqs  = 20000 // per client: bounds the loop on a fast machine
	)
	var ok, denied, other, connErrs atomic.Int64
	var firstErr atomic.Value
	deadline := time.Now().Add(duration)
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for i := 0; i < maxReqs && time.Now().Before(deadline); i++ {
				st, err := e.post("/hooks/flip")
				switch {
				case err != nil:
					connErrs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				case st == 200:
					ok.Add(1)
				case st == 451:
					denied.Add(1)
				default:
					other.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("status %d", st))
				}
			}
		})
	}
	flips, renamed := 0, 0
	for time.Now().Add(150 * time.Millisecond).Before(deadline) {
		content := flipDeny
		if flips%2 == 1 {
			content = flipAllow
		}
		// Both ways a file gets written: in place (the watch waits for it to stay unchanged
		// for a second, which writes 150 ms apart never do: those flips reload only with the
		// next rename) and renamed over (reloaded 100 ms after, unless the next comes first).
		if flips%4 < 2 {
			testutil.WriteFile(t, policy, content)
		} else {
			testutil.ReplaceFile(t, policy, content)
			renamed++
		}
		flips++
		time.Sleep(150 * time.Millisecond)
	}
	wg.Wait()
	st := e.g.Status()
	t.Logf("flips %d: %d allowed, %d denied (451), %d other, %d connection errors; reloads ok %d, refused %d",
		flips, ok.Load(), denied.Load(), other.Load(), connErrs.Load(), st.Reloads, st.Failures)
	if connErrs.Load() != 0 || other.Load() != 0 {
		t.Fatalf("%d connection errors and %d other statuses; first: %v", connErrs.Load(), other.Load(), firstErr.Load())
	}
	if ok.Load() == 0 || denied.Load() == 0 {
		t.Fatalf("the flips were not seen: %d allowed, %d denied", ok.Load(), denied.Load())
	}
	if st.Reloads < uint64(renamed/2) {
		t.Errorf("%d reloads for %d flips, %d of them renamed over", st.Reloads, flips, renamed)
	}
}

func TestReloadPolicyLiveWithinOneSecond(t *testing.T) {
	e, _ := startReload(t, "", "", nil, Options{})
	policy := e.path("policies/routes/flip.rego")
	var worst time.Duration
	for i := range 6 {
		content, want := flipDeny, 451
		if i%2 == 1 {
			content, want = flipAllow, 200
		}
		testutil.ReplaceFile(t, policy, content)
		written := time.Now()
		for e.mustPost("/hooks/flip") != want {
			if time.Since(written) > time.Second {
				t.Fatalf("flip %d: status %d still not live 1s after the write", i, want)
			}
			time.Sleep(2 * time.Millisecond)
		}
		worst = max(worst, time.Since(written))
	}
	t.Logf("slowest write-to-live: %v", worst)
}

func TestReloadBadPolicyKeepsServing(t *testing.T) {
	cases := []struct {
		name, src, kind string
	}{
		{"syntax error", "package routes.flip\n\nallow if {\n", "flip.rego:4: rego_parse_error: unexpected eof"},
		{"type error", "package routes.flip\n\nallow if count(5) > 0\n", "flip.rego:3: rego_type_error: count: invalid argument"},
	}
	e, _ := startReload(t, "", "", nil, Options{})
	policy := e.path("policies/routes/flip.rego")
	good := e.adminStatus()
	if good.LastResult != "ok" || good.Revision == "" {
		t.Fatalf("initial status: %+v", good.Status)
	}
	fileLine := regexp.MustCompile(`policies/routes/flip\.rego:\d+: `)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := e.g.Status()
			testutil.ReplaceFile(t, policy, tc.src)
			var doc statusDoc
			testutil.WaitUntil(t, 2*time.Second, "the refused change never showed in /-/status", func() bool {
				doc = e.adminStatus()
				return doc.Failures > before.Failures
			})
			if doc.LastResult != "error" || !strings.Contains(doc.LastError, tc.kind) || !fileLine.MatchString(doc.LastError) {
				t.Errorf("/-/status last_error %q, want %q", doc.LastError, tc.kind)
			}
			t.Logf("refused: %s", doc.LastError)
			if doc.Revision != good.Revision || !doc.LoadedAt.Equal(good.LoadedAt) || !doc.LastAttempt.After(good.LastAttempt) {
				t.Errorf("revision %s loaded %v (attempt %v), want the old %s loaded %v", doc.Revision, doc.LoadedAt, doc.LastAttempt, good.Revision, good.LoadedAt)
			}
			if st := e.mustPost("/hooks/flip"); st != 200 {
				t.Errorf("status %d: the old policy must keep serving", st)
			}
			if !fileLine.MatchString(e.logBuf.String()) {
				t.Errorf("the log does not name flip.rego:line:\n%s", e.logBuf.String())
			}
			code, ans := e.adminReload()
			if code != http.StatusUnprocessableEntity || ans["result"] != "error" || !fileLine.MatchString(ans["error"]) || ans["revision"] != good.Revision {
				t.Errorf("POST /-/reload: %d %v, want 422 naming the file and the serving revision", code, ans)
			}
		})
	}
	testutil.ReplaceFile(t, policy, flipDeny)
	testutil.WaitUntil(t, 2*time.Second, "the fixed policy never went live", func() bool { return e.mustPost("/hooks/flip") == 451 })
	doc := e.adminStatus()
	if doc.LastResult != "ok" || doc.LastError != "" || doc.Revision == good.Revision {
		t.Errorf("after the fix: %+v", doc.Status)
	}
}

func TestReloadAdminAnswersNewRevision(t *testing.T) {
	e, _ := startReload(t, "watch = false", "", nil, Options{})
	// With watch off, only the API applies the change.
	testutil.ReplaceFile(t, e.path("policies/routes/flip.rego"), flipDeny)
	time.Sleep(300 * time.Millisecond)
	if st := e.mustPost("/hooks/flip"); st != 200 {
		t.Fatalf("status %d before the reload; watch = false must not reload", st)
	}
	old := e.g.Status().Revision
	code, ans := e.adminReload()
	if code != 200 || ans["result"] != "ok" || ans["revision"] == "" || ans["revision"] == old {
		t.Fatalf("POST /-/reload: %d %v, want 200 with a new revision (old %s)", code, ans, old)
	}
	if got := e.adminStatus(); got.Revision != ans["revision"] || got.Watching != 0 {
		t.Errorf("/-/status revision %s watching %d, want %s and 0", got.Revision, got.Watching, ans["revision"])
	}
	if st := e.mustPost("/hooks/flip"); st != 451 {
		t.Errorf("status %d after the reload, want 451", st)
	}
}

func TestReloadRouteAddedWithoutRestart(t *testing.T) {
	e, up := startReload(t, "", "", nil, Options{})
	if st := e.mustPost("/hooks/added"); st != 404 {
		t.Fatalf("status %d before the route exists", st)
	}
	raw, err := os.ReadFile(e.path("gateway.toml"))
	if err != nil {
		t.Fatal(err)
	}
	added := string(raw) + "\n[[route]]\nname = \"added\"\npath = \"/hooks/added\"\nupstream = \"" + up.URL() + "\"\npolicy = \"routes.flip\"\n"
	testutil.ReplaceFile(t, e.path("gateway.toml"), added)
	took := testutil.WaitUntil(t, 2*time.Second, "the added route is not served", func() bool { return e.mustPost("/hooks/added") == 200 })
	t.Logf("route live after %v", took)
	if reqs := up.requests(); reqs[len(reqs)-1].URI != "/hooks/added" {
		t.Errorf("upstream got %q", reqs[len(reqs)-1].URI)
	}
	// A listener change is refused as a whole: the added route stays, nothing else applies.
	rev := e.g.Status().Revision
	testutil.ReplaceFile(t, e.path("gateway.toml"), strings.Replace(added, "[server]\nlisten = \"127.0.0.1:0\"", "[server]\nlisten = \"127.0.0.1:1\"", 1)+
		"\n[[route]]\nname = \"later\"\npath = \"/hooks/later\"\nupstream = \""+up.URL()+"\"\npolicy = \"routes.flip\"\n")
	testutil.WaitUntil(t, 2*time.Second, "the listener change was not refused", func() bool {
		return strings.Contains(e.g.Status().LastError, "need a restart")
	})
	if le := e.g.Status().LastError; !strings.Contains(le, ": server.listen changed: these need a restart") {
		t.Errorf("the refusal does not name the key: %s", le)
	}
	if st := e.mustPost("/hooks/later"); st != 404 || e.g.Status().Revision != rev {
		t.Errorf("a change with a listener edit applied partly: /hooks/later %d", st)
	}
}

// guardEnv runs a gateway whose "guarded" route uses the guard filter loaded from guest.
func guardEnv(t testing.TB, guest string, o Options) *env {
	t.Helper()
	e, _ := startReload(t, "", guardConfig, map[string]string{
		"filters/guard.wasm":           testGuest(t, guest),
		"policies/routes/guarded.rego": guardedPolicy,
	}, o)
	return e
}

func TestReloadFilterModuleReplaced(t *testing.T) {
	e := guardEnv(t, "tiny.wasm", Options{})
	if st := e.mustPost("/hooks/guarded"); st != 451 {
		t.Fatalf("status %d with tiny.wasm, want 451 (no label)", st)
	}
	old := e.g.Snapshot().Filters["guard"]
	testutil.ReplaceFile(t, e.path("filters/guard.wasm"), testGuest(t, "hookwall.wasm"))
	took := testutil.WaitUntil(t, 2*time.Second, "the replaced module is not live", func() bool { return e.mustPost("/hooks/guarded") == 200 })
	t.Logf("module live after %v", took)
	cur := e.g.Snapshot().Filters["guard"]
	if cur == old || cur.SpecHash == old.SpecHash {
		t.Fatal("the snapshot still holds the old filter")
	}
	testutil.WaitUntil(t, 2*time.Second, "the old pool did not close", func() bool { return old.Stats().Live == 0 })
	inst, err := old.Acquire(context.Background())
	if err == nil {
		inst.Release()
		t.Fatal("the old filter still hands out instances")
	}
	if !errors.Is(err, filter.ErrClosed) {
		t.Errorf("old filter: %v, want ErrClosed", err)
	}
	if _, err := cur.Acquire(context.Background()); err != nil {
		t.Errorf("the new filter: %v", err)
	}
}

func TestReloadPolicyOnlyChangeKeepsCompiledFilter(t *testing.T) {
	e := guardEnv(t, "hookwall.wasm", Options{})
	if st := e.mustPost("/hooks/guarded"); st != 200 {
		t.Fatalf("status %d", st)
	}
	snap := e.g.Snapshot()
	f := snap.Filters["guard"]
	created := f.Stats().Created
	testutil.ReplaceFile(t, e.path("policies/routes/guarded.rego"), strings.Replace(guardedPolicy, `== "ok"`, `== "never"`, 1))
	testutil.WaitUntil(t, 2*time.Second, "the policy change is not live", func() bool { return e.mustPost("/hooks/guarded") == 451 })
	next := e.g.Snapshot()
	if next == snap {
		t.Fatal("no new snapshot")
	}
	if next.Filters["guard"] != f {
		t.Fatal("a policy-only change loaded the filter again")
	}
	if st := f.Stats(); st.Created != created || st.Live == 0 {
		t.Errorf("filter stats %+v: created %d before, want no new instance and an open pool", st, created)
	}
	if e.mustPost("/hooks/guarded") != 451 || f.Stats().Calls == 0 {
		t.Error("the kept filter does not serve")
	}
}

func TestReloadInFlightRequestFinishesOnItsSnapshot(t *testing.T) {
	// respheader.wasm has a response phase: a request keeps its instance until the response
	// is written, so the old pool has work in flight during the swap.
	e, up := startReload(t, "", guardConfig, map[string]string{
		"filters/guard.wasm":           testGuest(t, "respheader.wasm"),
		"policies/routes/guarded.rego": "package routes.guarded\n\nallow := true\n",
	}, Options{})
	if !e.g.Snapshot().Filters["guard"].HasResponsePhase() {
		t.Fatal("respheader.wasm lost its response phase")
	}
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	up.setHandler(func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Request.Header.Peek("X-Hold")) == "1" {
			arrived <- struct{}{}
			<-release
		}
		ctx.SetBodyString("upstream ok")
	})
	old := e.g.Snapshot()
	oldFilter := old.Filters["guard"]
	type result struct {
		status int
		body   string
		phase  string // X-Response-Phase: the old instance's response phase ran
		err    error
	}
	done := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest("POST", e.base+"/hooks/guarded", nil)
		req.Header.Set("X-Hold", "1")
		r, err := client.Do(req)
		if err != nil {
			done <- result{err: err}
			return
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		done <- result{status: r.StatusCode, body: string(b), phase: r.Header.Get("X-Response-Phase")}
	}()
	select {
	case <-arrived:
	case <-time.After(5 * time.Second):
		t.Fatal("the held request never reached the upstream")
	}
	// Replace both the policy and the filter while the request is at the upstream.
	testutil.ReplaceFile(t, e.path("filters/guard.wasm"), testGuest(t, "hookwall.wasm"))
	testutil.ReplaceFile(t, e.path("policies/routes/guarded.rego"), "package routes.guarded\n\nallow := false\n\nstatus := 452\n")
	testutil.WaitUntil(t, 2*time.Second, "the new snapshot is not live", func() bool { return e.mustPost("/hooks/guarded") == 452 })
	if st := oldFilter.Stats(); st.InUse != 1 || st.Live == 0 {
		t.Errorf("old filter during the held request: %+v, want its instance still in use", st)
	}
	close(release)
	r := <-done
	if r.err != nil || r.status != 200 || r.body != "upstream ok" || r.phase != "ran" {
		t.Fatalf("held request: %d %q (response phase %q) %v, want 200 and the response phase on the snapshot it started with", r.status, r.body, r.phase, r.err)
	}
	testutil.WaitUntil(t, 2*time.Second, "the retired pool did not close after its last request", func() bool { return oldFilter.Stats().Live == 0 })
}

func TestReloadNewPolicySubdirectoryIsWatched(t *testing.T) {
	gate := "package routes.flip\n\ndefault allow := false\n\nallow if data.gate.deep.open == true\n\nstatus := 451\n"
	e, _ := startReload(t, "", "", map[string]string{"policies/routes/flip.rego": gate}, Options{})
	if st := e.mustPost("/hooks/flip"); st != 451 {
		t.Fatalf("status %d", st)
	}
	watched := e.g.Status().Watching
	// mkdir -p and write at once: the file may land before the new directory is watched.
	if err := os.MkdirAll(e.path("policies/gate/deep"), 0o755); err != nil {
		t.Fatal(err)
	}
	testutil.WriteFile(t, e.path("policies/gate/deep/data.json"), `{"open": true}`)
	testutil.WaitUntil(t, 2*time.Second, "data in a new subdirectory is not live", func() bool { return e.mustPost("/hooks/flip") == 200 })
	if got := e.g.Status().Watching; got != watched+2 {
		t.Errorf("watching %d directories, want %d (the two new ones)", got, watched+2)
	}
	// A change inside the new directory must be seen: its watch was added.
	testutil.WriteFile(t, e.path("policies/gate/deep/data.json"), `{"open": false}`)
	testutil.WaitUntil(t, 2*time.Second, "a change in the new subdirectory is not live", func() bool { return e.mustPost("/hooks/flip") == 451 })
	if err := os.RemoveAll(e.path("policies/gate")); err != nil {
		t.Fatal(err)
	}
	testutil.WaitUntil(t, 2*time.Second, "the removed directories are still watched", func() bool { return e.g.Status().Watching == watched })
}

// TestReloadConfigMapSwap swaps a policy dir the way the kubelet updates a ConfigMap volume:
// the files are symlinks through "..data", which is atomically renamed to a new directory.
func TestReloadConfigMapSwap(t *testing.T) {
	e, _ := startReload(t, "", "", map[string]string{"policies/routes/keep.rego": "package keep\n\nx := 1\n"}, Options{})
	cm := e.path("policies/cm")
	mkVersion := func(name, content string) {
		if err := os.MkdirAll(filepath.Join(cm, name), 0o755); err != nil {
			t.Fatal(err)
		}
		testutil.WriteFile(t, filepath.Join(cm, name, "flip.rego"), content)
	}
	// Move flip.rego into the ConfigMap layout.
	mkVersion("..2026_01", flipAllow)
	if err := os.Symlink("..2026_01", filepath.Join(cm, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("..data/flip.rego", filepath.Join(cm, "flip.rego")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(e.path("policies/routes/flip.rego")); err != nil {
		t.Fatal(err)
	}
	testutil.WaitUntil(t, 2*time.Second, "the ConfigMap layout did not load", func() bool {
		return e.g.Status().LastResult == "ok" && strings.Contains(strings.Join(e.g.Snapshot().Policies.Files(), ","), "cm/flip.rego")
	})
	rev := e.g.Status().Revision
	// The kubelet's swap: new version dir, new link, rename over ..data, old dir removed.
	mkVersion("..2026_02", flipDeny)
	if err := os.Symlink("..2026_02", filepath.Join(cm, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(cm, "..data_tmp"), filepath.Join(cm, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(cm, "..2026_01")); err != nil {
		t.Fatal(err)
	}
	took := testutil.WaitUntil(t, 2*time.Second, "the ConfigMap swap did not reload", func() bool { return e.mustPost("/hooks/flip") == 451 })
	t.Logf("swap live after %v", took)
	if e.g.Status().Revision == rev {
		t.Error("revision unchanged")
	}
}

func TestReloadWatchFollowsFilterModulePath(t *testing.T) {
	e := guardEnv(t, "tiny.wasm", Options{})
	if err := os.MkdirAll(e.path("filters2"), 0o755); err != nil {
		t.Fatal(err)
	}
	testutil.WriteFile(t, e.path("filters2/guard.wasm"), testGuest(t, "tiny.wasm"))
	raw, err := os.ReadFile(e.path("gateway.toml"))
	if err != nil {
		t.Fatal(err)
	}
	testutil.ReplaceFile(t, e.path("gateway.toml"), strings.Replace(string(raw), "filters/guard.wasm", "filters2/guard.wasm", 1))
	testutil.WaitUntil(t, 2*time.Second, "the moved module path was not applied", func() bool {
		return e.g.Snapshot().Config.Filters[0].Module == e.path("filters2/guard.wasm")
	})
	e.g.mu.Lock()
	list := e.g.watch.fw.WatchList()
	e.g.mu.Unlock()
	joined := strings.Join(list, "\n")
	if !strings.Contains(joined, e.path("filters2")) || strings.Contains(joined+"\n", e.path("filters")+"\n") {
		t.Fatalf("watch list after the move:\n%s", joined)
	}
	// The old path is not watched any more; the new one is.
	testutil.ReplaceFile(t, e.path("filters/guard.wasm"), testGuest(t, "hookwall.wasm"))
	time.Sleep(400 * time.Millisecond)
	if st := e.mustPost("/hooks/guarded"); st != 451 {
		t.Fatalf("status %d: the old module path still reloads", st)
	}
	testutil.ReplaceFile(t, e.path("filters2/guard.wasm"), testGuest(t, "hookwall.wasm"))
	testutil.WaitUntil(t, 2*time.Second, "a change at the new module path is not live", func() bool { return e.mustPost("/hooks/guarded") == 200 })
}

const flipTest = `package routes.flip_test

import data.routes.flip

test_allows if flip.allow
`

func TestReloadTestOnReloadRefusesFailingTests(t *testing.T) {
	e, _ := startReload(t, "test_on_reload = true", "", map[string]string{
		"policies/routes/flip_test.rego": flipTest,
	}, Options{})
	if st := e.mustPost("/hooks/flip"); st != 200 {
		t.Fatalf("status %d", st)
	}
	before := e.g.Status()
	// Compiles, but breaks the test.
	testutil.ReplaceFile(t, e.path("policies/routes/flip.rego"), flipDeny)
	testutil.WaitUntil(t, 2*time.Second, "the change was not refused", func() bool { return e.g.Status().Failures > before.Failures })
	st := e.g.Status()
	if !regexp.MustCompile(`flip_test\.rego:5: test_allows: failed`).MatchString(st.LastError) || st.Revision != before.Revision {
		t.Errorf("status %+v, want the failing test named by file:line and the old revision", st)
	}
	if got := e.mustPost("/hooks/flip"); got != 200 {
		t.Errorf("status %d: a change with failing tests was applied", got)
	}
	// Fix the test with the policy: applied.
	testutil.ReplaceFile(t, e.path("policies/routes/flip_test.rego"), strings.Replace(flipTest, "if flip.allow", "if not flip.allow", 1))
	testutil.WaitUntil(t, 2*time.Second, "the change with passing tests was not applied", func() bool { return e.mustPost("/hooks/flip") == 451 })
}

// TestReloadNoLeaks reloads 200 times, changing the policy every time and the filter module
// every tenth time, and then asserts that goroutines, heap and watches are back near where
// they started.
func TestReloadNoLeaks(t *testing.T) {
	if testing.Short() {
		t.Skip("200 reloads")
	}
	e := guardEnv(t, "tiny.wasm", Options{})
	guests := []string{testGuest(t, "tiny.wasm"), testGuest(t, "hookwall.wasm")}
	policy := e.path("policies/routes/flip.rego")
	ctx := context.Background()
	cycle := func(i int) {
		src := flipAllow
		if i%2 == 1 {
			src = flipDeny
		}
		testutil.WriteFile(t, policy, src+fmt.Sprintf("\n# %d\n", i))
		if i%10 == 0 {
			testutil.WriteFile(t, e.path("filters/guard.wasm"), guests[(i/10)%2])
		}
		if _, err := e.g.Reload(ctx); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		if i%5 == 0 {
			_ = e.mustPost("/hooks/guarded") // hold and release the snapshot like traffic does
		}
	}
	settle := func() (goroutines int, heap uint64) {
		time.Sleep(300 * time.Millisecond) // the watcher's own reloads of the last writes
		for range 3 {
			runtime.GC()
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return runtime.NumGoroutine(), ms.HeapAlloc
	}
	for i := range 20 { // warm up: caches, pools, connection pools
		cycle(i)
	}
	g0, h0 := settle()
	w0 := e.g.Status().Watching
	for i := range 200 {
		cycle(20 + i)
	}
	var g1 int
	var h1 uint64
	deadline := time.Now().Add(5 * time.Second)
	for {
		g1, h1 = settle()
		if g1 <= g0+2 || time.Now().After(deadline) {
			break
		}
	}
	st := e.g.Status()
	t.Logf("goroutines %d → %d, heap %.1f → %.1f MiB, watches %d → %d, reloads %d ok / %d refused",
		g0, g1, float64(h0)/(1<<20), float64(h1)/(1<<20), w0, st.Watching, st.Reloads, st.Failures)
	if g1 > g0+2 {
		buf := make([]byte, 1<<20)
		t.Fatalf("goroutines grew from %d to %d:\n%s", g0, g1, buf[:runtime.Stack(buf, true)])
	}
	if h1 > h0+h0/2+8<<20 {
		t.Errorf("heap grew from %d to %d bytes", h0, h1)
	}
	if st.Watching != w0 {
		t.Errorf("watches %d → %d", w0, st.Watching)
	}
}

// BenchmarkReloadPolicyWatch measures a policy-only change from the file write to the new
// snapshot being live, file-watch debounce included (target ≤ 250ms).
func BenchmarkReloadPolicyWatch(b *testing.B) {
	e, _ := startReload(b, "", "", nil, Options{Logger: discardLogger()})
	policy := e.path("policies/routes/flip.rego")
	for i := 0; b.Loop(); i++ {
		prev := e.g.Snapshot()
		testutil.ReplaceFile(b, policy, fmt.Sprintf("%s\n# %d\n", flipAllow, i))
		for e.g.Snapshot() == prev {
			time.Sleep(500 * time.Microsecond)
		}
	}
}

// BenchmarkReloadPolicyDirect is the rebuild alone for a policy-only change (no debounce).
func BenchmarkReloadPolicyDirect(b *testing.B) {
	e, _ := startReload(b, "watch = false", guardConfig, map[string]string{
		"filters/guard.wasm":           testGuest(b, "hookwall.wasm"),
		"policies/routes/guarded.rego": guardedPolicy,
	}, Options{Logger: discardLogger()})
	policy := e.path("policies/routes/flip.rego")
	ctx := context.Background()
	for i := 0; b.Loop(); i++ {
		testutil.WriteFile(b, policy, fmt.Sprintf("%s\n# %d\n", flipAllow, i))
		if _, err := e.g.Reload(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReloadFilterChange swaps a filter module between two versions that were compiled
// before (the cached recompile, target ≤ 100ms) and reloads. It includes instantiating the
// filter's pool (2 instances).
func BenchmarkReloadFilterChange(b *testing.B) {
	for _, bc := range filterBenchGuests {
		b.Run(bc.name, func(b *testing.B) {
			mod, err := os.ReadFile(bc.file)
			if err != nil {
				b.Skip(err)
			}
			// Two versions with the same code: a trailing custom section changes the bytes,
			// so each has its own cache entry.
			versions := [][]byte{mod, appendCustomSection(mod, "hookwall-bench", []byte("v2"))}
			cfg := strings.Replace(guardConfig, "pool = 2", "pool = 2\nconfig = '{\"allow\": [\"push\"]}'", 1)
			e, _ := startReload(b, "watch = false", cfg, map[string]string{
				"filters/guard.wasm":           string(versions[0]),
				"policies/routes/guarded.rego": guardedPolicy,
			}, Options{Logger: discardLogger(), CacheDir: b.TempDir()})
			ctx := context.Background()
			swap := func(i int) {
				testutil.WriteFile(b, e.path("filters/guard.wasm"), string(versions[i%2]))
				if _, err := e.g.Reload(ctx); err != nil {
					b.Fatal(err)
				}
			}
			swap(1) // compile the second version once: later swaps hit the cache
			for i := 0; b.Loop(); i++ {
				swap(i)
			}
		})
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// BenchmarkFilterCachedRecompile is the filter part of a filter change alone: loading a module
// version that was compiled before (from the on-disk cache, as a rollback does) into a new pool
// of 2 instances, and closing the previous one.
func BenchmarkFilterCachedRecompile(b *testing.B) {
	for _, bc := range filterBenchGuests {
		b.Run(bc.name, func(b *testing.B) {
			mod, err := os.ReadFile(bc.file)
			if err != nil {
				b.Skip(err)
			}
			ctx := context.Background()
			host, err := filter.NewHost(ctx, b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			defer host.Close(ctx)
			versions := [][]byte{mod, appendCustomSection(mod, "hookwall-bench", []byte("v2"))}
			load := func(i int) *filter.Filter {
				f, err := host.Load(ctx, filter.Spec{Name: "guard", Module: versions[i%2], Config: []byte(`{"allow": ["push"]}`), Pool: 2})
				if err != nil {
					b.Fatal(err)
				}
				return f
			}
			prev := load(0)
			_ = load(1).Close(ctx) // both versions are in the cache now
			for i := 1; b.Loop(); i++ {
				next := load(i)
				_ = prev.Close(ctx)
				prev = next
			}
			_ = prev.Close(ctx)
		})
	}
}

var filterBenchGuests = []struct{ name, file string }{
	{"wat-guest", filepath.Join("..", "filter", "testdata", "hookwall.wasm")},
	{"go-guest", filepath.Join("..", "..", "examples", "filters", "eventallow", "eventallow.wasm")},
}

// appendCustomSection returns mod with a custom section added at the end.
func appendCustomSection(mod []byte, name string, payload []byte) []byte {
	body := appendULEB(nil, uint64(len(name)))
	body = append(body, name...)
	body = append(body, payload...)
	out := bytes.Clone(mod)
	out = append(out, 0)
	out = appendULEB(out, uint64(len(body)))
	return append(out, body...)
}

func appendULEB(b []byte, v uint64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			b = append(b, c|0x80)
			continue
		}
		return append(b, c)
	}
}

// TestReloadLogNamesTheChangedFile: a reload the file watch started says which file changed.
func TestReloadLogNamesTheChangedFile(t *testing.T) {
	var logs testutil.Buffer
	e, _ := startReload(t, "", "", nil, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	testutil.ReplaceFile(t, e.path("policies/routes/flip.rego"), flipDeny)
	testutil.WaitUntil(t, 2*time.Second, "the policy change is not live", func() bool { return e.mustPost("/hooks/flip") == 451 })
	testutil.WaitUntil(t, time.Second, "no reload log line names the file:\n"+logs.String(), func() bool {
		for _, line := range strings.Split(logs.String(), "\n") {
			if strings.Contains(line, "msg=reloaded") && strings.Contains(line, "trigger=watch") && strings.Contains(line, "flip.rego") {
				return true
			}
		}
		return false
	})
}

// TestRefusedReloadKeepsTheWatch: a config that parses but is refused (here: a route naming a
// package that does not exist) and that also says watch = false does not stop the file
// watch of the snapshot that keeps serving: putting the good config back, and a policy edit
// after it, still go live.
func TestRefusedReloadKeepsTheWatch(t *testing.T) {
	e, _ := startReload(t, "", "", nil, Options{})
	cfgPath := e.path("gateway.toml")
	good, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	before := e.g.Status()
	refused := strings.Replace(string(good), "[policies]\n", "[policies]\nwatch = false\n", 1) + `
[[route]]
name = "nowhere"
path = "/hooks/nowhere"
upstream = "http://127.0.0.1:1"
policy = "routes.nope"
`
	testutil.ReplaceFile(t, cfgPath, refused)
	testutil.WaitUntil(t, 2*time.Second, "the refused config never showed in /-/status", func() bool {
		return e.adminStatus().Failures > before.Failures
	})
	testutil.ReplaceFile(t, cfgPath, string(good))
	testutil.WaitUntil(t, 2*time.Second, "the good config put back was never reloaded: the watch stopped", func() bool {
		return e.adminStatus().LastResult == "ok"
	})
	testutil.ReplaceFile(t, e.path("policies/routes/flip.rego"), flipDeny)
	testutil.WaitUntil(t, 2*time.Second, "a policy edit after the refused config never went live", func() bool {
		return e.mustPost("/hooks/flip") == 451
	})
}
