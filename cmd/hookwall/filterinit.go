package main

import (
	"bytes"
	"embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
)

// filterKit holds the starter filters, one directory per language, and common/ (sample
// requests) that every starter gets. Files ending in .tmpl drop the suffix when written (a
// starter's Go files must not be Go files of this module).
//
//go:embed filterkit
var filterKit embed.FS

// sdkModule is the SDK's module path.
const sdkModule = "github.com/hookwall/hookwall/sdk"

const filterInitUsage = `usage: hookwall filter init DIR [--lang go|c|wat|assemblyscript] [--name NAME] [--sdk DIR]

Writes a working starter filter into DIR (new or empty): the source, a Makefile whose "build"
builds filter.wasm and whose "test" runs hookwall filter test on two sample requests
(requests/*.http), and a README with the commands. Every starter does the same: a request
without an X-Tenant header is answered 403; any other is forwarded with X-Starter-Filter set
and the label tenant for the policy.

  go              Go with the hookwall SDK (its own module; a native go test with sdktest too)
  c               C with clang and wasm-ld, no libc
  wat             WebAssembly text, built with wabt's wat2wasm
  assemblyscript  AssemblyScript, built with asc from npm

For Go, go.mod requires the SDK and replaces it with a local copy: --sdk names it, or the
hookwall checkout DIR or the working directory is inside is used.

flags:
`

var langs = []string{"go", "c", "wat", "assemblyscript"}

func cmdFilterInit(args []string, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet("filter init", flag.ContinueOnError)
	fset.SetOutput(stderr)
	fset.Usage = func() { fmt.Fprint(stderr, filterInitUsage); fset.PrintDefaults() }
	lang := fset.String("lang", "go", "the starter's language: "+strings.Join(langs, ", "))
	name := fset.String("name", "", "the filter's name (default: DIR's base name)")
	sdkDir := fset.String("sdk", "", "Go: the local SDK directory go.mod replaces the SDK with")
	rest, err := parseInterspersed(fset, args)
	if err != nil {
		return 2
	}
	if len(rest) != 1 {
		fset.Usage()
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "hookwall filter init: %v\n", err)
		return 1
	}
	dir := rest[0]
	if !contains(langs, *lang) {
		fmt.Fprintf(stderr, "hookwall filter init: --lang %q: want one of %s\n", *lang, strings.Join(langs, ", "))
		return 2
	}
	if *name == "" {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return fail(err)
		}
		*name = filepath.Base(abs)
	}
	if !validFilterName.MatchString(*name) {
		return fail(fmt.Errorf("name %q: use lower-case letters, digits, '-' and '_' (it names the module and the filter)", *name))
	}
	if err := emptyDir(dir); err != nil {
		return fail(err)
	}
	files, err := starterFiles(*lang, *name)
	if err != nil {
		return fail(err)
	}
	if *lang == "go" {
		mod, err := goStarterMod(dir, *name, *sdkDir)
		if err != nil {
			return fail(err)
		}
		files["go.mod"] = mod
	}
	files["README.md"] = starterReadme(*lang, *name)
	for rel, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fail(err)
		}
		if err := os.WriteFile(p, content, 0o644); err != nil {
			return fail(err)
		}
	}
	fmt.Fprintf(stdout, "wrote a %s filter %q to %s: cd %s && make build test\n", *lang, *name, dir, dir)
	return 0
}

var validFilterName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// emptyDir creates dir, or accepts it when it exists and is empty: a starter never overwrites.
func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return os.MkdirAll(dir, 0o755)
	case err != nil:
		return err
	case len(entries) > 0:
		return fmt.Errorf("%s is not empty: a starter is written only into a new or empty directory", dir)
	}
	return nil
}

// starterFiles reads the language's starter and the common files, with {{NAME}} replaced.
func starterFiles(lang, name string) (map[string][]byte, error) {
	files := map[string][]byte{}
	for _, root := range []string{"filterkit/common", "filterkit/" + lang} {
		err := fs.WalkDir(filterKit, root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := filterKit.ReadFile(p)
			if err != nil {
				return err
			}
			rel := strings.TrimSuffix(strings.TrimPrefix(p, root+"/"), ".tmpl")
			files[rel] = bytes.ReplaceAll(b, []byte("{{NAME}}"), []byte(name))
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return files, nil
}

// goStarterMod is the Go starter's go.mod: its own module, requiring the SDK and replacing it
// with a local copy (the SDK is resolved from the checkout it lives in).
func goStarterMod(dir, name, sdkDir string) ([]byte, error) {
	if sdkDir == "" {
		sdkDir = findSDK(dir)
	}
	if sdkDir == "" {
		return nil, errors.New("the Go starter needs the hookwall SDK: run this inside a hookwall checkout, or pass --sdk /path/to/hookwall/sdk")
	}
	if mod, err := os.ReadFile(filepath.Join(sdkDir, "go.mod")); err != nil || !bytes.Contains(mod, []byte("module "+sdkModule+"\n")) {
		return nil, fmt.Errorf("--sdk %s: no go.mod of module %s there", sdkDir, sdkModule)
	}
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	absSDK, err := filepath.Abs(sdkDir)
	if err != nil {
		return nil, err
	}
	replace := absSDK
	if rel, err := filepath.Rel(absDir, absSDK); err == nil {
		replace = filepath.ToSlash(rel)
		if !strings.HasPrefix(replace, ".") {
			replace = "./" + replace
		}
	}
	return fmt.Appendf(nil, "module %s\n\ngo 1.26\n\nrequire %s v0.0.0\n\n// The SDK from a local hookwall checkout; drop this line once you require a published version.\nreplace %s => %s\n", name, sdkModule, sdkModule, replace), nil
}

// findSDK looks for the SDK of a hookwall checkout above dir, then above the working directory,
// then above this source file when the binary was built without -trimpath (go run, go build
// in a checkout).
func findSDK(dir string) string {
	wd, _ := os.Getwd()
	starts := []string{dir, wd}
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		starts = append(starts, filepath.Dir(file))
	}
	for _, start := range starts {
		d, err := filepath.Abs(start)
		if err != nil {
			continue
		}
		for {
			cand := filepath.Join(d, "sdk")
			if mod, err := os.ReadFile(filepath.Join(cand, "go.mod")); err == nil && bytes.Contains(mod, []byte("module "+sdkModule+"\n")) {
				return cand
			}
			parent := filepath.Dir(d)
			if parent == d {
				break
			}
			d = parent
		}
	}
	return ""
}

// starterReadme says how to build and test the starter.
func starterReadme(lang, name string) []byte {
	build := map[string]string{
		"go":             "hookwall filter build . -o filter.wasm",
		"c":              "clang --target=wasm32 -O2 -nostdlib -Wl,--no-entry -Wl,--export-dynamic -o filter.wasm filter.c",
		"wat":            "wat2wasm filter.wat -o filter.wasm",
		"assemblyscript": "npm install && npm run build",
	}[lang]
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\nA hookwall filter (%s). A request without an `X-Tenant` header is answered 403; any\n", name, lang)
	b.WriteString("other is forwarded with `X-Starter-Filter` set, and the label `tenant` for the policy\n")
	b.WriteString("(`input.filters." + name + ".labels.tenant`).\n\n")
	fmt.Fprintf(&b, "```sh\nmake build   # %s\nmake test    # hookwall filter test on requests/*.http, expecting next and deny\n```\n\n", build)
	b.WriteString("Use it on a route:\n\n```toml\n[[filter]]\nname = \"" + name + "\"\nmodule = \"" + path.Join("path/to", name, "filter.wasm") + "\"\n```\n")
	return []byte(b.String())
}
