package gateway

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/hookwall/hookwall/engine/config"
	"github.com/hookwall/hookwall/engine/policy"
	"github.com/hookwall/hookwall/engine/tlsconf"
)

const (
	// watchDebounce waits for a burst of events (an editor's save, a git checkout, a
	// ConfigMap swap) to pause before reloading once.
	watchDebounce = 100 * time.Millisecond
	// watchSettle is how long files written in place (a Write event: scp, rsync --inplace,
	// `cat >`, an editor saving in place) must then stay unchanged (size, modification time
	// and SHA-256 of the content) before a reload reads them: nothing tells when such a
	// writer is done, and Rego cut at a line boundary often compiles and is looser than the
	// whole file. A writer that pauses for less than watchDebounce+watchSettle (1.1 s) between
	// two chunks is never read half way; one that pauses longer can be. A file renamed into
	// place is whole when it appears and needs no settling.
	watchSettle = time.Second
	// watchMaxDelay bounds the debounce when events never pause, for files replaced whole
	// (renamed into place, removed). Files written in place are not reloaded while their
	// writes continue, however long: past watchMaxDelay a warning says so, once.
	watchMaxDelay = time.Second
)

// watchTargets is what one config asks to watch. Directories are watched, never files:
// editors replace a file by renaming another over it, and Kubernetes swaps a ConfigMap by
// renaming its "..data" symlink, and a watch on the old file would see neither.
type watchTargets struct {
	// trees are watched with every subdirectory, present and future (the policy dir).
	trees []string
	// files maps a directory to the names in it that matter (gateway.toml, filter modules,
	// secret files, the bundle verification key).
	files map[string]map[string]bool
}

func targetsFor(cfg *config.Config, configPath string) watchTargets {
	t := watchTargets{files: map[string]map[string]bool{}}
	add := func(p string) {
		if p == "" {
			return
		}
		paths := []string{p}
		// A symlinked file changes where it points to: watch there too, except inside a
		// ConfigMap's timestamped directory, which is replaced whole (its "..data" rename in
		// the directory above is what signals the change).
		if real, err := filepath.EvalSymlinks(p); err == nil && real != p && !strings.Contains(real, string(filepath.Separator)+"..") {
			paths = append(paths, real)
		}
		for _, q := range paths {
			abs, err := filepath.Abs(q)
			if err != nil {
				continue
			}
			dir, name := filepath.Split(abs)
			dir = filepath.Clean(dir)
			if t.files[dir] == nil {
				t.files[dir] = map[string]bool{}
			}
			t.files[dir][name] = true
		}
	}
	add(configPath)
	if cfg.Policies.BundleURL == "" {
		t.trees = append(t.trees, filepath.Clean(cfg.Policies.Dir))
	}
	add(cfg.Policies.BundleVerificationKey)
	for i := range cfg.Filters {
		add(cfg.Filters[i].Module)
	}
	for _, ref := range cfg.Secrets {
		if ref.File != "" {
			add(cfg.Abs(ref.File))
		}
	}
	// The listeners' TLS files are read again at every reload (reloadTLS): a renewed
	// certificate, or a CA removed from client_ca, applies without an operator's reload.
	for _, f := range []tlsconf.Files{tlsconf.ServerFiles(&cfg.Server), tlsconf.AdminFiles(&cfg.Admin)} {
		add(f.Cert)
		add(f.Key)
		add(f.ClientCA)
	}
	return t
}

// watcher turns file changes into reloads: fsnotify events pass a relevance filter, a
// debounce coalesces them, and one reload runs at a time on its own goroutine so events keep
// draining while a snapshot builds.
type watcher struct {
	log    *slog.Logger
	fw     *fsnotify.Watcher
	reload func(ctx context.Context, changed []string)
	kick   chan struct{}
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	targets watchTargets
	changed []string // files changed since the last reload started, for its log line (bounded)
}

// maxChangedNamed bounds the files a reload's log line names; more are counted as "+N more".
const maxChangedNamed = 8

