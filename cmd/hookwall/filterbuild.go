package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// cmdFilterBuild implements `hookwall filter build DIR [-o FILE.wasm]`: it
// builds the Go filter package in DIR as a WASI reactor with the flags the
// gateway needs (GOOS=wasip1 GOARCH=wasm, -buildmode=c-shared, -trimpath),
// checks that the result is a module exporting the http-wasm handler, and
// reports its size and the build time. Flags may come before or after DIR.
// It needs the Go toolchain on PATH. Exit codes: 0 built, 1 build or check
// failed, 2 usage.
func cmdFilterBuild(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("filter build", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "output `file`, or a directory to write <name of DIR>.wasm in (default: DIR/<name of DIR>.wasm)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: hookwall filter build DIR [-o FILE.wasm]")
		fs.PrintDefaults()
	}
	var dirs []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		dirs = append(dirs, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(dirs) != 1 {
		fs.Usage()
		return 2
	}
	dir := dirs[0]
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		fmt.Fprintf(stderr, "hookwall filter build: %s is not a directory\n", dir)
		return 2
	}
	absDir, err := filepath.Abs(dir)
	if err != nil {
		fmt.Fprintf(stderr, "hookwall filter build: %v\n", err)
		return 1
	}
	target := *out
	if target == "" {
		target = filepath.Join(dir, filepath.Base(absDir)+".wasm")
	} else if st, err := os.Stat(target); (err == nil && st.IsDir()) || strings.HasSuffix(target, "/") || strings.HasSuffix(target, string(filepath.Separator)) {
		// -o naming a directory (one that exists, or any ending in a separator, made below
		// as go build -o makes it): the module goes into it, named as by default.
		target = filepath.Join(target, filepath.Base(absDir)+".wasm")
	}
	// go build runs in DIR, so -o must not be relative to it.
	absOut, err := filepath.Abs(target)
	if err != nil {
		fmt.Fprintf(stderr, "hookwall filter build: %v\n", err)
		return 1
	}
	if st, err := os.Stat(absOut); err == nil && !st.Mode().IsRegular() {
		fmt.Fprintf(stderr, "hookwall filter build: %s exists and is not a regular file\n", target)
		return 2
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		fmt.Fprintln(stderr, "hookwall filter build: the Go toolchain (go) is not on PATH")
		return 1
	}
	// The build goes to a directory of its own beside the target, and the module replaces
	// the target only once it passed the checks: a failed build or a module that is not a
	// filter leaves a previous good one in place. Beside it, so the rename stays on one
	// file system.
	if err := os.MkdirAll(filepath.Dir(absOut), 0o777); err != nil { // as go build -o would
		fmt.Fprintf(stderr, "hookwall filter build: %v\n", err)
		return 1
	}
	tmpDir, err := os.MkdirTemp(filepath.Dir(absOut), ".hookwall-filter-build-")
	if err != nil {
		fmt.Fprintf(stderr, "hookwall filter build: %v\n", err)
		return 1
	}
	defer os.RemoveAll(tmpDir)
	tmpOut := filepath.Join(tmpDir, filepath.Base(absOut))
	// go prints the paths of its errors relative to DIR, where it runs; the user ran
	// hookwall elsewhere.
	cwd, _ := os.Getwd()

	var goOut bytes.Buffer
	cmd := exec.CommandContext(ctx, goBin, "build", "-trimpath", "-buildmode=c-shared", "-o", tmpOut, ".")
	cmd.Dir = absDir
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	cmd.Stdout, cmd.Stderr = &goOut, &goOut
	start := time.Now()
	if err := cmd.Run(); err != nil {
		if !sdkUnresolved(goOut.String()) {
			stderr.Write(relocatePaths(goOut.Bytes(), absDir, cwd))
			fmt.Fprintf(stderr, "hookwall filter build: go build in %s: %v\n", dir, err)
			return 1
		}
		// The go command's advice (`go get` the SDK) cannot work: the SDK is not published
		// on a module proxy. Say what the filter's go.mod needs instead.
		stderr.Write(relocatePaths(withoutGoGet(goOut.Bytes()), absDir, cwd))
		fmt.Fprintf(stderr, "hookwall filter build: go build in %s: %v\n", dir, err)
		fmt.Fprint(stderr, sdkAdvice(ctx, goBin, absDir))
		return 1
	}
	stderr.Write(relocatePaths(goOut.Bytes(), absDir, cwd))
	took := time.Since(start)

	mod, err := os.ReadFile(tmpOut)
	if err != nil {
		fmt.Fprintf(stderr, "hookwall filter build: %v\n", err)
		return 1
	}
	exports, err := filterBuildExports(mod)
	if err != nil {
		fmt.Fprintf(stderr, "hookwall filter build: %s: %v (%s left as it was)\n", target, err, target)
		return 1
	}
	for _, need := range []string{"handle_request", "memory"} {
		if !slices.Contains(exports, need) {
			fmt.Fprintf(stderr, "hookwall filter build: the module built for %s does not export %s: does package main import github.com/hookwall/hookwall/sdk and register a handler from init? (%s left as it was)\n", target, need, target)
			return 1
		}
	}
	if err := os.Rename(tmpOut, absOut); err != nil {
		fmt.Fprintf(stderr, "hookwall filter build: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "built %s: %s in %s (exports %s)\n", target, filterBuildSize(len(mod)), took.Round(time.Millisecond), strings.Join(exports, ", "))
	return 0
}

// relocatePaths rewrites the relative paths at the start of go's output lines
// ("./main.go:13:17: undefined: x", "../lib/x.go:3:1: …"), which are relative
// to dir where go ran, to paths relative to cwd, or absolute when that is
// shorter or cwd is unknown, as go itself shortens them.
func relocatePaths(goOut []byte, dir, cwd string) []byte {
	var b bytes.Buffer
	for line := range bytes.Lines(goOut) {
		trimmed := bytes.TrimLeft(line, " \t")
		indent := line[:len(line)-len(trimmed)]
		if !bytes.HasPrefix(trimmed, []byte("./")) && !bytes.HasPrefix(trimmed, []byte("../")) {
			b.Write(line)
			continue
		}
		end := bytes.IndexByte(trimmed, ':')
		if end < 0 {
			end = len(bytes.TrimRight(trimmed, "\r\n"))
		}
		abs := filepath.Join(dir, string(trimmed[:end]))
		p := abs
		if cwd != "" {
			if rel, err := filepath.Rel(cwd, abs); err == nil && len(rel) < len(abs) {
				p = rel
			}
		}
		b.Write(indent)
		b.WriteString(p)
		b.Write(trimmed[end:])
	}
	return b.Bytes()
}

// sdkUnresolved reports whether go build failed because the filter's module
// cannot resolve the SDK: no go.mod, no require, or a require the go command
// tried to fetch.
func sdkUnresolved(goOut string) bool {
	if strings.Contains(goOut, "go.mod file not found") {
		return true
	}
	if !strings.Contains(goOut, sdkModule) {
		return false
	}
	for _, sign := range []string{"no required module provides package", "missing go.sum entry", "reading http", "cannot find module", "replacement directory", "GOPROXY=off", "unrecognized import path"} {
		if strings.Contains(goOut, sign) {
			return true
		}
	}
	return false
}

// withoutGoGet drops the go command's "to add it: go get …" advice.
func withoutGoGet(goOut []byte) []byte {
	var b bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(goOut))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(strings.TrimSpace(line), "go get ") {
			continue
		}
		for _, tail := range []string{"; to add it:", "; to add:"} {
			line = strings.TrimSuffix(line, tail)
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// sdkAdvice tells how the filter's module gets the SDK: the require and
// replace lines, with the path of a local hookwall checkout's sdk directory
// when one is found.
func sdkAdvice(ctx context.Context, goBin, dir string) string {
	sdkDir := findSDK(dir)
	if sdkDir == "" {
		sdkDir = "/path/to/hookwall/sdk"
	}
	lines := fmt.Sprintf("\trequire %s v0.0.0\n\treplace %s => %s\n", sdkModule, sdkModule, sdkDir)
	const why = "hookwall filter build: the filter SDK %s is not on a module proxy, so go get cannot fetch it; "
	const where = "(the replace names the sdk directory of a local hookwall checkout):\n"
	if gomod := filterGoMod(ctx, goBin, dir); gomod != "" {
		return fmt.Sprintf(why+"add these lines to %s "+where+"%s", sdkModule, gomod, lines)
	}
	return fmt.Sprintf(why+"%s is not in a Go module: create %s "+where+"\tmodule example.com/myfilter\n\tgo 1.24\n%s",
		sdkModule, dir, filepath.Join(dir, "go.mod"), lines)
}

// filterGoMod returns the go.mod file governing dir, or "" outside a module.
func filterGoMod(ctx context.Context, goBin, dir string) string {
	cmd := exec.CommandContext(ctx, goBin, "env", "GOMOD")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return ""
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == os.DevNull {
		return ""
	}
	return gomod
}

func filterBuildSize(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// filterBuildExports returns the names of a wasm module's exports, reading
// only the section headers and the export section.
func filterBuildExports(mod []byte) ([]string, error) {
	if len(mod) < 8 || string(mod[:4]) != "\x00asm" || string(mod[4:8]) != "\x01\x00\x00\x00" {
		return nil, errors.New("not a WebAssembly 1.0 binary module")
	}
	r := filterBuildReader{b: mod[8:]}
	for len(r.b) > 0 {
		id := r.byte()
		size := r.uleb()
		if r.err != nil || uint64(len(r.b)) < size {
			return nil, errors.New("truncated module")
		}
		sec := filterBuildReader{b: r.b[:size]}
		r.b = r.b[size:]
		if id != 7 { // export section
			continue
		}
		n := sec.uleb()
		var names []string
		for i := uint64(0); i < n && sec.err == nil; i++ {
			l := sec.uleb()
			if uint64(len(sec.b)) < l {
				return nil, errors.New("truncated export section")
			}
			names = append(names, string(sec.b[:l]))
			sec.b = sec.b[l:]
			sec.byte() // kind
			sec.uleb() // index
		}
		if sec.err != nil {
			return nil, errors.New("truncated export section")
		}
		return names, nil
	}
	return nil, nil
}

type filterBuildReader struct {
	b   []byte
	err error
}

func (r *filterBuildReader) byte() byte {
	if len(r.b) == 0 {
		r.err = io.ErrUnexpectedEOF
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *filterBuildReader) uleb() uint64 {
	var v uint64
	for shift := 0; shift < 64; shift += 7 {
		c := r.byte()
		if r.err != nil {
			return 0
		}
		v |= uint64(c&0x7f) << shift
		if c&0x80 == 0 {
			return v
		}
	}
	r.err = errors.New("bad LEB128")
	return 0
}
