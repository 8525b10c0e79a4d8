package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/loader"
)

// The one rule for which files of a policy tree are read, shared by Load (serving), LoadTests
// (`hookwall test`, [policies] test_on_reload) and the gateway's file watcher:
//
//   - below a root, a file or directory whose name starts with "." is skipped (.git, a
//     .vectors directory of tests that need secrets only go test has, editor files); a root
//     given explicitly is read whatever its name;
//   - *.rego files are modules, *_test.rego files among them are tests, which serving leaves
//     out;
//   - data.json, data.yaml and data.yml are data; every other file is skipped.

// IsTestFile reports whether a module (by file or module name) is a Rego test file.
func IsTestFile(name string) bool { return strings.HasSuffix(name, "_test.rego") }

// isDataFile reports whether a file name is a data document of a policy dir: only data.json,
// data.yaml and data.yml, so other JSON (schemas, fixtures) is not merged into data by accident.
func isDataFile(name string) bool {
	return name == "data.json" || name == "data.yaml" || name == "data.yml"
}

// IsHidden reports whether a file or directory name below a policy root is skipped.
func IsHidden(name string) bool { return strings.HasPrefix(name, ".") }

// IsPolicyFile reports whether a (not hidden) file name is read: a module or a data document.
func IsPolicyFile(name string) bool { return strings.HasSuffix(name, ".rego") || isDataFile(name) }

// HasTests reports whether mods holds a test module.
func HasTests(mods map[string]*ast.Module) bool {
	for name := range mods {
		if IsTestFile(name) {
			return true
		}
	}
	return false
}

// LoadTests parses the modules, tests included, and the data under paths (directories or
// single files) for OPA's test runner, by the rule Load reads a policy dir with.
func LoadTests(paths ...string) (map[string]*ast.Module, map[string]any, error) {
	res, err := readTree(paths, true)
	if err != nil {
		return nil, nil, err
	}
	return res.ParsedModules(), res.Documents, nil
}

// readTree reads the policy files under roots; includeTests keeps *_test.rego files.
func readTree(roots []string, includeTests bool) (*loader.Result, error) {
	for _, p := range roots {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("policy: %w", err)
		}
	}
	res, err := loader.NewFileLoader().
		WithRegoVersion(ast.RegoV1).
		WithProcessAnnotation(true).
		Filtered(roots, func(_ string, info fs.FileInfo, depth int) bool {
			name := info.Name()
			switch {
			case depth == 0 && info.IsDir():
				return false
			case depth > 0 && IsHidden(name):
				return true
			case info.IsDir():
				return false
			case IsTestFile(name):
				return !includeTests
			default:
				return !IsPolicyFile(name)
			}
		})
	if err != nil {
		return nil, fmt.Errorf("policy: %w", describe(dataLines(err)))
	}
	return res, nil
}

// dataLines gives a JSON data file's syntax error the line it is on: OPA's loader reports
// "path: invalid character …" with the offset kept only in the error it wraps.
func dataLines(err error) error {
	var le loader.Errors
	if !errors.As(err, &le) {
		return err
	}
	out := make(loader.Errors, len(le))
	for i, e := range le {
		out[i] = e
		var se *json.SyntaxError
		path, msg, ok := strings.Cut(e.Error(), ": ")
		if !errors.As(e, &se) || !ok {
			continue
		}
		b, rerr := os.ReadFile(path)
		if rerr != nil || se.Offset > int64(len(b)) {
			continue
		}
		line := 1 + bytes.Count(b[:se.Offset], []byte("\n"))
		out[i] = fmt.Errorf("%s:%d: %s", path, line, msg)
	}
	return out
}