func newWatcher(ctx context.Context, log *slog.Logger, reload func(ctx context.Context, changed []string)) (*watcher, error) {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	w := &watcher{log: log, fw: fw, reload: reload, kick: make(chan struct{}, 1), cancel: cancel}
	w.wg.Add(2)
	go w.events(ctx)
	go w.reloads(ctx)
	return w, nil
}

// close stops both goroutines and removes every watch. Idempotent.
func (w *watcher) close() {
	w.cancel()
	_ = w.fw.Close()
	w.wg.Wait()
}

// watchCount returns the number of directories watched.
func (w *watcher) watchCount() int { return len(w.fw.WatchList()) }

// sync makes the watched directories exactly those t needs: new ones are added, ones no
// longer needed (a filter moved, a policy subdir deleted) removed, so reloads never pile up
// watches.
func (w *watcher) sync(t watchTargets) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.targets = t
	want := map[string]bool{}
	for dir := range t.files {
		want[dir] = true
	}
	for _, root := range t.trees {
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return nil
			}
			if p != root && policy.IsHidden(d.Name()) {
				return filepath.SkipDir // as the policy loaders do
			}
			want[p] = true
			return nil
		})
	}
	have := map[string]bool{}
	for _, p := range w.fw.WatchList() {
		have[p] = true
		if !want[p] {
			_ = w.fw.Remove(p)
		}
	}
	var missing []string
	for p := range want {
		if have[p] {
			continue
		}
		if err := w.fw.Add(p); err != nil {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		w.log.Warn("cannot watch; changes there need SIGHUP or POST /-/reload", "dirs", missing)
	}
}

// relevant reports whether ev may change what the gateway serves. It adds watches for
// directories created inside a watched tree.
func (w *watcher) relevant(ev fsnotify.Event) bool {
	if ev.Op == fsnotify.Chmod || ev.Name == "" {
		return false
	}
	dir, name := filepath.Split(ev.Name)
	dir = filepath.Clean(dir)
	w.mu.Lock()
	defer w.mu.Unlock()
	if strings.HasPrefix(name, "..") {
		return true // a Kubernetes ConfigMap or Secret volume swapped its "..data" link
	}
	if w.targets.files[dir][name] {
		return true
	}
	for _, root := range w.targets.trees {
		if ev.Name != root && !strings.HasPrefix(ev.Name, root+string(filepath.Separator)) {
			continue
		}
		if policy.IsHidden(name) {
			return false
		}
		if policy.IsPolicyFile(name) {
			return true
		}
		if ev.Has(fsnotify.Create) {
			if st, err := os.Stat(ev.Name); err == nil && st.IsDir() {
				w.addTree(ev.Name)
				return true
			}
		}
		// A removed or renamed directory takes its files with it.
		return ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename)
	}
	return false
}

// addTree watches a new directory and those already inside it (mkdir -p, cp -r). w.mu is held.
func (w *watcher) addTree(root string) {
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if p != root && policy.IsHidden(d.Name()) {
			return filepath.SkipDir
		}
		if err := w.fw.Add(p); err != nil {
			w.log.Warn("cannot watch new policy directory", "dir", p, "err", err)
		}
		return nil
	})
}

