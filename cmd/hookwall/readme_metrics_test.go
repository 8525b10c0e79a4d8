package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestReadmeNamesEveryMetric: every series the gateway's code names ("hookwall_…" string
// literals under engine/, outside tests) is named in the README, as it is or in a brace
// group ("hookwall_decision_log_{written,dropped}_total"). A series added without a word in
// the README fails here.
func TestReadmeNamesEveryMetric(t *testing.T) {
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, name := range regexp.MustCompile(`hookwall_[a-z_{},]*[a-z_}]`).FindAllString(string(raw), -1) {
		for _, n := range expandBraces(name) {
			documented[n] = true
		}
	}
	named := metricNames(t, "../../engine")
	if len(named) < 40 {
		t.Fatalf("found %d series names under engine/, want every one the gateway registers", len(named))
	}
	for _, n := range named {
		if !documented[n] {
			t.Errorf("the code names the series %s; README.md does not", n)
		}
	}
}

// metricNames returns the string literals that are whole names hookwall_… in the Go files
// under dir, tests excluded, sorted and without repeats.
func metricNames(t *testing.T, dir string) []string {
	t.Helper()
	// A whole name: a prefix ("hookwall_test_", pgtest's databases) ends with "_".
	series := regexp.MustCompile(`^hookwall_[a-z_]*[a-z]$`)
	var names []string
	fset := token.NewFileSet()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if s, err := strconv.Unquote(lit.Value); err == nil && series.MatchString(s) {
					names = append(names, s)
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// expandBraces expands the first {a,b,…} group of s, and the groups after it, into every
// name they stand for: "x_{a,b}_total" is "x_a_total" and "x_b_total". A brace group that
// follows the name is its labels ("hookwall_requests_total{route}") and is dropped.
func expandBraces(s string) []string {
	open := strings.IndexByte(s, '{')
	if open < 0 {
		return []string{s}
	}
	end := strings.IndexByte(s[open:], '}')
	if end < 0 {
		return []string{s[:open]}
	}
	end += open
	if open > 0 && s[open-1] != '_' { // labels, not alternatives
		return []string{s[:open]}
	}
	var out []string
	for _, alt := range strings.Split(s[open+1:end], ",") {
		out = append(out, expandBraces(s[:open]+alt+s[end+1:])...)
	}
	return out
}
