package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/cover"
	"github.com/open-policy-agent/opa/v1/tester"
	"github.com/open-policy-agent/opa/v1/topdown"
	"github.com/open-policy-agent/opa/v1/topdown/lineage"

	"github.com/hookwall/hookwall/engine/config"
	"github.com/hookwall/hookwall/engine/policy"
)

const testUsage = `usage: hookwall test [flags] [PATH…]

Runs the Rego tests (rules named test_*) under each PATH (a directory or a .rego file;
default: the [policies] dir of the config, else ./policies) with the hookwall builtins, so a
test can mock them: ` + "`with hookwall.webhook.verify as mock`" + `. Filters are tested with
go test through the SDK harness, not here.

Exit status: 0 when every test passed, 1 when one failed or errored (each is named), 2 on
bad usage.

flags:
`

// cmdTest is `hookwall test`: opa test for hookwall policies.
func cmdTest(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet("test", flag.ContinueOnError)
	fset.SetOutput(stderr)
	fset.Usage = func() { fmt.Fprint(stderr, testUsage); fset.PrintDefaults() }
	cfgPath := configFlags(fset)
	verbose := fset.Bool("v", false, "list every test, with the notes and failing expressions of a failure")
	coverage := fset.Bool("coverage", false, "report which policy lines the tests evaluate")
	threshold := fset.Float64("threshold", 0, "with --coverage: fail when coverage (percent) is below this")
	runRe := fset.String("run", "", "run only the tests whose name matches this regular expression")
	format := fset.String("format", "pretty", "output: pretty (as opa test prints) or json")
	timeout := fset.Duration("timeout", 5*time.Second, "time limit of one test")
	paths, err := parseInterspersed(fset, args)
	if err != nil {
		return 2
	}
	if *format != "pretty" && *format != "json" {
		fmt.Fprintf(stderr, "hookwall test: --format %q: want pretty or json\n", *format)
		return 2
	}
	if _, err := regexp.Compile(*runRe); err != nil {
		fmt.Fprintf(stderr, "hookwall test: --run %q: %v\n", *runRe, err)
		return 2
	}

	// The config gives the default path, the secrets a test without mocks verifies with, and
	// the unsafe builtins the policies may use. Without one, tests still run (mocked builtins).
	var allow []string
	var secrets policy.SecretSource
	cfg, cerr := loadOptionalConfig(fset, *cfgPath)
	switch {
	case cerr != nil:
		fmt.Fprintf(stderr, "hookwall test: %v\n", cerr)
		return 1
	case cfg != nil:
		allow = cfg.Policies.AllowBuiltins
		if s, err := cfg.ResolveSecrets(os.LookupEnv); err == nil {
			secrets = s
		} else {
			fmt.Fprintf(stderr, "hookwall test: warning: %v (tests that verify without a mock will fail)\n", err)
		}
		if len(paths) == 0 {
			paths = []string{cfg.Policies.Dir}
		}
	}
	if len(paths) == 0 {
		paths = []string{"policies"}
	}

	mods, data, err := policy.LoadTests(paths...)
	if err != nil {
		fmt.Fprintf(stderr, "hookwall test: %v\n", err)
		return 1
	}
	if !policy.HasTests(mods) {
		fmt.Fprintf(stderr, "hookwall test: no *_test.rego files under %s\n", strings.Join(paths, ", "))
		return 1
	}

	runner, err := policy.NewTestRunner(allow, secrets, nil, data)
	if err != nil {
		fmt.Fprintf(stderr, "hookwall test: %v\n", err)
		return 1
	}
	var cov *cover.Cover
	runner = runner.
		CapturePrintOutput(true).
		EnableTracing(true). // the failing expression's line is read from the trace
		SetTimeout(*timeout).
		Filter(*runRe).
		SetParallel(2)
	if *coverage {
		cov = cover.New()
		runner.SetCoverageQueryTracer(cov)
	}
	ch, err := runner.SetModules(mods).RunTests(ctx, nil)
	if err != nil {
		fmt.Fprintf(stderr, "hookwall test: %v\n", err)
		return 1
	}

	failed, ran := false, false
	dup := make(chan *tester.Result)
	go func() {
		defer close(dup)
		for r := range ch {
			ran = true
			if r.Fail || r.Error != nil {
				failed = true
			}
			switch {
			case *verbose:
				r.Trace = lineage.Filter(r.Trace, func(e *topdown.Event) bool { return e.Op == topdown.NoteOp || e.Op == topdown.FailOp })
			case *format == "json":
				// Traced only for the pretty report's failing expression: the JSON report
				// would carry every test's whole trace (hundreds of MB for the shipped
				// library), where opa test --format json carries none without -v.
				r.Trace = nil
			}
			dup <- r
		}
	}()
	var rep tester.Reporter = tester.PrettyReporter{Output: stdout, Verbose: *verbose, FailureLine: true}
	if *format == "json" {
		rep = tester.JSONReporter{Output: stdout}
	}
	if err := rep.Report(dup); err != nil {
		fmt.Fprintf(stderr, "hookwall test: %v\n", err)
		return 1
	}
	if !ran {
		fmt.Fprintf(stderr, "hookwall test: no test matched --run %q\n", *runRe)
		return 1
	}
	if cov != nil {
		if below := reportCoverage(stdout, cov, mods, *format, *threshold); below != "" {
			fmt.Fprintf(stderr, "hookwall test: %s\n", below)
			return 1
		}
	}
	if failed {
		return 1
	}
	return 0
}

