package main

import (
	"debug/buildinfo"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/pprof/profile"
)

// TestBuiltWithProfile checks the profile-guided build: go build of this command reads
// default.pgo on its own, so the binary users build records it; and the profile is one of the
// request path as it is named today. A profile whose functions were renamed or removed guides
// nothing: regenerate it (README "Performance").
func TestBuiltWithProfile(t *testing.T) {
	bin := hookwallBinary(t)
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	pgo := ""
	for _, s := range info.Settings {
		if s.Key == "-pgo" {
			pgo = s.Value
		}
	}
	if want := filepath.Join("cmd", "hookwall", "default.pgo"); !strings.HasSuffix(pgo, want) {
		t.Errorf("the binary was built with -pgo=%q, want the command's %s", pgo, want)
	}

	f, err := os.Open("default.pgo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p, err := profile.Parse(f)
	if err != nil {
		t.Fatalf("default.pgo: %v", err)
	}
	if got := p.SampleType[len(p.SampleType)-1].Type; got != "cpu" {
		t.Errorf("default.pgo's sample type is %q, want cpu", got)
	}
	// Each stage of a request the benchmark's routes run, by the name the code has now.
	for _, fn := range []string{
		"engine/internal/server.(*Server).handle",
		"engine/internal/input.(*Builder).Capture",
		"engine/policy.(*Query).EvalRequest",
		"engine/policy/internal/fastpath.(*Program).EvalRules",
		"engine/webhook.(*verifier).bodyMAC",
		"engine/filter.(*Instance).HandleRequest",
		"engine/state/memory.(*Store).Admit",
		"engine/internal/server.(*Server).forward",
		"engine/decisionlog.(*Logger).Log",
		"engine/delivery/sqlite.(*Store).Enqueue",
	} {
		if !profiled(p, "github.com/hookwall/hookwall/"+fn) {
			t.Errorf("default.pgo has no sample in %s", fn)
		}
	}
}

// profiled reports whether a sample of p has a frame of the function fn.
func profiled(p *profile.Profile, fn string) bool {
	for _, s := range p.Sample {
		for _, loc := range s.Location {
			for _, l := range loc.Line {
				if l.Function != nil && l.Function.Name == fn {
					return true
				}
			}
		}
	}
	return false
}
