// Command hookwall is the webhook security gateway.
//
//	hookwall [run] [-c gateway.toml]   serve (the default)
//	hookwall check -c gateway.toml     load the config and compile every policy and filter
//	hookwall test [-v] [PATH…]         run the Rego tests with the hookwall builtins
//	hookwall eval --route R FILE       evaluate a recorded request, without forwarding it
//	hookwall filter build DIR -o F     build a Go filter to WebAssembly
//	hookwall filter init DIR           write a starter filter (Go, C, WAT, AssemblyScript)
//	hookwall filter test F.wasm        run one filter alone on a recorded request
//	hookwall ranges update             refresh the provider IP range data
//	hookwall deliveries list|show|replay|purge|rekey   queued deliveries of a running gateway
//	hookwall decisions open [FILE]     a decision log with its sealed bodies in the clear
//	hookwall capabilities [-o F]       write an OPA capabilities file with the hookwall builtins
//	hookwall blocks list|lift          list or lift the watcher's blocks of a running gateway
//	hookwall version
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage: hookwall <command> [flags]

commands:
  run            serve webhooks (default when no command is given)
  check          validate the config and compile every policy and filter
  test           run the Rego tests (*_test.rego) with the hookwall builtins
  eval           evaluate a recorded request against a route, without forwarding it
  filter build   build a Go filter directory to WebAssembly
  filter init    write a starter filter with its test (--lang go|c|wat|assemblyscript)
  filter test    run one filter alone on a recorded request and print what it did
  ranges update  refresh the provider IP range data (policies/ranges/data.json)
  deliveries     list, show, replay, purge or rekey queued deliveries of a running gateway
  decisions open print a decision log with its sealed bodies in the clear (encryption_keys)
  capabilities   write an OPA capabilities file with the hookwall builtins (for opa, Regal, editors)
  blocks         list or lift the sources a running gateway blocks ([watch])
  version        print the version

Run "hookwall <command> -h" for the flags of a command.
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd := "run"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	} else if len(args) == 1 {
		// Alone, these are the gateway's own flags, not run's (whose flags a command-less
		// invocation otherwise takes): "hookwall -h" lists the commands.
		switch args[0] {
		case "-v", "-version", "--version":
			cmd = "version"
		case "-h", "-help", "--help":
			cmd = "help"
		}
	}
	switch cmd {
	case "run":
		return cmdRun(ctx, args, stdout, stderr)
	case "check":
		return cmdCheck(ctx, args, stdout, stderr)
	case "test":
		return cmdTest(ctx, args, stdout, stderr)
	case "eval":
		return cmdEval(ctx, args, stdout, stderr)
	case "filter":
		if len(args) > 0 {
			switch args[0] {
			case "build":
				return cmdFilterBuild(ctx, args[1:], stdout, stderr)
			case "test":
				return cmdFilterTest(ctx, args[1:], stdout, stderr)
			case "init":
				return cmdFilterInit(args[1:], stdout, stderr)
			}
		}
		fmt.Fprint(stderr, "usage: hookwall filter build|test|init …\n")
		return 2
	case "ranges":
		return cmdRanges(ctx, args, stdout, stderr)
	case "deliveries":
		return cmdDeliveries(ctx, args, stdout, stderr)
	case "decisions":
		return cmdDecisions(args, stdout, stderr)
	case "capabilities":
		return cmdCapabilities(args, stdout, stderr)
	case "blocks":
		return cmdBlocks(ctx, args, stdout, stderr)
	case "version":
		fmt.Fprintf(stdout, "hookwall %s\n", version)
		return 0
	case "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "hookwall: unknown command %q\n\n%s", cmd, usage)
	return 2
}