// events drains fsnotify and decides when to reload. Files replaced whole (renamed into
// place, removed, new directories) reload watchDebounce after the last event, or
// watchMaxDelay after the first when events never pause. Files written in place are
// "unsettled": once their events pause for watchDebounce their state is recorded, and the
// reload waits until it has held for watchSettle, re-arming as long as they change.
func (w *watcher) events(ctx context.Context) {
	defer w.wg.Done()
	var (
		timer *time.Timer
		fire  <-chan time.Time
		first time.Time // the first event not reloaded yet; zero when none
		// unsettled holds the files written in place since the last reload; seen, while
		// the settle timer runs, their state when it started.
		unsettled = map[string]bool{}
		seen      map[string]fileState
		warned    bool
	)
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	arm := func(d time.Duration) {
		if timer == nil {
			timer = time.NewTimer(d)
		} else {
			timer.Reset(d)
		}
		fire = timer.C
	}
	// schedule is the debounce of files replaced whole, bounded by watchMaxDelay.
	schedule := func() {
		wait := watchDebounce
		if left := watchMaxDelay - time.Since(first); left < wait {
			wait = max(left, 0)
		}
		arm(wait)
	}
	// warn says once per reload waited for that files written in place keep changing.
	warn := func() {
		if warned || len(unsettled) == 0 || time.Since(first) < watchMaxDelay {
			return
		}
		warned = true
		w.log.Warn("watched files keep changing; the reload waits until they stay unchanged for "+watchSettle.String()+
			" (write a new file and rename it over the old one to change it at once)", "files", sortedNames(unsettled))
	}
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.fw.Events:
			if !ok {
				return
			}
			if !w.relevant(ev) {
				continue
			}
			w.log.Debug("watched file changed", "path", ev.Name, "op", ev.Op.String())
			w.note(ev.Name)
			if first.IsZero() {
				first = time.Now()
			}
			if writtenInPlace(ev) {
				// Wait for the writes to pause, then for the file to hold still.
				unsettled[ev.Name], seen = true, nil
				arm(watchDebounce)
			} else if delete(unsettled, ev.Name); len(unsettled) == 0 {
				seen = nil
				schedule()
			}
			// Otherwise the file was replaced whole while another is unsettled: the reload
			// that waits for that one reads this one too.
			warn()
		case err, ok := <-w.fw.Errors:
			if !ok {
				return
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) && len(unsettled) == 0 {
				// Events were lost: one of them may have mattered.
				if first.IsZero() {
					first = time.Now()
				}
				schedule()
			}
			w.log.Warn("file watch", "err", err)
		case <-fire:
			fire = nil
			if len(unsettled) > 0 {
				now := stateOf(unsettled)
				if seen == nil || !maps.Equal(seen, now) {
					// The writes just paused, or the files changed during the settle
					// interval: watch them for another one.
					seen = now
					arm(watchSettle)
					warn()
					continue
				}
			}
			clear(unsettled)
			seen, first, warned = nil, time.Time{}, false
			select {
			case w.kick <- struct{}{}:
			default: // a reload is already pending; it will read the newest files
			}
		}
	}
}

// writtenInPlace reports whether ev may leave its file half written: a write, or a file
// created empty (its content may be on the way). A file renamed into place (a Create of a
// file that has content) is whole.
func writtenInPlace(ev fsnotify.Event) bool {
	if ev.Has(fsnotify.Write) {
		return true
	}
	if !ev.Has(fsnotify.Create) {
		return false
	}
	st, err := os.Stat(ev.Name)
	return err == nil && st.Mode().IsRegular() && st.Size() == 0
}

// fileState is what tells that a file changed: its size, modification time and content.
type fileState struct {
	exists bool
	size   int64
	mtime  time.Time
	sum    [sha256.Size]byte
}

// stateOf records the state of each file.
func stateOf(files map[string]bool) map[string]fileState {
	out := make(map[string]fileState, len(files))
	for p := range files {
		out[p] = stateOfFile(p)
	}
	return out
}

func stateOfFile(p string) fileState {
	f, err := os.Open(p)
	if err != nil {
		return fileState{}
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		return fileState{}
	}
	s := fileState{exists: true, size: st.Size(), mtime: st.ModTime()}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fileState{}
	}
	h.Sum(s.sum[:0])
	return s
}

// sortedNames lists a set's names in order, at most maxChangedNamed of them.
func sortedNames(set map[string]bool) []string {
	names := slices.Sorted(maps.Keys(set))
	if len(names) > maxChangedNamed {
		names = append(names[:maxChangedNamed], "…")
	}
	return names
}

func (w *watcher) reloads(ctx context.Context) {
	defer w.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.kick:
			w.mu.Lock()
			changed := w.changed
			w.changed = nil
			w.mu.Unlock()
			w.reload(ctx, changed)
		}
	}
}

// note remembers a changed file for the next reload's log line.
func (w *watcher) note(name string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range w.changed {
		if c == name {
			return
		}
	}
	if len(w.changed) < maxChangedNamed {
		w.changed = append(w.changed, name)
	} else if len(w.changed) == maxChangedNamed {
		w.changed = append(w.changed, "…")
	}
}