// reportCoverage prints the coverage of the policy (non-test) modules and returns a message
// when it is below threshold.
func reportCoverage(w io.Writer, cov *cover.Cover, mods map[string]*ast.Module, format string, threshold float64) string {
	policies := map[string]*ast.Module{}
	for name, m := range mods {
		if !policy.IsTestFile(name) {
			policies[name] = m
		}
	}
	rep := cov.Report(policies)
	// The report counts every file the tests touched; only policies are measured.
	rep.CoveredLines, rep.NotCoveredLines = 0, 0
	for name, f := range rep.Files {
		if policies[name] == nil {
			delete(rep.Files, name)
			continue
		}
		rep.CoveredLines += f.CoveredLines
		rep.NotCoveredLines += f.NotCoveredLines
	}
	rep.Coverage = 100
	if total := rep.CoveredLines + rep.NotCoveredLines; total > 0 {
		rep.Coverage = 100 * float64(rep.CoveredLines) / float64(total)
	}
	if format == "json" {
		// The shape of opa test --coverage.
		_ = jsonEncoder(w).Encode(rep)
	} else {
		fmt.Fprintln(w, strings.Repeat("-", 80))
		fmt.Fprintf(w, "COVERAGE: %.2f%% (%d of %d lines)\n", rep.Coverage, rep.CoveredLines, rep.CoveredLines+rep.NotCoveredLines)
		names := make([]string, 0, len(rep.Files))
		for n := range rep.Files {
			names = append(names, n)
		}
		sort.Strings(names)
		wd, _ := os.Getwd()
		for _, n := range names {
			f := rep.Files[n]
			shown := n
			if rel, err := filepath.Rel(wd, n); err == nil && wd != "" && !strings.HasPrefix(rel, "..") {
				shown = rel
			}
			line := fmt.Sprintf("  %-50s %6.2f%%", shown, f.Coverage)
			if rows := lineRanges(f.NotCovered); rows != "" {
				line += "  not covered: " + rows
			}
			fmt.Fprintln(w, line)
		}
	}
	if rep.Coverage < threshold {
		return fmt.Sprintf("coverage %.2f%% is below the threshold %.2f%%", rep.Coverage, threshold)
	}
	return ""
}

// lineRanges lists the rows of ranges, merged: "3, 9-11".
func lineRanges(ranges []cover.Range) string {
	rows := map[int]bool{}
	for _, r := range ranges {
		for row := r.Start.Row; row <= r.End.Row; row++ {
			rows[row] = true
		}
	}
	sorted := make([]int, 0, len(rows))
	for row := range rows {
		sorted = append(sorted, row)
	}
	sort.Ints(sorted)
	var parts []string
	for i := 0; i < len(sorted); {
		j := i
		for j+1 < len(sorted) && sorted[j+1] == sorted[j]+1 {
			j++
		}
		if i == j {
			parts = append(parts, fmt.Sprint(sorted[i]))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", sorted[i], sorted[j]))
		}
		i = j + 1
	}
	return strings.Join(parts, ", ")
}

// parseInterspersed parses flags that may come before, between or after the positional
// arguments ("hookwall test policies -v"), as opa test accepts them.
func parseInterspersed(fset *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fset.Parse(args); err != nil {
			return nil, err
		}
		rest := fset.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// loadOptionalConfig loads the config of a command that runs without one: nil, nil when -c
// was not given and ./gateway.toml is not there. A config named with -c, or a ./gateway.toml
// that is there, must load: its allow_builtins and secrets would otherwise be dropped
// without a word.
func loadOptionalConfig(fset *flag.FlagSet, path string) (*config.Config, error) {
	cfg, err := config.Load(path)
	if err != nil && !flagSet(fset, "c") && !flagSet(fset, "config") && errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return cfg, err
}

func flagSet(fset *flag.FlagSet, name string) bool {
	found := false
	fset.Visit(func(f *flag.Flag) { found = found || f.Name == name })
	return found
}
