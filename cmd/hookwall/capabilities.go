package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/hookwall/hookwall/engine/policy"
)

const capabilitiesUsage = `usage: hookwall capabilities [-c gateway.toml] [-o FILE]

Writes an OPA capabilities document for hookwall policies: OPA's builtins less the unsafe ones
the config does not re-enable ([policies] allow_builtins), plus hookwall's builtins with their
types. OPA's tools then accept hookwall policies and refuse what the gateway refuses:

  hookwall capabilities -o hookwall.capabilities.json
  opa check --capabilities hookwall.capabilities.json policies/
  regal lint --capabilities hookwall.capabilities.json policies/   (or capabilities.from.file in .regal/config.yaml)

flags:
`

// cmdCapabilities is `hookwall capabilities`.
func cmdCapabilities(args []string, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet("capabilities", flag.ContinueOnError)
	fset.SetOutput(stderr)
	fset.Usage = func() { fmt.Fprint(stderr, capabilitiesUsage); fset.PrintDefaults() }
	cfgPath := configFlags(fset)
	out := fset.String("o", "", "write to this file instead of standard output")
	if err := fset.Parse(args); err != nil || !noArgs(fset, stderr) {
		return 2
	}
	// Without a config the defaults apply: every unsafe builtin off.
	var allow []string
	cfg, err := loadOptionalConfig(fset, *cfgPath)
	switch {
	case err != nil:
		fmt.Fprintf(stderr, "hookwall capabilities: %v\n", err)
		return 1
	case cfg != nil:
		allow = cfg.Policies.AllowBuiltins
	}
	caps, err := policy.Capabilities(allow)
	if err != nil {
		fmt.Fprintf(stderr, "hookwall capabilities: %v\n", err)
		return 1
	}
	b, err := json.MarshalIndent(caps, "", "  ")
	if err != nil {
		fmt.Fprintf(stderr, "hookwall capabilities: %v\n", err)
		return 1
	}
	b = append(b, '\n')
	if *out == "" {
		_, err = stdout.Write(b)
	} else {
		err = os.WriteFile(*out, b, 0o644)
	}
	if err != nil {
		fmt.Fprintf(stderr, "hookwall capabilities: %v\n", err)
		return 1
	}
	return 0
}
